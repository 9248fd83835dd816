#include "search/extract.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/shared_dir.h"
#include "search/values.h"

namespace bevan::search {
namespace {

json::Document Parse(std::string_view text) {
  auto d = json::Document::Parse(text);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return std::move(d).value();
}

template <typename Row>
std::vector<const Row*> Of(const std::vector<Row>& rows, std::string_view param) {
  std::vector<const Row*> out;
  for (const Row& r : rows) {
    if (r.param == param) out.push_back(&r);
  }
  return out;
}

TEST(ValuesTest, NormalizeFoldsCaseAndLatinAccents) {
  EXPECT_EQ(NormalizeString("Ångström"), "angstrom");
  EXPECT_EQ(NormalizeString("Éloïse MÜLLER"), "eloise muller");
  EXPECT_EQ(NormalizeString("Straße Łódź Œuvre"), "strasse lodz oeuvre");
  EXPECT_EQ(NormalizeString("日本"), "日本");
}

TEST(ValuesTest, DateRangesFollowPrecision) {
  auto y = DateRange("2024");
  ASSERT_TRUE(y);
  EXPECT_EQ(y->lo, 1704067200LL * 1000000);
  EXPECT_EQ(y->hi, 1735689600LL * 1000000 - 1);
  auto m = DateRange("2024-02");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->hi - m->lo + 1, 29LL * 86400 * 1000000);
  auto t = DateRange("2024-01-01T01:00:00+01:00");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->lo, 1704067200LL * 1000000);
  EXPECT_EQ(t->hi - t->lo + 1, 1000000);
  EXPECT_TRUE(DateRange("2024-01-01T00:00:00.123456Z"));
  EXPECT_FALSE(DateRange("2024-13"));
  EXPECT_FALSE(DateRange("yesterday"));
}

TEST(ValuesTest, DecimalRangesFollowSignificantDigits) {
  auto a = DecimalRange("100");
  ASSERT_TRUE(a);
  EXPECT_DOUBLE_EQ(a->lo, 99.5);
  EXPECT_DOUBLE_EQ(a->hi, 100.5);
  auto b = DecimalRange("1.50");
  ASSERT_TRUE(b);
  EXPECT_DOUBLE_EQ(b->lo, 1.495);
  auto c = DecimalRange("1e2");
  ASSERT_TRUE(c);
  EXPECT_DOUBLE_EQ(c->lo, 50);
  EXPECT_FALSE(DecimalRange("1.2.3"));
  EXPECT_FALSE(DecimalRange("abc"));
}

TEST(ValuesTest, UcumCanonicalConvertsCommensurableUnits) {
  auto mg = UcumCanonical(1000, 1000, "mg");
  auto g = UcumCanonical(1, 1, "g");
  ASSERT_TRUE(mg && g);
  EXPECT_EQ(mg->unit, g->unit);
  EXPECT_NEAR(mg->lo, g->lo, 1e-9);
  EXPECT_FALSE(UcumCanonical(1, 1, "not-a-unit"));
}

TEST(ValuesTest, ReferencesSplit) {
  auto r = ParseReference("Patient/123/_history/4");
  EXPECT_EQ(r.type, "Patient");
  EXPECT_EQ(r.id, "123");
  EXPECT_EQ(ParseReference("http://x.org/fhir/Patient/1").url, "http://x.org/fhir/Patient/1");
  EXPECT_EQ(ParseReference("http://x.org/ValueSet/v|1.0").url, "http://x.org/ValueSet/v");
  EXPECT_TRUE(ParseReference("#contained").empty());
  EXPECT_EQ(ParseReference("Unknown/1").url, "Unknown/1");
}

TEST(ExtractTest, EveryRegistryExpressionCompiles) {
  const Extractor& x = Extractor::Default();
  for (const std::string& f : x.failures()) ADD_FAILURE() << f;
  EXPECT_GT(x.Params("Patient").size(), 25u);
  EXPECT_GT(x.Params("Observation").size(), 30u);
  EXPECT_NE(x.Find("Observation", "code-value-quantity"), nullptr);
  EXPECT_NE(x.Find("Patient", "_tag"), nullptr);
  EXPECT_EQ(x.Find("Patient", "_id"), nullptr);  // the resource table's id
}

