#include "rest/fhirpath_patch.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/arena.h"
#include "fhir/model.h"
#include "fhirpath/fhirpath.h"
#include "json/patch.h"

namespace bevan::rest {

namespace {

using Tokens = std::vector<std::string>;

// One item of an element as FHIR JSON writes it: the value under `name` and
// the id/extensions under `_name`. A null Value is absent.
struct Entry {
  json::Value value;
  json::Value ext;
  bool IsEmpty() const { return value.is_null() && ext.is_null(); }
};

// The entries of element `name` of an object, and whether JSON holds them
// in arrays.
struct Entries {
  std::vector<Entry> items;
  bool is_array = false;
};

// Which part of an entry a removal takes away.
enum class Side { kBoth, kValue, kExt };

// A value given in the patch: value[x] (with _value[x]), a resource, or
// nested parts describing a complex value.
struct Given {
  const fhir::TypeDef* type = nullptr;  // of value[x]; null for resources and parts
  const json::Value* value = nullptr;
  const json::Value* ext = nullptr;
  const json::Value* resource = nullptr;
  const json::Value* parts = nullptr;
};

// A value ready to be written: its JSON name ("valueString" for a choice
// element) and its entry.
struct Built {
  std::string json_name;
  Entry entry;
};

// Where an element item lives: member `member` of the object at `parent`,
// at `index` when JSON holds it in an array.
struct Location {
  Tokens parent;
  std::string member;     // JSON name without the '_' ("given", "valueQuantity")
  bool ext_side = false;  // reached through `_member`
  std::optional<size_t> index;
  const fhir::ElementDef* element = nullptr;  // null when the model cannot tell
};

struct Operation {
  std::string_view type;
  std::string_view path;
  std::optional<std::string_view> name;
  std::optional<Given> value;
  std::optional<int64_t> index;
  std::optional<int64_t> source;
  std::optional<int64_t> destination;
};

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsIdentifier(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return !(s[0] >= '0' && s[0] <= '9');
}

std::string UpperFirst(std::string_view s) {
  std::string out(s);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out;
}

const fhir::TypeDef* ResourceTypeOf(const json::Value& v) {
  const json::Value* rt = v.is_object() ? v.Find("resourceType") : nullptr;
  return rt != nullptr && rt->is_string() ? fhir::FindResourceType(rt->as_string()) : nullptr;
}

const fhir::TypeDef* ElementType(const fhir::ElementDef& element, const fhir::TypeRef* choice) {
  if (choice != nullptr) return choice->type;
  return element.types.empty() ? nullptr : element.types[0].type;
}

// The element of `type` with this name (the bare name of a choice: "value").
const fhir::ElementDef* FindByName(const fhir::TypeDef* type, std::string_view name) {
  for (const fhir::ElementDef& e : type->elements) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

// The FHIR type of the value at `tokens` (null when the model cannot tell).
// A `_name` member has the primitive's type (its members are id and extension).
const fhir::TypeDef* TypeAt(const json::Value& root, std::span<const std::string> tokens) {
  const json::Value* cur = &root;
  const fhir::TypeDef* type = ResourceTypeOf(root);
  for (const std::string& token : tokens) {
    if (type == nullptr) return nullptr;
    if (cur->is_array()) {
      cur = json::GetAt(*cur, std::span<const std::string>(&token, 1));
    } else if (cur->is_object()) {
      std::string_view name = token;
      if (!name.empty() && name[0] == '_') name.remove_prefix(1);
      const fhir::TypeRef* choice = nullptr;
      const fhir::ElementDef* element = type->FindElement(name, &choice);
      if (element == nullptr) return nullptr;
      type = ElementType(*element, choice);
      cur = cur->Find(token);
    } else {
      return nullptr;
    }
    if (cur == nullptr) return nullptr;
    if (type != nullptr && type->IsResource() && cur->is_object()) {
      if (const fhir::TypeDef* actual = ResourceTypeOf(*cur)) type = actual;
    }
  }
  return type;
}

// The location of the value at `tokens`; null for the root.
std::optional<Location> Locate(const json::Value& root, const Tokens& tokens) {
  if (tokens.empty()) return std::nullopt;
  Location loc;
  size_t end = tokens.size();
  if (end >= 2 && IsDigits(tokens.back())) {
    const json::Value* list = json::GetAt(root, std::span<const std::string>(tokens.data(), end - 1));
    size_t index = 0;
    const std::string& t = tokens.back();
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), index);
    if (list != nullptr && list->is_array() && ec == std::errc() && ptr == t.data() + t.size()) {
      loc.index = index;
      --end;
    }
  }
  std::string_view member = tokens[end - 1];
  if (!member.empty() && member[0] == '_') {
    loc.ext_side = true;
    member.remove_prefix(1);
  }
  loc.member = std::string(member);
  loc.parent.assign(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(end - 1));
  if (const fhir::TypeDef* owner = TypeAt(root, loc.parent)) loc.element = owner->FindElement(member);
  return loc;
}

// A value of type `given` fits an element of type `element`.
bool Fits(const fhir::TypeDef* given, const fhir::TypeDef* element) {
  if (given == element || given->IsA(element) || element->IsA(given)) return true;
  return given->kind == fhir::TypeKind::kPrimitive && element->kind == fhir::TypeKind::kPrimitive &&
         given->json_kind == element->json_kind;
}

std::string ElementLabel(const fhir::ElementDef& element) {
  return std::string(element.path.empty() ? element.name : element.path);
}

class Patcher {
 public:
  explicit Patcher(json::Document& doc) : doc_(doc), parameter_type_(fhir::FindType("Parameters.parameter")) {}

