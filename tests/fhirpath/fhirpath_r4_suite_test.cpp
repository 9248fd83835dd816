// Runs HL7's FHIRPath test suite for R4 (tests-fhir-r4.xml, as published)
// against the engine and checks the result against KNOWN_FAILURES.md.
//
// Each test names an input resource (patient-example.xml is read from
// inputs/patient-example.json), an expression, and either the expected
// output items (type and text) or that the expression is invalid, which
// passes when compilation or evaluation fails. The expression is compiled
// with the input's resource type as context type; mode="strict" tests use
// strict mode. predicate="true" reduces the result to exists().
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/shared_dir.h"
#include "fhirpath/fhirpath.h"
#include "json/json.h"
#include "mini_xml.h"

namespace bevan::fhirpath {
namespace {

// The suite's size as published; the runner fails if the file changes.
constexpr int kSuiteSize = 935;
// Regressions below this many passes fail the test.
constexpr int kMinimumPassed = 935;

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The type of an item as the suite names it (FHIR types by name, System
// types lower-camel: "boolean", "dateTime", "Quantity").
std::string SuiteType(const Item& item) {
  if (item.is_node()) return std::string(TypeName(item));
  switch (item.kind()) {
    case ItemKind::kBoolean: return "boolean";
    case ItemKind::kInteger: return "integer";
    case ItemKind::kDecimal: return "decimal";
    case ItemKind::kString: return "string";
    case ItemKind::kDate: return "date";
    case ItemKind::kDateTime: return "dateTime";
    case ItemKind::kTime: return "time";
    case ItemKind::kQuantity: return "Quantity";
    default: return "TypeInfo";
  }
}

bool IsTemporal(const Item& item) {
  ItemKind k = item.kind();
  if (k == ItemKind::kDate || k == ItemKind::kDateTime || k == ItemKind::kTime) return true;
  if (!item.is_node() || item.type() == nullptr) return false;
  std::string_view t = item.type()->name;
  return t == "date" || t == "dateTime" || t == "instant" || t == "time";
}

// Whether `item` matches an expected output of `type` (may be empty) and `text`.
bool Matches(const Item& item, std::string_view type, std::string_view text) {
  std::string actual = ToText(item);
  if (!type.empty() && SuiteType(item) != type) return false;
  if (type == "decimal") {
    auto a = Decimal::Parse(actual), b = Decimal::Parse(text);
    return a && b && *a == *b;
  }
  if (IsTemporal(item) && !text.empty() && text[0] == '@') {
    text.remove_prefix(1);
    bool time = item.kind() == ItemKind::kTime || (item.is_node() && item.type()->name == "time");
    if (time && !text.empty() && text[0] == 'T') text.remove_prefix(1);
  }
  return actual == text;
}

struct Outcome {
  bool passed = false;
  std::string detail;
};

class Suite {
 public:
  explicit Suite(std::string dir) : dir_(std::move(dir)) {}

  Outcome Run(const testing::XmlElement& test) {
    std::string input_name(test.Attribute("inputfile"));
    const testing::XmlElement* expr_el = test.Children("expression").empty() ? nullptr : test.Children("expression")[0];
    if (expr_el == nullptr) return {false, "no expression"};
    std::string expression = expr_el->text;
    bool invalid = expr_el->HasAttribute("invalid");

    const json::Document* doc = nullptr;
    if (!input_name.empty()) {
      size_t dot = input_name.rfind('.');
      std::string json_name = input_name.substr(0, dot) + ".json";
      doc = Load(json_name);
      if (doc == nullptr) return {false, "cannot read input " + json_name};
    }

    CompileOptions options;
    std::string context_type;
    if (doc != nullptr) {
      if (const json::Value* rt = doc->root().Find("resourceType")) context_type = std::string(rt->as_string());
    }
    options.context_type = context_type;
    options.strict = test.Attribute("mode") == "strict";
    options.check_ordered_functions = test.Attribute("checkOrderedFunctions") == "true";

    auto compiled = Expression::Compile(expression, options);
    if (!compiled.ok()) {
      if (invalid) return {true, ""};
      return {false, "compile: " + compiled.status().message()};
    }
    Arena arena;
    Result<Collection> result =
        doc != nullptr ? compiled->Evaluate(doc->root(), arena) : compiled->Evaluate(Collection(), arena);
    if (!result.ok()) {
      if (invalid) return {true, ""};
      return {false, "evaluate: " + result.status().message()};
    }
    if (invalid) return {false, "expected an error, got " + std::to_string(result->size()) + " items"};
    std::vector<Item> items(result->begin(), result->end());
    if (test.Attribute("predicate") == "true") {
      bool exists = !items.empty();
      items = {Item::Boolean(exists)};
    }
    auto outputs = test.Children("output");
    std::string got;
    for (const Item& i : items) got += (got.empty() ? "" : ", ") + SuiteType(i) + ":" + ToText(i);
    if (outputs.size() != items.size()) {
      return {false, "expected " + std::to_string(outputs.size()) + " items, got [" + got + "]"};
    }
    bool ordered = test.Attribute("ordered") != "false";
    std::vector<bool> used(items.size(), false);
    for (size_t i = 0; i < outputs.size(); ++i) {
      std::string_view type = outputs[i]->Attribute("type");
      std::string_view text = outputs[i]->text;
      bool ok = false;
      if (ordered) {
        ok = Matches(items[i], type, text);
      } else {
        for (size_t j = 0; j < items.size() && !ok; ++j) {
          if (!used[j] && Matches(items[j], type, text)) used[j] = ok = true;
        }
      }
      if (!ok) return {false, "output " + std::to_string(i + 1) + " differs: got [" + got + "]"};
    }
    return {true, ""};
  }

 private:
  const json::Document* Load(const std::string& name) {
    auto it = inputs_.find(name);
    if (it != inputs_.end()) return &it->second;
    auto text = ReadFile(dir_ + "/inputs/" + name);
    if (!text) return nullptr;
    auto doc = json::Document::Parse(*text);
    if (!doc.ok()) return nullptr;
    return &inputs_.emplace(name, std::move(doc).value()).first->second;
  }

  std::string dir_;
  std::map<std::string, json::Document> inputs_;
};

// Test names listed in KNOWN_FAILURES.md under "## Failures" as "- `name`: reason".
std::set<std::string> KnownFailures(const std::string& text) {
  std::set<std::string> names;
  std::istringstream in(text);
  std::string line;
  bool in_section = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) in_section = line == "## Failures";
    if (!in_section || line.rfind("- `", 0) != 0) continue;
    size_t end = line.find('`', 3);
    if (end != std::string::npos) names.insert(line.substr(3, end - 3));
  }
  return names;
}

TEST(FhirpathR4Suite, RunsAsPublished) {
  auto shared = SharedDir();
  if (!shared) GTEST_SKIP() << "shared directory not found (set BEVAN_SHARED): FHIRPath R4 suite not run";
  std::string dir = *shared + "/conformance/fhirpath-r4";
  auto xml = ReadFile(dir + "/tests-fhir-r4.xml");
  if (!xml) GTEST_SKIP() << "no " << dir << "/tests-fhir-r4.xml: FHIRPath R4 suite not run";
  auto root = testing::XmlReader::Parse(*xml);
  ASSERT_TRUE(root.ok()) << root.status().ToString();

  Suite suite(dir);
  int passed = 0, failed = 0, skipped = 0;
  std::set<std::string> failures;
  for (const testing::XmlElement* group : (*root)->Children("group")) {
    for (const testing::XmlElement* test : group->Children("test")) {
      std::string name(test->Attribute("name"));
      Outcome o = suite.Run(*test);
      if (o.passed) {
        ++passed;
      } else {
        ++failed;
        failures.insert(name);
        std::cout << "  FAIL " << name << ": " << o.detail << "\n";
      }
    }
  }
  int total = passed + failed + skipped;
  std::cout << "FHIRPath R4 suite: " << passed << " passed, " << failed << " failed, " << skipped << " skipped of "
            << total << std::endl;
  EXPECT_EQ(total, kSuiteSize);
  EXPECT_GE(passed, kMinimumPassed);

  auto known_text = ReadFile(std::string(BEVAN_SOURCE_DIR) + "/tests/fhirpath/KNOWN_FAILURES.md");
  ASSERT_TRUE(known_text.has_value()) << "tests/fhirpath/KNOWN_FAILURES.md missing";
  std::set<std::string> known = KnownFailures(*known_text);
  for (const std::string& f : failures) {
    EXPECT_TRUE(known.count(f)) << f << " fails but is not listed in KNOWN_FAILURES.md";
  }
  for (const std::string& k : known) {
    EXPECT_TRUE(failures.count(k)) << k << " is listed in KNOWN_FAILURES.md but passes";
  }
}

}  // namespace
}  // namespace bevan::fhirpath
