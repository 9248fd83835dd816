// Compilation: resolves the parsed program against the R4 model.
//
// Walks the tree once with the static type of the focus and of $this,
// turning identifiers into member accesses (with the element resolved when
// the input type is known), type filters or run-time lookups; checks
// function names, arity and type specifiers; and precompiles constant
// regular expressions.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "fhirpath/program.h"

namespace bevan::fhirpath::internal {

namespace {

// What the compiler knows about a node's result.
struct SType {
  enum Kind : uint8_t { kAny, kEmpty, kFhir, kSystem };
  Kind kind = kAny;
  const fhir::TypeDef* fhir = nullptr;     // kFhir: the one type, or null with `choices`
  std::span<const fhir::TypeRef> choices;  // kFhir: the types of a choice element
  TypeSpec::System system = TypeSpec::System::kNone;
  bool unordered = false;

  static SType Any() { return {}; }
  static SType Empty() {
    SType t;
    t.kind = kEmpty;
    return t;
  }
  static SType Fhir(const fhir::TypeDef* type) {
    SType t;
    t.kind = kFhir;
    t.fhir = type;
    return t;
  }
  static SType System(TypeSpec::System s) {
    SType t;
    t.kind = kSystem;
    t.system = s;
    return t;
  }
};

struct Scope {
  SType focus;
  SType this_type;
};

enum ArgKind : uint8_t { kValue, kLambda, kType };

struct FuncDef {
  std::string_view name;
  Func func;
  uint8_t min_args;
  uint8_t max_args;
  ArgKind arg0 = kValue;  // kind of the first argument
  ArgKind rest = kValue;  // kind of the others
};

constexpr uint8_t kMany = 255;

constexpr FuncDef kFunctions[] = {
    {"empty", Func::kEmpty, 0, 0},
    {"exists", Func::kExists, 0, 1, kLambda},
    {"all", Func::kAll, 1, 1, kLambda},
    {"allTrue", Func::kAllTrue, 0, 0},
    {"anyTrue", Func::kAnyTrue, 0, 0},
    {"allFalse", Func::kAllFalse, 0, 0},
    {"anyFalse", Func::kAnyFalse, 0, 0},
    {"subsetOf", Func::kSubsetOf, 1, 1},
    {"supersetOf", Func::kSupersetOf, 1, 1},
    {"count", Func::kCount, 0, 0},
    {"distinct", Func::kDistinct, 0, 0},
    {"isDistinct", Func::kIsDistinct, 0, 0},
    {"where", Func::kWhere, 1, 1, kLambda},
    {"select", Func::kSelect, 1, 1, kLambda},
    {"repeat", Func::kRepeat, 1, 1, kLambda},
    {"ofType", Func::kOfType, 1, 1, kType},
    {"single", Func::kSingle, 0, 0},
    {"first", Func::kFirst, 0, 0},
    {"last", Func::kLast, 0, 0},
    {"tail", Func::kTail, 0, 0},
    {"skip", Func::kSkip, 1, 1},
    {"take", Func::kTake, 1, 1},
    {"intersect", Func::kIntersect, 1, 1},
    {"exclude", Func::kExclude, 1, 1},
    {"union", Func::kUnion, 1, 1},
    {"combine", Func::kCombine, 1, 1},
    {"iif", Func::kIif, 2, 3, kLambda, kLambda},
    {"toBoolean", Func::kToBoolean, 0, 0},
    {"convertsToBoolean", Func::kConvertsToBoolean, 0, 0},
    {"toInteger", Func::kToInteger, 0, 0},
    {"convertsToInteger", Func::kConvertsToInteger, 0, 0},
    {"toDecimal", Func::kToDecimal, 0, 0},
    {"convertsToDecimal", Func::kConvertsToDecimal, 0, 0},
    {"toString", Func::kToString, 0, 0},
    {"convertsToString", Func::kConvertsToString, 0, 0},
    {"toDate", Func::kToDate, 0, 0},
    {"convertsToDate", Func::kConvertsToDate, 0, 0},
    {"toDateTime", Func::kToDateTime, 0, 0},
    {"convertsToDateTime", Func::kConvertsToDateTime, 0, 0},
    {"toTime", Func::kToTime, 0, 0},
    {"convertsToTime", Func::kConvertsToTime, 0, 0},
    {"toQuantity", Func::kToQuantity, 0, 1},
    {"convertsToQuantity", Func::kConvertsToQuantity, 0, 1},
    {"indexOf", Func::kIndexOf, 1, 1},
    {"lastIndexOf", Func::kLastIndexOf, 1, 1},
    {"substring", Func::kSubstring, 1, 2},
    {"startsWith", Func::kStartsWith, 1, 1},
    {"endsWith", Func::kEndsWith, 1, 1},
    {"contains", Func::kContains, 1, 1},
    {"upper", Func::kUpper, 0, 0},
    {"lower", Func::kLower, 0, 0},
    {"replace", Func::kReplace, 2, 2},
    {"matches", Func::kMatches, 1, 1},
    {"matchesFull", Func::kMatchesFull, 1, 1},
    {"replaceMatches", Func::kReplaceMatches, 2, 2},
    {"length", Func::kLength, 0, 0},
    {"toChars", Func::kToChars, 0, 0},
    {"trim", Func::kTrim, 0, 0},
    {"split", Func::kSplit, 1, 1},
    {"join", Func::kJoin, 0, 1},
    {"encode", Func::kEncode, 1, 1},
    {"decode", Func::kDecode, 1, 1},
    {"escape", Func::kEscape, 1, 1},
    {"unescape", Func::kUnescape, 1, 1},
    {"abs", Func::kAbs, 0, 0},
    {"ceiling", Func::kCeiling, 0, 0},
    {"exp", Func::kExp, 0, 0},
    {"floor", Func::kFloor, 0, 0},
    {"ln", Func::kLn, 0, 0},
    {"log", Func::kLog, 1, 1},
    {"power", Func::kPower, 1, 1},
    {"round", Func::kRound, 0, 1},
    {"sqrt", Func::kSqrt, 0, 0},
    {"truncate", Func::kTruncate, 0, 0},
    {"children", Func::kChildren, 0, 0},
    {"descendants", Func::kDescendants, 0, 0},
    {"trace", Func::kTrace, 1, 2, kValue, kLambda},
    {"now", Func::kNow, 0, 0},
    {"timeOfDay", Func::kTimeOfDay, 0, 0},
    {"today", Func::kToday, 0, 0},
    {"aggregate", Func::kAggregate, 1, 2, kLambda, kValue},
    {"sort", Func::kSort, 0, kMany, kLambda, kLambda},
    {"not", Func::kNot, 0, 0},
    {"is", Func::kIs, 1, 1, kType},
    {"as", Func::kAs, 1, 1, kType},
    {"type", Func::kType, 0, 0},
    {"lowBoundary", Func::kLowBoundary, 0, 1},
    {"highBoundary", Func::kHighBoundary, 0, 1},
    {"precision", Func::kPrecision, 0, 0},
    {"comparable", Func::kComparable, 1, 1},
    {"extension", Func::kExtension, 1, 1},
    {"hasValue", Func::kHasValue, 0, 0},
    {"getValue", Func::kGetValue, 0, 0},
    {"resolve", Func::kResolve, 0, 0},
    {"htmlChecks", Func::kHtmlChecks, 0, 0},
    {"htmlchecks", Func::kHtmlChecks, 0, 0},
    {"conformsTo", Func::kConformsTo, 1, 1},
    {"memberOf", Func::kMemberOf, 1, 1},
    {"subsumes", Func::kSubsumes, 1, 1},
    {"subsumedBy", Func::kSubsumedBy, 1, 1},
    {"elementDefinition", Func::kElementDefinition, 0, 0},
    {"slice", Func::kSlice, 2, 2},
    {"checkModifiers", Func::kCheckModifiers, 1, 1},
    {"yearOf", Func::kYearOf, 0, 0},
    {"monthOf", Func::kMonthOf, 0, 0},
    {"dayOf", Func::kDayOf, 0, 0},
    {"hourOf", Func::kHourOf, 0, 0},
    {"minuteOf", Func::kMinuteOf, 0, 0},
    {"secondOf", Func::kSecondOf, 0, 0},
    {"millisecondOf", Func::kMillisecondOf, 0, 0},
};

const FuncDef* FindFunction(std::string_view name) {
  for (const FuncDef& f : kFunctions) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool IsAbstractish(const fhir::TypeDef* t) {
  return t->is_abstract || t->name == "Element" || t->name == "BackboneElement";
}

// The element called `name` (the FHIRPath name, "value" for value[x]).
const fhir::ElementDef* FindByName(const fhir::TypeDef* type, std::string_view name) {
  const fhir::TypeRef* choice = nullptr;
  const fhir::ElementDef* e = type->FindElement(name, &choice);
  if (e != nullptr && choice == nullptr) return e;
  for (const fhir::ElementDef& el : type->elements) {
    if (el.is_choice && el.name == name) return &el;
  }
  return nullptr;
}

SType ElementType(const fhir::ElementDef* e) {
  if (e->is_choice) {
    SType t;
    t.kind = SType::kFhir;
    t.choices = e->types;
    return t;
  }
  return SType::Fhir(e->types[0].type);
}

class Compiler {
 public:
  Compiler(Program* program, const CompileOptions& options) : p_(program), options_(options) {}

  Status Run() {
    Scope scope;
    if (!options_.context_type.empty()) {
      const fhir::TypeDef* t = fhir::FindType(options_.context_type);
      if (t == nullptr)
        return InvalidArgumentError("unknown FHIRPath context type " + std::string(options_.context_type));
      p_->context_type = t;
      scope.focus = SType::Fhir(t);
      scope.this_type = scope.focus;
    }
    SType result;
    RETURN_IF_ERROR(Compile(p_->root, scope, &result));
    FuseMemberChains();
    return Status::Ok();
  }

 private:
  Node& N(int32_t i) { return p_->nodes[static_cast<size_t>(i)]; }

  // A member step the evaluator can take without building items: its
  // element and type resolved, no choice. Steps before the last must lead
  // to objects whose type needs no refinement (not primitives, not resources).
  static bool ChainStep(const Node& m, bool last) {
    if (m.op != Op::kMember || m.element == nullptr || m.parent == nullptr || m.element->is_choice ||
        m.element->types.size() != 1) {
      return false;
    }
    fhir::TypeKind k = m.element->types[0].type->kind;
    return last || (k != fhir::TypeKind::kPrimitive && k != fhir::TypeKind::kResource);
  }

  void FuseMemberChains() {
    for (Node& n : p_->nodes) {
      if (!ChainStep(n, true)) continue;
      int len = 1;
      const Node* outer = &n;
      while (outer->lhs >= 0 && len < 8) {
        const Node& inner = N(outer->lhs);
        if (!ChainStep(inner, false) || inner.element->types[0].type != outer->parent) break;
        ++len;
        outer = &inner;
      }
      if (len >= 2) n.chain = static_cast<uint8_t>(len);
    }
  }

  Status Error(const Node& n, const std::string& message) {
    return InvalidArgumentError("FHIRPath error at " + std::to_string(n.pos) + ": " + message);
  }

  std::string_view Keep(std::string_view s) { return p_->arena->CopyString(s); }

  Status Compile(int32_t index, const Scope& scope, SType* out) {
    Node& n = N(index);
    switch (n.op) {
      case Op::kEmpty: *out = SType::Empty(); return Status::Ok();
      case Op::kLiteral: *out = LiteralType(n.literal); return Status::Ok();
      case Op::kThis: *out = scope.this_type; return Status::Ok();
      case Op::kIndex: *out = SType::System(TypeSpec::System::kInteger); return Status::Ok();
      case Op::kTotal: *out = SType::Any(); return Status::Ok();
      case Op::kVariable: return CompileVariable(n, out);
      case Op::kIndexer: {
        SType base;
        RETURN_IF_ERROR(Compile(n.lhs, scope, &base));
        SType index_type;
        RETURN_IF_ERROR(Compile(n.rhs, Scope{scope.this_type, scope.this_type}, &index_type));
        RETURN_IF_ERROR(CheckOrdered(N(index), base, "an indexer"));
        *out = base;
        return Status::Ok();
      }
      case Op::kNegate: return Compile(n.lhs, scope, out);
      case Op::kIs:
      case Op::kAs: {
        SType operand;
        RETURN_IF_ERROR(Compile(n.lhs, scope, &operand));
        Node& m = N(index);
        if (!ResolveTypeSpec(m.name, &m.type)) return Error(m, "unknown type " + std::string(m.name));
        *out = m.op == Op::kIs ? SType::System(TypeSpec::System::kBoolean) : SpecType(m.type);
        return Status::Ok();
      }
      case Op::kBinary: return CompileBinary(index, scope, out);
      case Op::kIdentifier: return CompileIdentifier(index, scope, out);
      case Op::kCall: return CompileCall(index, scope, out);
      default: return Error(n, "internal: unexpected node");
    }
  }

  static SType LiteralType(const Item& item) {
    switch (item.kind()) {
      case ItemKind::kBoolean: return SType::System(TypeSpec::System::kBoolean);
      case ItemKind::kInteger: return SType::System(TypeSpec::System::kInteger);
      case ItemKind::kDecimal: return SType::System(TypeSpec::System::kDecimal);
      case ItemKind::kString: return SType::System(TypeSpec::System::kString);
      case ItemKind::kDate: return SType::System(TypeSpec::System::kDate);
      case ItemKind::kDateTime: return SType::System(TypeSpec::System::kDateTime);
      case ItemKind::kTime: return SType::System(TypeSpec::System::kTime);
      case ItemKind::kQuantity: return SType::System(TypeSpec::System::kQuantity);
      default: return SType::Any();
    }
  }

  static SType SpecType(const TypeSpec& t) {
    if (t.system != TypeSpec::System::kNone) return SType::System(t.system);
    if (t.fhir == nullptr) return SType::Empty();
    return SType::Fhir(t.fhir);
  }

  Status CheckOrdered(const Node& n, const SType& input, std::string_view what) {
    if (options_.check_ordered_functions && input.unordered) {
      return Error(n, std::string(what) +
                          " needs an ordered collection, but its input (children() or descendants()) "
                          "has no defined order");
    }
    return Status::Ok();
  }

  Status CompileVariable(Node& n, SType* out) {
    std::string_view name = n.name;
    auto literal = [&](std::string_view value) {
      n.op = Op::kLiteral;
      n.literal = Item::String(value);
      *out = SType::System(TypeSpec::System::kString);
      return Status::Ok();
    };
    if (name == "ucum") return literal("http://unitsofmeasure.org");
    if (name == "sct") return literal("http://snomed.info/sct");
    if (name == "loinc") return literal("http://loinc.org");
    if (name.starts_with("vs-")) return literal(Keep("http://hl7.org/fhir/ValueSet/" + std::string(name.substr(3))));
    if (name.starts_with("ext-")) {
      return literal(Keep("http://hl7.org/fhir/StructureDefinition/" + std::string(name.substr(4))));
    }
    if (name == "context") {
      *out = p_->context_type != nullptr ? SType::Fhir(p_->context_type) : SType::Any();
      return Status::Ok();
    }
    if (name == "resource" || name == "rootResource") {
      *out = SType::Any();
      return Status::Ok();
    }
    for (std::string_view v : options_.variables) {
      if (v == name) {
        *out = SType::Any();
        return Status::Ok();
      }
    }
    return Error(n, "unknown variable %" + std::string(name));
  }

  Status CompileBinary(int32_t index, const Scope& scope, SType* out) {
    SType a, b;
    RETURN_IF_ERROR(Compile(N(index).lhs, scope, &a));
    RETURN_IF_ERROR(Compile(N(index).rhs, scope, &b));
    Node& n = N(index);
    switch (n.binop) {
      case BinOp::kUnion:
        *out = (a.kind == SType::kFhir && b.kind == SType::kFhir && a.fhir == b.fhir && a.fhir != nullptr)
                   ? a
                   : SType::Any();
        return Status::Ok();
      case BinOp::kMul:
      case BinOp::kDiv:
      case BinOp::kIntDiv:
      case BinOp::kMod:
      case BinOp::kAdd:
      case BinOp::kSub: *out = SType::Any(); return Status::Ok();
      case BinOp::kConcat: *out = SType::System(TypeSpec::System::kString); return Status::Ok();
      default: *out = SType::System(TypeSpec::System::kBoolean); return Status::Ok();
    }
  }

  // An identifier: a member of the input, or at a path's start possibly a
  // type name (Patient.name).
  Status CompileIdentifier(int32_t index, const Scope& scope, SType* out) {
    SType input;
    bool at_root = N(index).lhs < 0;
    if (at_root) {
      input = scope.focus;
    } else {
      RETURN_IF_ERROR(Compile(N(index).lhs, scope, &input));
    }
    Node& n = N(index);
    if (input.kind == SType::kEmpty) {
      n.op = Op::kNothing;
      *out = SType::Empty();
      return Status::Ok();
    }
    if (input.kind == SType::kSystem) {
      n.op = Op::kMember;  // TypeInfo.name / .namespace, else empty
      *out = SType::Any();
      return Status::Ok();
    }
    if (input.kind == SType::kAny) {
      n.op = Op::kMember;
      if (at_root && !n.name.empty() && n.name[0] >= 'A' && n.name[0] <= 'Z') {
        if (const fhir::TypeDef* t = fhir::FindType(n.name)) {
          n.op = Op::kRootName;
          n.type.fhir = t;
          *out = SType::Fhir(t);
          return Status::Ok();
        }
      }
      *out = SType::Any();
      return Status::Ok();
    }
    // A FHIR type (or the types of a choice element) is known.
    std::span<const fhir::TypeRef> candidates;
    fhir::TypeRef single{input.fhir, {}};
    if (input.fhir != nullptr) {
      candidates = std::span<const fhir::TypeRef>(&single, 1);
    } else {
      candidates = input.choices;
    }
    const fhir::ElementDef* found = nullptr;
    const fhir::TypeDef* found_in = nullptr;
    int found_count = 0;
    bool any_abstract = false;
    for (const fhir::TypeRef& ref : candidates) {
      const fhir::TypeDef* t = ref.type;
      if (IsAbstractish(t)) any_abstract = true;
      const fhir::ElementDef* e = FindByName(t, n.name);
      if (e == nullptr && options_.allow_choice_type_names) e = t->FindElement(n.name);
      if (e != nullptr) {
        if (found_count == 0) {
          found = e;
          found_in = t;
        }
        ++found_count;
      }
    }
    if (found_count > 0) {
      n.op = Op::kMember;
      if (found_count == 1) {
        n.parent = found_in;
        n.element = found;
        const fhir::TypeRef* choice = nullptr;
        found_in->FindElement(n.name, &choice);
        if (choice != nullptr) {
          *out = SType::Fhir(choice->type);  // lenient valueQuantity
        } else {
          *out = ElementType(found);
        }
      } else {
        *out = SType::Any();
      }
      out->unordered = input.unordered;
      return Status::Ok();
    }
    if (at_root) {
      if (const fhir::TypeDef* t = fhir::FindType(n.name)) {
        // A type name: filters the focus by type.
        n.type.fhir = t;
        bool possible = false;
        for (const fhir::TypeRef& ref : candidates) {
          if (ref.type->IsA(t) || t->IsA(ref.type)) possible = true;
        }
        if (possible) {
          n.op = Op::kTypeFilter;
          *out = SType::Fhir(t);
          return Status::Ok();
        }
        if (options_.strict) {
          return Error(n, "the context is " + std::string(candidates[0].type->name) + ", not " + std::string(t->name));
        }
        n.op = Op::kNothing;
        *out = SType::Empty();
        return Status::Ok();
      }
    }
    if (any_abstract) {
      n.op = Op::kMember;  // resolved at run time against the actual resource type
      *out = SType::Any();
      return Status::Ok();
    }
    std::string type_names;
    for (const fhir::TypeRef& ref : candidates) {
      if (!type_names.empty()) type_names += ", ";
      type_names += ref.type->name;
    }
    return Error(n, "'" + std::string(n.name) + "' is not an element of " + type_names);
  }

  // Flattens an identifier chain (FHIR.`Patient`) into a qualified name.
  bool QualifiedName(int32_t index, std::string* out) {
    const Node& n = N(index);
    if (n.op != Op::kIdentifier) return false;
    if (n.lhs >= 0) {
      if (!QualifiedName(n.lhs, out)) return false;
      out->push_back('.');
    }
    out->append(n.name);
    return true;
  }

  Status CompileCall(int32_t index, const Scope& scope, SType* out) {
    SType input;
    if (N(index).lhs < 0) {
      input = scope.focus;
    } else {
      RETURN_IF_ERROR(Compile(N(index).lhs, scope, &input));
    }
    Node& n = N(index);
    const FuncDef* def = FindFunction(n.name);
    if (def == nullptr) return Error(n, "unknown function " + std::string(n.name) + "()");
    if (n.args_count < def->min_args || (def->max_args != kMany && n.args_count > def->max_args)) {
      return Error(n, "wrong number of arguments to " + std::string(n.name) + "()");
    }
    n.op = Op::kFunction;
    n.func = def->func;
    SType item_type = input;
    item_type.unordered = false;
    Scope lambda{item_type, item_type};
    Scope value{scope.this_type, scope.this_type};
    std::vector<SType> arg_types(n.args_count);
    for (uint32_t i = 0; i < n.args_count; ++i) {
      int32_t arg = p_->args[N(index).args_begin + i];
      ArgKind kind = i == 0 ? def->arg0 : def->rest;
      if (kind == kType) {
        std::string name;
        if (!QualifiedName(arg, &name)) return Error(N(arg), "expected a type name");
        if (!ResolveTypeSpec(name, &N(index).type)) return Error(N(arg), "unknown type " + name);
        continue;
      }
      if (N(index).func == Func::kSort && N(arg).op == Op::kNegate) {
        RETURN_IF_ERROR(Compile(N(arg).lhs, lambda, &arg_types[i]));
        continue;
      }
      RETURN_IF_ERROR(Compile(arg, kind == kLambda ? lambda : value, &arg_types[i]));
    }
    Node& m = N(index);
    switch (m.func) {
      case Func::kFirst:
      case Func::kLast:
      case Func::kTail:
      case Func::kSkip:
      case Func::kTake:
      case Func::kSingle:
        RETURN_IF_ERROR(CheckOrdered(m, input, std::string(m.name) + "()"));
        *out = input;
        return Status::Ok();
      case Func::kWhere:
      case Func::kDistinct:
      case Func::kTrace:
      case Func::kIntersect:
      case Func::kExclude:
      case Func::kSort:
      case Func::kCheckModifiers: *out = input; return Status::Ok();
      case Func::kSelect: *out = arg_types[0]; return Status::Ok();
      case Func::kOfType:
        if (m.lhs >= 0 && m.type.fhir != nullptr && m.type.fhir->kind == fhir::TypeKind::kResource &&
            !m.type.fhir->is_abstract) {
          const Node& member = N(m.lhs);
          const fhir::ElementDef* e = member.element;
          m.fused_member = member.op == Op::kMember && e != nullptr && member.parent != nullptr && !e->is_choice &&
                           e->types.size() == 1 && e->types[0].type->kind == fhir::TypeKind::kResource &&
                           e->types[0].type->is_abstract;
        }
        *out = SpecType(m.type);
        return Status::Ok();
      case Func::kAs: *out = SpecType(m.type); return Status::Ok();
      case Func::kChildren:
      case Func::kDescendants:
        *out = SType::Any();
        out->unordered = true;
        return Status::Ok();
      case Func::kExtension: *out = SType::Fhir(fhir::FindType("Extension")); return Status::Ok();
      case Func::kIif: {
        const SType& c = arg_types[0];
        if (c.kind == SType::kSystem && c.system != TypeSpec::System::kBoolean) {
          return Error(m, "the criterion of iif() must be a Boolean");
        }
        *out = SType::Any();
        return Status::Ok();
      }
      case Func::kMatches:
      case Func::kMatchesFull:
      case Func::kReplaceMatches: {
        const Node& pattern = N(p_->args[m.args_begin]);
        if (pattern.op == Op::kLiteral && pattern.literal.kind() == ItemKind::kString) {
          std::string_view text = pattern.literal.string();
          auto re = CompileRegex(text);
          if (!re.ok()) return Error(pattern, re.status().message());
          p_->regexes.push_back(std::move(re).value());
          N(index).regex = static_cast<int32_t>(p_->regexes.size() - 1);
        }
        *out = SType::Any();
        return Status::Ok();
      }
      default: *out = SType::Any(); return Status::Ok();
    }
  }

  Program* p_;
  const CompileOptions& options_;
};

}  // namespace

namespace {

constexpr uint64_t kMaxRegexCount = 1000;    // a repetition bound or back-reference number
constexpr uint64_t kMaxRegexStates = 10000;  // the automaton's size, estimated

// Reads a decimal number at pattern[*i], saturating above kMaxRegexCount.
uint64_t ReadCount(std::string_view pattern, size_t* i) {
  uint64_t v = 0;
  while (*i < pattern.size() && pattern[*i] >= '0' && pattern[*i] <= '9') {
    v = std::min<uint64_t>(v * 10 + static_cast<uint64_t>(pattern[*i] - '0'), kMaxRegexCount + 1);
    ++*i;
  }
  return v;
}

// Bounds the pattern before the regex engine sees it (kept from the
// std::regex days, when libstdc++ overflowed on long bounds and copied a
// repeated atom once per repetition; RE2 has limits of its own, these make
// the error messages ours). The size estimate counts each
// atom once and multiplies a repeated atom (a group: its contents) by its
// upper bound. Also refuses a quantifier on a quantifier ('.*+', 'a+*'):
// not ECMAScript, but libstdc++ takes it as a nested repetition, which
// backtracks exponentially. The rest of the syntax is left to the engine.
Status CheckRegexLimits(std::string_view pattern) {
  struct Frame {
    uint64_t size = 0;  // estimated states so far
    uint64_t last = 0;  // of the last atom, which a quantifier repeats
  };
  std::vector<Frame> stack(1);
  auto add = [](uint64_t a, uint64_t b) { return std::min(a + b, kMaxRegexStates + 1); };
  auto too_large = [] {
    return Status(StatusCode::kInvalidArgument, "invalid regular expression: repetitions too large");
  };
  bool in_class = false;
  bool after_quantifier = false;  // a '?' there makes the quantifier lazy
  for (size_t i = 0; i < pattern.size();) {
    char c = pattern[i];
    Frame& f = stack.back();
    bool quantifier = !in_class && (c == '*' || c == '+' || c == '?' || c == '{');
    if (quantifier && after_quantifier && c != '?') {
      return Status(StatusCode::kInvalidArgument, "invalid regular expression: a quantifier on a quantifier");
    }
    after_quantifier = quantifier;
    if (c == '\\' && i + 1 < pattern.size()) {
      ++i;
      if (pattern[i] >= '0' && pattern[i] <= '9' && !in_class) {
        if (ReadCount(pattern, &i) > kMaxRegexCount) return too_large();
      } else {
        ++i;
      }
      if (!in_class) {
        f.size = add(f.size, 1);
        f.last = 1;
      }
      continue;
    }
    ++i;
    if (in_class) {
      if (c == ']') in_class = false;
      continue;
    }
    switch (c) {
      case '[':
        in_class = true;
        f.size = add(f.size, 1);
        f.last = 1;
        break;
      case '(': stack.emplace_back(); break;
      case ')':
        if (stack.size() > 1) {
          uint64_t inner = std::max<uint64_t>(stack.back().size, 1);
          stack.pop_back();
          stack.back().size = add(stack.back().size, inner);
          stack.back().last = inner;
        }
        break;
      case '{': {
        uint64_t lo = ReadCount(pattern, &i), hi = lo;
        if (i < pattern.size() && pattern[i] == ',') {
          ++i;
          hi = (i < pattern.size() && pattern[i] >= '0' && pattern[i] <= '9') ? ReadCount(pattern, &i) : lo + 1;
        }
        if (lo > kMaxRegexCount || hi > kMaxRegexCount) return too_large();
        if (i < pattern.size() && pattern[i] == '}') ++i;
        uint64_t k = std::max<uint64_t>(std::max(lo, hi), 1);
        uint64_t repeated = std::min(f.last * k, kMaxRegexStates + 1);
        f.size = add(f.size, repeated - std::min(f.last, repeated));
        f.last = repeated;
        break;
      }
      case '*':
      case '+':
      case '?':
      case '|':
      case '^':
      case '$': break;
      default: f.size = add(f.size, 1); f.last = 1;
    }
    if (stack.back().size > kMaxRegexStates) return too_large();
  }
  for (const Frame& f : stack) {
    if (f.size > kMaxRegexStates) return too_large();
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<re2::RE2>> CompileRegex(std::string_view pattern) {
  RETURN_IF_ERROR(CheckRegexLimits(pattern));
  RE2::Options options;
  options.set_dot_nl(true);  // single-line mode
  options.set_log_errors(false);
  options.set_max_mem(8 << 20);
  auto re = std::make_unique<re2::RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re->ok()) return Status(StatusCode::kInvalidArgument, "invalid regular expression: " + re->error());
  return re;
}

std::string_view SystemTypeName(TypeSpec::System s) {
  switch (s) {
    case TypeSpec::System::kBoolean: return "Boolean";
    case TypeSpec::System::kInteger: return "Integer";
    case TypeSpec::System::kDecimal: return "Decimal";
    case TypeSpec::System::kString: return "String";
    case TypeSpec::System::kDate: return "Date";
    case TypeSpec::System::kDateTime: return "DateTime";
    case TypeSpec::System::kTime: return "Time";
    case TypeSpec::System::kQuantity: return "Quantity";
    case TypeSpec::System::kAny: return "Any";
    case TypeSpec::System::kNone: break;
  }
  return "";
}

bool ResolveTypeSpec(std::string_view name, TypeSpec* out) {
  auto system = [&](std::string_view n) {
    static constexpr TypeSpec::System kAll[] = {
        TypeSpec::System::kBoolean, TypeSpec::System::kInteger,  TypeSpec::System::kDecimal,
        TypeSpec::System::kString,  TypeSpec::System::kDate,     TypeSpec::System::kDateTime,
        TypeSpec::System::kTime,    TypeSpec::System::kQuantity, TypeSpec::System::kAny};
    for (TypeSpec::System s : kAll) {
      if (SystemTypeName(s) == n) {
        out->system = s;
        out->fhir = nullptr;
        return true;
      }
    }
    return false;
  };
  auto fhir_type = [&](std::string_view n) {
    const fhir::TypeDef* t = fhir::FindType(n);
    if (t == nullptr) return false;
    out->system = TypeSpec::System::kNone;
    out->fhir = t;
    return true;
  };
  if (name.starts_with("System.")) {
    if (system(name.substr(7))) return true;
    // Not a System type (System.Patient): valid, but nothing is of it.
    out->system = TypeSpec::System::kNone;
    out->fhir = nullptr;
    return true;
  }
  if (name.starts_with("FHIR.")) return fhir_type(name.substr(5));
  return fhir_type(name) || system(name);
}

Status CompileProgram(Program* program, const CompileOptions& options) {
  Compiler compiler(program, options);
  return compiler.Run();
}

}  // namespace bevan::fhirpath::internal
