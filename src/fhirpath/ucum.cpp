#include "fhirpath/ucum.h"

#include <string>
#include <unordered_map>
#include <vector>

namespace bevan::fhirpath::ucum {

namespace {

// One UCUM atom: its code, whether SI prefixes apply, and its definition as
// a magnitude times a UCUM expression over earlier atoms. Base units have an
// empty definition and name their dimension; arbitrary units say "!".
struct AtomDef {
  std::string_view code;
  bool metric;
  std::string_view magnitude;
  std::string_view unit;
};

// From the UCUM specification (https://ucum.org/ucum), the atoms clinical
// and FHIR data use. Order matters only in that a definition refers to atoms
// defined above it.
constexpr AtomDef kAtoms[] = {
    {"m", true, "", "0"},
    {"s", true, "", "1"},
    {"g", true, "", "2"},
    {"rad", true, "", "3"},
    {"K", true, "", "4"},
    {"C", true, "", "5"},
    {"cd", true, "", "6"},
    // Dimensionless.
    {"[pi]", false, "3.141592653589793238462643383279502884", "1"},
    {"%", false, "0.01", "1"},
    {"[ppth]", false, "0.001", "1"},
    {"[ppm]", false, "0.000001", "1"},
    {"[ppb]", false, "0.000000001", "1"},
    {"[pptr]", false, "0.000000000001", "1"},
    {"mol", true, "602213670000000000000000", "1"},
    {"sr", true, "1", "rad2"},
    {"[HPF]", false, "1", "1"},
    {"[LPF]", false, "100", "1"},
    // SI derived units.
    {"Hz", true, "1", "s-1"},
    {"N", true, "1", "kg.m/s2"},
    {"Pa", true, "1", "N/m2"},
    {"J", true, "1", "N.m"},
    {"W", true, "1", "J/s"},
    {"A", true, "1", "C/s"},
    {"V", true, "1", "J/C"},
    {"F", true, "1", "C/V"},
    {"Ohm", true, "1", "V/A"},
    {"S", true, "1", "Ohm-1"},
    {"Wb", true, "1", "V.s"},
    {"T", true, "1", "Wb/m2"},
    {"H", true, "1", "Wb/A"},
    {"lm", true, "1", "cd.sr"},
    {"lx", true, "1", "lm/m2"},
    {"Bq", true, "1", "s-1"},
    {"Gy", true, "1", "J/kg"},
    {"Sv", true, "1", "J/kg"},
    {"kat", true, "1", "mol/s"},
    {"U", true, "1", "umol/min"},
    // Time, angle, volume, area, mass.
    {"min", false, "60", "s"},
    {"h", false, "60", "min"},
    {"d", false, "24", "h"},
    {"wk", false, "7", "d"},
    {"a_t", false, "365.24219", "d"},
    {"a_j", false, "365.25", "d"},
    {"a_g", false, "365.2425", "d"},
    {"a", false, "1", "a_j"},
    {"mo_s", false, "29.53059", "d"},
    {"mo_j", false, "1", "a_j/12"},
    {"mo_g", false, "1", "a_g/12"},
    {"mo", false, "1", "mo_j"},
    {"gon", false, "0.9", "deg"},
    {"deg", false, "2", "[pi].rad/360"},
    {"'", false, "1", "deg/60"},
    {"''", false, "1", "'/60"},
    {"circ", false, "2", "[pi].rad"},
    {"sph", false, "4", "[pi].sr"},
    {"l", true, "1", "dm3"},
    {"L", true, "1", "l"},
    {"st", true, "1", "m3"},
    {"ar", true, "100", "m2"},
    {"t", true, "1000", "kg"},
    {"u", true, "0.0000000000000000000000016605402", "g"},
    {"bar", true, "100000", "Pa"},
    {"atm", false, "101325", "Pa"},
    {"eV", true, "1", "[e].V"},
    {"[e]", true, "0.000000000000000000160217733", "C"},
    {"[g]", true, "9.80665", "m/s2"},
    {"gf", true, "1", "g.[g]"},
    {"Ky", true, "1", "cm-1"},
    {"Gal", true, "1", "cm/s2"},
    {"dyn", true, "1", "g.cm/s2"},
    {"erg", true, "1", "dyn.cm"},
    {"P", true, "1", "dyn.s/cm2"},
    {"St", true, "1", "cm2/s"},
    {"Mx", true, "0.00000001", "Wb"},
    {"G", true, "0.0001", "T"},
    {"Ci", true, "37000000000", "Bq"},
    {"R", true, "0.000258", "C/kg"},
    {"RAD", true, "100", "erg/g"},
    {"REM", true, "1", "RAD"},
    // International customary units.
    {"[in_i]", false, "2.54", "cm"},
    {"[ft_i]", false, "12", "[in_i]"},
    {"[yd_i]", false, "3", "[ft_i]"},
    {"[mi_i]", false, "5280", "[ft_i]"},
    {"[fth_i]", false, "6", "[ft_i]"},
    {"[nmi_i]", false, "1852", "m"},
    {"[kn_i]", false, "1", "[nmi_i]/h"},
    {"[sin_i]", false, "1", "[in_i]2"},
    {"[sft_i]", false, "1", "[ft_i]2"},
    {"[syd_i]", false, "1", "[yd_i]2"},
    {"[cin_i]", false, "1", "[in_i]3"},
    {"[cft_i]", false, "1", "[ft_i]3"},
    {"[cyd_i]", false, "1", "[yd_i]3"},
    {"[mil_i]", false, "0.001", "[in_i]"},
    {"[hd_i]", false, "4", "[in_i]"},
    // US volumes.
    {"[gal_us]", false, "231", "[in_i]3"},
    {"[bbl_us]", false, "42", "[gal_us]"},
    {"[qt_us]", false, "1", "[gal_us]/4"},
    {"[pt_us]", false, "1", "[qt_us]/2"},
    {"[gil_us]", false, "1", "[pt_us]/4"},
    {"[foz_us]", false, "1", "[gil_us]/4"},
    {"[fdr_us]", false, "1", "[foz_us]/8"},
    {"[min_us]", false, "1", "[fdr_us]/60"},
    {"[bu_us]", false, "2150.42", "[in_i]3"},
    {"[tbs_us]", false, "1", "[foz_us]/2"},
    {"[tsp_us]", false, "1", "[tbs_us]/3"},
    {"[cup_us]", false, "16", "[tbs_us]"},
    {"[foz_m]", false, "30", "mL"},
    {"[cup_m]", false, "240", "mL"},
    {"[tsp_m]", false, "5", "mL"},
    {"[tbs_m]", false, "15", "mL"},
    // British volumes.
    {"[gal_br]", false, "4.54609", "l"},
    {"[pk_br]", false, "2", "[gal_br]"},
    {"[bu_br]", false, "4", "[pk_br]"},
    {"[qt_br]", false, "1", "[gal_br]/4"},
    {"[pt_br]", false, "1", "[qt_br]/2"},
    {"[gil_br]", false, "1", "[pt_br]/4"},
    {"[foz_br]", false, "1", "[gil_br]/5"},
    {"[fdr_br]", false, "1", "[foz_br]/8"},
    {"[min_br]", false, "1", "[fdr_br]/60"},
    // Avoirdupois, troy and apothecaries' weights.
    {"[gr]", false, "64.79891", "mg"},
    {"[lb_av]", false, "7000", "[gr]"},
    {"[oz_av]", false, "1", "[lb_av]/16"},
    {"[dr_av]", false, "1", "[oz_av]/16"},
    {"[scwt_av]", false, "100", "[lb_av]"},
    {"[lcwt_av]", false, "112", "[lb_av]"},
    {"[ston_av]", false, "20", "[scwt_av]"},
    {"[lton_av]", false, "20", "[lcwt_av]"},
    {"[stone_av]", false, "14", "[lb_av]"},
    {"[pwt_tr]", false, "24", "[gr]"},
    {"[oz_tr]", false, "20", "[pwt_tr]"},
    {"[lb_tr]", false, "12", "[oz_tr]"},
    {"[sc_ap]", false, "20", "[gr]"},
    {"[dr_ap]", false, "3", "[sc_ap]"},
    {"[oz_ap]", false, "8", "[dr_ap]"},
    {"[lb_ap]", false, "12", "[oz_ap]"},
    {"[oz_m]", false, "28", "g"},
    {"[car_m]", false, "0.2", "g"},
    {"[lbf_av]", false, "1", "[lb_av].[g]"},
    // Heat, pressure, clinical.
    {"cal_th", true, "4.184", "J"},
    {"cal_IT", true, "4.1868", "J"},
    {"cal", true, "1", "cal_th"},
    {"[Cal]", false, "1", "kcal_th"},
    {"[Btu_IT]", false, "1.05505585262", "kJ"},
    {"[Btu_th]", false, "1.05435", "kJ"},
    {"[Btu]", false, "1", "[Btu_th]"},
    {"[HP]", false, "550", "[ft_i].[lbf_av]/s"},
    {"m[Hg]", true, "133.322", "kPa"},
    {"m[H2O]", true, "9.80665", "kPa"},
    {"[in_i'Hg]", false, "1", "m[Hg].[in_i]/m"},
    {"[in_i'H2O]", false, "1", "m[H2O].[in_i]/m"},
    {"[PRU]", false, "1", "mm[Hg].s/ml"},
    {"[wood'U]", false, "1", "mm[Hg].min/L"},
    {"[diop]", false, "1", "/m"},
    {"[drp]", false, "1", "ml/20"},
    {"[Ch]", false, "1", "mm/3"},
    {"[mesh_i]", false, "1", "/[in_i]"},
    {"[MET]", false, "3.5", "mL/min/kg"},
    {"eq", true, "1", "mol"},
    {"osm", true, "1", "mol"},
    {"g%", true, "1", "g/dL"},
    {"[S]", false, "0.0000000000001", "s"},
    {"bit", true, "1", "1"},
    {"By", true, "8", "bit"},
    {"Bd", true, "1", "/s"},
    {"[degR]", false, "5", "K/9"},
    // Arbitrary units: commensurable only with themselves.
    {"[iU]", true, "", "!"},
    {"[arb'U]", false, "", "!"},
    {"[USP'U]", false, "", "!"},
    {"[GPL'U]", false, "", "!"},
    {"[MPL'U]", false, "", "!"},
    {"[APL'U]", false, "", "!"},
    {"[beth'U]", false, "", "!"},
    {"[anti'Xa'U]", false, "", "!"},
    {"[todd'U]", false, "", "!"},
    {"[dye'U]", false, "", "!"},
    {"[smgy'U]", false, "", "!"},
    {"[bdsk'U]", false, "", "!"},
    {"[ka'U]", false, "", "!"},
    {"[knk'U]", false, "", "!"},
    {"[mclg'U]", false, "", "!"},
    {"[tb'U]", false, "", "!"},
    {"[CCID_50]", false, "", "!"},
    {"[TCID_50]", false, "", "!"},
    {"[EID_50]", false, "", "!"},
    {"[PFU]", false, "", "!"},
    {"[FFU]", false, "", "!"},
    {"[CFU]", false, "", "!"},
    {"[BAU]", false, "", "!"},
    {"[AU]", false, "", "!"},
    {"[Amb'a'1'U]", false, "", "!"},
    {"[PNU]", false, "", "!"},
    {"[Lf]", false, "", "!"},
    {"[D'ag'U]", false, "", "!"},
    {"[FEU]", false, "", "!"},
    {"[ELU]", false, "", "!"},
    {"[EU]", false, "", "!"},
    {"[pH]", false, "", "!"},
    {"[hp'_X]", false, "", "!"},
    {"[hp'_C]", false, "", "!"},
};

// Temperature scales: base value (K) = value * factor + offset.
struct SpecialDef {
  std::string_view code;
  bool metric;
  std::string_view factor;
  std::string_view offset;
};
constexpr SpecialDef kSpecials[] = {
    {"Cel", true, "1", "273.15"},
    {"[degF]", false, "0.5555555555555555555555555555555555556", "255.3722222222222222222222222222222222"},
    {"[degRe]", false, "1.25", "273.15"},
};

struct Prefix {
  std::string_view code;
  int exponent;
};
constexpr Prefix kPrefixes[] = {{"da", 1}, {"Y", 24},  {"Z", 21},  {"E", 18},  {"P", 15},  {"T", 12}, {"G", 9},
                                {"M", 6},  {"k", 3},   {"h", 2},   {"d", -1},  {"c", -2},  {"m", -3}, {"u", -6},
                                {"n", -9}, {"p", -12}, {"f", -15}, {"a", -18}, {"z", -21}, {"y", -24}};

struct Atom {
  Canonical canonical;
  bool metric = false;
};

Decimal Power10(int e) {
  if (e >= 0) return Decimal(Pow10(e), 0);
  return Decimal(1, -e);
}

bool MulDims(Canonical* acc, const Canonical& c, int exponent) {
  if (c.special && (exponent != 1 || acc->special)) return false;
  for (int i = 0; i < 8; ++i) acc->dims[i] = static_cast<int8_t>(acc->dims[i] + c.dims[i] * exponent);
  if (c.arbitrary != 0) {
    if (acc->arbitrary != 0 && acc->arbitrary != c.arbitrary) return false;
    acc->arbitrary = c.arbitrary;
  }
  Decimal f = c.factor;
  int n = exponent < 0 ? -exponent : exponent;
  Decimal p(1, 0);
  for (int i = 0; i < n; ++i) {
    if (!Decimal::Mul(p, f, &p)) return false;
  }
  if (exponent < 0) {
    if (!Decimal::Div(acc->factor, p, &acc->factor)) return false;
  } else if (!Decimal::Mul(acc->factor, p, &acc->factor)) {
    return false;
  }
  if (c.special) {
    acc->special = true;
    acc->offset = c.offset;
  }
  return true;
}

class Table {
 public:
  Table() {
    uint32_t next_arbitrary = 1;
    for (const AtomDef& def : kAtoms) {
      Atom atom;
      atom.metric = def.metric;
      atom.canonical.factor = Decimal(1, 0);
      if (def.unit == "!") {
        atom.canonical.dims[7] = 1;
        atom.canonical.arbitrary = next_arbitrary++;
      } else if (def.magnitude.empty()) {
        atom.canonical.dims[def.unit[0] - '0'] = 1;
      } else {
        auto inner = ParseExpression(def.unit);
        auto mag = Decimal::Parse(def.magnitude);
        if (!inner || !mag || !Decimal::Mul(*mag, inner->factor, &inner->factor)) continue;  // table bug: skip
        atom.canonical = *inner;
      }
      atoms_.emplace(def.code, atom);
    }
    // [IU] is the same unit as [iU].
    atoms_["[IU]"] = atoms_["[iU]"];
    for (const SpecialDef& def : kSpecials) {
      Atom atom;
      atom.metric = def.metric;
      atom.canonical.factor = *Decimal::Parse(def.factor);
      atom.canonical.offset = *Decimal::Parse(def.offset);
      atom.canonical.dims[4] = 1;
      atom.canonical.special = true;
      atoms_.emplace(def.code, atom);
    }
  }

