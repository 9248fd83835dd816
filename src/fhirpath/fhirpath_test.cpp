#include "fhirpath/fhirpath.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

namespace bevan::fhirpath {
namespace {

constexpr std::string_view kPatient = R"({
  "resourceType": "Patient", "id": "p1", "active": true,
  "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
           {"use": "usual", "given": ["Jim"]}],
  "birthDate": "1974-12-25",
  "_birthDate": {"extension": [{"url": "http://example.org/t", "valueDateTime": "1974-12-25T14:35:45-05:00"}]},
  "deceasedBoolean": false,
  "contained": [{"resourceType": "Organization", "id": "o1", "name": "Acme"}],
  "managingOrganization": {"reference": "#o1"}
})";

class FhirpathTest : public ::testing::Test {
 protected:
  void SetUp() override { doc_ = std::move(json::Document::Parse(kPatient).value()); }

  // Evaluates `expr` on the patient and joins the results' text with ",".
  std::string Eval(std::string_view expr, CompileOptions options = {.context_type = "Patient"}) {
    auto compiled = Expression::Compile(expr, options);
    if (!compiled.ok()) return "compile error: " + compiled.status().message();
    Arena arena;
    auto result = compiled->Evaluate(doc_.root(), arena);
    if (!result.ok()) return "error: " + result.status().message();
    std::string out;
    for (const Item& item : *result) {
      if (!out.empty()) out += ",";
      out += ToText(item);
    }
    return out;
  }

  json::Document doc_;
};

TEST_F(FhirpathTest, Navigation) {
  EXPECT_EQ(Eval("Patient.name.given"), "Peter,James,Jim");
  EXPECT_EQ(Eval("name.where(use = 'usual').given"), "Jim");
  EXPECT_EQ(Eval("deceased"), "false");
  EXPECT_EQ(Eval("deceased.ofType(boolean)"), "false");
  EXPECT_EQ(Eval("birthDate.extension('http://example.org/t').value"), "1974-12-25T14:35:45-05:00");
  EXPECT_EQ(Eval("managingOrganization.resolve().name"), "Acme");
}

TEST_F(FhirpathTest, CompileErrors) {
  EXPECT_EQ(Eval("name.given1").rfind("compile error: FHIRPath error at 6: 'given1' is not an element of HumanName", 0),
            0u);
  EXPECT_EQ(Eval("name.given +").rfind("compile error: FHIRPath syntax error at 13", 0), 0u);
  EXPECT_NE(Eval("Patient.deceasedBoolean").find("compile error"), std::string::npos);
  EXPECT_EQ(Eval("Patient.deceasedBoolean", {.context_type = "Patient", .allow_choice_type_names = true}), "false");
}

TEST_F(FhirpathTest, Operators) {
  EXPECT_EQ(Eval("1 + 2 * 3"), "7");
  EXPECT_EQ(Eval("1.50 + 1"), "2.50");
  EXPECT_EQ(Eval("birthDate + 1 year"), "1975-12-25");
  EXPECT_EQ(Eval("4 'g' = 4000 'mg'"), "true");
  EXPECT_EQ(Eval("(1 | 2 | 2).count()"), "2");
  EXPECT_EQ(Eval("{} and false"), "false");
  EXPECT_EQ(Eval("'abc'.matches('b.')"), "true");
}