TEST(ExtractTest, PatientParameters) {
  json::Document d = Parse(R"({"resourceType":"Patient","id":"p1",
    "meta":{"tag":[{"system":"urn:t","code":"test"}]},
    "identifier":[{"system":"urn:mrn","value":"M1","type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]}}],
    "active":true,"gender":"female","birthDate":"1980-05",
    "name":[{"family":"Ångström","given":["Éva","Maria"],"prefix":["Dr"]}],
    "telecom":[{"system":"phone","value":"555-1234"}],
    "address":[{"line":["1 Main St"],"city":"Leeds","postalCode":"LS1 1AA","country":"UK"}],
    "generalPractitioner":[{"reference":"Practitioner/dr1"}],
    "managingOrganization":{"reference":"http://other.org/fhir/Organization/o1"}})");
  auto r = Extract("Patient", "p1", d.root());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const store::IndexRows& rows = r->rows;
  EXPECT_EQ(r->compartment, "p1");
  auto ids = Of(rows.tokens, "identifier");
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0]->system, "urn:mrn");
  EXPECT_EQ(ids[0]->code, "M1");
  auto of_type = Of(rows.tokens, "identifier:of-type");
  ASSERT_EQ(of_type.size(), 1u);
  EXPECT_EQ(of_type[0]->code, "MR|M1");
  ASSERT_EQ(Of(rows.tokens, "gender").size(), 1u);
  EXPECT_EQ(Of(rows.tokens, "gender")[0]->code, "female");
  EXPECT_EQ(Of(rows.tokens, "active")[0]->code, "true");
  EXPECT_EQ(Of(rows.tokens, "_tag")[0]->system, "urn:t");
  EXPECT_EQ(Of(rows.tokens, "phone")[0]->code, "555-1234");
  auto family = Of(rows.strings, "family");
  ASSERT_EQ(family.size(), 1u);
  EXPECT_EQ(family[0]->normalized, "angstrom");
  EXPECT_EQ(family[0]->exact, "Ångström");
  EXPECT_EQ(Of(rows.strings, "given").size(), 2u);
  EXPECT_EQ(Of(rows.strings, "name").size(), 4u);  // family, 2 given, prefix
  EXPECT_EQ(Of(rows.strings, "address-city")[0]->normalized, "leeds");
  EXPECT_GE(Of(rows.strings, "address").size(), 4u);
  auto birth = Of(rows.dates, "birthdate");
  ASSERT_EQ(birth.size(), 1u);
  EXPECT_EQ(birth[0]->lo, DateRange("1980-05")->lo);
  EXPECT_EQ(birth[0]->hi, DateRange("1980-05")->hi);
  auto gp = Of(rows.references, "general-practitioner");
  ASSERT_EQ(gp.size(), 1u);
  EXPECT_EQ(gp[0]->target_type, "Practitioner");
  EXPECT_EQ(gp[0]->target_id, "dr1");
  auto org = Of(rows.references, "organization");
  ASSERT_EQ(org.size(), 1u);
  EXPECT_EQ(org[0]->url, "http://other.org/fhir/Organization/o1");
}

