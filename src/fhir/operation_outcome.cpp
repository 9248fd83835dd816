#include "fhir/operation_outcome.h"

namespace bevan::fhir {

std::string_view SeverityName(Severity s) {
  switch (s) {
    case Severity::kFatal: return "fatal";
    case Severity::kError: return "error";
    case Severity::kWarning: return "warning";
    case Severity::kInformation: return "information";
  }
  return "error";
}

std::string_view IssueTypeName(IssueType t) {
  switch (t) {
    case IssueType::kInvalid: return "invalid";
    case IssueType::kStructure: return "structure";
    case IssueType::kRequired: return "required";
    case IssueType::kValue: return "value";
    case IssueType::kInvariant: return "invariant";
    case IssueType::kSecurity: return "security";
    case IssueType::kCodeInvalid: return "code-invalid";
    case IssueType::kNotSupported: return "not-supported";
    case IssueType::kTooCostly: return "too-costly";
    case IssueType::kBusinessRule: return "business-rule";
    case IssueType::kForbidden: return "forbidden";
    case IssueType::kLogin: return "login";
    case IssueType::kTransient: return "transient";
  }
  return "invalid";
}

bool OperationOutcome::HasErrors() const { return ErrorCount() > 0; }

size_t OperationOutcome::ErrorCount() const {
  size_t n = 0;
  for (const Issue& i : issues) {
    if (i.severity == Severity::kError || i.severity == Severity::kFatal) ++n;
  }
  return n;
}

void OperationOutcome::Add(Severity severity, IssueType code, std::string location, std::string diagnostics) {
  issues.push_back(Issue{severity, code, std::move(location), std::move(diagnostics)});
}

std::string OperationOutcome::ToJson(bool pretty) const {
  json::Document doc;
  std::vector<json::Value> issue_values;
  for (const Issue& i : issues) {
    std::vector<json::Member> m;
    m.push_back({doc.MakeString("severity"), doc.MakeString(SeverityName(i.severity))});
    m.push_back({doc.MakeString("code"), doc.MakeString(IssueTypeName(i.code))});
    m.push_back({doc.MakeString("diagnostics"), doc.MakeString(i.diagnostics)});
    if (!i.location.empty()) {
      json::Value loc = doc.MakeString(i.location);
      m.push_back({doc.MakeString("location"), doc.MakeArray({&loc, 1})});
      m.push_back({doc.MakeString("expression"), doc.MakeArray({&loc, 1})});
    }
    issue_values.push_back(doc.MakeObject(m));
  }
  if (issue_values.empty()) {
    // An OperationOutcome needs at least one issue: say that all is well.
    std::vector<json::Member> m;
    m.push_back({doc.MakeString("severity"), doc.MakeString("information")});
    m.push_back({doc.MakeString("code"), doc.MakeString("informational")});
    m.push_back({doc.MakeString("diagnostics"), doc.MakeString("No issues detected")});
    issue_values.push_back(doc.MakeObject(m));
  }
  std::vector<json::Member> root;
  root.push_back({doc.MakeString("resourceType"), doc.MakeString("OperationOutcome")});
  root.push_back({doc.MakeString("issue"), doc.MakeArray(issue_values)});
  return json::ToString(doc.MakeObject(root), {.pretty = pretty});
}

}  // namespace bevan::fhir