  Result<json::Value> Apply(const json::Value& resource, const json::Value& parameters) {
    resource_type_ = ResourceTypeOf(resource);
    if (resource_type_ == nullptr) {
      return InvalidArgumentError("FHIRPath Patch: the target is not a resource of a known type");
    }
    if (!parameters.is_object() || ResourceTypeOf(parameters) == nullptr ||
        ResourceTypeOf(parameters)->name != "Parameters") {
      return InvalidArgumentError("FHIRPath Patch: the patch must be a Parameters resource");
    }
    json::Value root = resource;
    const json::Value* list = parameters.Find("parameter");
    if (list == nullptr) return root;
    if (!list->is_array()) return InvalidArgumentError("FHIRPath Patch: Parameters.parameter must be an array");
    size_t number = 0;
    for (const json::Value& parameter : list->items()) {
      where_ = "FHIRPath Patch operation " + std::to_string(number++) + ": ";
      ASSIGN_OR_RETURN(Operation op, ParseOperation(parameter));
      if (op.type == "add") {
        ASSIGN_OR_RETURN(root, Add(root, op));
      } else if (op.type == "insert") {
        ASSIGN_OR_RETURN(root, Insert(root, op));
      } else if (op.type == "delete") {
        ASSIGN_OR_RETURN(root, Delete(root, op));
      } else if (op.type == "replace") {
        ASSIGN_OR_RETURN(root, Replace(root, op));
      } else {
        ASSIGN_OR_RETURN(root, Move(root, op));
      }
    }
    return root;
  }

 private:
  Status Error(const std::string& message) const { return InvalidArgumentError(where_ + message); }

  // --- reading the Parameters ---------------------------------------------

