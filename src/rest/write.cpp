#include "rest/write.h"

#include <vector>

#include "rest/time.h"
#include "search/extract.h"

namespace bevan::rest {

namespace {
// Placeholders spliced out of the serialised body. They are the first two
// members of meta, which follows resourceType and id (neither can hold a
// control character), so their first occurrences in the output are ours
// whatever the rest of the resource contains.
constexpr std::string_view kVersionMark = "\001BevanVersion\001";
constexpr std::string_view kTimeMark = "\001BevanTime\001";
constexpr std::string_view kVersionMarkJson = "\\u0001BevanVersion\\u0001";
constexpr std::string_view kTimeMarkJson = "\\u0001BevanTime\\u0001";
}  // namespace

Status PrepareWrite(std::string_view type, const std::string& id, json::Document& doc, const json::Value& root,
                    PreparedWrite& out) {
  ASSIGN_OR_RETURN(search::ExtractResult extracted, search::Extract(type, id, root));
  // An active SearchParameter must compile: it becomes a search parameter
  // when written (CommitWrite).
  if (type == "SearchParameter") RETURN_IF_ERROR(search::CheckSearchParameter(root));
  out.rows = std::move(extracted.rows);
  out.compartment = std::move(extracted.compartment);
  std::vector<json::Member> meta_members;
  meta_members.push_back({doc.MakeString("versionId"), json::Value::StringRef(kVersionMark)});
  meta_members.push_back({doc.MakeString("lastUpdated"), json::Value::StringRef(kTimeMark)});
  if (const json::Value* old = root.Find("meta"); old && old->is_object()) {
    for (const json::Member& m : old->members()) {
      if (m.name() != "versionId" && m.name() != "lastUpdated") meta_members.push_back(m);
    }
  }
  json::Value meta = doc.MakeObject(meta_members);
  std::vector<json::Member> members;
  members.reserve(root.size() + 2);
  for (const json::Member& m : root.members()) {
    if (m.name() == "resourceType") {
      members.push_back(m);
      members.push_back({doc.MakeString("id"), doc.MakeString(id)});
      members.push_back({doc.MakeString("meta"), meta});
    }
  }
  for (const json::Member& m : root.members()) {
    if (m.name() != "resourceType" && m.name() != "id" && m.name() != "meta") members.push_back(m);
  }
  std::string text = json::ToString(doc.MakeObject(members));
  size_t v = text.find(kVersionMarkJson);
  size_t t = text.find(kTimeMarkJson);
  if (v == std::string::npos || t == std::string::npos || t < v) return InternalError("could not stamp the resource");
  out.head = text.substr(0, v);
  out.mid = text.substr(v + kVersionMarkJson.size(), t - v - kVersionMarkJson.size());
  out.tail = text.substr(t + kTimeMarkJson.size());
  return Status::Ok();
}

Result<CommitResult> CommitWrite(store::Store& store, store::Transaction& tx, std::string_view type,
                                 const std::string& id, const PreparedWrite& p, std::optional<int64_t> if_match) {
  auto current = tx.Read(type, id);
  int64_t next = 1;
  bool existed = false;
  if (current.ok()) {
    next = current->version + 1;
    existed = !current->deleted;
  } else if (current.status().code() != StatusCode::kNotFound) {
    return current.status();
  }
  if (if_match) {
    if (!existed) return FailedPreconditionError("If-Match: " + std::string(type) + "/" + id + " does not exist");
    if (current->version != *if_match) {
      return FailedPreconditionError("version conflict: If-Match asks for version " + std::to_string(*if_match) +
                                     " but the current version is " + std::to_string(current->version));
    }
  }
  CommitResult r;
  store::Micros now = store.Now();
  std::string version = std::to_string(next);
  std::string instant = FormatInstant(now);
  r.body.reserve(p.head.size() + p.mid.size() + p.tail.size() + version.size() + instant.size());
  r.body.append(p.head).append(version).append(p.mid).append(instant).append(p.tail);
  store::ResourceWrite w;
  w.type = type;
  w.id = id;
  w.version = next;
  w.last_updated = now;
  w.body = r.body;
  w.compartment = p.compartment;
  w.index = &p.rows;
  ASSIGN_OR_RETURN(store::WriteResult written, tx.Put(w));
  if (type == "SearchParameter") {
    // From now on later writes index it and queries accept it (an inactive
    // one is removed). Registered once the write is in the transaction, so
    // a refused write (If-Match, a version conflict) registers nothing.
    ASSIGN_OR_RETURN(json::Document doc, json::Document::Parse(r.body));
    RETURN_IF_ERROR(search::Extractor::Default().Register(id, doc.root()));
  }
  r.created = !existed;
  r.version = written.version;
  r.last_updated = written.last_updated;
  return r;
}

bool SameContent(std::string_view stored, const PreparedWrite& p) {
  // Stored: head + version + mid + instant + tail, with the same head/mid/tail
  // if the content is unchanged.
  if (!stored.starts_with(p.head) || !stored.ends_with(p.tail)) return false;
  std::string_view middle = stored.substr(p.head.size(), stored.size() - p.head.size() - p.tail.size());
  size_t at = middle.find(p.mid);
  if (at == std::string_view::npos) return false;
  std::string_view version = middle.substr(0, at);
  std::string_view instant = middle.substr(at + p.mid.size());
  for (char c : version) {
    if (c < '0' || c > '9') return false;
  }
  return !version.empty() && instant.find('"') == std::string_view::npos;
}

}  // namespace bevan::rest
