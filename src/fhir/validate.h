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

#include "fhir/operation_outcome.h"
#include "json/json.h"

namespace bevan::fhir {

struct ValidateOptions {
  bool uk_core = true;      // NHS number and ODS code checks
  size_t max_issues = 100;  // stop after this many issues (one more says so)
};

// Validates a parsed resource.
OperationOutcome Validate(const json::Value& resource, const ValidateOptions& options = {});

// Parses and validates JSON text; a parse error is one fatal issue whose
// diagnostics give the byte offset, line and column.
OperationOutcome ValidateJson(std::string_view text, const ValidateOptions& options = {});

}  // namespace bevan::fhir
