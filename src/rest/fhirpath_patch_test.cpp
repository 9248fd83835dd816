#include "rest/fhirpath_patch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/shared_dir.h"
#include "fhir/validate.h"
#include "fhir/xml.h"
#include "json/json.h"
#include "json/patch.h"

namespace bevan::rest {
namespace {

json::Document Parse(std::string_view text) {
  auto doc = json::Document::Parse(text);
  EXPECT_TRUE(doc.ok()) << doc.status().ToString() << "\n" << text;
  return doc.ok() ? std::move(doc).value() : json::Document();
}

// Applies `parameters` to `resource` (both JSON text) and returns the result as compact JSON.
Result<std::string> Patch(std::string_view resource, std::string_view parameters) {
  json::Document target = Parse(resource);
  json::Document patch = Parse(parameters);
  json::Document work;
  ASSIGN_OR_RETURN(json::Value result, ApplyFhirPathPatch(work, target.root(), patch.root()));
  return json::ToString(result);
}

void ExpectPatch(std::string_view resource, std::string_view parameters, std::string_view expected) {
  Result<std::string> got = Patch(resource, parameters);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  json::Document g = Parse(*got);
  json::Document e = Parse(expected);
  EXPECT_TRUE(json::JsonEquals(g.root(), e.root()))
      << "got:      " << *got << "\nexpected: " << json::ToString(e.root());
}

std::string PatchError(std::string_view resource, std::string_view parameters) {
  Result<std::string> got = Patch(resource, parameters);
  EXPECT_FALSE(got.ok()) << "unexpectedly succeeded: " << (got.ok() ? *got : "");
  if (!got.ok()) {
    EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
  }
  return got.ok() ? "" : got.status().message();
}

// One operation's parameter; `parts` is a comma-separated list of part objects.
std::string Op(std::string_view parts) { return R"({"name":"operation","part":[)" + std::string(parts) + "]}"; }
std::string Params(std::initializer_list<std::string> ops) {
  std::string out = R"({"resourceType":"Parameters","parameter":[)";
  bool first = true;
  for (const std::string& op : ops) {
    out += first ? "" : ",";
    out += op;
    first = false;
  }
  return out + "]}";
}
std::string Type(std::string_view t) { return R"({"name":"type","valueCode":")" + std::string(t) + "\"}"; }
std::string Path(std::string_view p) { return R"({"name":"path","valueString":")" + std::string(p) + "\"}"; }
std::string Name(std::string_view n) { return R"({"name":"name","valueString":")" + std::string(n) + "\"}"; }
std::string Int(std::string_view name, int n) {
  return R"({"name":")" + std::string(name) + R"(","valueInteger":)" + std::to_string(n) + "}";
}

TEST(FhirPathPatch, ReplaceAddDeletePrimitive) {
  std::string patient = R"({"resourceType":"Patient","id":"p","birthDate":"1920-01-01"})";
  ExpectPatch(
      patient,
      Params({Op(Type("replace") + "," + Path("Patient.birthDate") + R"(,{"name":"value","valueDate":"1930-01-01"})")}),
      R"({"resourceType":"Patient","id":"p","birthDate":"1930-01-01"})");
  ExpectPatch(patient, Params({Op(Type("delete") + "," + Path("Patient.birthDate"))}),
              R"({"resourceType":"Patient","id":"p"})");
  ExpectPatch(patient,
              Params({Op(Type("add") + "," + Path("Patient") + "," + Name("active") +
                         R"(,{"name":"value","valueBoolean":true})")}),
              R"({"resourceType":"Patient","id":"p","birthDate":"1920-01-01","active":true})");
}

TEST(FhirPathPatch, EmptyPatchAndDeleteOfNothingChangeNothing) {
  std::string patient = R"({"resourceType":"Patient","gender":"male"})";
  ExpectPatch(patient, R"({"resourceType":"Parameters"})", patient);
  ExpectPatch(patient, Params({Op(Type("delete") + "," + Path("Patient.birthDate"))}), patient);
}

