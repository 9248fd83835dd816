// JSON Patch (RFC 6902) and the path-copying edits it is made of, over the
// immutable arena DOM: an edit returns a new root that shares every
// unchanged subtree with the old one (new nodes live in the Document's arena).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "json/json.h"

namespace bevan::json {

// Applies the operations of `patch` (an array of {op, path, value|from}) to
// `target` in order; all or nothing. Errors (InvalidArgument) name the
// operation's index and why: unknown op, missing member, path not found,
// failed test. Unknown members of an operation are ignored (RFC 6902 4).
Result<Value> ApplyJsonPatch(Document& doc, const Value& target, const Value& patch);

// The value at `tokens` (unescaped JSON Pointer tokens), or null.
const Value* GetAt(const Value& root, std::span<const std::string> tokens);

// RFC 6902 "add": sets an object member (replacing it) or inserts into an
// array at an index or at the end ("-"). The parent must exist.
Result<Value> AddAt(Document& doc, const Value& root, std::span<const std::string> tokens, const Value& value);
// "remove": the target must exist.
Result<Value> RemoveAt(Document& doc, const Value& root, std::span<const std::string> tokens);
// "replace": the target must exist.
Result<Value> ReplaceAt(Document& doc, const Value& root, std::span<const std::string> tokens, const Value& value);

// The pointer tokens leading from `root` to `node` (found by identity), or
// nullopt when `node` is not inside `root`.
std::optional<std::vector<std::string>> PathTo(const Value& root, const Value* node);

// JSON equality as RFC 6902 "test" defines it: numbers by value, objects
// regardless of member order, arrays element by element.
bool JsonEquals(const Value& a, const Value& b);

}  // namespace bevan::json
