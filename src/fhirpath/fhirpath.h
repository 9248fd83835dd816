// FHIRPath for FHIR R4: compile once, evaluate many.
//
//   ASSIGN_OR_RETURN(auto expr, fhirpath::Expression::Compile("Patient.name.given", {.context_type = "Patient"}));
//   Arena arena;
//   ASSIGN_OR_RETURN(fhirpath::Collection given, expr.Evaluate(doc.root(), arena));
//
// Compilation parses the expression, resolves element names against the R4
// model where the input type is known (an element the type does not have is
// an error there, not an empty result at run time), checks function arity
// and type specifiers, and precompiles constant regular expressions and
// units. A compiled Expression is immutable: copies share it, and any number
// of threads may evaluate it at once.
//
// Evaluation reads Bevan's JSON DOM in place (no conversion of the
// resource) and allocates every intermediate collection from the caller's
// Arena; the returned items point into the arena, the expression and the
// input document, and are valid while all three live.
//
// Errors are Status values: InvalidArgument for syntax errors (with the
// 1-based position) and semantic errors at compile time, and for run-time
// errors (a collection of several items where one is required, operands of
// the wrong type, an unknown type name).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/arena.h"
#include "common/status.h"
#include "fhir/model.h"
#include "fhirpath/datetime.h"
#include "fhirpath/decimal.h"
#include "json/json.h"

namespace bevan::fhirpath {

enum class ItemKind : uint8_t {
  kNode,  // an element of the input: FHIR type in type(), JSON value and `_x` extension object
  kBoolean,
  kInteger,
  kDecimal,
  kString,
  kDate,
  kDateTime,
  kTime,
  kQuantity,
  kTypeInfo,  // result of type(): namespace and name
};

// A System.Quantity. `unit` is a UCUM code, or a calendar duration keyword
// (year, month, week, day, hour, minute, second, millisecond, or a plural)
// when `calendar` is set.
struct Quantity {
  Decimal value;
  std::string_view unit;
  bool calendar = false;
};

struct TypeInfo {
  std::string_view ns;    // "System" or "FHIR"
  std::string_view name;  // "Integer", "Patient"
};

// One item of a collection: 32 bytes, trivially copyable.
class alignas(16) Item {
 public:
  Item() = default;

  // An element of the input. `value` is the JSON value (null for a
  // primitive that has only an extension), `ext` the object under `_name`
  // (or null); `type` may be null when the model cannot tell.
  static Item Node(const json::Value* value, const json::Value* ext, const fhir::TypeDef* type) {
    Item i(ItemKind::kNode);
    i.type_ = type;
    i.u_.node.value = value;
    i.u_.node.ext = ext;
    return i;
  }
  static Item Boolean(bool b) {
    Item i(ItemKind::kBoolean);
    i.u_.i = b ? 1 : 0;
    return i;
  }
  static Item Integer(int64_t v) {
    Item i(ItemKind::kInteger);
    i.u_.i = v;
    return i;
  }
  static Item FromDecimal(const Decimal& d) {
    Item i(ItemKind::kDecimal);
    i.u_.d = d;
    return i;
  }
  // `s` must outlive the item.
  static Item String(std::string_view s) {
    Item i(ItemKind::kString);
    i.u_.s = {s.data(), s.size()};
    return i;
  }
  static Item FromDateTime(const DateTime& dt) {
    Item i(dt.kind == DtKind::kDate ? ItemKind::kDate
                                    : (dt.kind == DtKind::kTime ? ItemKind::kTime : ItemKind::kDateTime));
    i.u_.dt = dt;
    return i;
  }
  // `q` must outlive the item.
  static Item FromQuantity(const Quantity* q) {
    Item i(ItemKind::kQuantity);
    i.u_.q = q;
    return i;
  }
  static Item FromTypeInfo(const TypeInfo* t) {
    Item i(ItemKind::kTypeInfo);
    i.u_.t = t;
    return i;
  }

  ItemKind kind() const { return kind_; }
  bool is_node() const { return kind_ == ItemKind::kNode; }
  // The FHIR type of a node (null if unknown, and for System values).
  const fhir::TypeDef* type() const { return type_; }
  const json::Value* node() const { return is_node() ? u_.node.value : nullptr; }
  const json::Value* extension_object() const { return is_node() ? u_.node.ext : nullptr; }

  bool boolean() const { return u_.i != 0; }
  int64_t integer() const { return u_.i; }
  const Decimal& decimal() const { return u_.d; }
  std::string_view string() const { return {u_.s.data, u_.s.size}; }
  const DateTime& datetime() const { return u_.dt; }
  const Quantity& quantity() const { return *u_.q; }
  const TypeInfo& type_info() const { return *u_.t; }

 private:
  explicit Item(ItemKind kind) : kind_(kind) {}