// Found by fuzz/fuzz_fhirpath: libstdc++'s std::regex overflows an int on a
// long repetition bound or back-reference number (UBSan), and nested bounds
// multiply its automaton. Such patterns are errors, constant or not.
TEST_F(FhirpathTest, RegexLimits) {
  EXPECT_EQ(Eval("'aaa'.matches('a{2,1000}')"), "true");
  EXPECT_EQ(Eval("'aaa'.matches('(a{3}){10}|a{3}')"), "true");
  EXPECT_EQ(Eval("'ab'.replaceMatches('(a)(b)', '$2$1')"), "ba");
  EXPECT_EQ(Eval("'a\nb'.matches('a.b')"), "true");
  EXPECT_EQ(Eval("'aab'.matches('^a*?b?[*+]*[a{]+?b$')"), "true");
  EXPECT_EQ(Eval("'a\nb'.matches('a.b' + '')"), "true");  // run-time patterns: single-line mode too
  for (std::string_view pattern :
       {"x{7777777777777777777777777777}", "x{1,7777777777777777777777777777}", "(a)\\\\7777777777777777777777777",
        "x{1001}", "((a{100}){100}){100}", "(?:[ab]{1000}c){11}", ".*+--Library.*", "a+*", "a{2}+", "a?*"}) {
    std::string literal = "'a'.matches('" + std::string(pattern) + "')";
    EXPECT_EQ(Eval(literal).rfind("compile error: FHIRPath error at 13: invalid regular expression", 0), 0u)
        << literal << ": " << Eval(literal);
    std::string dynamic = "'a'.matches('" + std::string(pattern) + "' + '')";
    EXPECT_EQ(Eval(dynamic).rfind("error: FHIRPath evaluation error", 0), 0u) << dynamic << ": " << Eval(dynamic);
  }
}

TEST_F(FhirpathTest, UnknownContextTypeResolvesAtRunTime) {
  EXPECT_EQ(Eval("Patient.name.given.first()", {}), "Peter");
  EXPECT_EQ(Eval("name.family", {}), "Chalmers");
}

TEST_F(FhirpathTest, SharedBetweenThreadsIsSafe) {
  auto expr = Expression::Compile("name.given.where($this.matches('^J')).count() + (4 'g' = 4000 'mg').count()",
                                  {.context_type = "Patient"});
  ASSERT_TRUE(expr.ok());
  std::atomic<int> wrong{0};
  auto work = [&] {
    Arena arena;
    for (int i = 0; i < 2000; ++i) {
      auto r = expr->Evaluate(doc_.root(), arena);
      if (!r.ok() || r->size() != 1 || (*r)[0].integer() != 3) ++wrong;
      arena.Reset();
    }
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(FhirpathTest, VariablesAndResources) {
  EXPECT_EQ(Eval("%resource.id"), "p1");
  EXPECT_EQ(Eval("%context.name.count()"), "2");
  EXPECT_EQ(Eval("%`ext-patient-birthTime`"), "http://hl7.org/fhir/StructureDefinition/patient-birthTime");
  EXPECT_NE(Eval("%undeclared").find("unknown variable %undeclared"), std::string::npos);

  std::string_view declared[] = {"limit"};
  auto expr = Expression::Compile("name.given.count() < %limit", {.context_type = "Patient", .variables = declared});
  ASSERT_TRUE(expr.ok()) << expr.status().message();
  Arena arena;
  Item three = Item::Integer(3);
  Variable vars[] = {{"limit", Collection(&three, 1)}};
  auto r = expr->EvaluateBoolean(doc_.root(), arena, {.variables = vars});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, std::optional<bool>(false));
}

TEST_F(FhirpathTest, TraceGoesToTheSink) {
  struct Sink : TraceSink {
    void Trace(std::string_view name, Collection items) override {
      seen += std::string(name) + "=" + std::to_string(items.size()) + ";";
    }
    std::string seen;
  } sink;
  auto expr = Expression::Compile("name.trace('names').given.trace('given', $this.length())", {});
  ASSERT_TRUE(expr.ok());
  Arena arena;
  ASSERT_TRUE(expr->Evaluate(doc_.root(), arena, {.trace = &sink}).ok());
  EXPECT_EQ(sink.seen, "names=2;given=3;");
}

TEST_F(FhirpathTest, RunTimeErrorsNameThePosition) {
  EXPECT_EQ(Eval("name.given.single()"), "error: FHIRPath evaluation error at 12 (single): single() on 3 items");
  EXPECT_EQ(Eval("name.given + 1"), "error: FHIRPath evaluation error at 12: expected a single item, got 3");
}

TEST_F(FhirpathTest, TreeNavigationAndTypes) {
  EXPECT_EQ(Eval("children().count()"), "8");
  EXPECT_EQ(Eval("descendants().ofType(Extension).url"), "http://example.org/t");
  EXPECT_EQ(Eval("deceased.type().name"), "boolean");
  EXPECT_EQ(Eval("contained.first().is(Organization)"), "true");
  EXPECT_EQ(Eval("birthDate.hasValue()"), "true");
  EXPECT_EQ(Eval("birthDate.getValue().type().namespace"), "System");
}

TEST_F(FhirpathTest, TerminologyAndNarrative) {
  auto doc = json::Document::Parse(R"({"resourceType": "Patient", "gender": "other",
    "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>ok</p></div>"}})");
  ASSERT_TRUE(doc.ok());
  doc_ = std::move(doc).value();
  EXPECT_EQ(Eval("gender.memberOf('http://hl7.org/fhir/ValueSet/administrative-gender')"), "true");
  EXPECT_EQ(Eval("'cat'.memberOf('http://hl7.org/fhir/ValueSet/administrative-gender')"), "false");
  EXPECT_EQ(Eval("text.div.htmlChecks()"), "true");
  EXPECT_EQ(Eval("'<div><script>x</script></div>'.htmlChecks()"), "false");
  EXPECT_EQ(Eval("'<div onclick=\"x()\">a</div>'.htmlChecks()"), "false");
}