TEST(ExtractTest, ObservationQuantitiesCompositesAndCompartment) {
  json::Document d = Parse(R"({"resourceType":"Observation","id":"o1","status":"final",
    "code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose"}],"text":"Blood glucose"},
    "subject":{"reference":"Patient/p1"},"effectivePeriod":{"start":"2024-01-01","end":"2024-01-02T10:00:00Z"},
    "valueQuantity":{"value":95.0,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"},
    "component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},
                  "valueQuantity":{"value":120,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]})");
  auto r = Extract("Observation", "o1", d.root());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const store::IndexRows& rows = r->rows;
  EXPECT_EQ(r->compartment, "p1");
  auto code = Of(rows.tokens, "code");
  ASSERT_EQ(code.size(), 1u);
  EXPECT_EQ(code[0]->system, "http://loinc.org");
  EXPECT_EQ(Of(rows.strings, "code:text").size(), 2u);  // display and text
  auto q = Of(rows.quantities, "value-quantity");
  ASSERT_EQ(q.size(), 1u);
  EXPECT_DOUBLE_EQ(q[0]->lo, 94.95);
  EXPECT_DOUBLE_EQ(q[0]->hi, 95.05);
  EXPECT_EQ(q[0]->code, "mg/dL");
  ASSERT_TRUE(q[0]->canonical_lo.has_value());
  EXPECT_EQ(q[0]->canonical_unit, "m-3.g");
  auto date = Of(rows.dates, "date");
  ASSERT_EQ(date.size(), 1u);
  EXPECT_EQ(date[0]->lo, DateRange("2024-01-01")->lo);
  EXPECT_EQ(date[0]->hi, DateRange("2024-01-02T10:00:00Z")->hi);
  EXPECT_EQ(Of(rows.quantities, "code-value-quantity$http://loinc.org|2339-0").size(), 1u);
  EXPECT_EQ(Of(rows.quantities, "code-value-quantity$2339-0").size(), 1u);
  EXPECT_EQ(Of(rows.quantities, "component-code-value-quantity$http://loinc.org|8480-6").size(), 1u);
  // combo-* are answered from the code and component-code rows.
  EXPECT_EQ(Of(rows.quantities, "combo-code-value-quantity$8480-6").size(), 0u);
  EXPECT_EQ(Of(rows.tokens, "combo-code").size(), 0u);
  EXPECT_EQ(Of(rows.strings, "combo-code:text").size(), 0u);
  EXPECT_EQ(Of(rows.tokens, "component-code").size(), 1u);
  auto subject = Of(rows.references, "subject");
  ASSERT_EQ(subject.size(), 1u);
  EXPECT_EQ(subject[0]->target_type, "Patient");
  // patient is subject restricted to Patient targets: no rows of its own here.
  EXPECT_EQ(Of(rows.references, "patient").size(), 0u);
}

TEST(ExtractTest, ParametersAnsweredFromOtherParametersRows) {
  using Storage = IndexedParam::Storage;
  const Extractor& x = Extractor::Default();
  const IndexedParam* phonetic = x.Find("Patient", "phonetic");
  const IndexedParam* name = x.Find("Patient", "name");
  ASSERT_NE(phonetic, nullptr);
  ASSERT_NE(name, nullptr);
  // One of the two holds the rows, the other reads them.
  EXPECT_TRUE((phonetic->storage == Storage::kSame && phonetic->sources == std::vector<std::string>{"name"}) ||
              (name->storage == Storage::kSame && name->sources == std::vector<std::string>{"phonetic"}));
  const IndexedParam* combo = x.Find("Observation", "combo-code");
  ASSERT_NE(combo, nullptr);
  EXPECT_EQ(combo->storage, Storage::kUnion);
  EXPECT_EQ(combo->sources, (std::vector<std::string>{"code", "component-code"}));
  const IndexedParam* combo_q = x.Find("Observation", "combo-code-value-quantity");
  ASSERT_NE(combo_q, nullptr);
  EXPECT_EQ(combo_q->storage, Storage::kUnion);
  EXPECT_EQ(combo_q->sources, (std::vector<std::string>{"code-value-quantity", "component-code-value-quantity"}));
  const IndexedParam* patient = x.Find("Observation", "patient");
  ASSERT_NE(patient, nullptr);
  EXPECT_EQ(patient->storage, Storage::kRestricted);
  EXPECT_EQ(patient->sources, std::vector<std::string>{"subject"});
  EXPECT_EQ(patient->restrict_type, "Patient");
  const IndexedParam* practitioner = x.Find("Encounter", "practitioner");
  ASSERT_NE(practitioner, nullptr);
  EXPECT_EQ(practitioner->storage, Storage::kRestricted);
  EXPECT_EQ(practitioner->sources, std::vector<std::string>{"participant"});
  // Parameters with their own expression keep their rows.
  EXPECT_EQ(x.Find("Observation", "code")->storage, Storage::kOwn);
  EXPECT_EQ(x.Find("Observation", "subject")->storage, Storage::kOwn);
  // Every source holds rows of its own, of the same type.
  int linked = 0;
  for (std::string_view type : fhir::ResourceTypeNames()) {
    for (const IndexedParam* p : x.Params(type)) {
      if (p->storage == Storage::kOwn) continue;
      ++linked;
      ASSERT_FALSE(p->sources.empty()) << type << "." << p->code;
      for (const std::string& s : p->sources) {
        const IndexedParam* q = x.Find(type, s);
        ASSERT_NE(q, nullptr) << type << "." << p->code << " <- " << s;
        EXPECT_EQ(q->storage, Storage::kOwn) << type << "." << p->code << " <- " << s;
        EXPECT_EQ(q->type, p->type) << type << "." << p->code << " <- " << s;
      }
    }
  }
  EXPECT_GT(linked, 40);
}

