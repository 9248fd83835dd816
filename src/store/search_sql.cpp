#include "store/search_sql.h"

#include <algorithm>
#include <charconv>
#include <limits>

namespace bevan::store {

// ---------------------------------------------------------------------------
// PlanNode builders.

PlanNode PlanNode::False() {
  PlanNode n;
  n.kind = Kind::kFalse;
  return n;
}

PlanNode PlanNode::Rows(IndexTable table, std::string param, std::vector<Cond> conds) {
  PlanNode n;
  n.kind = Kind::kRows;
  n.table = table;
  n.param = std::move(param);
  n.conds = std::move(conds);
  return n;
}

PlanNode PlanNode::And(std::vector<PlanNode> children) {
  PlanNode n;
  n.kind = Kind::kAnd;
  for (PlanNode& c : children) {
    if (c.kind == Kind::kTrue) continue;
    if (c.kind == Kind::kFalse) return False();
    if (c.kind == Kind::kAnd) {
      for (PlanNode& g : c.children) n.children.push_back(std::move(g));
    } else {
      n.children.push_back(std::move(c));
    }
  }
  if (n.children.empty()) return True();
  if (n.children.size() == 1) return std::move(n.children[0]);
  return n;
}

PlanNode PlanNode::Or(std::vector<PlanNode> children) {
  PlanNode n;
  n.kind = Kind::kOr;
  for (PlanNode& c : children) {
    if (c.kind == Kind::kFalse) continue;
    if (c.kind == Kind::kTrue) return True();
    if (c.kind == Kind::kOr) {
      for (PlanNode& g : c.children) n.children.push_back(std::move(g));
    } else {
      n.children.push_back(std::move(c));
    }
  }
  if (n.children.empty()) return False();
  if (n.children.size() == 1) return std::move(n.children[0]);
  return n;
}

PlanNode PlanNode::Not(PlanNode child) {
  if (child.kind == Kind::kTrue) return False();
  if (child.kind == Kind::kFalse) return True();
  PlanNode n;
  n.kind = Kind::kNot;
  n.children.push_back(std::move(child));
  return n;
}

PlanNode PlanNode::Id(std::vector<std::string> ids) {
  PlanNode n;
  n.kind = Kind::kId;
  n.ids = std::move(ids);
  return n;
}

PlanNode PlanNode::LastUpdated(std::vector<Cond> conds) {
  PlanNode n;
  n.kind = Kind::kLastUpdated;
  n.conds = std::move(conds);
  return n;
}

PlanNode PlanNode::Chain(std::string param, std::vector<std::string> target_types, PlanNode target) {
  PlanNode n;
  n.kind = Kind::kChain;
  n.param = std::move(param);
  n.types = std::move(target_types);
  n.children.push_back(std::move(target));
  return n;
}

PlanNode PlanNode::Has(std::string source_type, std::string param, PlanNode source) {
  PlanNode n;
  n.kind = Kind::kHas;
  n.param = std::move(param);
  n.types.push_back(std::move(source_type));
  n.children.push_back(std::move(source));
  return n;
}

namespace {

std::string_view ColumnName(Column c) {
  switch (c) {
    case Column::kSystem: return "system";
    case Column::kCode: return "code";
    case Column::kNormalized: return "normalized";
    case Column::kExact: return "exact";
    case Column::kLo: return "lo";
    case Column::kHi: return "hi";
    case Column::kCanonicalLo: return "canonical_lo";
    case Column::kCanonicalHi: return "canonical_hi";
    case Column::kCanonicalUnit: return "canonical_unit";
    case Column::kTargetType: return "target_type";
    case Column::kTargetId: return "target_id";
    case Column::kUrl: return "url";
    case Column::kUri: return "uri";
  }
  return "?";
}

std::string_view TableName(IndexTable t) {
  switch (t) {
    case IndexTable::kToken: return "idx_token";
    case IndexTable::kString: return "idx_string";
    case IndexTable::kDate: return "idx_date";
    case IndexTable::kNumber: return "idx_number";
    case IndexTable::kQuantity: return "idx_quantity";
    case IndexTable::kReference: return "idx_reference";
    case IndexTable::kUri: return "idx_uri";
  }
  return "?";
}

std::string_view OpText(Op op) {
  switch (op) {
    case Op::kEq: return "=";
    case Op::kNe: return "<>";
    case Op::kLt: return "<";
    case Op::kLe: return "<=";
    case Op::kGt: return ">";
    case Op::kGe: return ">=";
    case Op::kPrefix: return "^=";
    case Op::kContains: return "~";
    case Op::kIn: return "in";
  }
  return "?";
}

std::string ValueText(const PlanValue& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *d);
    return std::string(buf, end);
  }
  return "'" + std::get<std::string>(v) + "'";
}

void AppendDebug(const PlanNode& n, std::string& out) {
  using K = PlanNode::Kind;
  auto conds = [&](const std::vector<Cond>& cs) {
    for (const Cond& c : cs) {
      out += ' ';
      out += ColumnName(c.column);
      out += OpText(c.op);
      if (c.op == Op::kIn) {
        out += '(';
        for (size_t i = 0; i < c.values.size(); ++i) out += (i ? "," : "") + ValueText(c.values[i]);
        out += ')';
      } else {
        out += ValueText(c.value);
      }
    }
  };
  switch (n.kind) {
    case K::kTrue: out += "true"; return;
    case K::kFalse: out += "false"; return;
    case K::kAnd:
    case K::kOr:
      out += n.kind == K::kAnd ? "and(" : "or(";
      for (size_t i = 0; i < n.children.size(); ++i) {
        if (i) out += ", ";
        AppendDebug(n.children[i], out);
      }
      out += ')';
      return;
    case K::kNot:
      out += "not(";
      AppendDebug(n.children[0], out);
      out += ')';
      return;
    case K::kRows:
      out += std::string(TableName(n.table).substr(4)) + "[" + n.param;
      conds(n.conds);
      out += ']';
      return;
    case K::kId:
      out += "id(";
      for (size_t i = 0; i < n.ids.size(); ++i) out += (i ? "," : "") + n.ids[i];
      out += ')';
      return;
    case K::kLastUpdated:
      out += "lastUpdated[";
      conds(n.conds);
      out += ']';
      return;
    case K::kChain:
    case K::kHas:
      out += n.kind == K::kChain ? "chain(" : "has(";
      out += n.param + " ";
      for (size_t i = 0; i < n.types.size(); ++i) out += (i ? "|" : "") + n.types[i];
      out += ": ";
      AppendDebug(n.children[0], out);
      out += ')';
      return;
  }
}

}  // namespace

