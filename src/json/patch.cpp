#include "json/patch.h"

#include <charconv>
#include <cmath>
#include <cstring>

namespace bevan::json {

namespace {

// Array index per RFC 6901: digits without leading zeros; "-" is the end
// (allowed only when `allow_end`).
std::optional<size_t> ArrayIndex(const std::string& t, size_t size, bool allow_end) {
  if (t == "-") return allow_end ? std::optional<size_t>(size) : std::nullopt;
  if (t.empty() || (t.size() > 1 && t[0] == '0')) return std::nullopt;
  size_t i = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), i);
  if (ec != std::errc() || p != t.data() + t.size()) return std::nullopt;
  if (i > size || (!allow_end && i == size)) return std::nullopt;
  return i;
}

std::string Pointer(std::span<const std::string> tokens) {
  std::string out;
  for (const auto& t : tokens) {
    out += '/';
    for (char c : t) {
      if (c == '~') {
        out += "~0";
      } else if (c == '/') {
        out += "~1";
      } else {
        out += c;
      }
    }
  }
  return out;
}

enum class Edit { kAdd, kRemove, kReplace };

// Rebuilds the path to tokens' parent, applying `edit` at the last token.
Result<Value> EditAt(Document& doc, const Value& node, std::span<const std::string> tokens, Edit edit,
                     const Value& value, std::span<const std::string> full) {
  if (tokens.empty()) {
    // The whole document.
    if (edit == Edit::kRemove) return InvalidArgumentError("cannot remove the whole document");
    return value;
  }
  const std::string& key = tokens[0];
  bool last = tokens.size() == 1;
  if (node.is_object()) {
    const Value* child = node.Find(key);
    if (!last) {
      if (!child) return NotFoundError("path " + Pointer(full) + " does not exist");
      ASSIGN_OR_RETURN(Value updated, EditAt(doc, *child, tokens.subspan(1), edit, value, full));
      return doc.WithMember(node, key, updated);
    }
    switch (edit) {
      case Edit::kAdd: return doc.WithMember(node, key, value);
      case Edit::kReplace:
        if (!child) return NotFoundError("path " + Pointer(full) + " does not exist");
        return doc.WithMember(node, key, value);
      case Edit::kRemove:
        if (!child) return NotFoundError("path " + Pointer(full) + " does not exist");
        return doc.WithoutMember(node, key);
    }
  }
  if (node.is_array()) {
    auto items = node.items();
    std::optional<size_t> index = ArrayIndex(key, items.size(), last && edit == Edit::kAdd);
    if (!index) return NotFoundError("path " + Pointer(full) + " does not exist (bad array index)");
    std::vector<Value> copy(items.begin(), items.end());
    if (!last) {
      ASSIGN_OR_RETURN(copy[*index], EditAt(doc, items[*index], tokens.subspan(1), edit, value, full));
    } else if (edit == Edit::kAdd) {
      copy.insert(copy.begin() + static_cast<std::ptrdiff_t>(*index), value);
    } else if (edit == Edit::kReplace) {
      copy[*index] = value;
    } else {
      copy.erase(copy.begin() + static_cast<std::ptrdiff_t>(*index));
    }
    return doc.MakeArray(copy);
  }
  return NotFoundError("path " + Pointer(full) + " does not exist (not a container)");
}

bool NumbersEqual(const Value& a, const Value& b) {
  if (a.number_literal() == b.number_literal()) return true;
  auto x = a.AsDouble(), y = b.AsDouble();
  return x && y && *x == *y;
}

bool FindPath(const Value& v, const Value* node, std::vector<std::string>& path) {
  if (&v == node) return true;
  if (v.is_object()) {
    for (const Member& m : v.members()) {
      path.emplace_back(m.name());
      if (FindPath(m.value, node, path)) return true;
      path.pop_back();
    }
  } else if (v.is_array()) {
    size_t i = 0;
    for (const Value& item : v.items()) {
      path.push_back(std::to_string(i++));
      if (FindPath(item, node, path)) return true;
      path.pop_back();
    }
  }
  return false;
}

}  // namespace

const Value* GetAt(const Value& root, std::span<const std::string> tokens) {
  const Value* cur = &root;
  for (const auto& t : tokens) {
    if (cur->is_object()) {
      cur = cur->Find(t);
    } else if (cur->is_array()) {
      auto i = ArrayIndex(t, cur->size(), false);
      cur = i ? &cur->items()[*i] : nullptr;
    } else {
      return nullptr;
    }
    if (!cur) return nullptr;
  }
  return cur;
}