  Result<Given> ReadValue(const json::Value& part, std::string_view part_name) {
    Given given;
    int kinds = 0;
    bool has_value_x = false;
    for (const json::Member& m : part.members()) {
      std::string_view key = m.name();
      bool ext = !key.empty() && key[0] == '_';
      std::string_view bare = ext ? key.substr(1) : key;
      if (bare.size() > 5 && bare.substr(0, 5) == "value" && bare[5] >= 'A' && bare[5] <= 'Z') {
        const fhir::TypeRef* choice = nullptr;
        const fhir::ElementDef* element =
            parameter_type_ != nullptr ? parameter_type_->FindElement(bare, &choice) : nullptr;
        if (element == nullptr || choice == nullptr) {
          return Error("part '" + std::string(part_name) + "' has an unknown value type '" + std::string(bare) + "'");
        }
        if (given.type != nullptr && given.type != choice->type) {
          return Error("part '" + std::string(part_name) + "' has more than one value[x]");
        }
        given.type = choice->type;
        (ext ? given.ext : given.value) = &m.value;
        if (!has_value_x) ++kinds;
        has_value_x = true;
      } else if (key == "resource") {
        given.resource = &m.value;
        ++kinds;
      } else if (key == "part") {
        if (!m.value.is_array()) return Error("part '" + std::string(part_name) + "': 'part' must be an array");
        given.parts = &m.value;
        ++kinds;
      }
    }
    if (kinds == 0) return Error("part '" + std::string(part_name) + "' has no value");
    if (kinds > 1) return Error("part '" + std::string(part_name) + "' has more than one kind of value");
    if (given.resource != nullptr && !given.resource->is_object()) {
      return Error("part '" + std::string(part_name) + "': resource must be an object");
    }
    return given;
  }

  Result<Operation> ParseOperation(const json::Value& parameter) {
    if (!parameter.is_object()) return Error("a parameter must be an object");
    const json::Value* name = parameter.Find("name");
    if (name == nullptr || name->as_string() != "operation") {
      return Error("every parameter must be named 'operation' (found '" +
                   std::string(name != nullptr ? name->as_string() : "") + "')");
    }
    const json::Value* parts = parameter.Find("part");
    if (parts == nullptr || !parts->is_array()) return Error("the operation has no parts");
    Operation op;
    std::vector<std::string_view> seen;
    for (const json::Value& part : parts->items()) {
      const json::Value* part_name = part.is_object() ? part.Find("name") : nullptr;
      if (part_name == nullptr || !part_name->is_string()) return Error("every part must have a name");
      std::string_view key = part_name->as_string();
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        return Error("part '" + std::string(key) + "' is given more than once");
      }
      seen.push_back(key);
      ASSIGN_OR_RETURN(Given given, ReadValue(part, key));
      if (key == "type" || key == "path" || key == "name") {
        if (given.value == nullptr || !given.value->is_string()) {
          return Error("part '" + std::string(key) + "' must have a string value");
        }
        std::string_view s = given.value->as_string();
        (key == "type" ? op.type : key == "path" ? op.path : op.name.emplace()) = s;
      } else if (key == "index" || key == "source" || key == "destination") {
        std::optional<int64_t> n = given.value != nullptr ? given.value->AsInt64() : std::nullopt;
        if (!n || *n < 0) return Error("part '" + std::string(key) + "' must be a non-negative integer");
        (key == "index" ? op.index : key == "source" ? op.source : op.destination) = n;
      } else if (key == "value") {
        op.value = given;
      } else {
        return Error("unknown part '" + std::string(key) + "'");
      }
    }
    if (op.type.empty()) return Error("missing part 'type'");
    static constexpr std::string_view kTypes[] = {"add", "insert", "delete", "replace", "move"};
    if (std::find(std::begin(kTypes), std::end(kTypes), op.type) == std::end(kTypes)) {
      return Error("unknown operation type '" + std::string(op.type) +
                   "' (expected add, insert, delete, replace or move)");
    }
    where_.insert(where_.size() - 2, " (" + std::string(op.type) + ")");
    auto require = [&](bool present, std::string_view part) -> Status {
      if (present) return Status::Ok();
      return Error(std::string(op.type) + " needs a part '" + std::string(part) + "'");
    };
    RETURN_IF_ERROR(require(!op.path.empty(), "path"));
    if (op.type == "add") RETURN_IF_ERROR(require(op.name.has_value(), "name"));
    if (op.type == "add" || op.type == "insert" || op.type == "replace") {
      RETURN_IF_ERROR(require(op.value.has_value(), "value"));
    }
    if (op.type == "insert") RETURN_IF_ERROR(require(op.index.has_value(), "index"));
    if (op.type == "move") {
      RETURN_IF_ERROR(require(op.source.has_value(), "source"));
      RETURN_IF_ERROR(require(op.destination.has_value(), "destination"));
    }
    return op;
  }

