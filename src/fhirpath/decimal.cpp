#include "fhirpath/decimal.h"

#include <cmath>
#include <cstdio>

namespace bevan::fhirpath {

namespace {

using Int = Decimal::Int;

// 10^n for n in [0, 38].
struct Pow10Table {
  Int v[39];
  constexpr Pow10Table() : v() {
    v[0] = 1;
    for (int i = 1; i < 39; ++i) v[i] = v[i - 1] * 10;
  }
};
constexpr Pow10Table kPow10;

bool MulOverflow(Int a, Int b, Int* out) { return __builtin_mul_overflow(a, b, out); }

// a * 10^n, false on overflow.
bool ScaleUp(Int a, int n, Int* out) {
  if (n > 38) return a == 0 ? (*out = 0, true) : false;
  return !MulOverflow(a, kPow10.v[n], out);
}

// a / 10^n rounded per mode.
Int ScaleDown(Int a, int n, Decimal::RoundMode mode) {
  if (n <= 0) return a;
  if (n > 38) {
    if (mode == Decimal::kFloor && a < 0) return -1;
    if (mode == Decimal::kCeiling && a > 0) return 1;
    return 0;
  }
  Int p = kPow10.v[n];
  Int q = a / p;
  Int r = a % p;
  if (r == 0) return q;
  switch (mode) {
    case Decimal::kTruncate: return q;
    case Decimal::kFloor: return a < 0 ? q - 1 : q;
    case Decimal::kCeiling: return a > 0 ? q + 1 : q;
    case Decimal::kHalfUp: {
      Int ar = r < 0 ? -r : r;
      if (ar * 2 >= p) return a < 0 ? q - 1 : q + 1;
      return q;
    }
  }
  return q;
}

int Digits(Int a) {
  if (a < 0) a = -a;
  int d = 1;
  while (d < 39 && a >= kPow10.v[d]) ++d;
  return d;
}

// Brings a and b to a common scale. When scaling up would overflow, the
// finer operand is rounded instead.
bool Align(const Decimal& a, const Decimal& b, Int* am, Int* bm, int* scale) {
  int s = a.scale() > b.scale() ? a.scale() : b.scale();
  for (;; --s) {
    Int x = 0, y = 0;
    bool okx = a.scale() <= s ? ScaleUp(a.mantissa(), s - a.scale(), &x)
                              : (x = ScaleDown(a.mantissa(), a.scale() - s, Decimal::kHalfUp), true);
    bool oky = b.scale() <= s ? ScaleUp(b.mantissa(), s - b.scale(), &y)
                              : (y = ScaleDown(b.mantissa(), b.scale() - s, Decimal::kHalfUp), true);
    if (okx && oky) {
      *am = x;
      *bm = y;
      *scale = s;
      return true;
    }
    if (s <= 0) return false;
  }
}

}  // namespace

Decimal::Int Pow10(int n) { return kPow10.v[n < 0 ? 0 : (n > 38 ? 38 : n)]; }

std::optional<Decimal> Decimal::Parse(std::string_view text) {
  size_t i = 0;
  bool neg = false;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) neg = text[i++] == '-';
  Int m = 0;
  int scale = 0;
  int digits = 0;
  bool any = false;
  bool seen_point = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      any = true;
      if (m == 0 && c == '0' && !seen_point) continue;
      if (digits >= 37) {
        // Beyond the mantissa: integer digits overflow, fraction digits are dropped.
        if (!seen_point) return std::nullopt;
        continue;
      }
      m = m * 10 + (c - '0');
      if (m != 0) ++digits;
      if (seen_point) ++scale;
    } else if (c == '.' && !seen_point) {
      seen_point = true;
      if (i + 1 >= text.size()) return std::nullopt;
    } else {
      break;
    }
  }
  if (!any) return std::nullopt;
  int exp = 0;
  if (i < text.size()) {
    if (text[i] != 'e' && text[i] != 'E') return std::nullopt;
    ++i;
    bool eneg = false;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) eneg = text[i++] == '-';
    if (i >= text.size()) return std::nullopt;
    for (; i < text.size(); ++i) {
      if (text[i] < '0' || text[i] > '9') return std::nullopt;
      exp = exp * 10 + (text[i] - '0');
      if (exp > 1000) return std::nullopt;
    }
    if (eneg) exp = -exp;
  }
  scale -= exp;
  if (scale < 0) {
    if (!ScaleUp(m, -scale, &m)) return std::nullopt;
    scale = 0;
  }
  if (scale > kMaxScale) {
    m = ScaleDown(m, scale - kMaxScale, kHalfUp);
    scale = kMaxScale;
  }
  return Decimal(neg ? -m : m, scale, neg);
}