TEST(FhirPathPatch, PrimitiveListsKeepExtensionsAligned) {
  std::string patient = R"({"resourceType":"Patient","name":[{"given":["a",null,"c"],
    "_given":[null,{"extension":[{"url":"http://e","valueCode":"CL"}]},null]}]})";
  // Deleting the extension-only item drops the now all-null `_given`.
  ExpectPatch(patient, Params({Op(Type("delete") + "," + Path("Patient.name.given[1]"))}),
              R"({"resourceType":"Patient","name":[{"given":["a","c"]}]})");
  // Inserting a value with an id keeps both arrays aligned.
  ExpectPatch(patient,
              Params({Op(Type("insert") + "," + Path("Patient.name.given") + "," + Int("index", 0) +
                         R"(,{"name":"value","valueString":"z","_valueString":{"id":"x"}})")}),
              R"({"resourceType":"Patient","name":[{"given":["z","a",null,"c"],
                  "_given":[{"id":"x"},null,{"extension":[{"url":"http://e","valueCode":"CL"}]},null]}]})");
  // Moving carries the extension along.
  ExpectPatch(patient,
              Params({Op(Type("move") + "," + Path("Patient.name.given") + "," + Int("source", 1) + "," +
                         Int("destination", 2))}),
              R"({"resourceType":"Patient","name":[{"given":["a","c",null],
                  "_given":[null,null,{"extension":[{"url":"http://e","valueCode":"CL"}]}]}]})");
  // Replacing a value replaces its extensions too.
  ExpectPatch(
      patient,
      Params({Op(Type("replace") + "," + Path("Patient.name.given[1]") + R"(,{"name":"value","valueString":"b"})")}),
      R"({"resourceType":"Patient","name":[{"given":["a","b","c"]}]})");
}

TEST(FhirPathPatch, ExtensionsOnPrimitives) {
  std::string patient = R"({"resourceType":"Patient","birthDate":"1974-12-25"})";
  std::string with_ext =
      R"({"resourceType":"Patient","birthDate":"1974-12-25","_birthDate":{"extension":[
          {"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1974-12-25T14:35:45-05:00"}]}})";
  ExpectPatch(patient,
              Params({Op(Type("add") + "," + Path("Patient.birthDate") + "," + Name("extension") +
                         R"(,{"name":"value","part":[
                  {"name":"url","valueUri":"http://hl7.org/fhir/StructureDefinition/patient-birthTime"},
                  {"name":"value","valueDateTime":"1974-12-25T14:35:45-05:00"}]})")}),
              with_ext);
  // Deleting the only extension leaves `_birthDate` empty, so it goes too.
  ExpectPatch(with_ext, Params({Op(Type("delete") + "," + Path("Patient.birthDate.extension[0]"))}), patient);
  // Deleting the primitive removes its extensions.
  ExpectPatch(with_ext, Params({Op(Type("delete") + "," + Path("Patient.birthDate"))}),
              R"({"resourceType":"Patient"})");
}

TEST(FhirPathPatch, ChoiceElements) {
  std::string patient = R"({"resourceType":"Patient","deceasedBoolean":false,"gender":"male"})";
  ExpectPatch(patient,
              Params({Op(Type("replace") + "," + Path("Patient.deceased") +
                         R"(,{"name":"value","valueDateTime":"2020-01-01"})")}),
              R"({"resourceType":"Patient","deceasedDateTime":"2020-01-01","gender":"male"})");
  EXPECT_EQ(PatchError(patient, Params({Op(Type("add") + "," + Path("Patient") + "," + Name("deceased") +
                                           R"(,{"name":"value","valueDateTime":"2020-01-01"})")})),
            "FHIRPath Patch operation 0 (add): 'deceased' already has a value at Patient (use replace)");
  ExpectPatch(R"({"resourceType":"Observation","status":"final","code":{"text":"w"}})",
              Params({Op(Type("add") + "," + Path("Observation") + "," + Name("value") +
                         R"(,{"name":"value","valueQuantity":{"value":185.50,"unit":"lbs"}})")}),
              R"({"resourceType":"Observation","status":"final","code":{"text":"w"},
                  "valueQuantity":{"value":185.50,"unit":"lbs"}})");
  // Decimals keep their text.
  Result<std::string> got = Patch(
      R"({"resourceType":"Observation","status":"final","code":{"text":"w"},"valueQuantity":{"value":1}})",
      Params(
          {Op(Type("replace") + "," + Path("Observation.value.value") + R"(,{"name":"value","valueDecimal":1.50})")}));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_NE(got->find(R"("valueQuantity":{"value":1.50})"), std::string::npos) << *got;
  EXPECT_EQ(PatchError(patient, Params({Op(Type("replace") + "," + Path("Patient.deceased") +
                                           R"(,{"name":"value","valueCoding":{"code":"x"}})")})),
            "FHIRPath Patch operation 0 (replace): a Coding value does not fit Patient.deceased[x] (boolean, "
            "dateTime)");
}

