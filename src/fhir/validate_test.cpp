#include "fhir/validate.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/shared_dir.h"
#include "fhir/model.h"

namespace bevan::fhir {
namespace {

OperationOutcome V(std::string_view text) { return ValidateJson(text); }

// Every resource of the Synthea sample validates with no errors.
TEST(Validate, SyntheaSampleIsValid) {
  auto shared = SharedDir();
  if (!shared) GTEST_SKIP() << "BEVAN_SHARED (../shared) not found: Synthea validation not run";
  size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(*shared + "/data/synthea-10")) {
    if (entry.path().extension() != ".ndjson" || entry.path().filename() == "log.ndjson") continue;
    std::ifstream in(entry.path());
    std::string line;
    size_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty()) continue;
      OperationOutcome o = V(line);
      ASSERT_FALSE(o.HasErrors()) << entry.path().filename() << ":" << line_no << "\n" << o.ToJson(true);
      ++n;
    }
  }
  EXPECT_GT(n, 5000u);
}

TEST(Validate, OperationOutcomeIsItselfValid) {
  OperationOutcome o = V(R"({"resourceType":"Patient","birthDate":"2024-02-30","foo":1})");
  ASSERT_EQ(o.ErrorCount(), 2u);
  OperationOutcome meta = V(o.ToJson());
  EXPECT_FALSE(meta.HasErrors()) << meta.ToJson(true);
  EXPECT_FALSE(V(OperationOutcome().ToJson()).HasErrors());
}

// Bevan's issue codes are all in the required value set of OperationOutcome.issue.code.
TEST(Validate, IssueTypesAreInTheModel) {
  const TypeDef* issue = FindType("OperationOutcome.issue");
  ASSERT_NE(issue, nullptr);
  const ElementDef* code = issue->FindElement("code");
  ASSERT_NE(code, nullptr);
  ASSERT_NE(code->binding, nullptr);
  for (int t = 0; t <= static_cast<int>(IssueType::kTransient); ++t) {
    EXPECT_TRUE(code->binding->Contains("", IssueTypeName(static_cast<IssueType>(t)))) << t;
  }
}

TEST(Validate, ParseErrorsAreFatalWithLocation) {
  OperationOutcome o = V("{\"resourceType\":\"Patient\",\n\"id\":\"a\",\"id\":\"b\"}");
  ASSERT_EQ(o.issues.size(), 1u);
  EXPECT_EQ(o.issues[0].severity, Severity::kFatal);
  EXPECT_NE(o.issues[0].diagnostics.find("line 2"), std::string::npos) << o.issues[0].diagnostics;
}

TEST(Validate, StopsAfterMaxIssues) {
  std::string text = R"({"resourceType":"Patient")";
  for (int i = 0; i < 50; ++i) text += ",\"x" + std::to_string(i) + "\":1";
  text += "}";
  ValidateOptions options;
  options.max_issues = 10;
  OperationOutcome o = ValidateJson(text, options);
  ASSERT_EQ(o.issues.size(), 11u);
  EXPECT_EQ(o.issues.back().code, IssueType::kTooCostly);
}

TEST(Validate, UkCoreCanBeSwitchedOff) {
  const char* text =
      R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000008"}]})";
  EXPECT_TRUE(V(text).HasErrors());
  ValidateOptions options;
  options.uk_core = false;
  EXPECT_FALSE(ValidateJson(text, options).HasErrors());
  EXPECT_FALSE(
      V(R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}]})")
          .HasErrors());
}

}  // namespace
}  // namespace bevan::fhir
