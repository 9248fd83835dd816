// Preparing and committing one version of a resource: shared by the REST
// service and the importer.
//
// Prepare does the CPU work outside the store transaction (index extraction,
// serialisation with id and meta); Commit runs inside it, on the store's
// writer, and only reads the current version, checks If-Match and splices
// the version and timestamp into the prepared bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "json/json.h"
#include "store/store.h"

namespace bevan::rest {

struct PreparedWrite {
  std::string head;  // the body up to the meta.versionId value
  std::string mid;   // between the versionId and lastUpdated values
  std::string tail;  // the rest
  store::IndexRows rows;
  std::string compartment;

  // The body without meta.versionId/lastUpdated values (to compare content).
  std::string_view content_head() const { return head; }
};

// Prepares `root` (a resource in `doc`) to be stored as (type, id): sets id,
// puts meta.versionId and meta.lastUpdated first in meta (placeholders),
// keeps the rest of meta, extracts the index rows of every search parameter
// and the Patient compartment (search::Extract). A SearchParameter must pass
// search::CheckSearchParameter (kInvalidArgument otherwise).
Status PrepareWrite(std::string_view type, const std::string& id, json::Document& doc, const json::Value& root,
                    PreparedWrite& out);

struct CommitResult {
  bool created = false;  // no current version, or the current one is deleted
  int64_t version = 0;
  store::Micros last_updated = 0;
  std::string body;  // the stored bytes
};

// Writes the next version inside `tx`. `if_match`: the required current
// version (kFailedPrecondition otherwise). Timestamps come from `store`. A
// written SearchParameter is registered on search::Extractor::Default()
// (active: a search parameter from now on; inactive: removed).
Result<CommitResult> CommitWrite(store::Store& store, store::Transaction& tx, std::string_view type,
                                 const std::string& id, const PreparedWrite& p, std::optional<int64_t> if_match);

// True if `stored` (a stored body) has the same content as `p` apart from
// meta.versionId and meta.lastUpdated (re-imports then write nothing).
bool SameContent(std::string_view stored, const PreparedWrite& p);

}  // namespace bevan::rest
