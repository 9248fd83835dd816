// Decimal: an exact base-10 number for FHIRPath's Decimal type.
//
// A signed 128-bit mantissa and a scale (digits after the point): 1.50 is
// {150, 2}. The scale is kept through arithmetic, so precision survives
// (1.50 + 1 = 2.50), and equality compares values (1.10 = 1.1). About 38
// significant digits; operations that would need more round the result's
// fraction, and fail (return false / nullopt) only when the integer part
// itself does not fit. A plain value type: trivially copyable, no allocation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bevan::fhirpath {

class Decimal {
 public:
  using Int = __int128;
  static constexpr int kMaxScale = 36;

  constexpr Decimal() = default;
  constexpr Decimal(Int mantissa, int scale, bool negative_zero = false)
      : mantissa_(mantissa), scale_(static_cast<int8_t>(scale)), negative_zero_(negative_zero && mantissa == 0) {}

  static Decimal FromInt(int64_t v) { return Decimal(v, 0); }
  // Parses a FHIRPath or JSON decimal ("-1.50", "1e3", "2.5E-2"); nullopt if
  // malformed or out of range. "-0.0" keeps its sign for printing.
  static std::optional<Decimal> Parse(std::string_view text);
  // The nearest decimal with at most `significant` digits; nullopt for NaN,
  // infinities and magnitudes beyond range.
  static std::optional<Decimal> FromDouble(double v, int significant = 15);

  Int mantissa() const { return mantissa_; }
  int scale() const { return scale_; }
  bool is_zero() const { return mantissa_ == 0; }
  bool is_negative() const { return mantissa_ < 0 || negative_zero_; }
  // True when the value has no fraction (whatever its scale).
  bool IsInteger() const;
  // The value as int64 when it is an integer in range.
  std::optional<int64_t> ToInt64() const;
  double ToDouble() const;

  // Appends the canonical text: the scale's digits after the point ("1.50", "-0.0", "3").
  void AppendTo(std::string& out) const;
  std::string ToString() const;

  // Numeric comparison, ignoring scale: -1, 0, 1.
  int Compare(const Decimal& other) const;
  bool operator==(const Decimal& other) const { return Compare(other) == 0; }

  // The negated value; negating zero gives (positive) zero.
  Decimal Negate() const { return Decimal(-mantissa_, scale_); }
  Decimal Abs() const { return Decimal(mantissa_ < 0 ? -mantissa_ : mantissa_, scale_); }

  // Arithmetic; false on overflow of the integer part. The result's scale
  // is the larger scale for + and -, the sum of scales for * (reduced if
  // needed), and for / enough digits for the quotient (at least 8 after the
  // point, trailing zeros beyond the operands' scale dropped).
  static bool Add(const Decimal& a, const Decimal& b, Decimal* out);
  static bool Sub(const Decimal& a, const Decimal& b, Decimal* out);
  static bool Mul(const Decimal& a, const Decimal& b, Decimal* out);
  // False when b is zero or on overflow.
  static bool Div(const Decimal& a, const Decimal& b, Decimal* out);
  // Truncated integer division and its remainder (FHIRPath div and mod).
  static bool IntDiv(const Decimal& a, const Decimal& b, Decimal* out);
  static bool Mod(const Decimal& a, const Decimal& b, Decimal* out);

  // Rounding to `digits` after the point (half away from zero).
  Decimal Round(int digits) const;
  Decimal Truncate() const { return Rescale(0, kTruncate); }
  Decimal Floor() const { return Rescale(0, kFloor); }
  Decimal Ceiling() const { return Rescale(0, kCeiling); }

  // Returns the value at scale `digits` (adding zeros or rounding per mode).
  enum RoundMode { kHalfUp, kTruncate, kFloor, kCeiling };
  Decimal Rescale(int digits, RoundMode mode) const;
  // Drops trailing fraction zeros down to scale `min_scale`.
  Decimal Trim(int min_scale) const;

 private:
  Int mantissa_ = 0;
  int8_t scale_ = 0;
  bool negative_zero_ = false;
};

// 10^n as a 128-bit integer, n in [0, 38].
Decimal::Int Pow10(int n);

}  // namespace bevan::fhirpath