  ItemKind kind_ = ItemKind::kBoolean;
  const fhir::TypeDef* type_ = nullptr;
  union Payload {
    struct {
      const json::Value* value;
      const json::Value* ext;
    } node;
    int64_t i;
    Decimal d;
    struct {
      const char* data;
      size_t size;
    } s;
    DateTime dt;
    const Quantity* q;
    const TypeInfo* t;
    Payload() : node{nullptr, nullptr} {}
  } u_;
};

using Collection = std::span<const Item>;

// The type name of an item as FHIRPath's type() reports it: the FHIR type
// for nodes ("HumanName", "code"; "" when unknown), else the System type
// ("Boolean", "Integer", "Decimal", "String", "Date", "DateTime", "Time",
// "Quantity").
std::string_view TypeName(const Item& item);
// "FHIR" for nodes, "System" otherwise.
std::string_view TypeNamespace(const Item& item);

// The item as toString() would give it: primitives by their FHIRPath text
// ("1.50", "2014-01-05", "1 'mg'"); complex nodes as compact JSON.
std::string ToText(const Item& item);
// Appends {"type": ..., "value": ...}: nodes as their JSON (primitive
// values as their JSON scalar), System values as JSON strings, numbers or
// booleans (Quantity as {"value", "unit"}).
void AppendJson(const Item& item, std::string& out);

// Receives trace() output. Implementations must be thread-safe if the same
// sink is used by concurrent evaluations.
class TraceSink {
 public:
  virtual ~TraceSink() = default;
  virtual void Trace(std::string_view name, Collection items) = 0;
};

// resolve() looks, in order, for a contained resource ("#id" in %resource
// or %rootResource), an entry of the Bundle being evaluated (%rootResource
// or %resource is a Bundle; by fullUrl or Type/id), then asks the
// EvalOptions' ReferenceResolver. A reference still unresolved that names
// its target ("Patient/123") yields a stub {"resourceType", "id"}, so type
// tests such as subject.where(resolve() is Patient) need no store.
//
// A ReferenceResolver resolves references beyond those; it returns null
// when the target is unknown. The returned value must outlive the results.
class ReferenceResolver {
 public:
  virtual ~ReferenceResolver() = default;
  virtual const json::Value* Resolve(std::string_view reference) const = 0;
};

struct CompileOptions {
  // The type of the context item ("Patient", "HumanName"); empty: unknown,
  // names are then resolved at run time.
  std::string_view context_type = {};
  // FHIRPath strict mode: a type name at the start of a path that can never
  // match the context (Encounter.name on a Patient) is an error instead of
  // an empty result, and with check_ordered_functions so are functions that
  // need an order (skip, first, [0]) applied to children()/descendants().
  bool strict = false;
  bool check_ordered_functions = false;
  // Lenient polymorphism: also accept the JSON name of a choice element
  // (Observation.valueQuantity). Not FHIRPath (which writes
  // Observation.value.ofType(Quantity)) and off by default.
  bool allow_choice_type_names = false;
  // Names of external constants the caller will supply at evaluation
  // (without '%'). %resource, %context, %rootResource, %ucum, %sct, %loinc,
  // %vs-*, %ext-* are built in.
  std::span<const std::string_view> variables = {};
};

struct Variable {
  std::string_view name;  // without '%'
  Collection value;
};

struct EvalOptions {
  // %resource and %rootResource; null: the context item.
  const json::Value* resource = nullptr;
  const json::Value* root_resource = nullptr;
  std::span<const Variable> variables = {};
  TraceSink* trace = nullptr;                   // null: trace() output is dropped
  const ReferenceResolver* resolver = nullptr;  // for resolve() beyond contained/Bundle
};

namespace internal {
struct Program;
}

class Expression {
 public:
  // Compiles `text`. Syntax errors read "FHIRPath syntax error at 7: ...",
  // semantic ones "FHIRPath error at 6: 'given1' is not an element of
  // HumanName" (positions are 1-based character offsets).
  static Result<Expression> Compile(std::string_view text, const CompileOptions& options = {});

  const std::string& text() const;
  // The context type given at compilation (null if none).
  const fhir::TypeDef* context_type() const;

  // Evaluates over `context` (normally a resource's root object; its FHIR
  // type comes from `resourceType`, else from the compile options).
  Result<Collection> Evaluate(const json::Value& context, Arena& arena, const EvalOptions& options = {}) const;
  // Evaluates over an arbitrary input collection.
  Result<Collection> Evaluate(Collection context, Arena& arena, const EvalOptions& options = {}) const;

  // Evaluates and reduces the result to a boolean as an invariant does:
  // empty is nullopt, a single boolean is itself, any other single item is
  // true, several items are an error.
  Result<std::optional<bool>> EvaluateBoolean(const json::Value& context, Arena& arena,
                                              const EvalOptions& options = {}) const;

 private:
  explicit Expression(std::shared_ptr<const internal::Program> program) : program_(std::move(program)) {}
  std::shared_ptr<const internal::Program> program_;
};

}  // namespace bevan::fhirpath