std::optional<Decimal> Decimal::FromDouble(double v, int significant) {
  if (!std::isfinite(v) || std::fabs(v) > 1e36) return std::nullopt;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*e", significant - 1, v);
  auto d = Parse(buf);
  if (!d) return std::nullopt;
  return d->Trim(0);
}

bool Decimal::IsInteger() const { return scale_ == 0 || mantissa_ % kPow10.v[static_cast<int>(scale_)] == 0; }

std::optional<int64_t> Decimal::ToInt64() const {
  if (!IsInteger()) return std::nullopt;
  Int v = mantissa_ / kPow10.v[static_cast<int>(scale_)];
  if (v > INT64_MAX || v < INT64_MIN) return std::nullopt;
  return static_cast<int64_t>(v);
}

double Decimal::ToDouble() const {
  std::string s = ToString();
  return std::strtod(s.c_str(), nullptr);
}

void Decimal::AppendTo(std::string& out) const {
  Int m = mantissa_;
  if (m < 0 || negative_zero_) out.push_back('-');
  unsigned __int128 u = m < 0 ? static_cast<unsigned __int128>(-(m + 1)) + 1 : static_cast<unsigned __int128>(m);
  char buf[48];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + static_cast<int>(u % 10));
    u /= 10;
  } while (u != 0);
  while (n <= scale_) buf[n++] = '0';
  for (int i = n - 1; i >= 0; --i) {
    out.push_back(buf[i]);
    if (i == scale_ && i != 0) out.push_back('.');
  }
}

std::string Decimal::ToString() const {
  std::string s;
  AppendTo(s);
  return s;
}

int Decimal::Compare(const Decimal& other) const {
  if (scale_ == other.scale_) return mantissa_ < other.mantissa_ ? -1 : (mantissa_ > other.mantissa_ ? 1 : 0);
  int sa = mantissa_ < 0 ? -1 : (mantissa_ > 0 ? 1 : 0);
  int sb = other.mantissa_ < 0 ? -1 : (other.mantissa_ > 0 ? 1 : 0);
  if (sa != sb) return sa < sb ? -1 : 1;
  Int a, b;
  int s;
  if (Align(*this, other, &a, &b, &s) && s == (scale_ > other.scale_ ? scale_ : other.scale_)) {
    return a < b ? -1 : (a > b ? 1 : 0);
  }
  // Cannot align exactly: compare integer parts, then fractions.
  Int ia = mantissa_ / kPow10.v[static_cast<int>(scale_)];
  Int ib = other.mantissa_ / kPow10.v[static_cast<int>(other.scale_)];
  if (ia != ib) return ia < ib ? -1 : 1;
  Decimal fa(mantissa_ - ia * kPow10.v[static_cast<int>(scale_)], scale_);
  Decimal fb(other.mantissa_ - ib * kPow10.v[static_cast<int>(other.scale_)], other.scale_);
  Int x, y;
  Align(fa, fb, &x, &y, &s);
  return x < y ? -1 : (x > y ? 1 : 0);
}