TEST(ExtractTest, RestrictedParameterKeepsWhatItsSourceCannotTell) {
  // An absolute URL: its type is in the text, which the subject row does not
  // record, so patient keeps its own row; an identifier likewise.
  json::Document d = Parse(R"({"resourceType":"Observation","id":"o2","status":"final","code":{"text":"x"},
    "subject":{"reference":"http://other.org/fhir/Patient/9","identifier":{"system":"urn:nhs","value":"123"}}})");
  auto r = Extract("Observation", "o2", d.root());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto patient = Of(r->rows.references, "patient");
  ASSERT_EQ(patient.size(), 1u);
  EXPECT_EQ(patient[0]->url, "http://other.org/fhir/Patient/9");
  EXPECT_EQ(Of(r->rows.tokens, "patient:identifier").size(), 1u);
  EXPECT_EQ(Of(r->rows.references, "subject").size(), 1u);
  EXPECT_EQ(Of(r->rows.tokens, "subject:identifier").size(), 1u);
}

TEST(ExtractTest, SyntheaSampleExtracts) {
  auto shared = SharedDir();
  if (!shared) GTEST_SKIP() << "no shared directory ($BEVAN_SHARED or ../shared): Synthea sample not available";
  std::filesystem::path dir = std::filesystem::path(*shared) / "data" / "synthea-10";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << dir << " is absent";
  int resources = 0, with_compartment = 0;
  size_t rows = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".ndjson" || entry.path().filename() == "log.ndjson") continue;
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      json::Document d = Parse(line);
      std::string type(d.root().Find("resourceType")->as_string());
      std::string id(d.root().Find("id")->as_string());
      auto r = Extract(type, id, d.root());
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ++resources;
      if (!r->compartment.empty()) ++with_compartment;
      rows += r->rows.tokens.size() + r->rows.strings.size() + r->rows.dates.size() + r->rows.references.size() +
              r->rows.quantities.size() + r->rows.numbers.size() + r->rows.uris.size();
      if (type == "Encounter") {
        EXPECT_EQ(Of(r->rows.references, "subject").size(), 1u) << id;
        EXPECT_EQ(Of(r->rows.references, "patient").size(), 0u) << id;  // answered from subject's rows
        EXPECT_EQ(Of(r->rows.dates, "date").size(), 1u) << id;
        EXPECT_FALSE(r->compartment.empty()) << id;
      }
      if (type == "Patient") {
        EXPECT_GE(Of(r->rows.strings, "family").size(), 1u);
      }
    }
  }
  EXPECT_GT(resources, 7000);
  EXPECT_GT(with_compartment, 6500);
  EXPECT_GT(rows, resources * 5u);
}

}  // namespace
}  // namespace bevan::search