std::string PlanNode::DebugString() const {
  std::string out;
  AppendDebug(*this, out);
  return out;
}

// ---------------------------------------------------------------------------
// Cursor tokens: '_'-separated items, "i<int>", "d<double>", "s<hex bytes>",
// and finally "r<rid>".

std::string SearchCursor::ToString() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = before ? "b_" : "";
  for (const PlanValue& v : keys) {
    if (const auto* i = std::get_if<std::int64_t>(&v)) {
      out += 'i' + std::to_string(*i);
    } else if (const auto* d = std::get_if<double>(&v)) {
      char buf[40];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *d);
      out += 'd';
      for (char* p = buf; p != end; ++p) {
        if (*p != '+') out += *p;
      }
    } else {
      out += 's';
      for (unsigned char c : std::get<std::string>(v)) {
        out += kHex[c >> 4];
        out += kHex[c & 15];
      }
    }
    out += '_';
  }
  out += 'r' + std::to_string(rid);
  return out;
}

Result<SearchCursor> SearchCursor::Parse(std::string_view text) {
  SearchCursor c;
  auto bad = [&] { return InvalidArgumentError("malformed search cursor '" + std::string(text) + "'"); };
  if (text.size() > 4096) return bad();
  if (text.starts_with("b_")) {
    c.before = true;
    text.remove_prefix(2);
  }
  for (;;) {
    size_t dot = text.find('_');
    std::string_view item = text.substr(0, dot);
    if (item.empty()) return bad();
    char tag = item[0];
    std::string_view body = item.substr(1);
    if (tag == 'r') {
      if (dot != std::string_view::npos) return bad();
      auto [p, ec] = std::from_chars(body.data(), body.data() + body.size(), c.rid);
      if (ec != std::errc() || p != body.data() + body.size()) return bad();
      return c;
    }
    if (dot == std::string_view::npos) return bad();
    if (tag == 'i') {
      std::int64_t v = 0;
      auto [p, ec] = std::from_chars(body.data(), body.data() + body.size(), v);
      if (ec != std::errc() || p != body.data() + body.size()) return bad();
      c.keys.emplace_back(v);
    } else if (tag == 'd') {
      double v = 0;
      auto [p, ec] = std::from_chars(body.data(), body.data() + body.size(), v);
      if (ec != std::errc() || p != body.data() + body.size()) return bad();
      c.keys.emplace_back(v);
    } else if (tag == 's') {
      if (body.size() % 2 != 0) return bad();
      std::string s;
      for (size_t i = 0; i < body.size(); i += 2) {
        auto hex = [](char h) { return h >= '0' && h <= '9' ? h - '0' : (h >= 'a' && h <= 'f' ? h - 'a' + 10 : -1); };
        int a = hex(body[i]), b = hex(body[i + 1]);
        if (a < 0 || b < 0) return bad();
        s += static_cast<char>(a * 16 + b);
      }
      c.keys.emplace_back(std::move(s));
    } else {
      return bad();
    }
    text.remove_prefix(dot + 1);
  }
}

namespace sql {
namespace {

// The highest code point: strings starting with p sort in [p, p + kMaxChar).
constexpr std::string_view kMaxChar = "\xF4\x8F\xBF\xBF";

// Whether a predicate has an index-backed positive part that should drive the
// query (a set of rids from the index tables) rather than the type's range
// of the resource table.
bool HasDriver(const PlanNode& n) {
  using K = PlanNode::Kind;
  switch (n.kind) {
    case K::kRows:
    case K::kChain:
    case K::kHas: return true;
    case K::kAnd:
      for (const PlanNode& c : n.children) {
        if (HasDriver(c)) return true;
      }
      return false;
    case K::kOr:
      for (const PlanNode& c : n.children) {
        if (!HasDriver(c)) return false;
      }
      return !n.children.empty();
    default: return false;
  }
}

class Printer {
 public:
  explicit Printer(Dialect d) : d_(d) {}

  // A placeholder bound to `v`.
  std::string Param(PlanValue v) {
    st_.params.push_back(std::move(v));
    std::string n = std::to_string(st_.params.size());
    if (d_ == Dialect::kSqlite) return "?" + n;
    const PlanValue& p = st_.params.back();
    if (std::holds_alternative<std::int64_t>(p)) return "$" + n + "::bigint";
    if (std::holds_alternative<double>(p)) return "$" + n + "::float8";
    return "$" + n + "::text";
  }
  std::string RidArray(const std::vector<Rid>& rids) {
    std::string list;
    for (Rid r : rids) list += (list.empty() ? "" : ",") + std::to_string(r);
    st_.params.emplace_back(d_ == Dialect::kSqlite ? "[" + list + "]" : "{" + list + "}");
    std::string n = std::to_string(st_.params.size());
    if (d_ == Dialect::kSqlite) return "(SELECT value FROM json_each(?" + n + "))";
    return "(SELECT unnest($" + n + "::bigint[]))";
  }
  std::string NotDeleted(std::string_view alias) const {
    return std::string(alias) + (d_ == Dialect::kSqlite ? ".deleted = 0" : ".deleted = false");
  }
  std::string Alias(char c) { return c + std::to_string(++aliases_); }
  bool sqlite() const { return d_ == Dialect::kSqlite; }