  // --- selecting ----------------------------------------------------------

  // The pointer tokens of every element `path` selects in `root`.
  Result<std::vector<Tokens>> Select(const json::Value& root, std::string_view path) {
    auto expr = fhirpath::Expression::Compile(path, {.context_type = resource_type_->name});
    if (!expr.ok()) return Error("path '" + std::string(path) + "': " + expr.status().message());
    Arena arena;
    auto items = expr->Evaluate(root, arena);
    if (!items.ok()) return Error("path '" + std::string(path) + "': " + items.status().message());
    std::vector<Tokens> out;
    for (const fhirpath::Item& item : *items) {
      std::optional<Tokens> tokens;
      if (item.is_node() && item.node() != nullptr) tokens = json::PathTo(root, item.node());
      if (!tokens && item.is_node() && item.extension_object() != nullptr) {
        tokens = json::PathTo(root, item.extension_object());
      }
      if (!tokens) {
        return Error("path '" + std::string(path) + "' selects a value that is not an element of the resource");
      }
      out.push_back(std::move(*tokens));
    }
    return out;
  }

  // Exactly one element: zero is "no content found", several an error.
  Result<Tokens> SelectOne(const json::Value& root, std::string_view path, std::string_view verb) {
    ASSIGN_OR_RETURN(std::vector<Tokens> found, Select(root, path));
    if (found.empty()) return Error("no content found at " + std::string(path) + " when " + std::string(verb));
    if (found.size() > 1) {
      return Error("path '" + std::string(path) + "' matches " + std::to_string(found.size()) +
                   " elements; the operation needs exactly one");
    }
    return std::move(found[0]);
  }

  // The list an insert or move works on.
  struct List {
    Tokens parent;
    std::string member;
    const fhir::ElementDef* element = nullptr;
  };

  Result<List> SelectList(const json::Value& root, std::string_view path, bool allow_empty) {
    ASSIGN_OR_RETURN(std::vector<Tokens> found, Select(root, path));
    List list;
    if (!found.empty()) {
      for (size_t i = 0; i < found.size(); ++i) {
        std::optional<Location> loc = Locate(root, found[i]);
        if (!loc || !loc->index || (i > 0 && (loc->parent != list.parent || loc->member != list.member))) {
          return Error("path '" + std::string(path) + "' does not select the items of one list");
        }
        list.parent = std::move(loc->parent);
        list.member = std::move(loc->member);
        list.element = loc->element;
      }
      if (list.element == nullptr) return Error("cannot tell which element '" + std::string(path) + "' is");
      return list;
    }
    std::string verb = allow_empty ? "inserting" : "moving";
    size_t dot = path.rfind('.');
    if (!allow_empty || dot == std::string_view::npos || !IsIdentifier(path.substr(dot + 1))) {
      return Error("no content found at " + std::string(path) + " when " + verb);
    }
    // An empty list: its parent must exist.
    std::string_view name = path.substr(dot + 1);
    ASSIGN_OR_RETURN(std::vector<Tokens> parents, Select(root, path.substr(0, dot)));
    if (parents.size() != 1) return Error("no content found at " + std::string(path) + " when " + verb);
    const json::Value* parent = json::GetAt(root, parents[0]);
    const fhir::TypeDef* type = TypeAt(root, parents[0]);
    const fhir::ElementDef* element = type != nullptr ? FindByName(type, name) : nullptr;
    if (parent == nullptr || !parent->is_object() || element == nullptr || element->max <= 1) {
      return Error("'" + std::string(path) + "' is not a list");
    }
    list.parent = std::move(parents[0]);
    list.member = std::string(element->name);
    list.element = element;
    return list;
  }