Result<Value> AddAt(Document& doc, const Value& root, std::span<const std::string> tokens, const Value& value) {
  return EditAt(doc, root, tokens, Edit::kAdd, value, tokens);
}

Result<Value> RemoveAt(Document& doc, const Value& root, std::span<const std::string> tokens) {
  return EditAt(doc, root, tokens, Edit::kRemove, Value(), tokens);
}

Result<Value> ReplaceAt(Document& doc, const Value& root, std::span<const std::string> tokens, const Value& value) {
  return EditAt(doc, root, tokens, Edit::kReplace, value, tokens);
}

std::optional<std::vector<std::string>> PathTo(const Value& root, const Value* node) {
  std::vector<std::string> path;
  if (FindPath(root, node, path)) return path;
  return std::nullopt;
}

bool JsonEquals(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::kNull: return true;
    case Kind::kBool: return a.as_bool() == b.as_bool();
    case Kind::kNumber: return NumbersEqual(a, b);
    case Kind::kString: return a.as_string() == b.as_string();
    case Kind::kArray: {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (!JsonEquals(a.items()[i], b.items()[i])) return false;
      }
      return true;
    }
    case Kind::kObject: {
      if (a.size() != b.size()) return false;
      for (const Member& m : a.members()) {
        const Value* other = b.Find(m.name());
        if (!other || !JsonEquals(m.value, *other)) return false;
      }
      return true;
    }
  }
  return false;
}

Result<Value> ApplyJsonPatch(Document& doc, const Value& target, const Value& patch) {
  if (!patch.is_array()) return InvalidArgumentError("a JSON Patch must be an array of operations");
  Value cur = target;
  size_t index = 0;
  for (const Value& op : patch.items()) {
    std::string where = "operation " + std::to_string(index++) + ": ";
    if (!op.is_object()) return InvalidArgumentError(where + "must be an object");
    const Value* name = op.Find("op");
    const Value* path = op.Find("path");
    if (!name || !name->is_string()) return InvalidArgumentError(where + "missing \"op\"");
    if (!path || !path->is_string()) return InvalidArgumentError(where + "missing \"path\"");
    auto tokens = ParsePointer(path->as_string());
    if (!tokens.ok()) return InvalidArgumentError(where + tokens.status().message());
    std::string_view o = name->as_string();
    const Value* value = op.Find("value");
    auto need_value = [&]() -> Status {
      if (!value) return InvalidArgumentError(where + "missing \"value\"");
      return Status::Ok();
    };
    auto from_tokens = [&]() -> Result<std::vector<std::string>> {
      const Value* from = op.Find("from");
      if (!from || !from->is_string()) return InvalidArgumentError(where + "missing \"from\"");
      return ParsePointer(from->as_string());
    };
    Result<Value> next = Value();
    if (o == "add") {
      RETURN_IF_ERROR(need_value());
      next = AddAt(doc, cur, *tokens, *value);
    } else if (o == "remove") {
      next = RemoveAt(doc, cur, *tokens);
    } else if (o == "replace") {
      RETURN_IF_ERROR(need_value());
      next = ReplaceAt(doc, cur, *tokens, *value);
    } else if (o == "move" || o == "copy") {
      ASSIGN_OR_RETURN(std::vector<std::string> from, from_tokens());
      const Value* moved = GetAt(cur, from);
      if (!moved) return InvalidArgumentError(where + "\"from\" " + Pointer(from) + " does not exist");
      if (o == "move") {
        bool into_itself = tokens->size() > from.size() && std::equal(from.begin(), from.end(), tokens->begin());
        if (into_itself) return InvalidArgumentError(where + "cannot move a value into itself");
        Value v = *moved;
        ASSIGN_OR_RETURN(Value removed, RemoveAt(doc, cur, from));
        next = AddAt(doc, removed, *tokens, v);
      } else {
        next = AddAt(doc, cur, *tokens, *moved);
      }
    } else if (o == "test") {
      RETURN_IF_ERROR(need_value());
      const Value* at = GetAt(cur, *tokens);
      if (!at) return InvalidArgumentError(where + "test path " + std::string(path->as_string()) + " does not exist");
      if (!JsonEquals(*at, *value))
        return InvalidArgumentError(where + "test failed at " + std::string(path->as_string()));
      next = cur;
    } else {
      return InvalidArgumentError(where + "unknown op \"" + std::string(o) + "\"");
    }
    if (!next.ok()) return InvalidArgumentError(where + next.status().message());
    cur = *next;
  }
  return cur;
}

}  // namespace bevan::json
