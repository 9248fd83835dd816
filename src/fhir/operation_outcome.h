// OperationOutcome: the FHIR way of saying what went wrong, built by the
// validator (and later by every layer that reports errors to a client).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "json/json.h"

namespace bevan::fhir {

enum class Severity : uint8_t { kFatal, kError, kWarning, kInformation };

// The IssueType codes Bevan uses (a subset of the required value set
// http://hl7.org/fhir/ValueSet/issue-type; a test checks each name is in it).
enum class IssueType : uint8_t {
  kInvalid,       // "invalid": content invalid against the specification
  kStructure,     // "structure": unknown element, wrong JSON type or shape
  kRequired,      // "required": a mandatory element is missing
  kValue,         // "value": a primitive value does not match its type
  kInvariant,     // "invariant": a rule between elements is broken
  kSecurity,      // "security": unsafe content (e.g. scripts in narrative)
  kCodeInvalid,   // "code-invalid": a code outside its required value set
  kNotSupported,  // "not-supported": e.g. an unknown resource type
  kTooCostly,     // "too-costly": a limit was reached
  kBusinessRule,  // "business-rule"
  kForbidden,     // "forbidden": the caller's authorisation does not allow it
  kLogin,         // "login": authentication is needed or failed
  kTransient,     // "transient": try again later
};

std::string_view SeverityName(Severity s);
std::string_view IssueTypeName(IssueType t);

struct Issue {
  Severity severity = Severity::kError;
  IssueType code = IssueType::kInvalid;
  std::string location;     // FHIRPath of the element: "Patient.identifier[0].value"
  std::string diagnostics;  // human-readable explanation
};

struct OperationOutcome {
  std::vector<Issue> issues;

  bool HasErrors() const;
  size_t ErrorCount() const;
  void Add(Severity severity, IssueType code, std::string location, std::string diagnostics);

  // The OperationOutcome resource as JSON: each issue has severity, code,
  // diagnostics, and the FHIRPath both in `expression` and `location`.
  std::string ToJson(bool pretty = false) const;
};

}  // namespace bevan::fhir