  std::optional<Canonical> ParseExpression(std::string_view text) const {
    size_t at = 0;
    Canonical c;
    c.factor = Decimal(1, 0);
    if (text.empty()) return std::nullopt;
    if (!ParseTerm(text, &at, &c, 0) || at != text.size()) return std::nullopt;
    return c;
  }

 private:
  // term := ['/'] component (('.' | '/') component)*
  bool ParseTerm(std::string_view s, size_t* at, Canonical* acc, int depth) const {
    if (depth > 8) return false;
    int sign = 1;
    if (*at < s.size() && s[*at] == '/') {
      sign = -1;
      ++*at;
    }
    for (;;) {
      if (!ParseComponent(s, at, acc, sign, depth)) return false;
      if (*at >= s.size() || s[*at] == ')') return true;
      if (s[*at] == '.') {
        sign = 1;
      } else if (s[*at] == '/') {
        sign = -1;
      } else {
        return false;
      }
      ++*at;
    }
  }

  static bool ParseExponent(std::string_view s, size_t* at, int* exponent) {
    size_t i = *at;
    int sign = 1;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) sign = s[i++] == '-' ? -1 : 1;
    size_t start = i;
    int e = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9' && e < 1000) e = e * 10 + (s[i++] - '0');
    if (i == start) return false;
    *exponent = sign * e;
    *at = i;
    return true;
  }

