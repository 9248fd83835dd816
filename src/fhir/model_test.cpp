#include "fhir/model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace bevan::fhir {
namespace {

const TypeDef& Type(std::string_view name) {
  const TypeDef* t = FindType(name);
  EXPECT_NE(t, nullptr) << name;
  static const TypeDef kMissing{};
  return t != nullptr ? *t : kMissing;
}

const ElementDef& Element(std::string_view type, std::string_view json_name) {
  const ElementDef* e = Type(type).FindElement(json_name);
  EXPECT_NE(e, nullptr) << type << "." << json_name;
  static const ElementDef kMissing{};
  return e != nullptr ? *e : kMissing;
}

std::string_view TypeName(const ElementDef& e) { return e.types.empty() ? "" : e.types[0].type->name; }

std::set<std::string_view> TypeNames(const ElementDef& e) {
  std::set<std::string_view> names;
  for (const TypeRef& r : e.types) names.insert(r.type->name);
  return names;
}

std::set<std::string_view> Targets(const ElementDef& e) {
  std::set<std::string_view> targets;
  for (const TypeRef& r : e.types) targets.insert(r.targets.begin(), r.targets.end());
  return targets;
}

std::vector<std::string_view> ElementNames(const TypeDef& t) {
  std::vector<std::string_view> names;
  for (const ElementDef& e : t.elements) names.push_back(e.name);
  return names;
}

bool Has(const std::vector<std::string_view>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

TEST(ModelTest, Version) { EXPECT_EQ(FhirVersion(), "4.0.1"); }

TEST(ModelTest, PatientElements) {
  const TypeDef& patient = Type("Patient");
  EXPECT_EQ(patient.kind, TypeKind::kResource);
  EXPECT_FALSE(patient.is_abstract);
  EXPECT_TRUE(patient.IsResource());
  ASSERT_NE(patient.base, nullptr);
  EXPECT_EQ(patient.base->name, "DomainResource");
  EXPECT_TRUE(patient.IsA(FindType("Resource")));
  EXPECT_FALSE(patient.IsA(FindType("Element")));

  const ElementDef& birth_date = Element("Patient", "birthDate");
  EXPECT_EQ(birth_date.name, "birthDate");
  EXPECT_EQ(birth_date.path, "Patient.birthDate");
  EXPECT_EQ(TypeName(birth_date), "date");
  EXPECT_EQ(birth_date.min, 0u);
  EXPECT_EQ(birth_date.max, 1u);
  EXPECT_TRUE(birth_date.is_summary);
  EXPECT_FALSE(birth_date.is_choice);

  const ElementDef& name = Element("Patient", "name");
  EXPECT_EQ(TypeName(name), "HumanName");
  EXPECT_EQ(name.min, 0u);
  EXPECT_EQ(name.max, kUnbounded);

  const ElementDef& active = Element("Patient", "active");
  EXPECT_TRUE(active.is_modifier);
  EXPECT_EQ(TypeName(active), "boolean");

  EXPECT_EQ(patient.FindElement("birthdate"), nullptr);
  EXPECT_EQ(patient.FindElement("_birthDate"), nullptr);
  EXPECT_EQ(patient.FindElement(""), nullptr);
  EXPECT_EQ(patient.FindElement("resourceType"), nullptr);
}

TEST(ModelTest, BackboneElements) {
  const ElementDef& contact = Element("Patient", "contact");
  ASSERT_EQ(contact.types.size(), 1u);
  const TypeDef* backbone = contact.types[0].type;
  EXPECT_EQ(backbone, FindType("Patient.contact"));
  EXPECT_EQ(backbone->name, "Patient.contact");
  EXPECT_EQ(backbone->kind, TypeKind::kBackbone);
  ASSERT_NE(backbone->base, nullptr);
  EXPECT_EQ(backbone->base->name, "BackboneElement");
  EXPECT_EQ(contact.max, kUnbounded);

  auto names = ElementNames(*backbone);
  ASSERT_GE(names.size(), 3u);
  EXPECT_EQ(names[0], "id");
  EXPECT_EQ(names[1], "extension");
  EXPECT_EQ(names[2], "modifierExtension");
  for (std::string_view n : {"relationship", "name", "telecom", "address", "gender", "organization", "period"}) {
    EXPECT_TRUE(Has(names, n)) << n;
  }
  EXPECT_EQ(TypeName(Element("Patient.contact", "name")), "HumanName");
  EXPECT_EQ(Element("Patient.contact", "name").path, "Patient.contact.name");
  EXPECT_EQ(TypeName(Element("Patient.contact", "telecom")), "ContactPoint");
  EXPECT_EQ(TypeName(Element("Patient.contact", "id")), "string");

  // Element-typed children of data types are backbones too, without modifierExtension.
  const TypeDef& repeat = Type("Timing.repeat");
  EXPECT_EQ(repeat.kind, TypeKind::kBackbone);
  EXPECT_EQ(repeat.base->name, "Element");
  EXPECT_EQ(repeat.FindElement("modifierExtension"), nullptr);
  EXPECT_NE(repeat.FindElement("boundsDuration"), nullptr);
}

TEST(ModelTest, ContentReference) {
  const TypeDef& item = Type("Questionnaire.item");
  EXPECT_EQ(item.kind, TypeKind::kBackbone);
  const ElementDef& nested = Element("Questionnaire.item", "item");
  ASSERT_EQ(nested.types.size(), 1u);
  EXPECT_EQ(nested.types[0].type, &item);
  EXPECT_EQ(nested.path, "Questionnaire.item.item");
  EXPECT_EQ(FindType("Questionnaire.item.item"), nullptr);
  EXPECT_EQ(Element("Questionnaire", "item").types[0].type, &item);
  EXPECT_EQ(Element("QuestionnaireResponse.item.answer", "item").types[0].type, FindType("QuestionnaireResponse.item"));
  EXPECT_EQ(Element("Bundle.entry", "link").types[0].type, FindType("Bundle.link"));
}

TEST(ModelTest, InheritedElements) {
  auto names = ElementNames(Type("Patient"));
  const std::vector<std::string_view> inherited = {"id",   "meta",      "implicitRules", "language",
                                                   "text", "contained", "extension",     "modifierExtension"};
  ASSERT_GE(names.size(), inherited.size());
  EXPECT_EQ(std::vector<std::string_view>(names.begin(), names.begin() + 8), inherited);
  EXPECT_EQ(TypeName(Element("Patient", "contained")), "Resource");
  EXPECT_TRUE(Type("Resource").is_abstract);
  EXPECT_TRUE(Element("Patient", "modifierExtension").is_modifier);

  // Bundle is a Resource but not a DomainResource.
  auto bundle = ElementNames(Type("Bundle"));
  EXPECT_TRUE(Has(bundle, "meta"));
  EXPECT_FALSE(Has(bundle, "text"));
  EXPECT_FALSE(Has(bundle, "extension"));

  auto human_name = ElementNames(Type("HumanName"));
  EXPECT_EQ(human_name[0], "id");
  EXPECT_EQ(human_name[1], "extension");
  EXPECT_FALSE(Has(human_name, "modifierExtension"));
}

TEST(ModelTest, ResourceIdIsAnId) {
  EXPECT_EQ(TypeName(Element("Resource", "id")), "id");
  EXPECT_EQ(TypeName(Element("Patient", "id")), "id");
  EXPECT_EQ(TypeName(Element("Bundle", "id")), "id");
  // Element.id stays a string.
  EXPECT_EQ(TypeName(Element("HumanName", "id")), "string");
  EXPECT_EQ(TypeName(Element("Extension", "id")), "string");
  EXPECT_EQ(TypeName(Element("Extension", "url")), "uri");
}

TEST(ModelTest, ChoiceElements) {
  const TypeDef& observation = Type("Observation");
  const TypeRef* choice = nullptr;
  const ElementDef* value = observation.FindElement("valueQuantity", &choice);
  ASSERT_NE(value, nullptr);
  EXPECT_EQ(value->name, "value");
  EXPECT_EQ(value->path, "Observation.value[x]");
  EXPECT_TRUE(value->is_choice);
  ASSERT_NE(choice, nullptr);
  EXPECT_EQ(choice->type->name, "Quantity");
  EXPECT_EQ(TypeNames(*value),
            (std::set<std::string_view>{"Quantity", "CodeableConcept", "string", "boolean", "integer", "Range", "Ratio",
                                        "SampledData", "time", "dateTime", "Period"}));

  for (std::string_view json : {"valueCodeableConcept", "valueString", "valueBoolean", "valueInteger", "valueRange",
                                "valueRatio", "valueSampledData", "valueTime", "valueDateTime", "valuePeriod"}) {
    choice = nullptr;
    EXPECT_EQ(observation.FindElement(json, &choice), value) << json;
    ASSERT_NE(choice, nullptr);
    EXPECT_EQ("value" + std::string(1, static_cast<char>(std::toupper(choice->type->name[0]))) +
                  std::string(choice->type->name.substr(1)),
              json);
  }
  EXPECT_EQ(observation.FindElement("valueFoo"), nullptr);
  EXPECT_EQ(observation.FindElement("value"), nullptr);
  EXPECT_EQ(observation.FindElement("valuequantity"), nullptr);
  EXPECT_EQ(observation.FindElement("valueSimpleQuantity"), nullptr);
  EXPECT_EQ(observation.FindElement("valueReference"), nullptr);

  // Non-choice names reset *choice.
  choice = value->types.data();
  EXPECT_NE(observation.FindElement("status", &choice), nullptr);
  EXPECT_EQ(choice, nullptr);

  // Extension.value[x] allows every data type, primitives included.
  const TypeDef& extension = Type("Extension");
  for (std::string_view json : {"valueBase64Binary", "valueString", "valueReference", "valueCodeableConcept",
                                "valueDosage", "valueMeta", "valueUuid", "valuePositiveInt"}) {
    EXPECT_NE(extension.FindElement(json), nullptr) << json;
  }
  EXPECT_NE(Type("Patient").FindElement("deceasedBoolean"), nullptr);
  EXPECT_NE(Type("Patient").FindElement("multipleBirthInteger"), nullptr);
}

TEST(ModelTest, EveryJsonNameIsFound) {
  size_t names = 0;
  for (const TypeDef* t : AllTypes()) {
    for (const ElementDef& e : t->elements) {
      const TypeRef* choice = nullptr;
      if (!e.is_choice) {
        EXPECT_EQ(t->FindElement(e.name, &choice), &e) << e.path;
        EXPECT_EQ(choice, nullptr) << e.path;
        ++names;
        continue;
      }
      EXPECT_EQ(t->FindElement(e.name), nullptr) << e.path;
      for (const TypeRef& ref : e.types) {
        std::string json(e.name);
        json += static_cast<char>(std::toupper(static_cast<unsigned char>(ref.type->name[0])));
        json += ref.type->name.substr(1);
        EXPECT_EQ(t->FindElement(json, &choice), &e) << json;
        EXPECT_EQ(choice, &ref) << json;
        ++names;
      }
    }
  }
  EXPECT_GT(names, 7000u);
}

TEST(ModelTest, PrimitiveTypes) {
  for (std::string_view name :
       {"date", "dateTime", "instant", "id", "decimal", "integer", "code", "uri", "base64Binary", "time", "boolean",
        "positiveInt", "unsignedInt", "oid", "uuid", "canonical", "url", "markdown", "string"}) {
    const TypeDef& t = Type(name);
    EXPECT_EQ(t.kind, TypeKind::kPrimitive) << name;
    EXPECT_FALSE(t.regex.empty()) << name;
    // Only id and extension: the value is the JSON value itself.
    EXPECT_EQ(ElementNames(t), (std::vector<std::string_view>{"id", "extension"})) << name;
  }
  EXPECT_EQ(Type("xhtml").kind, TypeKind::kPrimitive);
  EXPECT_EQ(Element("xhtml", "extension").max, 0u);
  EXPECT_EQ(Type("id").regex, "[A-Za-z0-9\\-\\.]{1,64}");
  EXPECT_EQ(Type("boolean").regex, "true|false");

  EXPECT_EQ(Type("boolean").json_kind, JsonKind::kBoolean);
  for (std::string_view name : {"integer", "decimal", "positiveInt", "unsignedInt"}) {
    EXPECT_EQ(Type(name).json_kind, JsonKind::kNumber) << name;
  }
  for (std::string_view name : {"string", "date", "code", "uri", "base64Binary", "xhtml", "instant"}) {
    EXPECT_EQ(Type(name).json_kind, JsonKind::kString) << name;
  }
  EXPECT_EQ(Type("HumanName").json_kind, JsonKind::kNone);
  EXPECT_EQ(Type("code").base, FindType("string"));
  EXPECT_TRUE(Type("positiveInt").IsA(FindType("integer")));
}

TEST(ModelTest, ReferenceTargets) {
  std::set<std::string_view> subject = Targets(Element("Observation", "subject"));
  EXPECT_EQ(subject, (std::set<std::string_view>{"Patient", "Group", "Device", "Location"}));
  EXPECT_EQ(TypeName(Element("Observation", "subject")), "Reference");
  // Reference(Any) and canonical(Any): no targets.
  EXPECT_TRUE(Targets(Element("Observation", "focus")).empty());
  EXPECT_EQ(Targets(Element("Questionnaire", "derivedFrom")), (std::set<std::string_view>{"Questionnaire"}));
  EXPECT_EQ(TypeName(Element("Questionnaire", "derivedFrom")), "canonical");
  for (const TypeRef& r : Element("Observation", "subject").types) {
    for (std::string_view target : r.targets) EXPECT_NE(FindResourceType(target), nullptr) << target;
  }
}

TEST(ModelTest, RequiredBindings) {
  const ElementDef& gender = Element("Patient", "gender");
  EXPECT_EQ(gender.binding_strength, BindingStrength::kRequired);
  ASSERT_NE(gender.binding, nullptr);
  const ValueSetDef& vs = *gender.binding;
  EXPECT_EQ(vs.url, "http://hl7.org/fhir/ValueSet/administrative-gender");
  EXPECT_TRUE(vs.enumerable);
  EXPECT_EQ(vs.codes.size(), 4u);
  for (std::string_view code : {"male", "female", "other", "unknown"}) {
    EXPECT_TRUE(vs.Contains("", code)) << code;
    EXPECT_TRUE(vs.Contains("http://hl7.org/fhir/administrative-gender", code)) << code;
  }
  EXPECT_FALSE(vs.Contains("", "fred"));
  EXPECT_FALSE(vs.Contains("", "Male"));
  EXPECT_FALSE(vs.Contains("http://example.org", "male"));
  EXPECT_EQ(FindValueSet("http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1"), &vs);
  EXPECT_EQ(FindValueSet("http://hl7.org/fhir/ValueSet/no-such-set"), nullptr);

  // Codes are sorted by (code, system).
  for (const TypeDef* t : AllTypes()) {
    for (const ElementDef& e : t->elements) {
      if (e.binding_strength == BindingStrength::kRequired) {
        EXPECT_NE(e.binding, nullptr) << e.path;
      } else {
        EXPECT_EQ(e.binding, nullptr) << e.path;
      }
      if (e.binding == nullptr) continue;
      auto codes = e.binding->codes;
      EXPECT_TRUE(std::is_sorted(codes.begin(), codes.end(), [](const CodeDef& a, const CodeDef& b) {
        return std::tie(a.code, a.system) < std::tie(b.code, b.system);
      })) << e.binding->url;
      EXPECT_EQ(e.binding->enumerable, !codes.empty()) << e.binding->url;
    }
  }

  // Value sets from nested code system hierarchies and several systems.
  const ValueSetDef* timing = Element("Timing.repeat", "when").binding;
  ASSERT_NE(timing, nullptr);
  EXPECT_TRUE(timing->Contains("http://terminology.hl7.org/CodeSystem/v3-TimingEvent", "ACM"));
  EXPECT_TRUE(timing->Contains("http://hl7.org/fhir/event-timing", "MORN.early"));
  const ValueSetDef* types = FindValueSet("http://hl7.org/fhir/ValueSet/resource-types");
  ASSERT_NE(types, nullptr);
  EXPECT_TRUE(types->Contains("", "Patient"));
  EXPECT_FALSE(types->Contains("", "SubscriptionStatus"));

  // Not enumerable: BCP-13 mime types.
  const ElementDef& content_type = Element("Attachment", "contentType");
  ASSERT_NE(content_type.binding, nullptr);
  EXPECT_EQ(content_type.binding->url, "http://hl7.org/fhir/ValueSet/mimetypes");
  EXPECT_FALSE(content_type.binding->enumerable);
  EXPECT_TRUE(content_type.binding->codes.empty());

  const ElementDef& marital = Element("Patient", "maritalStatus");
  EXPECT_EQ(marital.binding_strength, BindingStrength::kExtensible);
  EXPECT_EQ(marital.binding, nullptr);
  EXPECT_EQ(Element("Patient", "birthDate").binding_strength, BindingStrength::kNone);
}

TEST(ModelTest, ResourceTypes) {
  // R4 4.0.1 has 146 concrete resource types.
  auto names = ResourceTypeNames();
  EXPECT_EQ(names.size(), 146u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_TRUE(std::binary_search(names.begin(), names.end(), "Patient"));
  for (std::string_view name : names) {
    const TypeDef* t = FindResourceType(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_TRUE(t->IsA(FindType("Resource"))) << name;
    EXPECT_NE(t->FindElement("id"), nullptr) << name;
  }
  EXPECT_NE(FindResourceType("Observation"), nullptr);
  EXPECT_EQ(FindResourceType("Resource"), nullptr);
  EXPECT_EQ(FindResourceType("DomainResource"), nullptr);
  EXPECT_EQ(FindResourceType("HumanName"), nullptr);
  EXPECT_EQ(FindResourceType("Patient.contact"), nullptr);
  EXPECT_EQ(FindResourceType("patient"), nullptr);
  // Added to the package from later FHIR versions; not R4.
  EXPECT_EQ(FindResourceType("SubscriptionStatus"), nullptr);
  EXPECT_EQ(FindResourceType("MetadataResource"), nullptr);

  auto all = AllTypes();
  EXPECT_EQ(all.size(), 682u);
  EXPECT_TRUE(
      std::is_sorted(all.begin(), all.end(), [](const TypeDef* a, const TypeDef* b) { return a->name < b->name; }));
  for (const TypeDef* t : all) EXPECT_EQ(FindType(t->name), t) << t->name;
}

TEST(ModelTest, QuantityProfilesAreAliases) {
  const TypeDef* quantity = FindType("Quantity");
  ASSERT_NE(quantity, nullptr);
  EXPECT_EQ(FindType("SimpleQuantity"), quantity);
  EXPECT_EQ(FindType("MoneyQuantity"), quantity);
  EXPECT_EQ(TypeName(Element("Observation.referenceRange", "low")), "Quantity");
  // Age and friends are specialisations with Quantity's elements.
  const TypeDef& age = Type("Age");
  EXPECT_EQ(age.kind, TypeKind::kComplex);
  EXPECT_EQ(age.base, quantity);
  EXPECT_EQ(ElementNames(age), ElementNames(*quantity));
  EXPECT_EQ(Element("Age", "value").path, "Age.value");
}

// The package patches some R4 definitions; the model keeps R4 4.0.1.
TEST(ModelTest, NoNonR4Additions) {
  EXPECT_EQ(Type("Meta").FindElement("project"), nullptr);
  EXPECT_EQ(Type("Meta").FindElement("author"), nullptr);
  EXPECT_EQ(Type("Binary").FindElement("url"), nullptr);
  EXPECT_EQ(Type("DeviceDefinition").FindElement("classification"), nullptr);
  EXPECT_EQ(Type("ResearchStudy").FindElement("label"), nullptr);
  EXPECT_NE(Type("ResearchStudy").FindElement("arm"), nullptr);
  EXPECT_EQ(Type("EvidenceVariable.characteristic").FindElement("definitionByTypeAndValue"), nullptr);
  EXPECT_NE(Type("EvidenceVariable.characteristic").FindElement("definitionExpression"), nullptr);
  EXPECT_EQ(Element("EvidenceVariable", "characteristic").min, 1u);
  EXPECT_FALSE(Targets(Element("AuditEvent.agent", "who")).contains("Bot"));
  EXPECT_EQ(TypeName(Element("Bundle.entry.response", "outcome")), "Resource");
  EXPECT_EQ(Element("ResearchStudy", "status").binding->url, "http://hl7.org/fhir/ValueSet/research-study-status");
  // As published in R4 4.0.1 (a known erratum, fixed in R5).
  EXPECT_EQ(Element("DetectedIssue", "status").binding->url, "http://hl7.org/fhir/ValueSet/observation-status");
  EXPECT_EQ(FindSearchParam("DeviceDefinition", "classification"), nullptr);
}

TEST(ModelTest, SearchParameters) {
  EXPECT_EQ(AllSearchParams().size(), 1377u);

  const SearchParamDef* birthdate = FindSearchParam("Patient", "birthdate");
  ASSERT_NE(birthdate, nullptr);
  EXPECT_EQ(birthdate->type, SearchParamType::kDate);
  EXPECT_EQ(birthdate->url, "http://hl7.org/fhir/SearchParameter/individual-birthdate");
  // One parameter serves Patient, Person and RelatedPerson.
  EXPECT_EQ(birthdate->expression, "Patient.birthDate | Person.birthDate | RelatedPerson.birthDate");
  EXPECT_EQ(std::vector<std::string_view>(birthdate->bases.begin(), birthdate->bases.end()),
            (std::vector<std::string_view>{"Patient", "Person", "RelatedPerson"}));
  EXPECT_EQ(FindSearchParam("Person", "birthdate"), birthdate);

  const SearchParamDef* cvq = FindSearchParam("Observation", "code-value-quantity");
  ASSERT_NE(cvq, nullptr);
  EXPECT_EQ(cvq->type, SearchParamType::kComposite);
  ASSERT_EQ(cvq->components.size(), 2u);
  EXPECT_EQ(cvq->components[0].definition, "http://hl7.org/fhir/SearchParameter/clinical-code");
  EXPECT_EQ(cvq->components[0].expression, "code");
  EXPECT_EQ(cvq->components[1].definition, "http://hl7.org/fhir/SearchParameter/Observation-value-quantity");

  const SearchParamDef* subject = FindSearchParam("Observation", "subject");
  ASSERT_NE(subject, nullptr);
  EXPECT_EQ(subject->type, SearchParamType::kReference);
  EXPECT_EQ(subject->expression, "Observation.subject");
  EXPECT_EQ(std::set<std::string_view>(subject->targets.begin(), subject->targets.end()),
            (std::set<std::string_view>{"Group", "Device", "Patient", "Location"}));

  // Inherited from Resource and DomainResource.
  const SearchParamDef* id = FindSearchParam("Patient", "_id");
  ASSERT_NE(id, nullptr);
  EXPECT_EQ(id->bases[0], "Resource");
  EXPECT_EQ(id->type, SearchParamType::kToken);
  EXPECT_NE(FindSearchParam("Bundle", "_lastUpdated"), nullptr);
  EXPECT_NE(FindSearchParam("Patient", "_text"), nullptr);
  EXPECT_EQ(FindSearchParam("Bundle", "_text"), nullptr);  // Bundle is not a DomainResource
  EXPECT_EQ(FindSearchParam("Patient", "no-such-param"), nullptr);
  EXPECT_EQ(FindSearchParam("NoSuchType", "_id"), nullptr);

  const SearchParamDef* near = FindSearchParam("Location", "near");
  ASSERT_NE(near, nullptr);
  EXPECT_EQ(near->type, SearchParamType::kSpecial);

  size_t composites = 0;
  for (const SearchParamDef& p : AllSearchParams()) {
    EXPECT_FALSE(p.bases.empty()) << p.url;
    EXPECT_EQ(p.type == SearchParamType::kComposite, !p.components.empty()) << p.url;
    if (p.type == SearchParamType::kComposite) ++composites;
    for (std::string_view base : p.bases) EXPECT_EQ(FindSearchParam(base, p.code), &p) << p.url;
  }
  EXPECT_EQ(composites, 46u);
}

TEST(ModelTest, PatientCompartment) {
  auto observation = PatientCompartmentParams("Observation");
  EXPECT_EQ(std::vector<std::string_view>(observation.begin(), observation.end()),
            (std::vector<std::string_view>{"subject", "performer"}));
  auto patient = PatientCompartmentParams("Patient");
  EXPECT_EQ(std::vector<std::string_view>(patient.begin(), patient.end()), (std::vector<std::string_view>{"link"}));
  EXPECT_TRUE(PatientCompartmentParams("Organization").empty());
  EXPECT_TRUE(PatientCompartmentParams("NoSuchType").empty());

  size_t in_compartment = 0;
  for (std::string_view name : ResourceTypeNames()) {
    auto params = PatientCompartmentParams(name);
    if (params.empty()) continue;
    ++in_compartment;
    for (std::string_view code : params) EXPECT_NE(FindSearchParam(name, code), nullptr) << name << " " << code;
  }
  EXPECT_EQ(in_compartment, 67u);
}

std::vector<std::string_view> Keys(std::span<const ConstraintDef* const> list) {
  std::vector<std::string_view> keys;
  for (const ConstraintDef* c : list) keys.push_back(c->key);
  return keys;
}

const ConstraintDef* Find(std::span<const ConstraintDef* const> list, std::string_view key) {
  for (const ConstraintDef* c : list) {
    if (c->key == key) return c;
  }
  return nullptr;
}

using Strings = std::vector<std::string_view>;

TEST(ModelTest, ConstraintTable) {
  std::span<const ConstraintDef> all = AllConstraints();
  // Every distinct invariant of the R4 types and resources (inv-1 three
  // times), ele-1, and SimpleQuantity's sqty-1; not MoneyQuantity's mqty-1
  // (no R4 element uses that profile) nor the logical model MetadataResource's inv-0.
  EXPECT_EQ(all.size(), 240u);
  size_t inv1 = 0, warnings = 0, best_practice = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    const ConstraintDef& c = all[i];
    EXPECT_EQ(c.index, i);
    EXPECT_FALSE(c.key.empty());
    EXPECT_FALSE(c.human.empty()) << c.key;
    EXPECT_FALSE(c.expression.empty()) << c.key;
    EXPECT_TRUE(c.context == c.source || c.context.starts_with(std::string(c.source) + ".")) << c.key;
    if (c.key == "inv-1") {
      ++inv1;
    } else {
      EXPECT_EQ(FindConstraint(c.key), &c) << c.key;
    }
    if (!c.is_error) ++warnings;
    if (c.is_best_practice) ++best_practice;
    if (i > 0) {
      // Sorted by key, numbers compared as numbers.
      EXPECT_FALSE(all[i - 1].key == c.key && all[i - 1].context >= c.context) << c.key;
    }
  }
  EXPECT_EQ(inv1, 3u);
  EXPECT_EQ(FindConstraint("inv-1"), nullptr);  // ambiguous
  EXPECT_EQ(FindConstraint("xyz-1"), nullptr);
  EXPECT_EQ(FindConstraint("evv-1"), nullptr);  // R5, patched into the package's snapshot
  EXPECT_EQ(FindConstraint("mqty-1"), nullptr);
  EXPECT_EQ(warnings, 34u);  // the 29 name rules xxx-0, dom-6, con-3, eld-20, eld-21, nor-1
  EXPECT_EQ(best_practice, 2u);
  ASSERT_NE(FindConstraint("tim-9"), nullptr);
  ASSERT_NE(FindConstraint("tim-10"), nullptr);
  EXPECT_LT(FindConstraint("tim-9")->index, FindConstraint("tim-10")->index);
}

TEST(ModelTest, Ele1IsUniversal) {
  const ConstraintDef* ele1 = FindConstraint("ele-1");
  ASSERT_NE(ele1, nullptr);
  EXPECT_EQ(ele1->expression, "hasValue() or (children().count() > id.count())");
  EXPECT_EQ(ele1->human, "All FHIR elements must have a @value or children");
  EXPECT_TRUE(ele1->is_error);
  EXPECT_EQ(ele1->context, "Element");
  EXPECT_EQ(ele1->source, "Element");
  // In no list: it applies to every element.
  for (const TypeDef* t : AllTypes()) {
    EXPECT_EQ(Find(t->constraints, "ele-1"), nullptr) << t->name;
    for (const ElementDef& e : t->elements) EXPECT_EQ(Find(e.constraints, "ele-1"), nullptr) << e.path;
  }
}

TEST(ModelTest, PatientConstraints) {
  const TypeDef& patient = Type("Patient");
  EXPECT_EQ(Keys(patient.constraints), (Strings{"dom-2", "dom-3", "dom-4", "dom-5", "dom-6"}));
  for (const ConstraintDef* c : patient.constraints) {
    EXPECT_EQ(c->source, "DomainResource") << c->key;
    EXPECT_EQ(c->context, "DomainResource") << c->key;
    EXPECT_EQ(FindConstraint(c->key), c);
  }
  // The same objects as DomainResource's.
  EXPECT_EQ(Type("DomainResource").constraints.size(), 5u);
  EXPECT_EQ(Type("DomainResource").constraints[0], patient.constraints[0]);

  const ConstraintDef* dom2 = Find(patient.constraints, "dom-2");
  ASSERT_NE(dom2, nullptr);
  EXPECT_TRUE(dom2->is_error);
  EXPECT_EQ(dom2->expression, "contained.contained.empty()");
  EXPECT_EQ(dom2->human, "If the resource is contained in another resource, it SHALL NOT contain nested Resources");
  const ConstraintDef* dom6 = Find(patient.constraints, "dom-6");
  ASSERT_NE(dom6, nullptr);
  EXPECT_FALSE(dom6->is_error);  // a warning in R4
  EXPECT_TRUE(dom6->is_best_practice);
  EXPECT_EQ(dom6->expression, "text.`div`.exists()");
  EXPECT_EQ(dom6->human, "A resource should have narrative for robust management");
  for (std::string_view key : {"dom-3", "dom-4", "dom-5"}) {
    ASSERT_NE(Find(patient.constraints, key), nullptr) << key;
    EXPECT_TRUE(Find(patient.constraints, key)->is_error) << key;
  }

  // pat-1 is on the backbone type Patient.contact (the element's type).
  const TypeDef& contact = Type("Patient.contact");
  ASSERT_EQ(contact.constraints.size(), 1u);
  const ConstraintDef* pat1 = contact.constraints[0];
  EXPECT_EQ(pat1, FindConstraint("pat-1"));
  EXPECT_EQ(pat1->key, "pat-1");
  EXPECT_TRUE(pat1->is_error);
  EXPECT_EQ(pat1->context, "Patient.contact");
  EXPECT_EQ(pat1->source, "Patient");
  EXPECT_EQ(pat1->expression, "name.exists() or telecom.exists() or address.exists() or organization.exists()");
  EXPECT_EQ(pat1->human, "SHALL at least contain a contact's details or a reference to an organization");
  const ElementDef& contact_element = Element("Patient", "contact");
  EXPECT_EQ(contact_element.types[0].type, &contact);
  EXPECT_TRUE(contact_element.constraints.empty());  // its type has them

  // Patient's elements declare none; ext-1 is Extension's.
  for (const ElementDef& e : patient.elements) EXPECT_TRUE(e.constraints.empty()) << e.path;
  EXPECT_TRUE(Type("Patient.communication").constraints.empty());
  EXPECT_TRUE(Element("Patient", "extension").constraints.empty());
  const TypeDef& extension = Type("Extension");
  EXPECT_EQ(Keys(extension.constraints), (Strings{"ext-1"}));
  EXPECT_EQ(extension.constraints[0]->expression, "extension.exists() != value.exists()");
}

TEST(ModelTest, ObservationConstraints) {
  const TypeDef& observation = Type("Observation");
  EXPECT_EQ(Keys(observation.constraints), (Strings{"dom-2", "dom-3", "dom-4", "dom-5", "dom-6", "obs-6", "obs-7"}));
  const ConstraintDef* obs6 = Find(observation.constraints, "obs-6");
  ASSERT_NE(obs6, nullptr);
  EXPECT_TRUE(obs6->is_error);
  EXPECT_EQ(obs6->context, "Observation");
  EXPECT_EQ(obs6->expression, "dataAbsentReason.empty() or value.empty()");
  EXPECT_EQ(obs6->human, "dataAbsentReason SHALL only be present if Observation.value[x] is not present");
  const ConstraintDef* obs7 = Find(observation.constraints, "obs-7");
  ASSERT_NE(obs7, nullptr);
  EXPECT_TRUE(obs7->is_error);
  EXPECT_EQ(obs7->expression,
            "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()");
  EXPECT_EQ(Keys(Type("Observation.referenceRange").constraints), (Strings{"obs-3"}));
  EXPECT_TRUE(Type("Observation.component").constraints.empty());

  // Elements profiled with SimpleQuantity carry its invariant.
  const ElementDef& low = Element("Observation.referenceRange", "low");
  ASSERT_EQ(low.constraints.size(), 1u);
  EXPECT_EQ(low.constraints[0]->key, "sqty-1");
  EXPECT_EQ(low.constraints[0]->expression, "comparator.empty()");
  EXPECT_EQ(low.constraints[0]->source, "SimpleQuantity");
  EXPECT_EQ(Keys(low.types[0].type->constraints), (Strings{"qty-3"}));
  EXPECT_TRUE(Element("Observation", "valueQuantity").constraints.empty());
}

TEST(ModelTest, DataTypeConstraints) {
  EXPECT_TRUE(Type("Element").constraints.empty());
  EXPECT_TRUE(Type("BackboneElement").constraints.empty());
  EXPECT_TRUE(Type("Resource").constraints.empty());
  EXPECT_TRUE(Type("string").constraints.empty());
  EXPECT_TRUE(Type("HumanName").constraints.empty());
  const TypeDef& quantity = Type("Quantity");
  ASSERT_EQ(quantity.constraints.size(), 1u);
  EXPECT_EQ(quantity.constraints[0]->key, "qty-3");
  EXPECT_EQ(quantity.constraints[0]->expression, "code.empty() or system.exists()");
  EXPECT_EQ(Keys(Type("Age").constraints), (Strings{"age-1", "qty-3"}));
  EXPECT_EQ(Type("Age").constraints[1], quantity.constraints[0]);  // inherited, the same object
  const TypeDef& period = Type("Period");
  ASSERT_EQ(period.constraints.size(), 1u);
  EXPECT_EQ(period.constraints[0]->key, "per-1");
  EXPECT_EQ(period.constraints[0]->expression, "start.hasValue().not() or end.hasValue().not() or (start <= end)");
  const TypeDef& reference = Type("Reference");
  ASSERT_EQ(reference.constraints.size(), 1u);
  EXPECT_EQ(reference.constraints[0]->key, "ref-1");
  EXPECT_EQ(reference.constraints[0]->expression,
            "reference.startsWith('#').not() or (reference.substring(1).trace('url') in "
            "%rootResource.contained.id.trace('ids'))");
  EXPECT_EQ(Keys(Type("Timing.repeat").constraints),
            (Strings{"tim-1", "tim-2", "tim-4", "tim-5", "tim-6", "tim-7", "tim-8", "tim-9", "tim-10"}));
  EXPECT_EQ(Keys(Element("Narrative", "div").constraints), (Strings{"txt-1", "txt-2"}));
  EXPECT_EQ(Element("Narrative", "div").constraints[0]->expression, "htmlChecks()");
  EXPECT_EQ(Type("Bundle").constraints.size(), 9u);
  EXPECT_EQ(Keys(Type("Bundle.entry").constraints), (Strings{"bdl-5", "bdl-8"}));
  EXPECT_EQ(Keys(Type("Questionnaire.item").constraints).size(), 11u);
}

// Where the package changed an invariant, the model has R4 4.0.1's text.
TEST(ModelTest, ConstraintsAsPublishedInR4) {
  EXPECT_EQ(FindConstraint("tim-9")->expression,
            "offset.empty() or (when.exists() and ((when in ('C' | 'CM' | 'CD' | 'CV')).not()))");
  EXPECT_EQ(FindConstraint("ras-2")->expression, "probability is decimal implies (probability as decimal) <= 100");
  EXPECT_EQ(FindConstraint("bdl-8")->expression, "fullUrl.contains('/_history/').not()");
  EXPECT_EQ(FindConstraint("que-12")->expression, "enableWhen.count() > 2 implies enableBehavior.exists()");
  EXPECT_TRUE(Type("EvidenceVariable.characteristic").constraints.empty());
  EXPECT_FALSE(FindConstraint("con-3")->is_error);
  EXPECT_TRUE(FindConstraint("con-3")->is_best_practice);
  // inv-1: three different invariants, each on its own type.
  EXPECT_EQ(Find(Type("Task").constraints, "inv-1")->expression,
            "lastModified.exists().not() or authoredOn.exists().not() or lastModified >= authoredOn");
  EXPECT_EQ(Find(Type("Parameters.parameter").constraints, "inv-1")->context, "Parameters.parameter");
  EXPECT_EQ(Find(Type("TestReport.setup.action").constraints, "inv-1")->expression,
            "operation.exists() xor assert.exists()");
}

// Content references: the referenced backbone type carries its invariants
// (nested Questionnaire items get que-1...); an invariant declared on the
// referencing element itself stays on that element.
TEST(ModelTest, ConstraintsThroughContentReferences) {
  const ElementDef& nested = Element("Questionnaire.item", "item");
  EXPECT_EQ(nested.types[0].type, &Type("Questionnaire.item"));
  EXPECT_TRUE(nested.constraints.empty());
  const ElementDef& operation = Element("TestScript.test.action", "operation");
  EXPECT_EQ(operation.types[0].type, &Type("TestScript.setup.action.operation"));
  EXPECT_EQ(Keys(operation.constraints), (Strings{"tst-8"}));
  EXPECT_EQ(Keys(Type("TestScript.setup.action.operation").constraints), (Strings{"tst-7"}));
}

TEST(ModelTest, ConstraintCounts) {
  size_t types_with = 0, type_refs = 0, elements_with = 0, element_refs = 0;
  std::set<const ConstraintDef*> used;
  for (const TypeDef* t : AllTypes()) {
    if (!t->constraints.empty()) ++types_with;
    type_refs += t->constraints.size();
    used.insert(t->constraints.begin(), t->constraints.end());
    for (const ElementDef& e : t->elements) {
      if (!e.constraints.empty()) ++elements_with;
      element_refs += e.constraints.size();
      used.insert(e.constraints.begin(), e.constraints.end());
      // An element's list never repeats its type's.
      if (e.types.size() == 1) {
        for (const ConstraintDef* c : e.constraints) EXPECT_EQ(Find(e.types[0].type->constraints, c->key), nullptr);
      }
    }
  }
  EXPECT_EQ(types_with, 211u);
  EXPECT_EQ(type_refs, 945u);
  EXPECT_EQ(elements_with, 64u);
  EXPECT_EQ(element_refs, 67u);
  // Every invariant but ele-1 is on some type or element.
  EXPECT_EQ(used.size(), AllConstraints().size() - 1);
  EXPECT_FALSE(used.contains(FindConstraint("ele-1")));
}

TEST(ModelTest, ConcurrentReaders) {
  std::vector<std::thread> threads;
  std::vector<int> found(4, 0);
  for (size_t i = 0; i < found.size(); ++i) {
    threads.emplace_back([&found, i] {
      for (int round = 0; round < 1000; ++round) {
        const TypeDef* t = FindResourceType("Observation");
        if (t != nullptr && t->FindElement("valueQuantity") != nullptr &&
            FindSearchParam("Observation", "code") != nullptr) {
          ++found[i];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int n : found) EXPECT_EQ(n, 1000);
}

}  // namespace
}  // namespace bevan::fhir