TEST(FhirPathPatch, AnonymousTypesAndResources) {
  ExpectPatch(R"({"resourceType":"Patient"})",
              Params({Op(Type("add") + "," + Path("Patient") + "," + Name("contact") + R"(,{"name":"value","part":[
                  {"name":"name","valueHumanName":{"text":"a name"}},
                  {"name":"telecom","valueContactPoint":{"system":"phone","value":"1"}},
                  {"name":"telecom","valueContactPoint":{"system":"email","value":"a@b"}},
                  {"name":"extension","part":[{"name":"url","valueUri":"http://e"},{"name":"value","valueString":"s"}]}
                ]})")}),
              R"({"resourceType":"Patient","contact":[{"name":{"text":"a name"},
                  "telecom":[{"system":"phone","value":"1"},{"system":"email","value":"a@b"}],
                  "extension":[{"url":"http://e","valueString":"s"}]}]})");
  ExpectPatch(R"({"resourceType":"Patient"})",
              Params({Op(Type("add") + "," + Path("Patient") + "," + Name("contained") +
                         R"(,{"name":"value","resource":{"resourceType":"Organization","id":"o","name":"Acme"}})")}),
              R"({"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o","name":"Acme"}]})");
}

TEST(FhirPathPatch, InsertIntoAnEmptyList) {
  ExpectPatch(R"({"resourceType":"Patient","gender":"male"})",
              Params({Op(Type("insert") + "," + Path("Patient.identifier") + "," + Int("index", 0) +
                         R"(,{"name":"value","valueIdentifier":{"value":"1"}})")}),
              R"({"resourceType":"Patient","gender":"male","identifier":[{"value":"1"}]})");
}

TEST(FhirPathPatch, InputIsNotModified) {
  json::Document target = Parse(R"({"resourceType":"Patient","gender":"male"})");
  json::Document patch = Parse(Params({Op(Type("delete") + "," + Path("Patient.gender"))}));
  auto result = ApplyFhirPathPatch(target, target.root(), patch.root());
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(json::ToString(*result), R"({"resourceType":"Patient"})");
  EXPECT_EQ(json::ToString(target.root()), R"({"resourceType":"Patient","gender":"male"})");
}