  bool ParseComponent(std::string_view s, size_t* at, Canonical* acc, int sign, int depth) const {
    if (*at >= s.size()) return false;
    if (s[*at] == '(') {
      ++*at;
      Canonical inner;
      inner.factor = Decimal(1, 0);
      if (!ParseTerm(s, at, &inner, depth + 1) || *at >= s.size() || s[*at] != ')') return false;
      ++*at;
      int e = 1;
      if (*at < s.size() && (s[*at] == '-' || s[*at] == '+' || (s[*at] >= '0' && s[*at] <= '9'))) {
        if (!ParseExponent(s, at, &e)) return false;
      }
      SkipAnnotation(s, at);
      return MulDims(acc, inner, sign * e);
    }
    if (s[*at] == '{') {
      return SkipAnnotation(s, at);
    }
    // A symbol runs to the next operator, parenthesis or annotation; square
    // brackets may contain anything.
    size_t start = *at, i = *at;
    int bracket = 0;
    while (i < s.size()) {
      char c = s[i];
      if (c == '[') ++bracket;
      if (c == ']') --bracket;
      if (bracket == 0 && (c == '.' || c == '/' || c == '(' || c == ')' || c == '{')) break;
      ++i;
    }
    std::string_view symbol = s.substr(start, i - start);
    *at = i;
    SkipAnnotation(s, at);
    if (symbol.empty()) return false;
    // Pure integers are factors; 10*n and 10^n are powers of ten.
    if (symbol.find_first_not_of("0123456789") == std::string_view::npos) {
      auto d = Decimal::Parse(symbol);
      if (!d) return false;
      Canonical c;
      c.factor = *d;
      return MulDims(acc, c, sign);
    }
    if (symbol.size() > 3 && symbol.substr(0, 2) == "10" && (symbol[2] == '*' || symbol[2] == '^')) {
      size_t e_at = 3;
      int e;
      if (!ParseExponent(symbol, &e_at, &e) || e_at != symbol.size() || e > 30 || e < -30) return false;
      Canonical c;
      c.factor = Power10(e);
      return MulDims(acc, c, sign);
    }
    // Trailing exponent.
    int e = 1;
    size_t end = symbol.size();
    while (end > 0 && symbol[end - 1] >= '0' && symbol[end - 1] <= '9') --end;
    if (end < symbol.size()) {
      if (end > 0 && (symbol[end - 1] == '-' || symbol[end - 1] == '+')) --end;
      size_t e_at = end;
      if (end == 0 || !ParseExponent(symbol, &e_at, &e)) return false;
      symbol = symbol.substr(0, end);
    }
    const Canonical* unit = Lookup(symbol);
    if (unit == nullptr) return false;
    return MulDims(acc, *unit, sign * e);
  }

