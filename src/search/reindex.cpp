#include "search/reindex.h"

#include "fhir/model.h"
#include "json/json.h"
#include "search/extract.h"

namespace bevan::search {

namespace {

struct Pending {
  std::string id;
  std::int64_t version = 0;
  store::IndexRows rows;
};

// The version stamped in the stored body (meta.versionId), or 0.
std::int64_t StoredVersion(const json::Value& root) {
  const json::Value* meta = root.Find("meta");
  const json::Value* v = meta != nullptr && meta->is_object() ? meta->Find("versionId") : nullptr;
  if (v == nullptr || !v->is_string()) return 0;
  std::int64_t n = 0;
  for (char c : v->as_string()) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace

Result<ReindexStats> Reindex(store::Store& store, const ReindexOptions& options,
                             const std::function<void(std::string_view type, const ReindexStats&)>& progress) {
  std::vector<std::string> types = options.types;
  if (types.empty()) {
    for (std::string_view t : fhir::ResourceTypeNames()) types.emplace_back(t);
  }
  for (const std::string& t : types) {
    if (fhir::FindResourceType(t) == nullptr) return InvalidArgumentError("unknown resource type " + t);
  }
  ReindexStats stats;
  std::vector<Pending> batch;
  auto flush = [&](std::string_view type) -> Status {
    if (batch.empty()) return Status::Ok();
    std::int64_t done = 0, skipped = 0;
    RETURN_IF_ERROR(store.Transact([&](store::Transaction& tx) -> Status {
      done = skipped = 0;  // a retried transaction starts again
      for (const Pending& p : batch) {
        Status st = tx.Reindex(type, p.id, p.version, p.rows);
        if (st.code() == StatusCode::kFailedPrecondition) {
          ++skipped;
          continue;
        }
        RETURN_IF_ERROR(st);
        ++done;
      }
      return Status::Ok();
    }));
    stats.resources += done;
    stats.skipped += skipped;
    batch.clear();
    if (progress) progress(type, stats);
    return Status::Ok();
  };
  for (const std::string& type : types) {
    store::ScanQuery scan;
    scan.type = type;
    scan.chunk = options.chunk;
    bool any = false;
    RETURN_IF_ERROR(store.Scan(scan, [&](const store::ScanRow& row) -> Status {
      any = true;
      auto doc = json::Document::Parse(row.body);
      std::int64_t version = doc.ok() ? StoredVersion(doc->root()) : 0;
      if (!doc.ok() || version == 0) {
        ++stats.failed;
        return Status::Ok();
      }
      auto x = Extract(type, row.id, doc->root());
      if (!x.ok()) {
        ++stats.failed;
        return Status::Ok();
      }
      batch.push_back({std::string(row.id), version, std::move(x->rows)});
      if (static_cast<int>(batch.size()) >= options.batch) return flush(type);
      return Status::Ok();
    }));
    RETURN_IF_ERROR(flush(type));
    if (any) ++stats.types;
  }
  return stats;
}

}  // namespace bevan::search
