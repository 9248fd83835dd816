// Data-driven validation cases: tests/validation/*.cases.json each hold an
// array of {"name", "resource", "issues": [{"location", "code"}]}. A case
// passes when the validator's error issues are exactly the expected
// (location, code) pairs: no more, no fewer.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "fhir/validate.h"
#include "fhirpath/invariants.h"
#include "json/json.h"

namespace bevan::fhir {
namespace {

// What the validator can do so far: "invariants" are the FHIRPath
// constraints (ext-1, dom-3, ...), checked through fhirpath::Invariants.
const std::set<std::string> kCapabilities = {"invariants"};

struct Case {
  std::string requires_capability;
  std::string file;
  std::string name;
  std::string resource;  // compact JSON
  std::set<std::pair<std::string, std::string>> expected;
};

std::vector<Case> LoadCases() {
  std::vector<Case> cases;
  std::filesystem::path dir = std::filesystem::path(BEVAN_SOURCE_DIR) / "tests" / "validation";
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().string().ends_with(".cases.json")) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f);
    std::stringstream ss;
    ss << in.rdbuf();
    auto doc = json::Document::Parse(ss.str());
    if (!doc.ok()) {
      ADD_FAILURE() << f << ": " << doc.status().message();
      continue;
    }
    for (const json::Value& c : doc->root().items()) {
      Case k;
      k.file = f.filename().string();
      if (const json::Value* n = c.Find("name")) k.name = n->as_string();
      if (const json::Value* r = c.Find("requires")) k.requires_capability = r->as_string();
      const json::Value* r = c.Find("resource");
      if (!r) {
        ADD_FAILURE() << k.file << ": case without resource: " << k.name;
        continue;
      }
      // A resource given as a string is raw text (for JSON-level errors).
      k.resource = r->is_string() ? std::string(r->as_string()) : json::ToString(*r);
      if (const json::Value* issues = c.Find("issues")) {
        for (const json::Value& i : issues->items()) {
          k.expected.insert({std::string(i.Find("location")->as_string()), std::string(i.Find("code")->as_string())});
        }
      }
      cases.push_back(std::move(k));
    }
  }
  return cases;
}

TEST(ValidationCases, EachGivesExactlyTheExpectedIssues) {
  std::vector<Case> cases = LoadCases();
  size_t invalid_cases = 0, skipped = 0, failed = 0;
  std::set<std::string> names;
  for (const Case& c : cases) {
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate case name " << c.name;
    if (!c.requires_capability.empty() && !kCapabilities.contains(c.requires_capability)) {
      ++skipped;
      continue;
    }
    OperationOutcome outcome = ValidateJson(c.resource, fhirpath::FullValidation());
    std::set<std::pair<std::string, std::string>> got;
    for (const Issue& i : outcome.issues) {
      if (i.severity == Severity::kError || i.severity == Severity::kFatal) {
        got.insert({i.location, std::string(IssueTypeName(i.code))});
      }
    }
    if (!c.expected.empty()) ++invalid_cases;
    std::string detail;
    for (const Issue& i : outcome.issues)
      detail += "  " + i.location + " [" + std::string(IssueTypeName(i.code)) + "] " + i.diagnostics + "\n";
    EXPECT_EQ(got, c.expected) << c.file << ": " << c.name << "\n" << detail;
    if (got != c.expected) ++failed;
  }
  std::printf("Validation cases: %zu passed, %zu failed, %zu skipped of %zu\n", cases.size() - failed - skipped, failed,
              skipped, cases.size());
  EXPECT_GE(invalid_cases, 100u) << "the suite must hold at least 100 invalid resources";
}

}  // namespace
}  // namespace bevan::fhir
