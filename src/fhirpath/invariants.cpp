#include "fhirpath/invariants.h"

#include <array>
#include <string>

#include "fhirpath/fhirpath.h"

namespace bevan::fhirpath {

namespace {

// Checked natively by the validator.
constexpr std::array<std::string_view, 5> kNative = {"ele-1", "txt-1", "txt-2", "ref-1", "dom-2"};

// R4 expressions that are wrong as published, with the fix other validators
// (HAPI, Firely) apply. dom-3 applies as() to whole collections, which
// FHIRPath defines as an error for more than one item; ofType() is meant.
struct Correction {
  std::string_view key;
  std::string_view from;
  std::string_view to;
};
constexpr std::array<Correction, 1> kCorrections = {{
    {"dom-3", "descendants().as(", "descendants().ofType("},
}};

std::string Corrected(const fhir::ConstraintDef& c) {
  std::string e(c.expression);
  for (const Correction& fix : kCorrections) {
    if (fix.key != c.key) continue;
    for (size_t at; (at = e.find(fix.from)) != std::string::npos;) e.replace(at, fix.from.size(), fix.to);
  }
  return e;
}

bool IsNative(std::string_view key) {
  for (std::string_view k : kNative) {
    if (k == key) return true;
  }
  return false;
}

}  // namespace

struct Invariants::Compiled {
  const fhir::ConstraintDef* def;
  std::optional<Expression> expression;
  std::string error;
};

Invariants::~Invariants() = default;

Invariants::Invariants() {
  auto all = fhir::AllConstraints();
  compiled_.resize(all.size());
  for (const fhir::ConstraintDef& c : all) {
    auto entry = std::make_unique<Compiled>();
    entry->def = &c;
    if (!IsNative(c.key)) {
      CompileOptions options;
      // Constraints on a type compile against it; element constraints
      // (context "Observation.referenceRange.low") resolve names at run time.
      if (fhir::FindType(c.context)) options.context_type = c.context;
      std::string text = Corrected(c);
      auto e = Expression::Compile(text, options);
      if (!e.ok()) {
        // Retry without a context type: some R4 expressions use names the
        // type does not declare (they are then empty at run time).
        e = Expression::Compile(text, {});
      }
      if (e.ok()) {
        entry->expression = std::move(e).value();
      } else {
        entry->error = e.status().message();
        ++compile_failures_;
      }
    }
    compiled_[c.index] = std::move(entry);
  }
}

const Invariants& Invariants::Get() {
  static const Invariants instance;
  return instance;
}

void Invariants::Check(std::span<const fhir::ConstraintDef* const> constraints, const json::Value& node,
                       const json::Value& resource, const json::Value& root, std::string_view location,
                       fhir::OperationOutcome& out) const {
  thread_local Arena arena(16 * 1024);
  for (const fhir::ConstraintDef* c : constraints) {
    if (c->is_best_practice || c->index >= compiled_.size()) continue;
    const Compiled& compiled = *compiled_[c->index];
    if (!compiled.expression) continue;
    arena.Reset();
    EvalOptions options;
    options.resource = &resource;
    options.root_resource = &root;
    auto result = compiled.expression->EvaluateBoolean(node, arena, options);
    std::string key(c->key);
    if (!result.ok()) {
      out.Add(fhir::Severity::kWarning, fhir::IssueType::kInvariant, std::string(location),
              key + " could not be evaluated: " + result.status().message());
      continue;
    }
    // Empty counts as satisfied, as in other validators.
    if (!result->has_value() || **result) continue;
    out.Add(c->is_error ? fhir::Severity::kError : fhir::Severity::kWarning, fhir::IssueType::kInvariant,
            std::string(location), key + ": " + std::string(c->human));
  }
}

fhir::ValidateOptions FullValidation() {
  fhir::ValidateOptions options;
  options.invariants = &Invariants::Get();
  return options;
}

}  // namespace bevan::fhirpath