  static bool SkipAnnotation(std::string_view s, size_t* at) {
    if (*at >= s.size() || s[*at] != '{') return true;
    size_t close = s.find('}', *at);
    if (close == std::string_view::npos) return false;
    *at = close + 1;
    return true;
  }

  const Canonical* Lookup(std::string_view symbol) const {
    auto it = atoms_.find(symbol);
    if (it != atoms_.end()) return &it->second.canonical;
    for (const Prefix& p : kPrefixes) {
      if (symbol.size() <= p.code.size() || symbol.substr(0, p.code.size()) != p.code) continue;
      auto a = atoms_.find(symbol.substr(p.code.size()));
      if (a == atoms_.end() || !a->second.metric) continue;
      // Prefixed atoms are cached per thread-safe construction only; build on the fly.
      thread_local Canonical scratch;
      scratch = a->second.canonical;
      if (!Decimal::Mul(scratch.factor, Power10(p.exponent), &scratch.factor)) return nullptr;
      return &scratch;
    }
    return nullptr;
  }

  std::unordered_map<std::string_view, Atom> atoms_;
};

const Table& GetTable() {
  static const Table table;
  return table;
}

}  // namespace

std::optional<Canonical> Resolve(std::string_view unit) {
  if (unit == "1") {
    Canonical c;
    c.factor = Decimal(1, 0);
    return c;
  }
  return GetTable().ParseExpression(unit);
}

bool Comparable(std::string_view a, std::string_view b) {
  if (a == b) return Resolve(a).has_value();
  auto ca = Resolve(a), cb = Resolve(b);
  return ca && cb && ca->dims == cb->dims && ca->arbitrary == cb->arbitrary;
}

bool ToBase(const Decimal& value, std::string_view unit, Decimal* out, Canonical* canonical) {
  auto c = Resolve(unit);
  if (!c) return false;
  Decimal v;
  if (!Decimal::Mul(value, c->factor, &v)) return false;
  if (c->special && !Decimal::Add(v, c->offset, &v)) return false;
  *out = v;
  *canonical = *c;
  return true;
}

bool Convert(const Decimal& value, std::string_view from, std::string_view to, Decimal* out) {
  if (from == to) {
    *out = value;
    return true;
  }
  Decimal base;
  Canonical cf;
  if (!ToBase(value, from, &base, &cf)) return false;
  auto ct = Resolve(to);
  if (!ct || ct->dims != cf.dims || ct->arbitrary != cf.arbitrary) return false;
  if (ct->special && !Decimal::Sub(base, ct->offset, &base)) return false;
  return Decimal::Div(base, ct->factor, out);
}

}  // namespace bevan::fhirpath::ucum
