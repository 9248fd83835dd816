// What the store needs besides the body of a write: the index rows and the
// patient compartment. This first indexer extracts what the REST layer's own
// features need (identifier tokens for conditional operations, the Patient
// compartment); the search layer extends it to every search parameter.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "json/json.h"
#include "store/store.h"

namespace bevan::rest {

class Indexer {
 public:
  // Builds the compiled expressions for every resource type (once; the
  // Indexer is then immutable and thread-safe).
  Indexer();
  ~Indexer();
  Indexer(const Indexer&) = delete;
  Indexer& operator=(const Indexer&) = delete;

  // Fills `rows` and `compartment` (the id of the Patient the resource
  // belongs to, or empty) for `resource` of type `type` whose id is `id`.
  Status Extract(std::string_view type, std::string_view id, const json::Value& resource, store::IndexRows& rows,
                 std::string& compartment) const;

  // The search parameter codes this indexer fills for `type` (for the
  // CapabilityStatement and for conditional criteria).
  bool Indexes(std::string_view type, std::string_view param) const;

  // Expressions that failed to compile (diagnostics, logged at start-up).
  size_t failed_expressions() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The part of a SearchParameter expression that applies to `type`: the
// union branches starting with "Type." (or "(Type."), joined again; the whole
// expression when none does.
std::string ExpressionForType(std::string_view expression, std::string_view type);

}  // namespace bevan::rest