  // --- JSON shapes --------------------------------------------------------

  static Entries Read(const json::Value& object, std::string_view name) {
    Entries out;
    const json::Value* value = object.Find(name);
    const json::Value* ext = object.Find("_" + std::string(name));
    out.is_array = (value != nullptr && value->is_array()) || (ext != nullptr && ext->is_array());
    if (!out.is_array) {
      if (value != nullptr || ext != nullptr) {
        out.items.push_back({value != nullptr ? *value : json::Value(), ext != nullptr ? *ext : json::Value()});
      }
      return out;
    }
    std::span<const json::Value> values = value != nullptr ? value->items() : std::span<const json::Value>();
    std::span<const json::Value> exts = ext != nullptr ? ext->items() : std::span<const json::Value>();
    out.items.resize(std::max(values.size(), exts.size()));
    for (size_t i = 0; i < values.size(); ++i) out.items[i].value = values[i];
    for (size_t i = 0; i < exts.size(); ++i) out.items[i].ext = exts[i];
    return out;
  }

  // Appends `name` and `_name` members for `entries` (empty ones dropped).
  void AppendMembers(std::string_view name, const std::vector<Entry>& entries, bool as_array,
                     std::vector<json::Member>& out) {
    std::vector<json::Value> values;
    std::vector<json::Value> exts;
    bool any_value = false;
    bool any_ext = false;
    for (const Entry& e : entries) {
      if (e.IsEmpty()) continue;
      values.push_back(e.value);
      exts.push_back(e.ext);
      any_value |= !e.value.is_null();
      any_ext |= !e.ext.is_null();
    }
    if (values.empty()) return;
    std::string ext_name = "_" + std::string(name);
    if (as_array) {
      if (any_value) out.push_back({doc_.MakeString(name), doc_.MakeArray(values)});
      if (any_ext) out.push_back({doc_.MakeString(ext_name), doc_.MakeArray(exts)});
    } else {
      if (any_value) out.push_back({doc_.MakeString(name), values[0]});
      if (any_ext) out.push_back({doc_.MakeString(ext_name), exts[0]});
    }
  }

  // A copy of `object` with element `old_name` (and `_old_name`) replaced,
  // in place, by `entries` under `new_name`.
  json::Value Write(const json::Value& object, std::string_view old_name, std::string_view new_name,
                    const std::vector<Entry>& entries, bool as_array) {
    std::vector<json::Member> fresh;
    AppendMembers(new_name, entries, as_array, fresh);
    auto is_element = [&](std::string_view key) {
      if (!key.empty() && key[0] == '_') key.remove_prefix(1);
      return key == old_name || key == new_name;
    };
    std::vector<json::Member> members;
    bool placed = false;
    for (const json::Member& m : object.members()) {
      if (!is_element(m.name())) {
        members.push_back(m);
      } else if (!placed) {
        members.insert(members.end(), fresh.begin(), fresh.end());
        placed = true;
      }
    }
    if (!placed) members.insert(members.end(), fresh.begin(), fresh.end());
    return doc_.MakeObject(members);
  }

  Result<json::Value> Put(const json::Value& root, const Tokens& tokens, const json::Value& value) {
    if (tokens.empty()) return value;
    auto updated = json::ReplaceAt(doc_, root, tokens, value);
    if (!updated.ok()) return Error(updated.status().message());
    return *updated;
  }

  // --- building values ----------------------------------------------------

