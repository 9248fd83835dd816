// fuzz_fhirpath: compiles the input as a FHIRPath expression (against
// Patient, and again with no context type so that names resolve at run
// time) and evaluates what compiles over one fixed Patient, printing every
// result item as toString() and JSON would. The engine has no step limit;
// libFuzzer's -timeout catches runaway evaluations.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/arena.h"
#include "fhirpath/fhirpath.h"
#include "json/json.h"

namespace {

constexpr std::string_view kPatient = R"({
  "resourceType": "Patient",
  "id": "example",
  "meta": {"versionId": "2", "lastUpdated": "2024-01-02T10:00:00.000+00:00",
           "profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]},
  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Jo Bloggs</div>"},
  "contained": [{"resourceType": "Practitioner", "id": "gp", "name": [{"family": "Who"}]}],
  "extension": [{"url": "http://example.org/ext/weight", "valueQuantity": {"value": 72.50, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}},
                {"url": "http://example.org/ext/since", "valueDateTime": "2001-05"}],
  "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"},
                 {"use": "usual", "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}, "value": "12345"}],
  "active": true,
  "name": [{"use": "official", "family": "Bloggs", "given": ["Jo", "Ann"], "period": {"start": "2000-01-01"}},
           {"use": "nickname", "given": ["Jojo"]}],
  "telecom": [{"system": "phone", "value": "0113 496 0000", "use": "home", "rank": 1}],
  "gender": "female",
  "birthDate": "1974-12-25",
  "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1974-12-25T14:35:45-05:00"}]},
  "deceasedBoolean": false,
  "address": [{"use": "home", "line": ["1 High Street", null], "_line": [null, {"extension": [{"url": "http://example.org/x", "valueString": "flat"}]}],
               "city": "Leeds", "postalCode": "LS1 1AA", "country": "GB"}],
  "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M", "display": "Married"}], "text": "Married"},
  "multipleBirthInteger": 2,
  "contact": [{"relationship": [{"coding": [{"code": "N"}]}], "name": {"family": "Bloggs", "given": ["Sam"]}}],
  "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-GB"}]}, "preferred": true}],
  "generalPractitioner": [{"reference": "#gp"}, {"reference": "Organization/org1", "display": "Surgery"}],
  "managingOrganization": {"reference": "Organization/org1"}
})";

const bevan::json::Document& Patient() {
  static const bevan::json::Document* doc = [] {
    auto parsed = bevan::json::Document::Parse(kPatient);
    if (!parsed.ok()) {
      std::fprintf(stderr, "fuzz_fhirpath: fixed Patient does not parse: %s\n", parsed.status().ToString().c_str());
      std::abort();
    }
    return new bevan::json::Document(std::move(parsed).value());
  }();
  return *doc;
}

void Run(std::string_view text, const bevan::fhirpath::CompileOptions& options) {
  using namespace bevan;
  auto expr = fhirpath::Expression::Compile(text, options);
  if (!expr.ok()) return;
  const json::Value& root = Patient().root();
  Arena arena;
  auto result = expr->Evaluate(root, arena);
  if (result.ok()) {
    std::string out;
    for (const fhirpath::Item& item : *result) {
      (void)fhirpath::TypeName(item);
      out += fhirpath::ToText(item);
      fhirpath::AppendJson(item, out);
    }
  }
  Arena arena2;
  (void)expr->EvaluateBoolean(root, arena2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;  // long expressions only slow the search down
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Run(text, {.context_type = "Patient"});
  Run(text,
      {.context_type = "Patient", .strict = true, .check_ordered_functions = true, .allow_choice_type_names = true});
  Run(text, {});
  return 0;
}