  // `alias`.type for a comparison. SQLite's planner, without statistics,
  // prefers the (type, id) index over a rid set from the index tables; a
  // unary plus takes the type column out of index consideration when the
  // predicate has such a set to drive the query.
  std::string TypeColumn(std::string_view alias, const PlanNode& predicate) const {
    std::string col = std::string(alias) + ".type";
    return d_ == Dialect::kSqlite && HasDriver(predicate) ? "+" + col : col;
  }

  std::string Cond(std::string_view col, const store::Cond& c) {
    std::string s = ValueCond(col, c);
    if (c.column == Column::kUrl && (c.op == Op::kEq || c.op == Op::kIn)) {
      // Only references written as URLs have one (local Type/id ones have
      // ''): the index on url is partial, WHERE url <> '', and a planner
      // uses it only when the query states that condition itself.
      return "(" + s + " AND " + std::string(col) + " <> '')";
    }
    return s;
  }

  // The comparison of column `col` that `c` asks for.
  std::string ValueCond(std::string_view col, const store::Cond& c) {
    std::string cl(col);
    switch (c.op) {
      case Op::kPrefix: {
        const std::string& s = std::get<std::string>(c.value);
        return "(" + cl + " >= " + Param(s) + " AND " + cl + " < " + Param(s + std::string(kMaxChar)) + ")";
      }
      case Op::kContains:
        return d_ == Dialect::kSqlite ? "instr(" + cl + ", " + Param(c.value) + ") > 0"
                                      : "strpos(" + cl + ", " + Param(c.value) + ") > 0";
      case Op::kIn: {
        if (c.values.empty()) return "1 = 0";
        std::string s = cl + " IN (";
        for (size_t i = 0; i < c.values.size(); ++i) s += (i ? ", " : "") + Param(c.values[i]);
        return s + ")";
      }
      default: return cl + " " + std::string(OpText(c.op)) + " " + Param(c.value);
    }
  }

  // SELECT of the rids of rows of one kRows node.
  std::string RowsSelect(const PlanNode& n) {
    std::string x = Alias('x');
    std::string s = "SELECT " + x + ".rid FROM " + std::string(TableName(n.table)) + " " + x + " WHERE " + x +
                    ".param = " + Param(n.param);
    return s + RowConds(n.conds, x);
  }