bool Decimal::Add(const Decimal& a, const Decimal& b, Decimal* out) {
  Int x, y, r;
  int s;
  if (!Align(a, b, &x, &y, &s)) return false;
  if (__builtin_add_overflow(x, y, &r)) {
    if (s == 0) return false;
    return Add(a.Rescale(s - 1, kHalfUp), b.Rescale(s - 1, kHalfUp), out);
  }
  *out = Decimal(r, s);
  return true;
}

bool Decimal::Sub(const Decimal& a, const Decimal& b, Decimal* out) { return Add(a, b.Negate(), out); }

bool Decimal::Mul(const Decimal& a, const Decimal& b, Decimal* out) {
  Int x = a.mantissa_, y = b.mantissa_, r;
  int sx = a.scale_, sy = b.scale_;
  while (MulOverflow(x, y, &r)) {
    // Drop a fraction digit from the operand with more digits.
    if (sx == 0 && sy == 0) return false;
    if ((Digits(x) >= Digits(y) && sx > 0) || sy == 0) {
      x = ScaleDown(x, 1, kHalfUp);
      --sx;
    } else {
      y = ScaleDown(y, 1, kHalfUp);
      --sy;
    }
  }
  int s = sx + sy;
  if (s > kMaxScale) {
    r = ScaleDown(r, s - kMaxScale, kHalfUp);
    s = kMaxScale;
  }
  *out = Decimal(r, s);
  return true;
}

bool Decimal::Div(const Decimal& a, const Decimal& b, Decimal* out) {
  if (b.mantissa_ == 0) return false;
  int min_scale = a.scale_ > b.scale_ ? a.scale_ : b.scale_;
  // Aim for 28 significant digits, at least 8 after the point.
  int target = 28 - (Digits(a.mantissa_) - a.scale_) + (Digits(b.mantissa_) - b.scale_);
  if (target < 8) target = 8;
  if (target > kMaxScale) target = kMaxScale;
  for (; target >= 0; --target) {
    // result = a.m * 10^(target + 1 - a.s + b.s) / b.m, one guard digit for rounding.
    int shift = target + 1 - a.scale_ + b.scale_;
    Int num = a.mantissa_, den = b.mantissa_;
    if (shift >= 0) {
      if (!ScaleUp(num, shift, &num)) continue;
    } else if (!ScaleUp(den, -shift, &den)) {
      continue;
    }
    Int q = num / den;
    Decimal r(ScaleDown(q, 1, kHalfUp), target);
    *out = r.Trim(min_scale < target ? min_scale : target);
    return true;
  }
  return false;
}

bool Decimal::IntDiv(const Decimal& a, const Decimal& b, Decimal* out) {
  if (b.mantissa_ == 0) return false;
  Int x, y;
  int s;
  if (!Align(a, b, &x, &y, &s)) return false;
  *out = Decimal(x / y, 0);
  return true;
}

bool Decimal::Mod(const Decimal& a, const Decimal& b, Decimal* out) {
  if (b.mantissa_ == 0) return false;
  Int x, y;
  int s;
  if (!Align(a, b, &x, &y, &s)) return false;
  *out = Decimal(x % y, s);
  return true;
}

Decimal Decimal::Round(int digits) const { return Rescale(digits, kHalfUp); }

Decimal Decimal::Rescale(int digits, RoundMode mode) const {
  if (digits < 0) digits = 0;
  if (digits > kMaxScale) digits = kMaxScale;
  if (digits == scale_) return *this;
  if (digits > scale_) {
    Int m;
    if (!ScaleUp(mantissa_, digits - scale_, &m)) return *this;
    return Decimal(m, digits, negative_zero_);
  }
  return Decimal(ScaleDown(mantissa_, scale_ - digits, mode), digits);
}

Decimal Decimal::Trim(int min_scale) const {
  Int m = mantissa_;
  int s = scale_;
  while (s > min_scale && m % 10 == 0) {
    m /= 10;
    --s;
  }
  return Decimal(m, s, negative_zero_);
}

}  // namespace bevan::fhirpath
