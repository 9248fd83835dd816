#include "fhir/xml.h"

#include <gtest/gtest.h>

#include <string>

#include "fhir/validate.h"
#include "json/json.h"
#include "json/patch.h"

namespace bevan::fhir {
namespace {

// Converts `xml` and checks the result equals `expected_json` (member order ignored).
void ExpectJson(std::string_view xml, std::string_view expected_json) {
  Result<json::Document> doc = ParseFhirXml(xml);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  Result<json::Document> expected = json::Document::Parse(expected_json);
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  EXPECT_TRUE(json::JsonEquals(doc->root(), expected->root()))
      << "got:      " << json::ToString(doc->root()) << "\nexpected: " << json::ToString(expected->root());
}

// The converted resource must be valid FHIR JSON.
void ExpectValid(std::string_view xml) {
  Result<json::Document> doc = ParseFhirXml(xml);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  OperationOutcome outcome = Validate(doc->root(), {.uk_core = false});
  EXPECT_FALSE(outcome.HasErrors()) << outcome.ToJson() << "\n" << json::ToString(doc->root());
}

std::string ErrorOf(std::string_view xml) {
  Result<json::Document> doc = ParseFhirXml(xml);
  EXPECT_FALSE(doc.ok());
  return doc.ok() ? "" : doc.status().message();
}

constexpr std::string_view kPatient = R"(<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment before the root -->
<Patient xmlns="http://hl7.org/fhir">
  <id value="p1"/>
  <active value="true"/>
  <name>
    <use value="official"/>
    <family value="Chalmers"/>
    <given value="Peter"/>
    <given id="g2">
      <extension url="http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier">
        <valueCode value="CL"/>
      </extension>
    </given>
    <given value="James"/>
  </name>
  <name>
    <given value="Jim"/>
  </name>
  <gender value="male"/>
  <birthDate value="1974-12-25">
    <extension url="http://hl7.org/fhir/StructureDefinition/patient-birthTime">
      <valueDateTime value="1974-12-25T14:35:45-05:00"/>
    </extension>
  </birthDate>
  <deceasedBoolean value="false"/>
  <multipleBirthInteger value="2"/>
</Patient>
)";

TEST(FhirXmlTest, PatientWithRepeatsAndPrimitiveExtensions) {
  ExpectJson(kPatient, R"({
    "resourceType": "Patient",
    "id": "p1",
    "active": true,
    "name": [
      {"use": "official", "family": "Chalmers", "given": ["Peter", null, "James"],
       "_given": [null, {"id": "g2", "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier",
                                                   "valueCode": "CL"}]}, null]},
      {"given": ["Jim"]}
    ],
    "gender": "male",
    "birthDate": "1974-12-25",
    "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                                  "valueDateTime": "1974-12-25T14:35:45-05:00"}]},
    "deceasedBoolean": false,
    "multipleBirthInteger": 2
  })");
  ExpectValid(kPatient);
}

TEST(FhirXmlTest, PrimitiveWithOnlyAnExtension) {
  ExpectJson(R"(<Patient xmlns="http://hl7.org/fhir"><birthDate id="b"/></Patient>)",
             R"({"resourceType": "Patient", "_birthDate": {"id": "b"}})");
}

constexpr std::string_view kObservation = R"(<Observation xmlns="http://hl7.org/fhir">
  <status value="final"/>
  <code><coding><system value="http://loinc.org"/><code value="29463-7"/></coding></code>
  <valueQuantity>
    <value value="185.50"/>
    <unit value="lbs"/>
    <system value="http://unitsofmeasure.org"/>
    <code value="[lb_av]"/>
  </valueQuantity>
  <referenceRange>
    <low><value value="1.0e2"/></low>
    <high><value value="-0.000"/></high>
  </referenceRange>
</Observation>)";

TEST(FhirXmlTest, ObservationKeepsDecimalText) {
  Result<std::string> text = FhirXmlToJson(kObservation);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_NE(text->find(R"("valueQuantity":{"value":185.50,)"), std::string::npos) << *text;
  EXPECT_NE(text->find(R"("low":{"value":1.0e2})"), std::string::npos) << *text;
  EXPECT_NE(text->find(R"("high":{"value":-0.000})"), std::string::npos) << *text;
  ExpectValid(kObservation);
}

