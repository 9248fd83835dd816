// Internal: operations on FHIRPath values shared by the evaluator and the
// public helpers (conversion of FHIR primitives to System values, equality,
// equivalence, ordering, text forms).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/arena.h"
#include "fhir/model.h"
#include "fhirpath/fhirpath.h"

namespace bevan::fhirpath::internal {

// The model types the engine needs by identity.
struct KnownTypes {
  const fhir::TypeDef* boolean;
  const fhir::TypeDef* integer;
  const fhir::TypeDef* decimal;
  const fhir::TypeDef* string;
  const fhir::TypeDef* date;
  const fhir::TypeDef* date_time;
  const fhir::TypeDef* instant;
  const fhir::TypeDef* time;
  const fhir::TypeDef* quantity;
  const fhir::TypeDef* extension;
  const fhir::TypeDef* reference;
  const fhir::TypeDef* coding;
  const fhir::TypeDef* codeable_concept;
  const fhir::TypeDef* resource;
};
const KnownTypes& Known();

// Converts a FHIR primitive node (or a Quantity node) to its System value;
// System values are returned unchanged. False for complex nodes and
// primitives that have no value. Quantities are allocated in `arena`.
bool ToSystem(const Item& in, Arena& arena, Item* out);

// Tri-state results.
enum class Tri : int8_t { kFalse = 0, kTrue = 1, kEmpty = -1 };

Tri ItemsEqual(const Item& a, const Item& b, Arena& arena);
bool ItemsEquivalent(const Item& a, const Item& b, Arena& arena);
// Ordering: -1/0/1, nullopt when the answer is open (precision, units).
// Sets *incomparable when the types cannot be ordered at all.
std::optional<int> CompareItems(const Item& a, const Item& b, Arena& arena, bool* incomparable);

// Quantity comparison with UCUM conversion and calendar durations.
std::optional<int> CompareQuantities(const Quantity& a, const Quantity& b);
bool QuantitiesEquivalent(const Quantity& a, const Quantity& b);

// The UCUM code for a calendar keyword ("weeks" -> "wk"); the unit itself otherwise.
std::string_view UcumUnit(const Quantity& q);

// FHIRPath text of a System value (toString()).
void AppendText(const Item& item, std::string& out);

}  // namespace bevan::fhirpath::internal