TEST(FhirpathBundleTest, ResolvesBundleLocalReferences) {
  auto doc = json::Document::Parse(R"({"resourceType": "Bundle", "type": "collection", "entry": [
    {"fullUrl": "urn:uuid:a1", "resource": {"resourceType": "Patient", "id": "a1", "gender": "female"}},
    {"fullUrl": "http://x.org/fhir/Observation/o1", "resource": {"resourceType": "Observation", "id": "o1",
      "status": "final", "code": {"text": "w"}, "subject": {"reference": "urn:uuid:a1"},
      "valueQuantity": {"value": 72.0, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}},
    {"resource": {"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "w"},
      "subject": {"reference": "Patient/a1"}, "valueString": "n/a", "_valueString": {"id": "v"}}}]})");
  ASSERT_TRUE(doc.ok());
  auto eval = [&](std::string_view text) {
    auto expr = Expression::Compile(text, {.context_type = "Bundle"});
    if (!expr.ok()) return "compile error: " + expr.status().message();
    Arena arena;
    auto r = expr->Evaluate(doc->root(), arena);
    if (!r.ok()) return "error: " + r.status().message();
    std::string out;
    for (const Item& i : *r) out += (out.empty() ? "" : ",") + ToText(i);
    return out;
  };
  EXPECT_EQ(eval("entry.resource.ofType(Observation).subject.resolve().gender"), "female,female");
  EXPECT_EQ(eval("Bundle.entry.resource.ofType(Patient).count()"), "1");
  EXPECT_EQ(eval("entry.resource.ofType(Observation).where(value.ofType(Quantity) > 70 'kg').id"), "o1");
  EXPECT_EQ(eval("entry.resource.ofType(Observation).where(value.as(Quantity) > 70000 'g').id"), "o1");
  EXPECT_EQ(eval("entry.resource.ofType(Observation).value.ofType(string).id"), "v");
  EXPECT_EQ(eval("entry[1].resource.value / 2"), "36.0 'kg'");
  // Not in the Bundle, but typed by the reference itself.
  EXPECT_EQ(eval("entry.resource.ofType(Observation).subject.where(resolve() is Patient).count()"), "2");
  EXPECT_EQ(eval("'Practitioner/9'.resolve().is(Practitioner)"), "true");
}

}  // namespace
}  // namespace bevan::fhirpath

