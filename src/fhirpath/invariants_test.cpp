#include "fhirpath/invariants.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/shared_dir.h"

namespace bevan::fhirpath {
namespace {

fhir::OperationOutcome V(std::string_view text) { return fhir::ValidateJson(text, FullValidation()); }

bool HasKey(const fhir::OperationOutcome& o, std::string_view key, fhir::Severity severity) {
  for (const auto& i : o.issues) {
    if (i.code == fhir::IssueType::kInvariant && i.severity == severity && i.diagnostics.starts_with(key)) return true;
  }
  return false;
}

TEST(Invariants, EveryConstraintOfTheModelCompiles) {
  EXPECT_EQ(Invariants::Get().compile_failures(), 0u);
  EXPECT_GT(fhir::AllConstraints().size(), 200u);
}

TEST(Invariants, ReportsFailuresByKeyAndLocation) {
  // pat-1: a contact needs details or an organization.
  auto o = V(R"({"resourceType":"Patient","contact":[{"gender":"male"}]})");
  ASSERT_TRUE(HasKey(o, "pat-1", fhir::Severity::kError)) << o.ToJson(true);
  EXPECT_EQ(o.issues[0].location, "Patient.contact[0]");
  // obs-6: dataAbsentReason only without a value.
  auto obs = V(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"valueString":"a",
                   "dataAbsentReason":{"text":"unknown"}})");
  EXPECT_TRUE(HasKey(obs, "obs-6", fhir::Severity::kError)) << obs.ToJson(true);
  // per-1: start before end.
  auto per = V(R"({"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},
                   "period":{"start":"2024-02-01","end":"2024-01-01"}})");
  EXPECT_TRUE(HasKey(per, "per-1", fhir::Severity::kError)) << per.ToJson(true);
  // Valid resources raise nothing.
  EXPECT_FALSE(V(R"({"resourceType":"Patient","contact":[{"name":{"family":"X"}}]})").HasErrors());
}

TEST(Invariants, OffByDefault) {
  auto o = fhir::ValidateJson(R"({"resourceType":"Patient","contact":[{"gender":"male"}]})");
  EXPECT_FALSE(o.HasErrors());
}

// Every resource of the Synthea sample satisfies every error-level invariant.
TEST(Invariants, SyntheaSampleHasNoInvariantErrors) {
  auto shared = SharedDir();
  if (!shared) GTEST_SKIP() << "BEVAN_SHARED (../shared) not found: Synthea invariants not checked";
  size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(*shared + "/data/synthea-10")) {
    if (entry.path().extension() != ".ndjson" || entry.path().filename() == "log.ndjson") continue;
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto o = V(line);
      ASSERT_FALSE(o.HasErrors()) << entry.path().filename() << "\n" << o.ToJson(true);
      for (const auto& i : o.issues) {
        EXPECT_EQ(i.diagnostics.find("could not be evaluated"), std::string::npos) << i.diagnostics;
      }
      ++n;
    }
  }
  EXPECT_GT(n, 5000u);
}

}  // namespace
}  // namespace bevan::fhirpath