  Result<Built> Build(const Given& given, const fhir::ElementDef& element) {
    if (element.types.empty()) return Error("cannot tell the type of " + ElementLabel(element));
    if (given.parts != nullptr) {
      const fhir::TypeDef* type = element.types[0].type;
      if (element.is_choice || type->kind == fhir::TypeKind::kPrimitive || type->IsResource()) {
        return Error("a value for " + ElementLabel(element) + " cannot be given as parts; use value[x]" +
                     (type->IsResource() ? " or resource" : ""));
      }
      ASSIGN_OR_RETURN(json::Value object, BuildObject(*given.parts, type));
      return Built{std::string(element.name), {object, json::Value()}};
    }
    if (given.resource != nullptr) {
      const fhir::TypeDef* type = element.types[0].type;
      const fhir::TypeDef* actual = ResourceTypeOf(*given.resource);
      if (element.is_choice || !type->IsResource()) {
        return Error(ElementLabel(element) + " is not a resource element; use value[x]");
      }
      if (actual == nullptr || !actual->IsA(type)) {
        return Error("the resource given for " + ElementLabel(element) + " has no known resourceType");
      }
      return Built{std::string(element.name), {doc_.Import(*given.resource), json::Value()}};
    }
    const fhir::TypeDef* chosen = nullptr;
    std::string json_name(element.name);
    if (element.is_choice) {
      for (const fhir::TypeRef& r : element.types) {
        if (r.type == given.type) chosen = r.type;
      }
      for (const fhir::TypeRef& r : element.types) {
        if (chosen == nullptr && given.type->IsA(r.type)) chosen = r.type;
      }
      if (chosen != nullptr) json_name += UpperFirst(chosen->name);
    } else if (Fits(given.type, element.types[0].type)) {
      chosen = element.types[0].type;
    }
    if (chosen == nullptr) {
      std::string allowed;
      for (const fhir::TypeRef& r : element.types) {
        allowed += allowed.empty() ? "" : ", ";
        allowed += r.type->name;
      }
      return Error("a " + std::string(given.type->name) + " value does not fit " + ElementLabel(element) + " (" +
                   allowed + ")");
    }
    Entry entry;
    if (given.value != nullptr) entry.value = doc_.Import(*given.value);
    if (given.ext != nullptr) entry.ext = doc_.Import(*given.ext);
    if (entry.IsEmpty()) return Error("the value for " + ElementLabel(element) + " is null");
    return Built{std::move(json_name), entry};
  }

  // An object of `type` from parts named after its elements.
  Result<json::Value> BuildObject(const json::Value& parts, const fhir::TypeDef* type) {
    struct Slot {
      const fhir::ElementDef* element;
      std::string json_name;
      std::vector<Entry> entries;
    };
    std::vector<Slot> slots;
    for (const json::Value& part : parts.items()) {
      const json::Value* name = part.is_object() ? part.Find("name") : nullptr;
      if (name == nullptr || !name->is_string()) return Error("every part of a value must have a name");
      const fhir::ElementDef* element = FindByName(type, name->as_string());
      if (element == nullptr) {
        return Error("'" + std::string(name->as_string()) + "' is not an element of " + std::string(type->name));
      }
      ASSIGN_OR_RETURN(Given given, ReadValue(part, name->as_string()));
      ASSIGN_OR_RETURN(Built built, Build(given, *element));
      auto slot = std::find_if(slots.begin(), slots.end(), [&](const Slot& s) { return s.element == element; });
      if (slot == slots.end()) {
        slots.push_back({element, std::move(built.json_name), {built.entry}});
      } else if (element->max <= 1 || slot->json_name != built.json_name) {
        return Error("'" + std::string(element->name) + "' is given more than once for " + std::string(type->name));
      } else {
        slot->entries.push_back(built.entry);
      }
    }
    std::vector<json::Member> members;
    for (const Slot& s : slots) AppendMembers(s.json_name, s.entries, s.element->max > 1, members);
    return doc_.MakeObject(members);
  }

  // --- the operations -----------------------------------------------------

