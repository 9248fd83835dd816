#include "search/query.h"

#include <gtest/gtest.h>

#include "search/search.h"

namespace bevan::search {
namespace {

SearchQuery Parse(std::string_view type, std::string_view query, const ParseOptions& options = {}) {
  auto q = ParseSearchQuery(type, query, options);
  EXPECT_TRUE(q.ok()) << query << ": " << q.status().ToString();
  return q.ok() ? std::move(q).value() : SearchQuery{};
}

Status Error(std::string_view type, std::string_view query) {
  auto q = ParseSearchQuery(type, query);
  return q.ok() ? Status::Ok() : q.status();
}

TEST(QueryTest, DecodesFormsAndPercentEscapes) {
  auto pairs = DecodeQueryString("a=1+2&b=%C3%A9t%C3%A9&&c&d=x%2By");
  ASSERT_TRUE(pairs.ok());
  ASSERT_EQ(pairs->size(), 4u);
  EXPECT_EQ((*pairs)[0].second, "1 2");
  EXPECT_EQ((*pairs)[1].second, "été");
  EXPECT_EQ((*pairs)[2].first, "c");
  EXPECT_EQ((*pairs)[3].second, "x+y");
  EXPECT_FALSE(DecodeQueryString("a=%zz").ok());
  EXPECT_FALSE(DecodeQueryString("a=%4").ok());
  EXPECT_EQ(Error("Patient", "family=%C3").code(), StatusCode::kInvalidArgument);  // not UTF-8
}

TEST(QueryTest, OrByCommaAndByRepetitionWithEscapes) {
  SearchQuery q = Parse("Patient", "family=a,b\\,c&family=d&given=x\\\\y");
  ASSERT_EQ(q.criteria.size(), 3u);
  ASSERT_EQ(q.criteria[0].values.size(), 2u);
  EXPECT_EQ(q.criteria[0].values[1].text, "b,c");
  EXPECT_EQ(q.criteria[1].values[0].text, "d");
  EXPECT_EQ(q.criteria[2].values[0].text, "x\\y");
}

TEST(QueryTest, Tokens) {
  SearchQuery q = Parse("Observation", "code=http://loinc.org|1-8,|x,y,sys|,a\\|b");
  const auto& v = q.criteria[0].values;
  ASSERT_EQ(v.size(), 5u);
  EXPECT_EQ(*v[0].system, "http://loinc.org");
  EXPECT_EQ(v[0].code, "1-8");
  EXPECT_EQ(*v[1].system, "");
  EXPECT_FALSE(v[2].system.has_value());
  EXPECT_EQ(*v[3].system, "sys");
  EXPECT_EQ(v[3].code, "");
  EXPECT_EQ(v[4].code, "a|b");
  EXPECT_EQ(Parse("Patient", "identifier:of-type=s|MR|123").criteria[0].values[0].code, "MR|123");
  EXPECT_EQ(Error("Patient", "identifier:of-type=s|MR").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse("Observation", "code:not=x").criteria[0].modifier, Modifier::kNot);
  EXPECT_EQ(Parse("Observation", "code:text=Gluc").criteria[0].modifier, Modifier::kText);
  EXPECT_EQ(Error("Observation", "code=a|b|c").code(), StatusCode::kInvalidArgument);
}

TEST(QueryTest, PrefixesAndPrecisionRanges) {
  SearchQuery q = Parse("Patient", "birthdate=ge2020-02&birthdate=2020&birthdate=ap2020-01-01");
  EXPECT_EQ(q.criteria[0].values[0].prefix, Prefix::kGe);
  EXPECT_EQ(q.criteria[0].values[0].date_hi - q.criteria[0].values[0].date_lo + 1, 29LL * 86400 * 1000000);
  EXPECT_EQ(q.criteria[1].values[0].prefix, Prefix::kEq);
  EXPECT_LT(q.criteria[2].values[0].date_lo, q.criteria[1].values[0].date_lo);  // ap widens
  SearchQuery n = Parse("RiskAssessment", "probability=gt0.50");
  EXPECT_EQ(n.criteria[0].values[0].prefix, Prefix::kGt);
  EXPECT_DOUBLE_EQ(n.criteria[0].values[0].lo, 0.495);
  EXPECT_DOUBLE_EQ(n.criteria[0].values[0].hi, 0.505);
  SearchQuery qu = Parse("Observation", "value-quantity=le5.4|http://unitsofmeasure.org|mmol/L");
  const SearchValue& v = qu.criteria[0].values[0];
  EXPECT_EQ(v.prefix, Prefix::kLe);
  EXPECT_EQ(v.unit_code, "mmol/L");
  EXPECT_FALSE(v.canonical_unit.empty());
  EXPECT_EQ(Error("Patient", "birthdate=ge2020-13").code(), StatusCode::kInvalidArgument);
  EXPECT_NE(Error("Patient", "birthdate=yesterday").message().find("birthdate"), std::string::npos);
  EXPECT_EQ(Error("RiskAssessment", "probability=gtx").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Error("Observation", "value-quantity=5|mg").code(), StatusCode::kInvalidArgument);
}

TEST(QueryTest, References) {
  ParseOptions options;
  options.base_url = "http://localhost:8080/fhir/";
  SearchQuery q = Parse("Observation",
                        "subject=Patient/1,2,http://localhost:8080/fhir/Patient/3,http://else.org/Patient/4,"
                        "Patient/5/_history/2",
                        options);
  const auto& v = q.criteria[0].values;
  ASSERT_EQ(v.size(), 5u);
  EXPECT_EQ(v[0].ref_type, "Patient");
  EXPECT_EQ(v[0].ref_id, "1");
  EXPECT_EQ(v[1].ref_type, "");
  EXPECT_EQ(v[1].ref_id, "2");
  EXPECT_EQ(v[2].ref_id, "3");
  EXPECT_EQ(v[3].ref_url, "http://else.org/Patient/4");
  EXPECT_EQ(v[4].ref_id, "5");
  SearchQuery t = Parse("Observation", "subject:Patient=7");
  EXPECT_EQ(t.criteria[0].values[0].ref_type, "Patient");
  EXPECT_EQ(Error("Observation", "subject:Patient=Group/7").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Error("Observation", "subject:Medication=7").code(), StatusCode::kInvalidArgument);
  SearchQuery i = Parse("Observation", "subject:identifier=urn:sys|9");
  EXPECT_EQ(i.criteria[0].modifier, Modifier::kIdentifier);
  EXPECT_EQ(*i.criteria[0].values[0].system, "urn:sys");
}

TEST(QueryTest, ChainsToAnyDepthAndReverseChains) {
  SearchQuery q = Parse("Observation", "subject:Patient.general-practitioner.organization.name=x");
  const Criterion& c = q.criteria[0];
  EXPECT_EQ(c.code, "subject");
  EXPECT_EQ(c.target_types, std::vector<std::string>{"Patient"});
  ASSERT_TRUE(c.chained());
  EXPECT_EQ(c.chain[0].code, "general-practitioner");
  EXPECT_EQ(c.chain[0].chain[0].code, "organization");
  EXPECT_EQ(c.chain[0].chain[0].chain[0].code, "name");
  EXPECT_EQ(c.chain[0].chain[0].chain[0].values[0].text, "x");
  // Without a type: every target type that has the parameter.
  SearchQuery any = Parse("Observation", "subject.name=x");
  EXPECT_GE(any.criteria[0].target_types.size(), 2u);
  SearchQuery h = Parse("Patient", "_has:Observation:patient:_has:Provenance:target:agent=dr");
  const Criterion& has = h.criteria[0];
  EXPECT_EQ(has.special, Criterion::Special::kHas);
  EXPECT_EQ(has.has_type, "Observation");
  EXPECT_EQ(has.has_param, "patient");
  EXPECT_EQ(has.chain[0].has_type, "Provenance");
  EXPECT_EQ(has.chain[0].chain[0].values[0].ref_id, "dr");
  EXPECT_EQ(Error("Patient", "_has:Nope:patient:code=1").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Error("Patient", "_has:Observation:code:code=1").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Error("Patient", "family.name=x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Error("Observation", "subject:Patient.link:Patient.link:Patient.link:Patient.link:Patient.name=x").code(),
            StatusCode::kInvalidArgument);
}

TEST(QueryTest, CompositeMissingUriSpecials) {
  SearchQuery c = Parse("Observation", "code-value-quantity=http://loinc.org|8480-6$gt100");
  const SearchValue& v = c.criteria[0].values[0];
  EXPECT_EQ(v.composite_key, "http://loinc.org|8480-6");
  ASSERT_EQ(v.components.size(), 2u);
  EXPECT_EQ(v.components[1].prefix, Prefix::kGt);
  EXPECT_EQ(Error("Observation", "code-value-quantity=8480-6").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Parse("Patient", "gender:missing=true").criteria[0].values[0].missing);
  EXPECT_EQ(Error("Patient", "gender:missing=maybe").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse("ValueSet", "url:below=http://x").criteria[0].modifier, Modifier::kBelow);
  SearchQuery s = Parse("Patient", "_id=a,b&_lastUpdated=gt2024-01-01T00:00:00Z");
  EXPECT_EQ(s.criteria[0].special, Criterion::Special::kId);
  EXPECT_EQ(s.criteria[1].special, Criterion::Special::kLastUpdated);
}

TEST(QueryTest, UnknownParametersAndModifiersAreCollected) {
  SearchQuery q = Parse("Patient", "foo=1&gender:above=x&_text=x&family:fuzzy=y&name=ok&gender:in=http://vs|2");
  ASSERT_EQ(q.unknown.size(), 4u);
  EXPECT_EQ(q.unknown[0].first, "foo");
  EXPECT_EQ(q.unknown[1].first, "gender:above");
  EXPECT_NE(q.unknown[1].second.find("subsumption"), std::string::npos) << q.unknown[1].second;
  EXPECT_EQ(q.unknown[3].second.find("subsumption"), std::string::npos) << q.unknown[3].second;  // family:fuzzy
  ASSERT_EQ(q.criteria.size(), 2u);
  EXPECT_EQ(q.criteria[1].modifier, Modifier::kIn);
  EXPECT_EQ(q.criteria[1].values[0].text, "http://vs");  // |version ignored
  EXPECT_EQ(Error("Nope", "a=b").code(), StatusCode::kInvalidArgument);
}

TEST(QueryTest, ResultParameters) {
  SearchQuery q = Parse("Encounter",
                        "_sort=-date,_id&_count=10&_total=accurate&_summary=count&_elements=id,status&"
                        "_include=Encounter:subject:Patient&_include:iterate=Patient:organization&"
                        "_revinclude=Provenance:target&_include=*&_cursor=abc&_format=json");
  ASSERT_EQ(q.sort.size(), 2u);
  EXPECT_TRUE(q.sort[0].descending);
  EXPECT_EQ(q.sort[1].code, "_id");
  EXPECT_EQ(*q.count, 10);
  EXPECT_EQ(*q.total, Total::kAccurate);
  EXPECT_EQ(*q.summary, Summary::kCount);
  EXPECT_EQ(q.elements.size(), 2u);
  ASSERT_EQ(q.includes.size(), 3u);
  EXPECT_EQ(q.includes[0].target_type, "Patient");
  EXPECT_TRUE(q.includes[1].iterate);
  EXPECT_TRUE(q.includes[2].param.empty());
  ASSERT_EQ(q.revincludes.size(), 1u);
  EXPECT_EQ(*q.cursor, "abc");
  EXPECT_TRUE(q.unknown.empty());
  EXPECT_EQ(Error("Encounter", "_count=-1").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Error("Encounter", "_count=100000").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Error("Encounter", "_sort=nope").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Error("Encounter", "_include=Encounter:status").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Error("Encounter", "_include=Patient:organization").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Error("Encounter", "_total=some").code(), StatusCode::kInvalidArgument);
}

TEST(QueryTest, PlansUseTheIndexSchemes) {
  auto plan = BuildPlan(Parse("Observation", "subject=Patient/1&code=http://loinc.org|x,y&code:text=glu"));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->where.DebugString(),
            "and(reference[subject target_id='1' target_type='Patient'], or(token[code code='x' "
            "system='http://loinc.org'], token[code code='y']), string[code:text normalized^='glu'])");
  auto comp = BuildPlan(Parse("Observation", "code-value-quantity=8480-6$gt100"));
  ASSERT_TRUE(comp.ok());
  EXPECT_EQ(comp->where.DebugString(), "quantity[code-value-quantity$8480-6 hi>100.5]");
  auto missing = BuildPlan(Parse("Patient", "gender:missing=true&_summary=count"));
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->where.DebugString(), "not(token[gender])");
  EXPECT_EQ(missing->limit, 0);
  EXPECT_TRUE(missing->count);
}

}  // namespace
}  // namespace bevan::search