  // A boolean SQL expression: `n` holds for the resource row aliased `a`.
  //
  // Drive mode: the expression may produce the candidate rows, as
  // `a.rid IN (a set from the index tables)`: the most selective conjunct of
  // an AND (Rank) drives, the others only check each candidate. Check mode
  // (the candidate is known): correlated EXISTS probes of the index tables by
  // (rid, param), which read a few rows per candidate instead of building the
  // whole set of a broad predicate (a date range, a common code).
  std::string Node(const PlanNode& n, const std::string& a, bool drive) {
    using K = PlanNode::Kind;
    if (&n == joined_) return "1 = 1";  // the join to the streamed index rows (Filters) holds it
    switch (n.kind) {
      case K::kTrue: return "1 = 1";
      case K::kFalse: return "1 = 0";
      case K::kAnd: {
        size_t driver = n.children.size();
        if (drive) driver = BestDriver(n);
        std::string s = "(";
        for (size_t i = 0; i < n.children.size(); ++i) {
          s += (i ? " AND " : "") + Node(n.children[i], a, i == driver);
        }
        return s + ")";
      }
      case K::kOr: {
        // A union of index ranges is one IN set; anything else an OR.
        bool all_rows = true;
        for (const PlanNode& c : n.children) all_rows = all_rows && c.kind == K::kRows;
        if (drive && all_rows) {
          std::string s = a + ".rid IN (";
          for (size_t i = 0; i < n.children.size(); ++i) s += (i ? " UNION " : "") + RowsSelect(n.children[i]);
          return s + ")";
        }
        std::string s = "(";
        for (size_t i = 0; i < n.children.size(); ++i) s += (i ? " OR " : "") + Node(n.children[i], a, drive);
        return s + ")";
      }
      case K::kNot: return "NOT " + Node(n.children[0], a, false);
      case K::kRows: {
        if (drive) return a + ".rid IN (" + RowsSelect(n) + ")";
        std::string x = Alias('x');
        // SQLite: "+param" keeps the planner on the (rid, param, ...) key; a
        // (param, value) index would scan the value range per candidate.
        std::string s = "EXISTS (SELECT 1 FROM " + std::string(TableName(n.table)) + " " + x + " WHERE " + x +
                        ".rid = " + a + ".rid AND " + (d_ == Dialect::kSqlite ? "+" : "") + x +
                        ".param = " + Param(n.param);
        return s + RowConds(n.conds, x) + ")";
      }
      case K::kId: {
        if (n.ids.empty()) return "1 = 0";
        std::string s = a + ".id IN (";
        for (size_t i = 0; i < n.ids.size(); ++i) s += (i ? ", " : "") + Param(n.ids[i]);
        return s + ")";
      }
      case K::kLastUpdated: {
        std::string s = "(1 = 1";
        for (const store::Cond& c : n.conds) s += " AND " + Cond(a + ".last_updated", c);
        return s + ")";
      }
      case K::kChain: {
        std::string t = Alias('t'), x = Alias('x');
        std::string types;
        for (size_t i = 0; i < n.types.size(); ++i) types += (i ? ", " : "") + Param(n.types[i]);
        if (!drive) {
          // From this resource's references to their targets.
          return "EXISTS (SELECT 1 FROM idx_reference " + x + " JOIN resource " + t + " ON " + t + ".type = " + x +
                 ".target_type AND " + t + ".id = " + x + ".target_id WHERE " + x + ".rid = " + a + ".rid AND " + x +
                 ".param = " + Param(n.param) + " AND " + t + ".type IN (" + types + ") AND " + NotDeleted(t) +
                 " AND " + Node(n.children[0], t, false) + ")";
        }
        // The targets drive (their rids come from the inner predicate), then
        // the references to each: SQLite needs CROSS JOIN to keep that order.
        bool inner = HasDriver(n.children[0]);
        std::string join = d_ == Dialect::kSqlite && inner ? " CROSS JOIN " : " JOIN ";
        return a + ".rid IN (SELECT " + x + ".rid FROM resource " + t + join + "idx_reference " + x + " ON " + x +
               ".param = " + Param(n.param) + " AND " + x + ".target_id = " + t + ".id AND " + x +
               ".target_type = " + t + ".type WHERE " + TypeColumn(t, n.children[0]) + " IN (" + types + ") AND " +
               NotDeleted(t) + " AND " + Node(n.children[0], t, true) + ")";
      }
      case K::kHas: {
        std::string src = Alias('s'), x = Alias('x');
        std::string source_type = Param(n.types.empty() ? std::string() : n.types[0]);
        if (!drive) {
          // From the references to this resource to their sources.
          return "EXISTS (SELECT 1 FROM idx_reference " + x + " JOIN resource " + src + " ON " + src + ".rid = " + x +
                 ".rid WHERE " + x + ".param = " + Param(n.param) + RowConds(n.conds, x) + " AND " + x +
                 ".target_id = " + a + ".id AND " + x + ".target_type = " + a + ".type AND " + src +
                 ".type = " + source_type + " AND " + NotDeleted(src) + " AND " + Node(n.children[0], src, false) + ")";
        }
        std::string t = Alias('t');
        const PlanNode& inner = n.children[0];
        if (Streamable(inner)) {
          // The sources' index rows drive in their own order, joined through
          // the sources to the references and their targets: no set of the
          // sources is built first (SQLite: CROSS JOIN keeps that order).
          std::string y = Alias('x'), join = d_ == Dialect::kSqlite ? " CROSS JOIN " : " JOIN ";
          std::string s = a + ".rid IN (SELECT " + t + ".rid FROM " + std::string(TableName(inner.table)) + " " + y +
                          join + "resource " + src + " ON " + src + ".rid = " + y + ".rid" + join + "idx_reference " +
                          x + " ON " + x + ".rid = " + src + ".rid AND " + x + ".param = " + Param(n.param) +
                          RowConds(n.conds, x) + join + "resource " + t + " ON " + t + ".type = " + x +
                          ".target_type AND " + t + ".id = " + x + ".target_id WHERE " + y +
                          ".param = " + Param(inner.param);
          return s + RowConds(inner.conds, y) + " AND " + (d_ == Dialect::kSqlite ? "+" : "") + src +
                 ".type = " + source_type + " AND " + NotDeleted(src) + ")";
        }
        return a + ".rid IN (SELECT " + t + ".rid FROM resource " + src + " JOIN idx_reference " + x + " ON " + x +
               ".rid = " + src + ".rid AND " + x + ".param = " + Param(n.param) + RowConds(n.conds, x) +
               " JOIN resource " + t + " ON " + t + ".type = " + x + ".target_type AND " + t + ".id = " + x +
               ".target_id WHERE " + TypeColumn(src, n.children[0]) + " = " + source_type + " AND " + NotDeleted(src) +
               " AND " + Node(n.children[0], src, true) + ")";
      }
    }
    return "1 = 0";
  }

  // The conjunct of an AND that should drive (see Node), or children.size()
  // when none can.
  static size_t BestDriver(const PlanNode& n) {
    size_t best = n.children.size();
    int best_rank = 0;
    for (size_t i = 0; i < n.children.size(); ++i) {
      int r = Rank(n.children[i]);
      if (r > best_rank) {
        best_rank = r;
        best = i;
      }
    }
    return best;
  }

  // How selective a predicate is likely to be as a driver (0: cannot drive).
  // Static, as the store keeps no statistics of its own: a reference or
  // code equality beats a string prefix, which beats a chain, which beats a
  // value range.
  static int Rank(const PlanNode& n) {
    using K = PlanNode::Kind;
    switch (n.kind) {
      case K::kRows: {
        int rank = 5;  // any row of the parameter
        for (const store::Cond& c : n.conds) {
          int r = 0;
          switch (c.op) {
            case Op::kEq:
            case Op::kIn:
              r = c.column == Column::kTargetId ? 90
                  : (c.column == Column::kSystem || c.column == Column::kTargetType ||
                     c.column == Column::kCanonicalUnit)
                      ? 20
                      : 80;
              break;
            case Op::kPrefix: r = 60; break;
            case Op::kContains: r = 10; break;
            default: r = 30; break;
          }
          rank = std::max(rank, r);
        }
        return rank;
      }
      case K::kOr: {
        int rank = 1000;
        for (const PlanNode& c : n.children) rank = std::min(rank, Rank(c));
        return n.children.empty() ? 0 : std::max(0, rank - 5);
      }
      case K::kAnd: {
        int rank = 0;
        for (const PlanNode& c : n.children) rank = std::max(rank, Rank(c));
        return rank;
      }
      // A chain is as selective as its target predicate, roughly; "has a
      // related resource with ..." usually less than the searched type's own
      // criteria.
      case K::kChain: return std::max(1, Rank(n.children[0]) - 10);
      case K::kHas: return std::max(1, Rank(n.children[0]) - 25);
      default: return 0;
    }
  }