  // `object` (of `type`) with element `name` added.
  Result<json::Value> AddMember(const json::Value& object, const fhir::TypeDef* type, const Operation& op) {
    const fhir::ElementDef* element = FindByName(type, *op.name);
    if (element == nullptr) {
      return Error("'" + std::string(*op.name) + "' is not an element of " + std::string(type->name));
    }
    ASSIGN_OR_RETURN(Built built, Build(*op.value, *element));
    bool repeats = element->max > 1;
    if (!repeats) {
      for (const json::Member& m : object.members()) {
        std::string_view key = m.name();
        if (!key.empty() && key[0] == '_') key.remove_prefix(1);
        if (type->FindElement(key) == element) {
          return Error("'" + std::string(*op.name) + "' already has a value at " + std::string(op.path) +
                       " (use replace)");
        }
      }
    }
    Entries entries = Read(object, built.json_name);
    if (repeats && element->max != fhir::kUnbounded && entries.items.size() >= element->max) {
      return Error(ElementLabel(*element) + " allows at most " + std::to_string(element->max) + " items");
    }
    entries.items.push_back(built.entry);
    return Write(object, built.json_name, built.json_name, entries.items, repeats);
  }

  Result<json::Value> Add(const json::Value& root, const Operation& op) {
    ASSIGN_OR_RETURN(Tokens tokens, SelectOne(root, op.path, "adding"));
    const json::Value* node = json::GetAt(root, tokens);
    const fhir::TypeDef* type = TypeAt(root, tokens);
    if (node == nullptr || type == nullptr) return Error("cannot tell the type of " + std::string(op.path));
    if (type->kind != fhir::TypeKind::kPrimitive) {
      if (!node->is_object()) return Error("cannot add to " + std::string(op.path) + ": not an object");
      ASSIGN_OR_RETURN(json::Value updated, AddMember(*node, type, op));
      return Put(root, tokens, updated);
    }
    // A primitive: id and extension go to its `_name` part.
    std::optional<Location> loc = Locate(root, tokens);
    const json::Value* parent = loc ? json::GetAt(root, loc->parent) : nullptr;
    if (parent == nullptr) return Error("cannot add to " + std::string(op.path));
    Entries entries = Read(*parent, loc->member);
    size_t at = loc->index.value_or(0);
    if (at >= entries.items.size()) return Error("cannot add to " + std::string(op.path));
    json::Value ext = entries.items[at].ext.is_object() ? entries.items[at].ext : doc_.MakeObject({});
    ASSIGN_OR_RETURN(entries.items[at].ext, AddMember(ext, type, op));
    return Put(root, loc->parent, Write(*parent, loc->member, loc->member, entries.items, entries.is_array));
  }

  Result<json::Value> Insert(const json::Value& root, const Operation& op) {
    ASSIGN_OR_RETURN(List list, SelectList(root, op.path, true));
    const json::Value* parent = json::GetAt(root, list.parent);
    if (parent == nullptr) return Error("cannot insert into " + std::string(op.path));
    Entries entries = Read(*parent, list.member);
    if (static_cast<uint64_t>(*op.index) > entries.items.size()) {
      return Error("index " + std::to_string(*op.index) + " is out of range: " + std::string(op.path) + " has " +
                   std::to_string(entries.items.size()) + " items");
    }
    if (list.element->max != fhir::kUnbounded && entries.items.size() >= list.element->max) {
      return Error(ElementLabel(*list.element) + " allows at most " + std::to_string(list.element->max) + " items");
    }
    ASSIGN_OR_RETURN(Built built, Build(*op.value, *list.element));
    entries.items.insert(entries.items.begin() + *op.index, built.entry);
    return Put(root, list.parent, Write(*parent, list.member, list.member, entries.items, true));
  }