namespace bevan::fhirpath {
namespace {

// member.ofType(ResourceType) on Resource elements takes a fused path
// (Bundle.entry.resource, contained); it must agree with the general one.
TEST(FhirpathFused, OfTypeOnResourceMembersAgreesWithTheGeneralPath) {
  auto doc = json::Document::Parse(R"({"resourceType": "Bundle", "type": "collection", "entry": [
    {"fullUrl": "urn:a", "resource": {"resourceType": "Patient", "id": "a"}},
    {"resource": {"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"},
                  "contained": [{"resourceType": "Patient", "id": "c1"}, {"resourceType": "Practitioner", "id": "c2"}]}},
    {"request": {"method": "GET", "url": "Patient/x"}},
    {"resource": {"id": "no-type"}},
    {"search": {"mode": "match"}, "resource": {"resourceType": "Patient", "id": "b"}}]})");
  ASSERT_TRUE(doc.ok());
  auto run = [&](std::string_view expr) {
    auto e = Expression::Compile(expr, {.context_type = "Bundle"});
    EXPECT_TRUE(e.ok()) << expr;
    if (!e.ok()) return std::string();
    Arena arena;
    auto r = e->Evaluate(doc->root(), arena);
    EXPECT_TRUE(r.ok()) << expr;
    std::string out;
    for (const Item& i : *r) out += ToText(i) + ";";
    return out;
  };
  EXPECT_EQ(run("Bundle.entry.resource.ofType(Patient).id"), "a;b;");
  EXPECT_EQ(run("Bundle.entry.resource.ofType(Patient).count()"), "2;");
  EXPECT_EQ(run("Bundle.entry.resource.ofType(Patient).id"), run("Bundle.entry.resource.where($this is Patient).id"));
  EXPECT_EQ(run("Bundle.entry.resource.ofType(Observation).contained.ofType(Patient).id"), "c1;");
  EXPECT_EQ(run("Bundle.entry.resource.ofType(Encounter).count()"), "0;");
  EXPECT_EQ(run("Bundle.entry.resource.ofType(Patient).select(id)"), "a;b;");
  // The items keep their type: navigation after the filter is typed.
  EXPECT_EQ(run("Bundle.entry.resource.ofType(Observation).status"), "final;");
  EXPECT_EQ(run("Bundle.entry[1].resource.ofType(Observation).id"), "o;");
  // Member chains (one descent, no collection per step) agree with stepwise navigation.
  EXPECT_EQ(run("Bundle.entry.request.url"), "Patient/x;");
  EXPECT_EQ(run("Bundle.entry.request.url"), run("Bundle.entry.select(request).select(url)"));
  EXPECT_EQ(run("Bundle.entry.search.mode"), "match;");
}

TEST_F(FhirpathTest, MemberChainsAgreeWithStepwiseNavigation) {
  EXPECT_EQ(Eval("Patient.name.given"), Eval("Patient.name.select(given)"));
  EXPECT_EQ(Eval("Patient.birthDate.extension.url"), "http://example.org/t");
  EXPECT_EQ(Eval("Patient.managingOrganization.reference"), "#o1");
  EXPECT_EQ(Eval("Patient.name.period.start"), "");
  // Without a context type nothing is resolved at compile time: the general path.
  EXPECT_EQ(Eval("name.given", {}), "Peter,James,Jim");
}

}  // namespace
}  // namespace bevan::fhirpath

namespace bevan::fhirpath {
namespace {

// matches() runs in linear time whatever the pattern: (a|a)*b backtracks
// exponentially in a backtracking engine (2^100 steps on this input).
TEST_F(FhirpathTest, RegexesCannotBacktrackExponentially) {
  std::string input(100, 'a');
  EXPECT_EQ(Eval("'" + input + "c'.matches('(a|a)*b')"), "false");
  EXPECT_EQ(Eval("'" + input + "b'.matches('(a|a)*b')"), "true");
  EXPECT_EQ(Eval("'" + input + "'.matches('(a*)*$')"), "true");
  // Substitutions name groups as $1; a literal backslash stays one.
  EXPECT_EQ(Eval("'2024-01-31'.replaceMatches('(\\\\d+)-(\\\\d+)-(\\\\d+)', '$3/$2/$1')"), "31/01/2024");
  EXPECT_EQ(Eval("'a.b'.replaceMatches('\\\\.', '\\\\')"), "a\\b");
  EXPECT_EQ(Eval("'line1\nline2'.matches('line1.line2')"), "true");  // '.' matches a newline
}

}  // namespace
}  // namespace bevan::fhirpath
