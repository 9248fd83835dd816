// Internal: the compiled form of an expression, shared by the parser
// (parser.cpp), the compiler (compiler.cpp) and the evaluator (eval.cpp).
//
// A Program is a flat array of nodes; children are referred to by index.
// Once compiled it is never modified.
#pragma once

#include <re2/re2.h>
#include <cstdint>
#include <memory>

#include <string>
#include <string_view>
#include <vector>

#include "common/arena.h"
#include "fhir/model.h"
#include "fhirpath/fhirpath.h"

namespace bevan::fhirpath::internal {

enum class Op : uint8_t {
  // Produced by the parser.
  kEmpty,       // {}
  kLiteral,     // literal
  kIdentifier,  // name; lhs is the receiver or -1 for the focus
  kCall,        // name(args); lhs is the receiver or -1 for the focus
  kThis,
  kIndex,
  kTotal,
  kVariable,  // %name
  kIndexer,   // lhs[rhs]
  kNegate,
  kIs,  // lhs is type (name holds the qualified type name)
  kAs,
  kBinary,  // binop
  // Produced by the compiler from kIdentifier.
  kMember,      // child elements named `name`
  kTypeFilter,  // a type name at a path's start: keeps items of that type
  kRootName,    // unknown focus type: a type filter if the item has that type, else a member
  kNothing,     // statically empty (e.g. Encounter.x on a Patient, non-strict)
  kFunction,    // func
};

enum class BinOp : uint8_t {
  kMul,
  kDiv,
  kIntDiv,
  kMod,
  kAdd,
  kSub,
  kConcat,
  kUnion,
  kLt,
  kLe,
  kGt,
  kGe,
  kEq,
  kNe,
  kEquiv,
  kNotEquiv,
  kIn,
  kContains,
  kAnd,
  kOr,
  kXor,
  kImplies,
};

enum class Func : uint8_t {
  kEmpty,
  kExists,
  kAll,
  kAllTrue,
  kAnyTrue,
  kAllFalse,
  kAnyFalse,
  kSubsetOf,
  kSupersetOf,
  kCount,
  kDistinct,
  kIsDistinct,
  kWhere,
  kSelect,
  kRepeat,
  kOfType,
  kSingle,
  kFirst,
  kLast,
  kTail,
  kSkip,
  kTake,
  kIntersect,
  kExclude,
  kUnion,
  kCombine,
  kIif,
  kToBoolean,
  kConvertsToBoolean,
  kToInteger,
  kConvertsToInteger,
  kToDecimal,
  kConvertsToDecimal,
  kToString,
  kConvertsToString,
  kToDate,
  kConvertsToDate,
  kToDateTime,
  kConvertsToDateTime,
  kToTime,
  kConvertsToTime,
  kToQuantity,
  kConvertsToQuantity,
  kIndexOf,
  kLastIndexOf,
  kSubstring,
  kStartsWith,
  kEndsWith,
  kContains,
  kUpper,
  kLower,
  kReplace,
  kMatches,
  kMatchesFull,
  kReplaceMatches,
  kLength,
  kToChars,
  kTrim,
  kSplit,
  kJoin,
  kEncode,
  kDecode,
  kEscape,
  kUnescape,
  kAbs,
  kCeiling,
  kExp,
  kFloor,
  kLn,
  kLog,
  kPower,
  kRound,
  kSqrt,
  kTruncate,
  kChildren,
  kDescendants,
  kTrace,
  kNow,
  kTimeOfDay,
  kToday,
  kAggregate,
  kSort,
  kNot,
  kIs,
  kAs,
  kType,
  kLowBoundary,
  kHighBoundary,
  kPrecision,
  kComparable,
  kExtension,
  kHasValue,
  kGetValue,
  kResolve,
  kHtmlChecks,
  kConformsTo,
  kMemberOf,
  kSubsumes,
  kSubsumedBy,
  kElementDefinition,
  kSlice,
  kCheckModifiers,
  kDefineVariable,
  kYearOf,
  kMonthOf,
  kDayOf,
  kHourOf,
  kMinuteOf,
  kSecondOf,
  kMillisecondOf,
};

// A System type or a FHIR type, as named in is/as/ofType.
struct TypeSpec {
  enum class System : uint8_t {
    kNone,
    kBoolean,
    kInteger,
    kDecimal,
    kString,
    kDate,
    kDateTime,
    kTime,
    kQuantity,
    kAny
  };
  System system = System::kNone;        // kNone: a FHIR type
  const fhir::TypeDef* fhir = nullptr;  // the FHIR type
};

struct Node {
  Op op = Op::kEmpty;
  BinOp binop = BinOp::kMul;
  Func func = Func::kEmpty;
  bool unordered = false;  // compiler: the result has no defined order
  int32_t lhs = -1;
  int32_t rhs = -1;
  uint32_t args_begin = 0;  // into Program::args
  uint32_t args_count = 0;
  uint32_t pos = 0;  // 1-based source position
  std::string_view name;
  // kMember: the element as resolved for `parent` at compile time (both
  // null when unknown); a choice member matches "<name><Type>" keys.
  const fhir::TypeDef* parent = nullptr;
  const fhir::ElementDef* element = nullptr;
  TypeSpec type;       // kIs, kAs, kTypeFilter, kRootName, ofType/as/is functions
  Item literal;        // kLiteral
  int32_t regex = -1;  // index into Program::regexes for constant patterns
  // ofType(T) of a member whose element is an abstract Resource (Bundle.entry.resource,
  // contained): evaluated in one pass that compares each child's resourceType with T's
  // name, instead of navigating (which looks every resourceType up) and then filtering.
  bool fused_member = false;
  // kMember: this member and the chain-1 members below it (Patient.name.given)
  // are evaluated in one descent through the JSON, without a collection per
  // step; set when every step's element and type are known at compile time.
  uint8_t chain = 0;
};

struct Program {
  std::string text;
  std::vector<Node> nodes;
  std::vector<int32_t> args;
  int32_t root = -1;
  const fhir::TypeDef* context_type = nullptr;
  std::vector<std::unique_ptr<re2::RE2>> regexes;
  std::unique_ptr<Arena> arena = std::make_unique<Arena>(1024);  // literal strings and quantities
};

// Parses `text` into program->nodes; sets program->root.
Status Parse(std::string_view text, Program* program);

// Resolves names and checks the parsed program against the model.
Status CompileProgram(Program* program, const CompileOptions& options);

// A FHIRPath regular expression (matches(), replaceMatches()) as an RE2:
// PCRE-like syntax without backreferences or lookaround, single-line mode
// ('.' matches newlines), matched in time linear in the input whatever the
// pattern (patterns come from clients, e.g. in FHIRPath Patch paths, so a
// backtracking engine would be a denial of service). InvalidArgument when
// malformed, when a repetition bound is over 1000, when nested repetitions
// would make an automaton of over about 10,000 states, or when RE2 would need
// more than 8 MB for it.
Result<std::unique_ptr<re2::RE2>> CompileRegex(std::string_view pattern);

// Names of the TypeSpec::System values ("Boolean").
std::string_view SystemTypeName(TypeSpec::System s);

// Looks up a type specifier: "FHIR.Patient", "System.String", "Patient",
// "Integer". Unqualified names are FHIR types first. False if unknown.
bool ResolveTypeSpec(std::string_view name, TypeSpec* out);

}  // namespace bevan::fhirpath::internal