TEST(FhirXmlTest, BundleWithEntries) {
  constexpr std::string_view kBundle = R"(<Bundle xmlns="http://hl7.org/fhir">
  <type value="collection"/>
  <entry>
    <fullUrl value="urn:uuid:5e4a8a3c-7e8e-4c3f-9f43-0a1f0b2c3d4e"/>
    <resource>
      <Patient><id value="a"/><gender value="female"/></Patient>
    </resource>
  </entry>
  <entry>
    <resource>
      <Observation>
        <contained><Practitioner><id value="pr"/></Practitioner></contained>
        <status value="final"/>
        <code><text value="x"/></code>
        <performer><reference value="#pr"/></performer>
        <valueString value="ok"/>
      </Observation>
    </resource>
  </entry>
</Bundle>)";
  ExpectJson(kBundle, R"({
    "resourceType": "Bundle", "type": "collection",
    "entry": [
      {"fullUrl": "urn:uuid:5e4a8a3c-7e8e-4c3f-9f43-0a1f0b2c3d4e",
       "resource": {"resourceType": "Patient", "id": "a", "gender": "female"}},
      {"resource": {"resourceType": "Observation",
                    "contained": [{"resourceType": "Practitioner", "id": "pr"}],
                    "status": "final", "code": {"text": "x"},
                    "performer": [{"reference": "#pr"}], "valueString": "ok"}}
    ]})");
  ExpectValid(kBundle);
}

TEST(FhirXmlTest, ParametersWithResourceAndParts) {
  ExpectJson(R"(<Parameters xmlns="http://hl7.org/fhir">
  <parameter><name value="a"/><resource><Patient><active value="false"/></Patient></resource></parameter>
  <parameter><name value="b"/><part><name value="c"/><valueDecimal value="3.10"/></part></parameter>
</Parameters>)",
             R"({"resourceType": "Parameters", "parameter": [
      {"name": "a", "resource": {"resourceType": "Patient", "active": false}},
      {"name": "b", "part": [{"name": "c", "valueDecimal": 3.10}]}]})");
}

constexpr std::string_view kNarrative = R"(<Patient xmlns="http://hl7.org/fhir">
  <text>
    <status value="generated"/>
    <div xmlns="http://www.w3.org/1999/xhtml"><p class="x">Peter &amp; <b>Jim</b> &lt;3 "q"<!-- dropped --></p><br/><![CDATA[a<b]]></div>
  </text>
</Patient>)";

TEST(FhirXmlTest, NarrativeDivIsSerialisedXhtml) {
  Result<json::Document> doc = ParseFhirXml(kNarrative);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  const json::Value* div = json::ResolvePointer(doc->root(), "/text/div").value();
  ASSERT_NE(div, nullptr);
  EXPECT_EQ(div->as_string(),
            R"(<div xmlns="http://www.w3.org/1999/xhtml"><p class="x">Peter &amp; <b>Jim</b> &lt;3 "q"</p><br/>)"
            R"(a&lt;b</div>)");
  ExpectValid(kNarrative);
}

TEST(FhirXmlTest, NarrativeWithPrefixedNamespace) {
  Result<json::Document> doc =
      ParseFhirXml(R"(<Patient xmlns="http://hl7.org/fhir" xmlns:h="http://www.w3.org/1999/xhtml">
  <text><status value="generated"/><h:div xml:lang="en"><h:p>hi</h:p></h:div></text></Patient>)");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(json::ResolvePointer(doc->root(), "/text/div").value()->as_string(),
            R"(<div xmlns="http://www.w3.org/1999/xhtml" xml:lang="en"><p>hi</p></div>)");
}

TEST(FhirXmlTest, CrLfIsNormalised) {
  Result<json::Document> doc = ParseFhirXml(
      "<Patient xmlns=\"http://hl7.org/fhir\">\r\n<text><status value=\"generated\"/>"
      "<div xmlns=\"http://www.w3.org/1999/xhtml\">a\r\nb</div></text></Patient>");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(json::ResolvePointer(doc->root(), "/text/div").value()->as_string(),
            "<div xmlns=\"http://www.w3.org/1999/xhtml\">a\nb</div>");
}

TEST(FhirXmlTest, ElementIdAndModifierExtension) {
  ExpectJson(R"(<Patient xmlns="http://hl7.org/fhir">
  <modifierExtension url="http://example.org/m"><valueBoolean value="true"/></modifierExtension>
  <contact id="c1"><gender value="other"/></contact>
</Patient>)",
             R"({"resourceType": "Patient",
      "modifierExtension": [{"url": "http://example.org/m", "valueBoolean": true}],
      "contact": [{"id": "c1", "gender": "other"}]})");
}