  // Whether the rows of `n` hold each rid at most once and, read through the
  // table's value index with every column but the rid fixed, come in rid
  // order: a token with its system and code, a reference with its target
  // (one resource may hold the same target under two spellings of the URL:
  // StreamJoin keeps the first).
  static bool Streamable(const PlanNode& n) {
    if (n.kind != PlanNode::Kind::kRows || n.conds.size() != 2) return false;
    auto eq = [&](Column c) {
      return std::any_of(n.conds.begin(), n.conds.end(), [c](const store::Cond& x) {
        return x.column == c && x.op == Op::kEq && std::holds_alternative<std::string>(x.value);
      });
    };
    if (n.table == IndexTable::kToken) return eq(Column::kCode) && eq(Column::kSystem);
    if (n.table == IndexTable::kReference) return eq(Column::kTargetId) && eq(Column::kTargetType);
    return false;
  }

  // The FROM clause of a search or count: the resource table, or, when
  // Filters streamed the driver, its index rows joined to the resource table
  // (call after Filters).
  std::string From() const { return stream_join_.empty() ? "resource r" : stream_join_; }
  // The rid column to order and page by: the streamed index rows' (so the
  // index range itself starts at the cursor and needs no sort), else r.rid.
  std::string RidColumn() const { return joined_ ? "xs.rid" : "r.rid"; }

  // The WHERE conditions on `r` for `plan`. With `check_only` no predicate
  // drives (another table does). With `stream`, a Streamable driver is read
  // as a join in rid order (From, RidColumn) instead of `r.rid IN (set)`: a
  // page stops at its last row instead of first building the whole set of a
  // broad driver (SQLite's LIST SUBQUERY), and a count skips building it.
  std::string Filters(const SearchPlan& plan, bool check_only = false, bool stream = false) {
    using K = PlanNode::Kind;
    const PlanNode& w = plan.where;
    // Ids and the compartment are answered by the resource table's own
    // indexes; an index-table set drives only when it is more selective.
    bool by_id =
        w.kind == K::kId || (w.kind == K::kAnd && std::any_of(w.children.begin(), w.children.end(),
                                                              [](const PlanNode& c) { return c.kind == K::kId; }));
    int rank = Rank(w);
    if (w.kind == K::kAnd) {
      size_t driver = BestDriver(w);
      rank = driver == w.children.size() ? 0 : Rank(w.children[driver]);
    }
    bool drive = !check_only && !by_id && rank > 0 && !(plan.compartment && rank < 85);
    if (drive && stream) {
      const PlanNode* driver = &w;
      if (w.kind == K::kAnd) driver = &w.children[BestDriver(w)];
      if (Streamable(*driver)) StreamJoin(*driver);
    }
    std::string type_col = d_ == Dialect::kSqlite && drive ? "+r.type" : "r.type";
    std::string s = type_col;
    if (!plan.type.empty()) {
      s += " = " + Param(plan.type);
    } else {
      s += " IN (";
      for (size_t i = 0; i < plan.types.size(); ++i) s += (i ? ", " : "") + Param(plan.types[i]);
      s += ")";
    }
    s += " AND " + NotDeleted("r");
    if (plan.compartment) s += " AND r.compartment = " + Param(*plan.compartment);
    if (w.kind != K::kTrue) s += " AND " + Node(w, "r", drive);
    return s;
  }

  // Sets the join of a Streamable driver's rows (alias xs) to r; SQLite's
  // CROSS JOIN keeps the index rows outermost, so they are read in rid order.
  void StreamJoin(const PlanNode& n) {
    joined_ = &n;
    std::string s = std::string(TableName(n.table)) + " xs" + (d_ == Dialect::kSqlite ? " CROSS JOIN" : " JOIN") +
                    " resource r ON r.rid = xs.rid AND xs.param = " + Param(n.param);
    s += RowConds(n.conds, "xs");
    if (n.table == IndexTable::kReference) {
      s += " AND NOT EXISTS (SELECT 1 FROM idx_reference xu WHERE xu.rid = xs.rid AND xu.param = xs.param AND "
           "xu.target_type = xs.target_type AND xu.target_id = xs.target_id AND xu.url < xs.url)";
    }
    stream_join_ = std::move(s);
  }

  // " AND ..." for each of `conds` on the index row with alias `x`.
  std::string RowConds(const std::vector<store::Cond>& conds, const std::string& x) {
    std::string s;
    for (const store::Cond& c : conds) s += " AND " + Cond(x + "." + std::string(ColumnName(c.column)), c);
    return s;
  }

  // The condition on sort key `k`'s rows (alias x) besides the rid.
  std::string SortRows(const SortKey& k, const std::string& x) {
    std::string s = (d_ == Dialect::kSqlite ? "+" : "") + x + ".param = " + Param(k.param);
    if (!k.target_type.empty()) s += " AND " + x + ".target_type = " + Param(k.target_type);
    if (k.also.empty()) return s;
    s = "((" + s + ")";
    for (const std::string& p : k.also) s += " OR " + x + ".param = " + Param(p);
    return s + ")";
  }

  std::string SortExpr(const SortKey& k) {
    switch (k.source) {
      case SortKey::Source::kId: return "r.id";
      case SortKey::Source::kLastUpdated: return "r.last_updated";
      case SortKey::Source::kIndex: break;
    }
    std::string x = Alias('x');
    std::string col = x + "." + std::string(ColumnName(k.column));
    std::string s = "COALESCE((SELECT " + std::string(k.descending ? "max(" : "min(") + col + ") FROM " +
                    std::string(TableName(k.table)) + " " + x + " WHERE " + x + ".rid = r.rid AND " +
                    // SQLite would otherwise take the (param, value) index for min/max
                    // and read every row of the parameter; the rid key is the right one.
                    SortRows(k, x) + "), ";
    switch (SortKeyKind(k)) {
      case 0:
        s += Param(k.descending ? std::numeric_limits<std::int64_t>::min() : std::numeric_limits<std::int64_t>::max());
        break;
      case 1: s += Param(k.descending ? -1e308 : 1e308); break;
      default: s += Param(k.descending ? std::string() : std::string(kMaxChar) + std::string(kMaxChar)); break;
    }
    return s + ")";
  }