  // Removes one side of the entry at `loc`, then any object left empty.
  Result<json::Value> RemoveEntry(const json::Value& root, const Location& loc, Side side) {
    const json::Value* parent = json::GetAt(root, loc.parent);
    if (parent == nullptr) return Error("internal: lost the parent of an element");
    Entries entries = Read(*parent, loc.member);
    size_t at = loc.index.value_or(0);
    if (at >= entries.items.size()) return Error("internal: lost an element");
    Entry& entry = entries.items[at];
    if (side != Side::kExt) entry.value = json::Value();
    if (side != Side::kValue) entry.ext = json::Value();
    if (entry.IsEmpty()) entries.items.erase(entries.items.begin() + static_cast<std::ptrdiff_t>(at));
    json::Value updated = Write(*parent, loc.member, loc.member, entries.items, entries.is_array);
    ASSIGN_OR_RETURN(json::Value next, Put(root, loc.parent, updated));
    if (updated.size() > 0 || loc.parent.empty()) return next;
    // An element with nothing left in it is not valid FHIR: remove it too.
    std::optional<Location> up = Locate(next, loc.parent);
    if (!up) return next;
    return RemoveEntry(next, *up, up->ext_side ? Side::kExt : Side::kValue);
  }

  Result<json::Value> Delete(const json::Value& root, const Operation& op) {
    ASSIGN_OR_RETURN(std::vector<Tokens> found, Select(root, op.path));
    if (found.empty()) return root;
    if (found.size() > 1) {
      return Error("path '" + std::string(op.path) + "' matches " + std::to_string(found.size()) +
                   " elements; delete removes exactly one");
    }
    std::optional<Location> loc = Locate(root, found[0]);
    if (!loc) return Error("cannot delete the resource itself");
    return RemoveEntry(root, *loc, Side::kBoth);
  }

  Result<json::Value> Replace(const json::Value& root, const Operation& op) {
    ASSIGN_OR_RETURN(Tokens tokens, SelectOne(root, op.path, "replacing"));
    std::optional<Location> loc = Locate(root, tokens);
    if (!loc) return Error("cannot replace the resource itself");
    if (loc->element == nullptr) return Error("cannot tell which element " + std::string(op.path) + " is");
    const json::Value* parent = json::GetAt(root, loc->parent);
    if (parent == nullptr) return Error("cannot replace " + std::string(op.path));
    ASSIGN_OR_RETURN(Built built, Build(*op.value, *loc->element));
    Entries entries = Read(*parent, loc->member);
    size_t at = loc->index.value_or(0);
    if (at >= entries.items.size()) return Error("cannot replace " + std::string(op.path));
    if (entries.is_array && built.json_name != loc->member) return Error("cannot change the type of a list item");
    entries.items[at] = built.entry;
    return Put(root, loc->parent, Write(*parent, loc->member, built.json_name, entries.items, entries.is_array));
  }

  Result<json::Value> Move(const json::Value& root, const Operation& op) {
    ASSIGN_OR_RETURN(List list, SelectList(root, op.path, false));
    const json::Value* parent = json::GetAt(root, list.parent);
    if (parent == nullptr) return Error("cannot move within " + std::string(op.path));
    Entries entries = Read(*parent, list.member);
    size_t size = entries.items.size();
    for (auto [label, n] : {std::pair{"source", *op.source}, std::pair{"destination", *op.destination}}) {
      if (static_cast<uint64_t>(n) >= size) {
        return Error(std::string(label) + " " + std::to_string(n) + " is out of range: " + std::string(op.path) +
                     " has " + std::to_string(size) + " items");
      }
    }
    Entry moved = entries.items[*op.source];
    entries.items.erase(entries.items.begin() + *op.source);
    entries.items.insert(entries.items.begin() + *op.destination, moved);
    return Put(root, list.parent, Write(*parent, list.member, list.member, entries.items, true));
  }

  json::Document& doc_;
  const fhir::TypeDef* parameter_type_;
  const fhir::TypeDef* resource_type_ = nullptr;
  std::string where_;
};

}  // namespace

Result<json::Value> ApplyFhirPathPatch(json::Document& doc, const json::Value& resource,
                                       const json::Value& parameters) {
  return Patcher(doc).Apply(resource, parameters);
}

}  // namespace bevan::rest
