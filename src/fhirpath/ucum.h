// UCUM unit algebra for FHIRPath quantity comparison and arithmetic.
//
// A hand-written table of the UCUM atoms that clinical data uses (SI base
// and derived units with all prefixes, customary and apothecaries' units,
// clinical units such as mm[Hg], eq, osm, [iU], temperatures, time incl. the
// UCUM year and month), and a parser for UCUM expressions ("mg/dL",
// "kg.m/s2", "10*3/uL", "(cm).(m)", "{score}"). A unit resolves to a factor
// and a vector of base-unit exponents; two units are commensurable when the
// vectors match. Arbitrary units ([iU], [arb'U], ...) are commensurable only
// with themselves. Factors are exact decimals (the few irrational ones, such
// as [pi], to 36 digits).
//
// The table is built once on first use; every function is thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "fhirpath/decimal.h"

namespace bevan::fhirpath::ucum {

// Exponents of m, s, g, rad, K, C, cd and an arbitrary-unit slot.
using Dims = std::array<int8_t, 8>;

struct Canonical {
  Decimal factor;          // value in base units = value * factor (+ offset)
  Decimal offset;          // non-zero only for Cel, [degF], [degRe]
  Dims dims{};             // base-unit exponents
  uint32_t arbitrary = 0;  // which arbitrary unit (0: none)
  bool special = false;    // temperature scale: may not be combined with others
};

// Resolves a UCUM unit expression; nullopt if it is not valid UCUM (as far
// as this table knows it).
std::optional<Canonical> Resolve(std::string_view unit);

// True if both units are valid and commensurable.
bool Comparable(std::string_view a, std::string_view b);

// Converts `value` from unit `from` to unit `to`; false if either unit is
// unknown or they are not commensurable.
bool Convert(const Decimal& value, std::string_view from, std::string_view to, Decimal* out);

// The value in base units and the canonical form of its unit.
bool ToBase(const Decimal& value, std::string_view unit, Decimal* out, Canonical* canonical);

}  // namespace bevan::fhirpath::ucum