  SqlStatement Take() { return std::move(st_); }

 private:
  Dialect d_;
  SqlStatement st_;
  int aliases_ = 0;
  const PlanNode* joined_ = nullptr;  // the driver read as a join (StreamJoin)
  std::string stream_join_;
};

}  // namespace

int SortKeyKind(const SortKey& key) {
  if (key.source == SortKey::Source::kId) return 2;
  if (key.source == SortKey::Source::kLastUpdated) return 0;
  switch (key.column) {
    case Column::kLo:
    case Column::kHi:
      if (key.table == IndexTable::kDate) return 0;
      return 1;
    case Column::kCanonicalLo:
    case Column::kCanonicalHi: return 1;
    default: return 2;
  }
}

Status CheckSearchPlan(const SearchPlan& plan) {
  if (plan.type.empty() && plan.types.empty()) return InvalidArgumentError("search plan without a resource type");
  if (!plan.type.empty() && !plan.types.empty()) return InvalidArgumentError("search plan with both type and types");
  if (plan.types.size() > 1000) return InvalidArgumentError("search plan with more than 1000 types");
  if (plan.limit < 0 || plan.limit > 10000) return InvalidArgumentError("search page size must be 0..10000");
  if (plan.after && plan.after->keys.size() != plan.sort.size()) {
    return InvalidArgumentError("search cursor does not match the sort order");
  }
  if (plan.after) {
    for (size_t i = 0; i < plan.sort.size(); ++i) {
      int kind = SortKeyKind(plan.sort[i]);
      const PlanValue& v = plan.after->keys[i];
      if ((kind == 0 && !std::holds_alternative<std::int64_t>(v)) ||
          (kind == 1 && !std::holds_alternative<double>(v)) || (kind == 2 && !std::holds_alternative<std::string>(v))) {
        return InvalidArgumentError("search cursor does not match the sort order");
      }
    }
  }
  return Status::Ok();
}

SqlStatement PrintSearch(const SearchPlan& plan, Dialect dialect) {
  Printer p(dialect);
  std::string cols = "r.rid, r.type, r.id, r.version, r.last_updated, ";
  cols += plan.with_bodies ? "r.body" : "NULL";
  cols += " AS body, r.compartment";
  // A `before` cursor reads backwards: every comparison and direction reversed.
  bool back = plan.after && plan.after->before;
  if (plan.sort.empty()) {
    std::string where = p.Filters(plan, /*check_only=*/false, /*stream=*/true);
    std::string rid = p.RidColumn();
    std::string s = "SELECT " + cols + " FROM " + p.From() + " WHERE " + where;
    if (plan.after) s += (back ? " AND " + rid + " < " : " AND " + rid + " > ") + p.Param(plan.after->rid);
    s += " ORDER BY " + rid + (back ? " DESC" : "") + " LIMIT " + p.Param(static_cast<std::int64_t>(plan.limit) + 1);
    SqlStatement st = p.Take();
    st.sql = std::move(s);
    return st;
  }
  std::string inner = "SELECT " + cols;
  for (size_t i = 0; i < plan.sort.size(); ++i) inner += ", " + p.SortExpr(plan.sort[i]) + " AS k" + std::to_string(i);
  inner += " FROM resource r WHERE " + p.Filters(plan);
  std::string s = "SELECT q.rid, q.type, q.id, q.version, q.last_updated, q.body, q.compartment";
  for (size_t i = 0; i < plan.sort.size(); ++i) s += ", q.k" + std::to_string(i);
  s += " FROM (" + inner + ") q";
  if (plan.after) {
    // Strictly after (before) the cursor in (k0 dir0, k1 dir1, ..., rid asc) order.
    std::string any;
    for (size_t i = 0; i <= plan.sort.size(); ++i) {
      std::string term = "(";
      for (size_t j = 0; j < i; ++j) term += "q.k" + std::to_string(j) + " = " + p.Param(plan.after->keys[j]) + " AND ";
      if (i == plan.sort.size()) {
        term += (back ? "q.rid < " : "q.rid > ") + p.Param(plan.after->rid);
      } else {
        term += "q.k" + std::to_string(i) + (plan.sort[i].descending != back ? " < " : " > ") +
                p.Param(plan.after->keys[i]);
      }
      any += (i ? " OR " : "") + term + ")";
    }
    s += " WHERE (" + any + ")";
  }
  s += " ORDER BY ";
  for (size_t i = 0; i < plan.sort.size(); ++i) {
    s += "q.k" + std::to_string(i) + (plan.sort[i].descending != back ? " DESC, " : ", ");
  }
  s += std::string(back ? "q.rid DESC" : "q.rid") + " LIMIT " + p.Param(static_cast<std::int64_t>(plan.limit) + 1);
  SqlStatement st = p.Take();
  st.sql = std::move(s);
  return st;
}

namespace {

// The sort key value of a resource without a value for a date key.
PlanValue MissingKey(const SortKey& k) {
  return k.descending ? std::numeric_limits<std::int64_t>::min() : std::numeric_limits<std::int64_t>::max();
}

// Whether `plan` is answered by reading its sort key's index in order: one
// date sort key and no selective driver (a reference or code equality, a
// string prefix would find fewer candidates than the page needs to skip).
bool InIndexOrder(const SearchPlan& plan) {
  if (plan.sort.size() != 1 || plan.compartment || plan.limit == 0) return false;
  const SortKey& k = plan.sort[0];
  if (k.source != SortKey::Source::kIndex || k.table != IndexTable::kDate) return false;
  if (!k.also.empty() || !k.target_type.empty()) return false;
  if (k.column != (k.descending ? Column::kHi : Column::kLo)) return false;
  const PlanNode& w = plan.where;
  int rank = Printer::Rank(w);
  if (w.kind == PlanNode::Kind::kAnd) {
    size_t d = Printer::BestDriver(w);
    rank = d == w.children.size() ? 0 : Printer::Rank(w.children[d]);
  }
  return rank < 60 && w.kind != PlanNode::Kind::kId;
}

// Whether every match has a row of the sort key's parameter (a conjunct
// requires one), so that no match sorts last for lack of a value.
bool RequiresSortRows(const SearchPlan& plan) {
  const SortKey& k = plan.sort[0];
  auto requires_rows = [&](const PlanNode& n) {
    return n.kind == PlanNode::Kind::kRows && n.table == k.table && n.param == k.param;
  };
  if (requires_rows(plan.where)) return true;
  if (plan.where.kind != PlanNode::Kind::kAnd) return false;
  return std::any_of(plan.where.children.begin(), plan.where.children.end(), requires_rows);
}

// The valued part in index order: each resource once, at its extreme row
// (highest hi descending, lowest lo ascending; ties by the other bound),
// filtered, after the cursor, in (key, rid) order.
// With `back`, the same rows backwards (key and rid reversed), before the
// cursor when there is one.
SqlStatement PrintIndexOrder(const SearchPlan& plan, Dialect dialect, bool back) {
  Printer p(dialect);
  const SortKey& k = plan.sort[0];
  bool desc = k.descending;
  std::string col = desc ? "hi" : "lo", other = desc ? "lo" : "hi";
  std::string cmp = desc ? " > " : " < ";
  std::string s = "SELECT r.rid, r.type, r.id, r.version, r.last_updated, " +
                  std::string(plan.with_bodies ? "r.body" : "NULL") + ", r.compartment, x.";
  s += col + " FROM idx_date x" + (p.sqlite() ? " CROSS JOIN" : " JOIN") +
       " resource r ON r.rid = x.rid WHERE x.param = " + p.Param(k.param) +
       " AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = x.rid AND " + (p.sqlite() ? "+" : "") +
       "y.param = " + p.Param(k.param) + " AND (y." + col + cmp + "x." + col + " OR (y." + col + " = x." + col +
       " AND y." + other + cmp + "x." + other + "))) AND " + p.Filters(plan, /*check_only=*/true);
  if (plan.after) {
    PlanValue key = plan.after->keys[0];
    // The plain bound first: it is the index range the OR alone would not give
    // (reading towards the cursor would otherwise start at the index's far end).
    s += " AND x." + col + (desc != back ? " <= " : " >= ") + p.Param(key) + " AND (x." + col +
         (desc != back ? " < " : " > ") + p.Param(key) + " OR (x." + col + " = " + p.Param(key) +
         (back ? " AND r.rid < " : " AND r.rid > ") + p.Param(plan.after->rid) + "))";
  }
  s += " ORDER BY x." + col + (desc != back ? " DESC" : "") + (back ? ", r.rid DESC" : ", r.rid") + " LIMIT " +
       p.Param(static_cast<std::int64_t>(plan.limit) + 1);
  SqlStatement st = p.Take();
  st.sql = std::move(s);
  return st;
}

}  // namespace

std::vector<PageStatement> PrintPage(const SearchPlan& plan, Dialect dialect) {
  if (!InIndexOrder(plan)) return {{PrintSearch(plan, dialect), false}};
  std::vector<PageStatement> out;
  bool in_missing_part = plan.after && plan.after->keys[0] == MissingKey(plan.sort[0]);
  if (plan.after && plan.after->before) {
    // Backwards: from inside the part without values, its rows before the
    // cursor (rid descending), then every valued row; else the valued rows
    // before the cursor only.
    if (in_missing_part && !RequiresSortRows(plan)) {
      SearchPlan rest = plan;
      rest.sort.clear();
      rest.after = SearchCursor{{}, plan.after->rid, true};
      rest.where =
          PlanNode::And({plan.where, PlanNode::Not(PlanNode::Rows(IndexTable::kDate, plan.sort[0].param, {}))});
      out.push_back({PrintSearch(rest, dialect), true});
    }
    SearchPlan valued = plan;
    if (in_missing_part) valued.after.reset();
    out.push_back({PrintIndexOrder(valued, dialect, /*back=*/true), false});
    return out;
  }
  if (!in_missing_part) out.push_back({PrintIndexOrder(plan, dialect, /*back=*/false), false});
  if (!RequiresSortRows(plan)) {
    // Then the matches without a value, in rid order.
    SearchPlan rest = plan;
    rest.sort.clear();
    rest.after.reset();
    if (in_missing_part) rest.after = SearchCursor{{}, plan.after->rid};
    rest.where = PlanNode::And({plan.where, PlanNode::Not(PlanNode::Rows(IndexTable::kDate, plan.sort[0].param, {}))});
    out.push_back({PrintSearch(rest, dialect), true});
  }
  return out;
}

Result<SearchPage> RunPage(const SearchPlan& plan, Dialect dialect, const RunStatement& run) {
  SearchPage page;
  if (plan.limit == 0) return page;
  std::vector<int> kinds;
  for (const SortKey& k : plan.sort) kinds.push_back(SortKeyKind(k));
  if (plan.after && plan.after->before) {
    // The rows come nearest-first: keep `limit`, the extra one says that
    // earlier matches exist, then put the page back into result order.
    std::vector<PageRow> rows;
    for (const PageStatement& ps : PrintPage(plan, dialect)) {
      if (static_cast<int>(rows.size()) > plan.limit) break;
      ASSIGN_OR_RETURN(std::vector<PageRow> got, run(ps.statement, ps.keyless ? std::vector<int>{} : kinds));
      for (PageRow& row : got) {
        if (ps.keyless) row.keys = {MissingKey(plan.sort[0])};
        rows.push_back(std::move(row));
      }
    }
    bool earlier = static_cast<int>(rows.size()) > plan.limit;
    if (earlier) rows.resize(static_cast<size_t>(plan.limit));
    std::reverse(rows.begin(), rows.end());
    if (rows.empty()) {
      // Nothing before the cursor (any more): `next` starts at its position.
      page.next = SearchCursor{plan.after->keys, plan.after->rid - 1};
      return page;
    }
    if (earlier) page.previous = SearchCursor{rows.front().keys, rows.front().hit.rid, true};
    page.next = SearchCursor{rows.back().keys, rows.back().hit.rid};
    for (PageRow& row : rows) page.hits.push_back(std::move(row.hit));
    return page;
  }
  // A page read from a cursor has a previous page: the matches before its
  // first entry (before the cursor's own position, rid + 1, when it is empty).
  if (plan.after) page.previous = SearchCursor{plan.after->keys, plan.after->rid + 1, true};
  std::vector<PlanValue> last_keys;
  for (const PageStatement& ps : PrintPage(plan, dialect)) {
    ASSIGN_OR_RETURN(std::vector<PageRow> rows, run(ps.statement, ps.keyless ? std::vector<int>{} : kinds));
    for (PageRow& row : rows) {
      if (static_cast<int>(page.hits.size()) == plan.limit) {
        page.next = SearchCursor{std::move(last_keys), page.hits.back().rid};
        return page;
      }
      // Matches without a value carry the key that sorts last.
      last_keys = ps.keyless ? std::vector<PlanValue>{MissingKey(plan.sort[0])} : std::move(row.keys);
      if (page.hits.empty() && plan.after) page.previous = SearchCursor{last_keys, row.hit.rid, true};
      page.hits.push_back(std::move(row.hit));
    }
  }
  return page;
}

SqlStatement PrintCount(const SearchPlan& plan, Dialect dialect) {
  Printer p(dialect);
  std::string s;
  std::string where = p.Filters(plan, /*check_only=*/false, /*stream=*/true);
  if (plan.count_limit > 0) {
    // Stops after count_limit + 1 matches (unsorted, so not every match is found).
    s = "SELECT count(*) FROM (SELECT 1 FROM " + p.From() + " WHERE " + where + " LIMIT " +
        p.Param(plan.count_limit + 1) + ") c";
  } else {
    s = "SELECT count(*) FROM " + p.From() + " WHERE " + where;
  }
  SqlStatement st = p.Take();
  st.sql = std::move(s);
  return st;
}

std::vector<SqlStatement> PrintAll(const SearchPlan& plan, Dialect dialect) {
  std::vector<SqlStatement> out;
  for (PageStatement& ps : PrintPage(plan, dialect)) out.push_back(std::move(ps.statement));
  out.push_back(PrintCount(plan, dialect));
  return out;
}

SqlStatement PrintInclude(const IncludeQuery& query, Dialect dialect) {
  Printer p(dialect);
  std::string s;
  for (const IncludeSpec& spec : query.specs) {
    if (!s.empty()) s += " UNION ";
    std::string x = p.Alias('x'), t = p.Alias('t'), src = p.Alias('s');
    if (!spec.reverse) {
      // Targets of the page's references: the page drives, then its
      // reference rows, then their targets. SQLite: CROSS JOIN and "+" keep
      // that order; left to itself it read every resource of the source or
      // target type through the (type, id) index and tested each.
      std::string join = p.sqlite() ? " CROSS JOIN " : " JOIN ";
      s += "SELECT " + t + ".rid, " + t + ".type, " + t + ".id, " + t + ".version, " + t + ".last_updated, " +
           (query.with_bodies ? t + ".body" : "NULL") + ", " + t + ".compartment FROM resource " + src + join +
           "idx_reference " + x + " ON " + x + ".rid = " + src + ".rid" + join + "resource " + t + " ON " + t +
           ".type = " + x + ".target_type AND " + t + ".id = " + x + ".target_id WHERE " + src + ".rid IN " +
           p.RidArray(query.rids);
      if (!spec.source_type.empty())
        s += " AND " + std::string(p.sqlite() ? "+" : "") + src + ".type = " + p.Param(spec.source_type);
    } else {
      // Resources of source_type referring to the page.
      // The page drives (SQLite: CROSS JOIN keeps that order), then the
      // references to each page resource through (param, target_id, target_type).
      std::string join = p.sqlite() ? " CROSS JOIN " : " JOIN ";
      s += "SELECT " + src + ".rid, " + src + ".type, " + src + ".id, " + src + ".version, " + src + ".last_updated, " +
           (query.with_bodies ? src + ".body" : "NULL") + ", " + src + ".compartment FROM resource " + t + join +
           "idx_reference " + x + " ON " + x + ".target_type = " + t + ".type AND " + x + ".target_id = " + t + ".id" +
           join + "resource " + src + " ON " + src + ".rid = " + x + ".rid WHERE " + t + ".rid IN " +
           p.RidArray(query.rids) + " AND " + src + ".type = " + p.Param(spec.source_type) + " AND " +
           p.NotDeleted(src);
    }
    if (!spec.param.empty()) s += " AND " + x + ".param = " + p.Param(spec.param);
    if (!spec.target_type.empty()) s += " AND " + x + ".target_type = " + p.Param(spec.target_type);
    if (!spec.reverse) s += " AND " + p.NotDeleted(t);
    if (query.compartment) s += " AND " + (spec.reverse ? src : t) + ".compartment = " + p.Param(*query.compartment);
  }
  if (s.empty()) s = "SELECT rid, type, id, version, last_updated, NULL, compartment FROM resource WHERE 1 = 0";
  s = "SELECT * FROM (" + s + ") i ORDER BY 1 LIMIT " + p.Param(static_cast<std::int64_t>(query.limit) + 1);
  SqlStatement st = p.Take();
  st.sql = std::move(s);
  return st;
}

}  // namespace sql
}  // namespace bevan::store