TEST(FhirXmlTest, ErrorsNamePosition) {
  EXPECT_EQ(ErrorOf("<Patient xmlns=\"http://hl7.org/fhir\">\n  <foo value=\"1\"/>\n</Patient>"),
            "FHIR XML error at line 2, column 3 (Patient.foo): unknown element 'foo' in Patient");
  EXPECT_EQ(ErrorOf("<Patient xmlns=\"http://hl7.org/fhir\">\n<name></Patient>"),
            "XML error at line 2, column 9: mismatched tag");
  EXPECT_EQ(ErrorOf("<Patient><active value=\"true\"/></Patient>"),
            "FHIR XML error at line 1, column 1 (Patient): a resource must be in the namespace http://hl7.org/fhir "
            "(no namespace given)");
  EXPECT_EQ(ErrorOf("<Foo xmlns=\"http://hl7.org/fhir\"/>"),
            "FHIR XML error at line 1, column 1 (Foo): unknown resource type 'Foo'");
  EXPECT_EQ(ErrorOf("<Patient xmlns=\"http://hl7.org/fhir\"><gender value=\"male\"/><gender value=\"female\"/>"
                    "</Patient>"),
            "FHIR XML error at line 1, column 60 (Patient.gender): 'gender' occurs 2 times but has at most 1 value");
  EXPECT_EQ(ErrorOf("<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"yes\"/></Patient>"),
            "FHIR XML error at line 1, column 38 (Patient.active): a boolean must be 'true' or 'false', not 'yes'");
  EXPECT_EQ(ErrorOf("<Observation xmlns=\"http://hl7.org/fhir\"><valueQuantity><value value=\"1,5\"/>"
                    "</valueQuantity></Observation>"),
            "FHIR XML error at line 1, column 57 (Observation.valueQuantity.value): '1,5' is not a valid decimal");
  EXPECT_EQ(ErrorOf("<Observation xmlns=\"http://hl7.org/fhir\"><valueString value=\"a\"/>"
                    "<valueBoolean value=\"true\"/></Observation>"),
            "FHIR XML error at line 1, column 66 (Observation.valueBoolean): only one type of value[x] is allowed; "
            "found valueString and valueBoolean");
  EXPECT_EQ(ErrorOf("<Patient xmlns=\"http://hl7.org/fhir\"><name><id value=\"x\"/></name></Patient>"),
            "FHIR XML error at line 1, column 44 (Patient.name.id): 'id' is an attribute of <name> in FHIR XML, not "
            "an element");
  EXPECT_EQ(ErrorOf("<Patient xmlns=\"http://hl7.org/fhir\"><birthDate/></Patient>"),
            "FHIR XML error at line 1, column 38 (Patient.birthDate): <birthDate> has no value attribute, id or "
            "extension");
  EXPECT_EQ(ErrorOf("<Patient xmlns=\"http://hl7.org/fhir\"><text><status value=\"generated\"/><div>x</div></text>"
                    "</Patient>"),
            "FHIR XML error at line 1, column 71 (Patient.text.div): 'div' must be in the XHTML namespace "
            "http://www.w3.org/1999/xhtml");
  EXPECT_EQ(ErrorOf("<Patient xmlns=\"http://hl7.org/fhir\">hello</Patient>"),
            "FHIR XML error at line 1, column 1 (Patient): unexpected text content in <Patient>");
}

TEST(FhirXmlTest, RejectsDoctypeAndEntities) {
  std::string error = ErrorOf(
      "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\">]>\n<Patient xmlns=\"http://hl7.org/fhir\">"
      "<id value=\"&lol;\"/></Patient>");
  EXPECT_NE(error.find("DOCTYPE declarations are not allowed"), std::string::npos) << error;
  error = ErrorOf("<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"&lol;\"/></Patient>");
  EXPECT_NE(error.find("undefined entity"), std::string::npos) << error;
}

TEST(FhirXmlTest, Limits) {
  std::string deep = "<Patient xmlns=\"http://hl7.org/fhir\">";
  for (int i = 0; i < 10; ++i) deep += "<contact>";
  Result<json::Document> doc = ParseFhirXml(deep, {.max_depth = 5});
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), StatusCode::kResourceExhausted);
  doc = ParseFhirXml("<Patient xmlns=\"http://hl7.org/fhir\"/>", {.max_size = 10});
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), StatusCode::kResourceExhausted);
}

TEST(FhirXmlTest, EncodingsAndCharacterReferences) {
  // ISO-8859-1 input comes out as UTF-8; character references are decoded.
  std::string latin1 =
      "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Patient xmlns=\"http://hl7.org/fhir\">"
      "<name><family value=\"du March\xE9 &#x263A;\"/></name></Patient>";
  ExpectJson(latin1, R"({"resourceType": "Patient", "name": [{"family": "du Marché ☺"}]})");
}

}  // namespace
}  // namespace bevan::fhir