TEST(FhirPathPatch, Errors) {
  std::string patient = R"({"resourceType":"Patient","name":[{"given":["a","b"]}],"gender":"male"})";
  auto err = [&](std::initializer_list<std::string> ops) { return PatchError(patient, Params(ops)); };
  EXPECT_EQ(err({Op(Type("delete") + "," + Path("Patient.gender")),
                 Op(Type("replace") + "," + Path("Patient.name.given") + R"(,{"name":"value","valueString":"x"})")}),
            "FHIRPath Patch operation 1 (replace): path 'Patient.name.given' matches 2 elements; the operation needs "
            "exactly one");
  EXPECT_EQ(err({Op(Type("delete") + "," + Path("Patient.name.given"))}),
            "FHIRPath Patch operation 0 (delete): path 'Patient.name.given' matches 2 elements; delete removes "
            "exactly one");
  EXPECT_EQ(err({Op(Type("frobnicate") + "," + Path("Patient"))}),
            "FHIRPath Patch operation 0: unknown operation type 'frobnicate' (expected add, insert, delete, replace "
            "or move)");
  EXPECT_EQ(err({Op(Path("Patient"))}), "FHIRPath Patch operation 0: missing part 'type'");
  EXPECT_EQ(err({Op(Type("add") + "," + Path("Patient") + "," + Name("active"))}),
            "FHIRPath Patch operation 0 (add): add needs a part 'value'");
  EXPECT_EQ(err({Op(Type("insert") + "," + Path("Patient.name.given") + R"(,{"name":"value","valueString":"x"})")}),
            "FHIRPath Patch operation 0 (insert): insert needs a part 'index'");
  EXPECT_EQ(err({Op(Type("insert") + "," + Path("Patient.name.given") + "," + Int("index", 3) +
                    R"(,{"name":"value","valueString":"x"})")}),
            "FHIRPath Patch operation 0 (insert): index 3 is out of range: Patient.name.given has 2 items");
  EXPECT_EQ(err({Op(Type("insert") + "," + Path("Patient.name.given") + R"(,{"name":"index","valueInteger":-1})" +
                    R"(,{"name":"value","valueString":"x"})")}),
            "FHIRPath Patch operation 0: part 'index' must be a non-negative integer");
  EXPECT_EQ(
      err({Op(Type("move") + "," + Path("Patient.name.given") + "," + Int("source", 0) + "," + Int("destination", 2))}),
      "FHIRPath Patch operation 0 (move): destination 2 is out of range: Patient.name.given has 2 items");
  EXPECT_EQ(
      err({Op(Type("move") + "," + Path("Patient.gender") + "," + Int("source", 0) + "," + Int("destination", 0))}),
      "FHIRPath Patch operation 0 (move): path 'Patient.gender' does not select the items of one list");
  EXPECT_EQ(err({Op(Type("add") + "," + Path("Patient") + "," + Name("gender") +
                    R"(,{"name":"value","valueCode":"female"})")}),
            "FHIRPath Patch operation 0 (add): 'gender' already has a value at Patient (use replace)");
  EXPECT_EQ(err({Op(Type("add") + "," + Path("Patient") + "," + Name("birthDate") +
                    R"(,{"name":"value","valueBoolean":true})")}),
            "FHIRPath Patch operation 0 (add): a boolean value does not fit Patient.birthDate (date)");
  EXPECT_EQ(err({Op(Type("add") + "," + Path("Patient") + "," + Name("nickname") +
                    R"(,{"name":"value","valueString":"x"})")}),
            "FHIRPath Patch operation 0 (add): 'nickname' is not an element of Patient");
  EXPECT_EQ(err({Op(Type("replace") + "," + Path("Patient.birthDate") + R"(,{"name":"value","valueDate":"2000"})")}),
            "FHIRPath Patch operation 0 (replace): no content found at Patient.birthDate when replacing");
  EXPECT_EQ(err({Op(Type("delete") + "," + Path("Patient.foo"))}),
            "FHIRPath Patch operation 0 (delete): path 'Patient.foo': FHIRPath error at 9: 'foo' is not an element "
            "of Patient");
  EXPECT_EQ(err({Op(Type("delete") + "," + Path("Patient.gender.toString()"))}),
            "FHIRPath Patch operation 0 (delete): path 'Patient.gender.toString()' selects a value that is not an "
            "element of the resource");
  EXPECT_EQ(err({Op(Type("delete") + "," + Path("Patient"))}),
            "FHIRPath Patch operation 0 (delete): cannot delete the resource itself");
  EXPECT_EQ(err({Op(Type("delete") + "," + Path("Patient.gender") + R"(,{"name":"colour","valueString":"x"})")}),
            "FHIRPath Patch operation 0: unknown part 'colour'");
  EXPECT_EQ(err({R"({"name":"op","part":[]})"}),
            "FHIRPath Patch operation 0: every parameter must be named 'operation' (found 'op')");
  EXPECT_EQ(err({Op(Type("delete") + "," + Type("delete"))}),
            "FHIRPath Patch operation 0: part 'type' is given more than once");
  EXPECT_EQ(err({Op(Type("add") + "," + Path("Patient") + "," + Name("contact") + R"(,{"name":"value","part":[
                 {"name":"gender","valueCode":"male"},{"name":"gender","valueCode":"female"}]})")}),
            "FHIRPath Patch operation 0 (add): 'gender' is given more than once for Patient.contact");
  EXPECT_EQ(PatchError(patient, R"({"resourceType":"Bundle"})"),
            "FHIRPath Patch: the patch must be a Parameters resource");
}

// --- the official suite ------------------------------------------------------

// Cases of fhir-patch-tests.xml that Bevan does not pass, with the reason.
// Empty: every case passes. A case listed here that starts passing fails the
// test, so this list stays exact.
const std::set<std::string> kExpectedFailures = {};

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The single element child of `e` (the resource inside <input>, <diff>, <output>).
const fhir::XmlElement* Only(const fhir::XmlElement* e) {
  if (e == nullptr) return nullptr;
  std::vector<const fhir::XmlElement*> children = e->Children();
  return children.size() == 1 ? children[0] : nullptr;
}

