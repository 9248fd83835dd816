// SMART scope parsing (v1 and v2) and the Access checks built on it.
#include <gtest/gtest.h>

#include "auth/access.h"

namespace bevan::auth {
namespace {

std::string Letters(const Scope& s) {
  std::string out;
  if (s.create) out += 'c';
  if (s.read) out += 'r';
  if (s.update) out += 'u';
  if (s.del) out += 'd';
  if (s.search) out += 's';
  return out;
}

Scope One(std::string_view text) {
  auto scopes = ParseScopes(text);
  EXPECT_TRUE(scopes.ok()) << text << ": " << scopes.status().ToString();
  EXPECT_EQ(scopes.ok() ? scopes->size() : 0u, 1u) << text;
  return scopes.ok() && scopes->size() == 1 ? scopes->front() : Scope{};
}

TEST(ParseScopes, V2Forms) {
  Scope s = One("patient/Observation.rs");
  EXPECT_EQ(s.context, ScopeContext::kPatient);
  EXPECT_EQ(s.resource_type, "Observation");
  EXPECT_EQ(Letters(s), "rs");
  EXPECT_EQ(s.query, "");

  s = One("user/*.cruds");
  EXPECT_EQ(s.context, ScopeContext::kUser);
  EXPECT_EQ(s.resource_type, "*");
  EXPECT_EQ(Letters(s), "cruds");

  s = One("system/Patient.r?identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009");
  EXPECT_EQ(s.context, ScopeContext::kSystem);
  EXPECT_EQ(Letters(s), "r");
  EXPECT_EQ(s.query, "identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009");

  s = One(
      "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory&x=a?b");
  EXPECT_EQ(s.query, "category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory&x=a?b");

  for (const char* letters : {"c", "r", "u", "d", "s", "cu", "rs", "cd", "crud", "us"}) {
    EXPECT_EQ(Letters(One(std::string("user/Encounter.") + letters)), letters);
  }
}

TEST(ParseScopes, V1Forms) {
  EXPECT_EQ(Letters(One("patient/*.read")), "rs");
  EXPECT_EQ(Letters(One("user/Observation.write")), "cud");
  EXPECT_EQ(Letters(One("system/Patient.*")), "cruds");
}

TEST(ParseScopes, MalformedScopesAreErrorsNamingThem) {
  for (const char* bad : {
           "patient/Observation.sr",       // letters out of order
           "patient/Observation.rr",       // repeated
           "patient/Observation.rx",       // unknown letter
           "patient/Observation.",         // no permissions
           "patient/Observation",          // no permissions
           "patient/.rs",                  // no type
           "patient/Banana.rs",            // unknown resource type
           "patient/DomainResource.rs",    // abstract
           "patient/HumanName.rs",         // not a resource
           "patient/observation.rs",       // case matters
           "practitioner/Patient.rs",      // unknown context
           "patient/Patient.read?name=x",  // v1 with a query
           "patient/Patient.READ",
       }) {
    auto scopes = ParseScopes(std::string("openid ") + bad + " fhirUser");
    ASSERT_FALSE(scopes.ok()) << bad;
    EXPECT_EQ(scopes.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(scopes.status().message().find(bad), std::string::npos) << scopes.status().message();
  }
}

TEST(ParseScopes, NonResourceScopesAreSkipped) {
  auto scopes = ParseScopes(
      "openid fhirUser profile launch launch/patient launch/encounter offline_access online_access email "
      "api://bevan/.default https://example.org/scope");
  ASSERT_TRUE(scopes.ok()) << scopes.status().ToString();
  EXPECT_TRUE(scopes->empty());

  scopes = ParseScopes("  openid  patient/Patient.r   launch/patient user/Observation.rs ");
  ASSERT_TRUE(scopes.ok()) << scopes.status().ToString();
  ASSERT_EQ(scopes->size(), 2u);
  EXPECT_EQ((*scopes)[0].resource_type, "Patient");
  EXPECT_EQ((*scopes)[1].resource_type, "Observation");
  EXPECT_TRUE(ParseScopes("")->empty());
}

TEST(Scope, AllowsAndGrants) {
  Scope s = One("patient/Observation.rs");
  EXPECT_TRUE(s.Allows(Interaction::kRead));
  EXPECT_TRUE(s.Allows(Interaction::kSearch));
  EXPECT_FALSE(s.Allows(Interaction::kCreate));
  EXPECT_FALSE(s.Allows(Interaction::kUpdate));
  EXPECT_FALSE(s.Allows(Interaction::kDelete));
  EXPECT_TRUE(s.Grants(Interaction::kRead, "Observation"));
  EXPECT_FALSE(s.Grants(Interaction::kRead, "Patient"));
  EXPECT_FALSE(s.Grants(Interaction::kCreate, "Observation"));

  Scope any = One("user/*.cud");
  EXPECT_TRUE(any.Grants(Interaction::kCreate, "Patient"));
  EXPECT_TRUE(any.Grants(Interaction::kDelete, "Observation"));
  EXPECT_FALSE(any.Grants(Interaction::kRead, "Patient"));
}

TEST(Access, Granting) {
  Access access;
  access.enforce = true;
  auto scopes = ParseScopes("openid patient/Observation.rs?category=laboratory patient/*.r user/Patient.cu");
  ASSERT_TRUE(scopes.ok());
  access.scopes = std::move(scopes).value();

  auto granting = access.Granting(Interaction::kSearch, "Observation");
  ASSERT_EQ(granting.size(), 1u);
  EXPECT_EQ(granting[0]->query, "category=laboratory");

  granting = access.Granting(Interaction::kRead, "Observation");
  ASSERT_EQ(granting.size(), 2u);
  EXPECT_EQ(granting[0], &access.scopes[0]);
  EXPECT_EQ(granting[1], &access.scopes[1]);

  EXPECT_EQ(access.Granting(Interaction::kRead, "Condition").size(), 1u);
  EXPECT_EQ(access.Granting(Interaction::kUpdate, "Patient").size(), 1u);
  EXPECT_TRUE(access.Granting(Interaction::kDelete, "Patient").empty());
  EXPECT_TRUE(access.Granting(Interaction::kSearch, "Condition").empty());
  EXPECT_TRUE(Access{}.Granting(Interaction::kRead, "Patient").empty());
}

}  // namespace
}  // namespace bevan::auth
