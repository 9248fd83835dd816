// Structural validation of FHIR R4 resources against the generated model,
// plus UK Core identifier rules.
//
// Checks: resourceType (present, known), unknown elements, JSON shape
// (arrays for repeating elements, objects for complex types, no empty arrays
// or objects), cardinality, primitive formats (see primitives.h), choice
// naming (valueQuantity, one choice per element), primitive extensions
// (`_birthDate`), contained resources (no nesting), required bindings
// (enumerable value sets), reference format and target types, narrative
// safety, and UK Core NHS numbers and ODS codes.
//
// Every issue names its element by FHIRPath ("Patient.identifier[0].value").
// Thread-safe: validation only reads the immutable model.
#pragma once

#include <string_view>

#include <span>

#include "fhir/model.h"
#include "fhir/operation_outcome.h"
#include "json/json.h"

namespace bevan::fhir {

// Evaluates FHIRPath invariants for the validator. The FHIRPath layer
// implements it (fhirpath/invariants.h), so this layer does not depend on
// FHIRPath. Must be thread-safe.
class InvariantChecker {
 public:
  virtual ~InvariantChecker() = default;

  // Evaluates `constraints` on `node` (an object: a resource or a complex
  // element) and adds an issue (code invariant, naming the key) at
  // `location` for each one that does not hold. `resource` is the resource
  // the node belongs to (%resource), `root` the outermost one (%rootResource).
  virtual void Check(std::span<const ConstraintDef* const> constraints, const json::Value& node,
                     const json::Value& resource, const json::Value& root, std::string_view location,
                     OperationOutcome& out) const = 0;
};

struct ValidateOptions {
  bool uk_core = true;      // NHS number and ODS code checks
  size_t max_issues = 100;  // stop after this many issues (one more says so)
  // FHIRPath invariants (ele-1, txt-1, txt-2 and ref-1 are checked natively
  // by the validator; the rest need a checker). Null: not checked.
  const InvariantChecker* invariants = nullptr;
};

// Validates a parsed resource.
OperationOutcome Validate(const json::Value& resource, const ValidateOptions& options = {});

// Parses and validates JSON text; a parse error is one fatal issue whose
// diagnostics give the byte offset, line and column.
OperationOutcome ValidateJson(std::string_view text, const ValidateOptions& options = {});

}  // namespace bevan::fhir