// Runs one case; returns "" when it passes, else why not.
std::string RunCase(const fhir::XmlElement& test_case) {
  const fhir::XmlElement* input = Only(test_case.FirstChild("input"));
  const fhir::XmlElement* diff = Only(test_case.FirstChild("diff"));
  const fhir::XmlElement* output = Only(test_case.FirstChild("output"));
  const fhir::XmlElement* error = test_case.FirstChild("error");
  if (input == nullptr || diff == nullptr || (output == nullptr) == (error == nullptr)) return "malformed case";
  json::Document work;
  auto in = fhir::FhirXmlElementToJson(*input, work);
  if (!in.ok()) return "input: " + in.status().message();
  auto patch = fhir::FhirXmlElementToJson(*diff, work);
  if (!patch.ok()) return "diff: " + patch.status().message();
  // Round-trip sanity: what the converter made of the XML is valid FHIR.
  for (const json::Value* v : {&*in, &*patch}) {
    fhir::OperationOutcome outcome = fhir::Validate(*v, {.uk_core = false});
    if (outcome.HasErrors()) return "converted XML is invalid: " + outcome.ToJson();
  }
  auto result = ApplyFhirPathPatch(work, *in, *patch);
  if (error != nullptr) {
    if (result.ok()) return "expected an error, got " + json::ToString(*result);
    // The suite's message is advice; ours must at least say the same thing.
    const std::string* msg = error->Attribute("msg");
    if (msg != nullptr && Lower(result.status().message()).find(Lower(*msg)) == std::string::npos) {
      return "error message '" + result.status().message() + "' does not contain '" + *msg + "'";
    }
    return "";
  }
  if (!result.ok()) return "failed: " + result.status().message();
  auto expected = fhir::FhirXmlElementToJson(*output, work);
  if (!expected.ok()) return "output: " + expected.status().message();
  fhir::OperationOutcome outcome = fhir::Validate(*result, {.uk_core = false});
  if (outcome.HasErrors()) return "the patched resource is invalid: " + outcome.ToJson();
  if (!json::JsonEquals(*result, *expected)) {
    return "got " + json::ToString(*result) + "\nexpected " + json::ToString(*expected);
  }
  return "";
}

// http://hl7.org/fhir/R4 publishes fhir-patch-tests.xml for implementers
// that both apply patches and generate them: mode "both" cases are also
// diff-generation tests, "forwards" ones only make sense applied. Bevan only
// applies patches, so every case runs forwards.
TEST(FhirPathPatch, ConformanceSuite) {
  auto shared = SharedDir();
  if (!shared) GTEST_SKIP() << "BEVAN_SHARED (../shared) not found: FHIR Patch suite not run";
  std::string file = *shared + "/conformance/fhir-patch/fhir-patch-tests.xml";
  std::ifstream in(file, std::ios::binary);
  ASSERT_TRUE(in) << "cannot read " << file;
  std::stringstream ss;
  ss << in.rdbuf();
  auto suite = fhir::ParseXml(ss.str());
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  int passed = 0;
  int failed = 0;
  std::set<std::string> failing;
  for (const fhir::XmlElement* test_case : (*suite)->Children("case")) {
    std::string name = test_case->Attribute("name") != nullptr ? *test_case->Attribute("name") : "?";
    std::string mode = test_case->Attribute("mode") != nullptr ? *test_case->Attribute("mode") : "both";
    EXPECT_TRUE(mode == "both" || mode == "forwards") << name << ": unknown mode " << mode;
    std::string why = RunCase(*test_case);
    if (why.empty()) {
      ++passed;
      EXPECT_EQ(kExpectedFailures.count(name), 0u) << name << " now passes: remove it from kExpectedFailures";
    } else {
      ++failed;
      failing.insert(name);
      EXPECT_EQ(kExpectedFailures.count(name), 1u) << name << ": " << why;
    }
  }
  std::printf("FHIR Patch suite: %d passed, %d failed of %d\n", passed, failed, passed + failed);
  EXPECT_EQ(passed + failed, 33);
  EXPECT_EQ(failing, kExpectedFailures);
}

}  // namespace
}  // namespace bevan::rest
