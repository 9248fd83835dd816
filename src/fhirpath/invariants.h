// The FHIRPath invariants of the R4 model (ConstraintDef: pat-1, dom-2,
// obs-6, ...), compiled once and evaluated by the validator through
// fhir::InvariantChecker.
#pragma once

#include "fhir/validate.h"

namespace bevan::fhirpath {

// Compiles every constraint of the model on first use. Thread-safe.
//
// Not evaluated here: ele-1, txt-1, txt-2, ref-1 and dom-2 (the validator
// checks them natively and more precisely), and best-practice rules (dom-6, con-3)
// unless asked. Warnings (is_error false) become warning issues. An
// expression that fails at run time on odd data gives a warning naming the
// key, not an error. R4 expressions known to be wrong as published (dom-3)
// are corrected the way other validators do (see kCorrections).
class Invariants final : public fhir::InvariantChecker {
 public:
  static const Invariants& Get();
  // Out of line: Compiled is incomplete here (clang instantiates the
  // implicit virtual destructor in every including file).
  ~Invariants() override;

  void Check(std::span<const fhir::ConstraintDef* const> constraints, const json::Value& node,
             const json::Value& resource, const json::Value& root, std::string_view location,
             fhir::OperationOutcome& out) const override;

  // Constraints that did not compile (expected: none).
  size_t compile_failures() const { return compile_failures_; }

  struct Compiled;

 private:
  Invariants();
  std::vector<std::unique_ptr<Compiled>> compiled_;  // by ConstraintDef::index
  size_t compile_failures_ = 0;
};

// Validation options with every check on, invariants included.
fhir::ValidateOptions FullValidation();

}  // namespace bevan::fhirpath
