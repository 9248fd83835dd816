// Index extraction: every R4 SearchParameter of every resource type, each
// expression compiled once, evaluated on a resource and turned into the
// store's index rows, plus the resource's Patient compartment.
//
// Row schemes (what a query must look for; query.h and search.h rely on them):
// - token: TokenRow{code, system, code}. Coding and CodeableConcept codings
//   (system, code); Identifier (system, value); ContactPoint (system, value);
//   code, string, id, uri and boolean values ("", value; booleans "true" /
//   "false").
// - token :text: StringRow{"<code>:text"} from CodeableConcept.text and
//   Coding.display (normalised and exact), matched like a string.
// - identifier :of-type: TokenRow{"<code>:of-type", type system,
//   "<type code>|<value>"} for each Identifier.type coding.
// - string: StringRow{code, NormalizeString(text), text}; HumanName gives one
//   row per family, given, prefix, suffix and text, Address per line, city,
//   district, state, postalCode, country and text.
// - date: DateRow{code, lo, hi} by precision (values.h); Period from start's lo
//   to end's hi (open ends: the lowest / highest instant); Timing one row per
//   event.
// - number: NumberRow by the decimal's implicit range.
// - quantity: QuantityRow{code, lo, hi, system, code (else unit)} and, for
//   UCUM units, the canonical range and unit key; Money uses its currency
//   (system urn:iso:std:iso:4217); Range from low's lo to high's hi.
// - reference: ReferenceRow{code, type, id, ""} for Type/id (version
//   stripped), {code, "", "", url} for absolute URLs, canonicals (version
//   stripped) and uri values; contained (#id) references give none;
//   Reference.identifier gives TokenRow{"<code>:identifier", system, value}.
// - uri: UriRow{code, uri}.
// - composite (two or more components): the first component's values become
//   keys (token: "system|code" and "code"; reference: "Type/id" and "id";
//   other types: their text) and each later component's rows are written under
//   the parameter "<code>$<key>" with that component's scheme, so
//   `code-value-quantity=http://loinc.org|8480-6$gt100` is one quantity range
//   lookup on parameter "code-value-quantity$http://loinc.org|8480-6". With
//   three components (MolecularSequence) the second and third are matched
//   independently of each other.
// - Parameters answered from other parameters' rows (IndexedParam::storage),
//   so that a write stores each fact once: a parameter whose expression is
//   another's (Patient `phonetic` is `name`) has no rows of its own; one whose
//   expression is a union of others' (Observation `combo-code` is `code` |
//   `component-code`, composites alike) is answered from theirs; a reference
//   parameter `Q.where(resolve() is T)` (`patient` of most clinical types) is
//   answered from Q's rows with target type T and keeps only the rows Q's
//   cannot stand for (absolute URLs, whose type is in the text, and
//   Reference.identifier tokens). search.cpp turns each into conditions on
//   those rows; the oracle evaluates the expressions themselves, so the
//   correctness suite checks the equivalence.
// - _id and _lastUpdated are not extracted: they are the resource table's
//   id and last_updated. _text, _content, _query and special parameters
//   (near) have no expression and are not indexed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "fhir/model.h"
#include "json/json.h"
#include "store/store.h"

namespace bevan::search {

struct ExtractResult {
  store::IndexRows rows;
  std::string compartment;  // the id of the Patient the resource belongs to, or empty
};

// One indexed search parameter of one resource type.
struct IndexedParam {
  const fhir::SearchParamDef* def = nullptr;
  std::string code;
  fhir::SearchParamType type = fhir::SearchParamType::kToken;
  std::string expression;  // the branch of def->expression for this type
  // For composites: the types of the components, in order.
  std::vector<fhir::SearchParamType> component_types;

  // Where the parameter's rows are (see "Parameters answered from other
  // parameters' rows" above). Built-in parameters only; decided once when
  // the registry is compiled.
  enum class Storage : std::uint8_t {
    kOwn,         // rows under its own code
    kSame,        // the same expression as sources[0]: its rows
    kUnion,       // "A | B": the rows of sources (one parameter per branch)
    kRestricted,  // "Q.where(resolve() is T)": Q's reference rows whose target type is T (sources[0] = Q,
                  // restrict_type = T), plus its own rows for what Q's rows cannot tell (absolute URLs,
                  // Reference.identifier)
  };
  Storage storage = Storage::kOwn;
  std::vector<std::string> sources;
  std::string restrict_type;
};

class Extractor {
 public:
  // The extractor for the R4 registry, built once on first use (compiling
  // about 1,700 expressions), immutable and shared by every thread.
  static const Extractor& Default();

  ~Extractor();
  Extractor(const Extractor&) = delete;
  Extractor& operator=(const Extractor&) = delete;

  // Index rows and compartment of `resource` (a parsed resource of `type`
  // whose id is `id`). kInvalidArgument for an unknown type; an expression
  // that fails at run time on this resource is skipped (its rows are missing)
  // rather than failing the write.
  Result<ExtractResult> Extract(std::string_view type, std::string_view id, const json::Value& resource) const;

  // The parameter `code` as indexed for `type`; null when the type has no
  // such parameter or it is not indexed (no expression, or it failed to compile).
  const IndexedParam* Find(std::string_view type, std::string_view code) const;

  // Every indexed parameter of `type` (empty for unknown types).
  std::vector<const IndexedParam*> Params(std::string_view type) const;

  // (type, parameter) pairs whose expression did not compile, as "Type.code: error".
  const std::vector<std::string>& failures() const;

  // Custom search parameters: SearchParameter resources stored on the server
  // (status active; type number, date, string, token, reference, quantity or
  // uri; base types; code; expression). Each is compiled per base type with
  // the FHIRPath engine and then extracted, found and listed like a built-in
  // one. A code a base type already has in R4 stays the built-in parameter
  // (the custom one is ignored for that type). These calls are thread-safe
  // (a lock of its own guards the custom parameters: the one mutable part of
  // the extractor, process-wide like Default(), because every write and
  // every query resolves parameters through Default()). Pointers Find gives
  // stay valid after a parameter is replaced or removed.
  //
  // Register: adds or replaces the parameters of SearchParameter `resource_id`
  // (an inactive one only removes them). kInvalidArgument naming the problem
  // for a resource CheckSearchParameter rejects.
  Status Register(std::string_view resource_id, const json::Value& search_parameter) const;
  // Removes the parameters of SearchParameter `resource_id` (none: nothing).
  void Unregister(std::string_view resource_id) const;
  // Removes every custom parameter (tests; a restart).
  void ClearCustom() const;
  // Custom parameters in force, as "Type.code".
  std::vector<std::string> CustomParams() const;

  struct Impl;

 private:
  Extractor();
  std::unique_ptr<Impl> impl_;
};

// Extractor::Default().Extract(type, id, resource).
Result<ExtractResult> Extract(std::string_view type, std::string_view id, const json::Value& resource);

// Whether `search_parameter` (a SearchParameter resource) can become an active
// search parameter: OK when its status is not active (it is stored and not
// used), else kInvalidArgument naming the problem (no code, an unknown or
// unsupported type, an unknown base type, an expression that does not compile
// for a base type: "expression does not compile for Patient: ...").
Status CheckSearchParameter(const json::Value& search_parameter);

// The part of a SearchParameter expression that applies to `type`: the
// union branches starting with "Type." (or "(Type.", or "Type" alone), joined
// again; the whole expression when none does.
std::string ExpressionForType(std::string_view expression, std::string_view type);

}  // namespace bevan::search
