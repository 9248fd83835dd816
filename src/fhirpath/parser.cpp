// The FHIRPath lexer and a precedence-climbing parser for the grammar of
// FHIRPath 2.0 (http://hl7.org/fhirpath/N1/grammar.html).
#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#include "fhirpath/program.h"

namespace bevan::fhirpath::internal {

namespace {

enum class Tok : uint8_t {
  kEnd,
  kIdentifier,  // plain or `delimited`
  kString,
  kNumber,
  kDateTime,  // @...
  kVariable,  // %name
  kSpecial,   // $this, $index, $total
  kPunct,     // operators and punctuation, text in `text`
};

struct Token {
  Tok kind = Tok::kEnd;
  std::string_view text;  // source text (for strings and delimited identifiers: unescaped value)
  uint32_t pos = 0;       // 1-based
  bool delimited = false;
};

bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class Parser {
 public:
  Parser(std::string_view text, Program* program) : src_(text), program_(program) {}

  Status Run() {
    RETURN_IF_ERROR(Next());
    int32_t root;
    RETURN_IF_ERROR(ParseExpression(0, &root));
    if (tok_.kind != Tok::kEnd) return Error(tok_.pos, "unexpected '" + std::string(tok_.text) + "'");
    program_->root = root;
    return Status::Ok();
  }

 private:
  Status Error(uint32_t pos, const std::string& message) {
    return InvalidArgumentError("FHIRPath syntax error at " + std::to_string(pos) + ": " + message);
  }

  std::string_view Keep(std::string_view s) { return program_->arena->CopyString(s); }

  // --- Lexer ---------------------------------------------------------------

  Status SkipSpace() {
    for (;;) {
      while (at_ < src_.size() && (src_[at_] == ' ' || src_[at_] == '\t' || src_[at_] == '\r' || src_[at_] == '\n')) {
        ++at_;
      }
      if (at_ + 1 < src_.size() && src_[at_] == '/' && src_[at_ + 1] == '/') {
        while (at_ < src_.size() && src_[at_] != '\n') ++at_;
        continue;
      }
      if (at_ + 1 < src_.size() && src_[at_] == '/' && src_[at_ + 1] == '*') {
        size_t end = src_.find("*/", at_ + 2);
        if (end == std::string_view::npos) return Error(static_cast<uint32_t>(at_ + 1), "unterminated comment");
        at_ = end + 2;
        continue;
      }
      return Status::Ok();
    }
  }

  Status ReadQuoted(char quote, std::string_view* out) {
    size_t start = at_;
    ++at_;
    std::string value;
    while (at_ < src_.size() && src_[at_] != quote) {
      char c = src_[at_];
      if (c == '\\') {
        if (at_ + 1 >= src_.size()) break;
        char e = src_[at_ + 1];
        at_ += 2;
        switch (e) {
          case '\\': value.push_back('\\'); break;
          case '/': value.push_back('/'); break;
          case '\'': value.push_back('\''); break;
          case '"': value.push_back('"'); break;
          case '`': value.push_back('`'); break;
          case 'f': value.push_back('\f'); break;
          case 'n': value.push_back('\n'); break;
          case 'r': value.push_back('\r'); break;
          case 't': value.push_back('\t'); break;
          case 'u': {
            uint32_t cp = 0;
            for (int i = 0; i < 4; ++i) {
              if (at_ >= src_.size() || !std::isxdigit(static_cast<unsigned char>(src_[at_]))) {
                return Error(static_cast<uint32_t>(at_ + 1), "bad \\u escape");
              }
              char h = src_[at_++];
              cp = cp * 16 + static_cast<uint32_t>(IsDigit(h) ? h - '0' : (std::tolower(h) - 'a' + 10));
            }
            AppendUtf8(cp, value);
            break;
          }
          default: return Error(static_cast<uint32_t>(at_ - 1), std::string("bad escape \\") + e);
        }
        continue;
      }
      value.push_back(c);
      ++at_;
    }
    if (at_ >= src_.size()) return Error(static_cast<uint32_t>(start + 1), "unterminated string");
    ++at_;
    *out = Keep(value);
    return Status::Ok();
  }

  bool MatchDigits(size_t n) {
    if (at_ + n > src_.size()) return false;
    for (size_t i = 0; i < n; ++i) {
      if (!IsDigit(src_[at_ + i])) return false;
    }
    at_ += n;
    return true;
  }

  // Scans the text of a date/time literal after '@'.
  void ScanDateTime() {
    auto time_part = [&] {
      if (!MatchDigits(2)) return;
      if (at_ + 2 < src_.size() && src_[at_] == ':' && IsDigit(src_[at_ + 1])) {
        ++at_;
        if (!MatchDigits(2)) return;
        if (at_ + 2 < src_.size() && src_[at_] == ':' && IsDigit(src_[at_ + 1])) {
          ++at_;
          if (!MatchDigits(2)) return;
          if (at_ + 1 < src_.size() && src_[at_] == '.' && IsDigit(src_[at_ + 1])) {
            ++at_;
            while (at_ < src_.size() && IsDigit(src_[at_])) ++at_;
          }
        }
      }
    };
    if (at_ < src_.size() && src_[at_] == 'T') {
      ++at_;
      time_part();
      return;
    }
    if (!MatchDigits(4)) return;
    if (at_ + 1 < src_.size() && src_[at_] == '-' && IsDigit(src_[at_ + 1])) {
      ++at_;
      if (!MatchDigits(2)) return;
      if (at_ + 1 < src_.size() && src_[at_] == '-' && IsDigit(src_[at_ + 1])) {
        ++at_;
        if (!MatchDigits(2)) return;
      }
    }
    if (at_ < src_.size() && src_[at_] == 'T') {
      ++at_;
      if (at_ < src_.size() && IsDigit(src_[at_])) {
        time_part();
        if (at_ < src_.size() && src_[at_] == 'Z') {
          ++at_;
        } else if (at_ + 5 < src_.size() && (src_[at_] == '+' || src_[at_] == '-') && IsDigit(src_[at_ + 1]) &&
                   IsDigit(src_[at_ + 2]) && src_[at_ + 3] == ':' && IsDigit(src_[at_ + 4]) && IsDigit(src_[at_ + 5])) {
          at_ += 6;
        }
      }
    }
  }

  Status Next() {
    RETURN_IF_ERROR(SkipSpace());
    tok_ = Token();
    tok_.pos = static_cast<uint32_t>(at_ + 1);
    if (at_ >= src_.size()) return Status::Ok();
    size_t start = at_;
    char c = src_[at_];
    if (IsIdentStart(c)) {
      while (at_ < src_.size() && IsIdentChar(src_[at_])) ++at_;
      tok_.kind = Tok::kIdentifier;
      tok_.text = src_.substr(start, at_ - start);
      return Status::Ok();
    }
    if (c == '`') {
      tok_.kind = Tok::kIdentifier;
      tok_.delimited = true;
      return ReadQuoted('`', &tok_.text);
    }
    if (c == '\'') {
      tok_.kind = Tok::kString;
      return ReadQuoted('\'', &tok_.text);
    }
    if (IsDigit(c)) {
      while (at_ < src_.size() && IsDigit(src_[at_])) ++at_;
      if (at_ + 1 < src_.size() && src_[at_] == '.' && IsDigit(src_[at_ + 1])) {
        ++at_;
        while (at_ < src_.size() && IsDigit(src_[at_])) ++at_;
      } else if (at_ < src_.size() && src_[at_] == 'L' && (at_ + 1 >= src_.size() || !IsIdentChar(src_[at_ + 1]))) {
        ++at_;  // FHIRPath 2.1 Long literal
      }
      tok_.kind = Tok::kNumber;
      tok_.text = src_.substr(start, at_ - start);
      return Status::Ok();
    }
    if (c == '@') {
      ++at_;
      ScanDateTime();
      tok_.kind = Tok::kDateTime;
      tok_.text = src_.substr(start + 1, at_ - start - 1);
      if (tok_.text.empty()) return Error(tok_.pos, "malformed date/time literal");
      return Status::Ok();
    }
    if (c == '%') {
      ++at_;
      tok_.kind = Tok::kVariable;
      if (at_ < src_.size() && IsIdentStart(src_[at_])) {
        size_t s = at_;
        while (at_ < src_.size() && (IsIdentChar(src_[at_]) || src_[at_] == '-')) ++at_;
        tok_.text = src_.substr(s, at_ - s);
        return Status::Ok();
      }
      if (at_ < src_.size() && (src_[at_] == '`' || src_[at_] == '\'')) return ReadQuoted(src_[at_], &tok_.text);
      return Error(tok_.pos, "expected a name after '%'");
    }
    if (c == '$') {
      ++at_;
      while (at_ < src_.size() && IsIdentChar(src_[at_])) ++at_;
      tok_.kind = Tok::kSpecial;
      tok_.text = src_.substr(start, at_ - start);
      if (tok_.text != "$this" && tok_.text != "$index" && tok_.text != "$total") {
        return Error(tok_.pos, "unknown '" + std::string(tok_.text) + "'");
      }
      return Status::Ok();
    }
    static constexpr std::string_view kTwo[] = {"<=", ">=", "!=", "!~"};
    for (std::string_view two : kTwo) {
      if (src_.substr(at_, 2) == two) {
        at_ += 2;
        tok_.kind = Tok::kPunct;
        tok_.text = two;
        return Status::Ok();
      }
    }
    if (std::strchr(".,()[]{}+-*/&|<>=~", c) != nullptr) {
      ++at_;
      tok_.kind = Tok::kPunct;
      tok_.text = src_.substr(start, 1);
      return Status::Ok();
    }
    return Error(tok_.pos, std::string("unexpected character '") + c + "'");
  }

  bool IsPunct(std::string_view p) const { return tok_.kind == Tok::kPunct && tok_.text == p; }
  bool IsKeyword(std::string_view k) const {
    return tok_.kind == Tok::kIdentifier && !tok_.delimited && tok_.text == k;
  }

  Status Expect(std::string_view p) {
    if (!IsPunct(p)) {
      return Error(tok_.pos, "expected '" + std::string(p) + "'" +
                                 (tok_.kind == Tok::kEnd ? " at end" : " before '" + std::string(tok_.text) + "'"));
    }
    return Next();
  }

  // --- Parser --------------------------------------------------------------

  int32_t Add(Node n) {
    program_->nodes.push_back(n);
    return static_cast<int32_t>(program_->nodes.size() - 1);
  }

  // Binary operator at the current token: precedence (higher binds tighter)
  // or 0 when the token is not one.
  int Precedence(BinOp* op, bool* type_op) const {
    *type_op = false;
    if (tok_.kind == Tok::kPunct) {
      std::string_view t = tok_.text;
      if (t == "*") return *op = BinOp::kMul, 10;
      if (t == "/") return *op = BinOp::kDiv, 10;
      if (t == "+") return *op = BinOp::kAdd, 9;
      if (t == "-") return *op = BinOp::kSub, 9;
      if (t == "&") return *op = BinOp::kConcat, 9;
      if (t == "|") return *op = BinOp::kUnion, 7;
      if (t == "<") return *op = BinOp::kLt, 6;
      if (t == "<=") return *op = BinOp::kLe, 6;
      if (t == ">") return *op = BinOp::kGt, 6;
      if (t == ">=") return *op = BinOp::kGe, 6;
      if (t == "=") return *op = BinOp::kEq, 5;
      if (t == "!=") return *op = BinOp::kNe, 5;
      if (t == "~") return *op = BinOp::kEquiv, 5;
      if (t == "!~") return *op = BinOp::kNotEquiv, 5;
      return 0;
    }
    if (tok_.kind != Tok::kIdentifier || tok_.delimited) return 0;
    std::string_view t = tok_.text;
    if (t == "div") return *op = BinOp::kIntDiv, 10;
    if (t == "mod") return *op = BinOp::kMod, 10;
    if (t == "is" || t == "as") return *type_op = true, 8;
    if (t == "in") return *op = BinOp::kIn, 4;
    if (t == "contains") return *op = BinOp::kContains, 4;
    if (t == "and") return *op = BinOp::kAnd, 3;
    if (t == "or") return *op = BinOp::kOr, 2;
    if (t == "xor") return *op = BinOp::kXor, 2;
    if (t == "implies") return *op = BinOp::kImplies, 1;
    return 0;
  }

  Status ParseExpression(int min_prec, int32_t* out) {
    if (++depth_ > 200) return Error(tok_.pos, "expression nested too deeply");
    int32_t lhs;
    RETURN_IF_ERROR(ParseUnary(&lhs));
    for (;;) {
      BinOp op;
      bool type_op;
      int prec = Precedence(&op, &type_op);
      if (prec == 0 || prec < min_prec) break;
      uint32_t pos = tok_.pos;
      if (type_op) {
        bool is = tok_.text == "is";
        RETURN_IF_ERROR(Next());
        std::string_view type_name;
        RETURN_IF_ERROR(ParseQualifiedName(&type_name));
        Node n;
        n.op = is ? Op::kIs : Op::kAs;
        n.lhs = lhs;
        n.name = type_name;
        n.pos = pos;
        lhs = Add(n);
        continue;
      }
      RETURN_IF_ERROR(Next());
      int32_t rhs;
      RETURN_IF_ERROR(ParseExpression(prec + 1, &rhs));
      Node n;
      n.op = Op::kBinary;
      n.binop = op;
      n.lhs = lhs;
      n.rhs = rhs;
      n.pos = pos;
      lhs = Add(n);
    }
    --depth_;
    *out = lhs;
    return Status::Ok();
  }

  Status ParseQualifiedName(std::string_view* out) {
    std::string name;
    for (;;) {
      if (tok_.kind != Tok::kIdentifier) return Error(tok_.pos, "expected a type name");
      name.append(tok_.text);
      RETURN_IF_ERROR(Next());
      if (!IsPunct(".")) break;
      name.push_back('.');
      RETURN_IF_ERROR(Next());
    }
    *out = Keep(name);
    return Status::Ok();
  }

  Status ParseUnary(int32_t* out) {
    if (IsPunct("-") || IsPunct("+")) {
      bool negate = tok_.text == "-";
      uint32_t pos = tok_.pos;
      RETURN_IF_ERROR(Next());
      int32_t operand;
      RETURN_IF_ERROR(ParseUnary(&operand));
      if (!negate) {
        *out = operand;
        return Status::Ok();
      }
      Node n;
      n.op = Op::kNegate;
      n.lhs = operand;
      n.pos = pos;
      *out = Add(n);
      return Status::Ok();
    }
    int32_t term;
    RETURN_IF_ERROR(ParseTerm(&term));
    for (;;) {
      if (IsPunct(".")) {
        RETURN_IF_ERROR(Next());
        if (tok_.kind != Tok::kIdentifier) return Error(tok_.pos, "expected a name after '.'");
        RETURN_IF_ERROR(ParseInvocation(term, &term));
      } else if (IsPunct("[")) {
        uint32_t pos = tok_.pos;
        RETURN_IF_ERROR(Next());
        int32_t index;
        RETURN_IF_ERROR(ParseExpression(0, &index));
        RETURN_IF_ERROR(Expect("]"));
        Node n;
        n.op = Op::kIndexer;
        n.lhs = term;
        n.rhs = index;
        n.pos = pos;
        term = Add(n);
      } else {
        break;
      }
    }
    *out = term;
    return Status::Ok();
  }

  // An identifier or function call on `receiver` (-1: the focus).
  Status ParseInvocation(int32_t receiver, int32_t* out) {
    Node n;
    n.pos = tok_.pos;
    n.name = tok_.delimited ? tok_.text : Keep(tok_.text);
    n.lhs = receiver;
    bool delimited = tok_.delimited;
    RETURN_IF_ERROR(Next());
    if (IsPunct("(") && !delimited) {
      RETURN_IF_ERROR(Next());
      std::vector<int32_t> args;
      if (!IsPunct(")")) {
        for (;;) {
          int32_t arg;
          RETURN_IF_ERROR(ParseExpression(0, &arg));
          args.push_back(arg);
          if (IsPunct(",")) {
            RETURN_IF_ERROR(Next());
            continue;
          }
          break;
        }
      }
      RETURN_IF_ERROR(Expect(")"));
      n.op = Op::kCall;
      n.args_begin = static_cast<uint32_t>(program_->args.size());
      n.args_count = static_cast<uint32_t>(args.size());
      program_->args.insert(program_->args.end(), args.begin(), args.end());
    } else {
      n.op = Op::kIdentifier;
    }
    *out = Add(n);
    return Status::Ok();
  }

  static bool IsCalendarUnit(std::string_view s) {
    static constexpr std::string_view kUnits[] = {
        "year", "years", "month",  "months",  "week",   "weeks",   "day",         "days",
        "hour", "hours", "minute", "minutes", "second", "seconds", "millisecond", "milliseconds"};
    for (std::string_view u : kUnits) {
      if (s == u) return true;
    }
    return false;
  }

  Status ParseTerm(int32_t* out) {
    Node n;
    n.pos = tok_.pos;
    switch (tok_.kind) {
      case Tok::kEnd: return Error(tok_.pos, "unexpected end of expression");
      case Tok::kNumber: {
        std::string_view text = tok_.text;
        RETURN_IF_ERROR(Next());
        bool is_long = !text.empty() && text.back() == 'L';
        if (is_long) text.remove_suffix(1);
        auto d = Decimal::Parse(text);
        if (!d) return Error(n.pos, "bad number");
        bool integer = text.find('.') == std::string_view::npos;
        // A quantity: a number followed by a unit string or calendar keyword.
        if (tok_.kind == Tok::kString ||
            (tok_.kind == Tok::kIdentifier && !tok_.delimited && IsCalendarUnit(tok_.text))) {
          auto* q = program_->arena->AllocateArray<Quantity>(1);
          new (q) Quantity();
          q->value = *d;
          q->unit = tok_.kind == Tok::kString ? tok_.text : Keep(tok_.text);
          q->calendar = tok_.kind == Tok::kIdentifier;
          RETURN_IF_ERROR(Next());
          n.op = Op::kLiteral;
          n.literal = Item::FromQuantity(q);
          *out = Add(n);
          return Status::Ok();
        }
        n.op = Op::kLiteral;
        if (integer) {
          auto v = d->ToInt64();
          if (!v) return Error(n.pos, "integer out of range");
          n.literal = Item::Integer(*v);
        } else {
          n.literal = Item::FromDecimal(*d);
        }
        *out = Add(n);
        return Status::Ok();
      }
      case Tok::kString: {
        n.op = Op::kLiteral;
        n.literal = Item::String(tok_.text);
        RETURN_IF_ERROR(Next());
        *out = Add(n);
        return Status::Ok();
      }
      case Tok::kDateTime: {
        auto dt = DateTime::ParseLiteral(tok_.text);
        if (!dt) return Error(n.pos, "malformed date/time literal @" + std::string(tok_.text));
        n.op = Op::kLiteral;
        n.literal = Item::FromDateTime(*dt);
        RETURN_IF_ERROR(Next());
        *out = Add(n);
        return Status::Ok();
      }
      case Tok::kVariable: {
        n.op = Op::kVariable;
        n.name = Keep(tok_.text);
        RETURN_IF_ERROR(Next());
        *out = Add(n);
        return Status::Ok();
      }
      case Tok::kSpecial: {
        n.op = tok_.text == "$this" ? Op::kThis : (tok_.text == "$index" ? Op::kIndex : Op::kTotal);
        RETURN_IF_ERROR(Next());
        *out = Add(n);
        return Status::Ok();
      }
      case Tok::kPunct: {
        if (IsPunct("(")) {
          RETURN_IF_ERROR(Next());
          RETURN_IF_ERROR(ParseExpression(0, out));
          return Expect(")");
        }
        if (IsPunct("{")) {
          RETURN_IF_ERROR(Next());
          RETURN_IF_ERROR(Expect("}"));
          n.op = Op::kEmpty;
          *out = Add(n);
          return Status::Ok();
        }
        return Error(tok_.pos, "unexpected '" + std::string(tok_.text) + "'");
      }
      case Tok::kIdentifier: {
        if (!tok_.delimited && (tok_.text == "true" || tok_.text == "false")) {
          n.op = Op::kLiteral;
          n.literal = Item::Boolean(tok_.text == "true");
          RETURN_IF_ERROR(Next());
          *out = Add(n);
          return Status::Ok();
        }
        return ParseInvocation(-1, out);
      }
    }
    return Error(tok_.pos, "unexpected token");
  }

  std::string_view src_;
  Program* program_;
  size_t at_ = 0;
  Token tok_;
  int depth_ = 0;
};

}  // namespace

Status Parse(std::string_view text, Program* program) {
  Parser parser(text, program);
  return parser.Run();
}

}  // namespace bevan::fhirpath::internal
