#include "corpus.h"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/shared_dir.h"
#include "json/json.h"
#include "search/extract.h"

namespace bevan::search::testing {

namespace {

constexpr store::Micros kBase = 1704067200LL * 1000000;  // 2024-01-01T00:00:00Z

std::string Instant(store::Micros t) {
  std::time_t s = static_cast<std::time_t>(t / 1000000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return buf;
}

std::vector<std::string> ReadLines(const std::filesystem::path& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

}  // namespace

Result<std::vector<CorpusResource>> LoadCorpus() {
  auto shared = SharedDir();
  if (!shared) return NotFoundError("no shared directory ($BEVAN_SHARED or ../shared)");
  std::filesystem::path dir = std::filesystem::path(*shared) / "data" / "synthea-10";
  if (!std::filesystem::exists(dir)) return NotFoundError(dir.string() + " is absent");
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".ndjson" && e.path().filename() != "log.ndjson") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> lines;
  for (const auto& f : files) {
    for (std::string& l : ReadLines(f)) lines.push_back(std::move(l));
  }
  for (std::string& l : ReadLines(std::filesystem::path(BEVAN_SOURCE_DIR) / "tests" / "search" / "fixtures.ndjson")) {
    lines.push_back(std::move(l));
  }
  // Identifier (system|value) of every resource, for conditional references.
  std::map<std::string, std::string> by_identifier;
  for (const std::string& l : lines) {
    ASSIGN_OR_RETURN(json::Document d, json::Document::Parse(l));
    std::string type(d.root().Find("resourceType")->as_string());
    std::string id(d.root().Find("id")->as_string());
    if (const json::Value* ids = d.root().Find("identifier")) {
      for (const json::Value& i : ids->items()) {
        const json::Value* s = i.Find("system");
        const json::Value* v = i.Find("value");
        if (s && v)
          by_identifier.emplace(type + "?identifier=" + std::string(s->as_string()) + "|" + std::string(v->as_string()),
                                type + "/" + id);
      }
    }
  }
  std::vector<CorpusResource> out;
  for (std::string& l : lines) {
    constexpr std::string_view kRef = "\"reference\":\"";
    for (size_t at = l.find(kRef); at != std::string::npos; at = l.find(kRef, at + 1)) {
      size_t start = at + kRef.size();
      size_t end = l.find('"', start);
      std::string ref = l.substr(start, end - start);
      if (ref.find("?identifier=") == std::string::npos) continue;
      auto it = by_identifier.find(ref);
      if (it != by_identifier.end()) l.replace(start, end - start, it->second);
    }
    ASSIGN_OR_RETURN(json::Document d, json::Document::Parse(l));
    CorpusResource r;
    r.type = d.root().Find("resourceType")->as_string();
    r.id = d.root().Find("id")->as_string();
    r.last_updated = kBase + static_cast<store::Micros>(out.size()) * 1000000;
    const json::Value* meta = d.root().Find("meta");
    json::Value m = meta ? *meta : d.MakeObject({});
    m = d.WithMember(m, "lastUpdated", d.MakeString(Instant(r.last_updated)));
    r.json = json::ToString(d.WithMember(d.root(), "meta", m));
    out.push_back(std::move(r));
  }
  return out;
}

Status LoadStore(store::Store& store, const std::vector<CorpusResource>& corpus) {
  constexpr size_t kBatch = 500;
  for (size_t i = 0; i < corpus.size(); i += kBatch) {
    std::vector<json::Document> docs;
    std::vector<ExtractResult> rows;
    size_t end = std::min(corpus.size(), i + kBatch);
    for (size_t k = i; k < end; ++k) {
      ASSIGN_OR_RETURN(json::Document d, json::Document::Parse(corpus[k].json));
      ASSIGN_OR_RETURN(ExtractResult x, Extract(corpus[k].type, corpus[k].id, d.root()));
      docs.push_back(std::move(d));
      rows.push_back(std::move(x));
    }
    RETURN_IF_ERROR(store.Transact([&](store::Transaction& txn) -> Status {
      for (size_t k = i; k < end; ++k) {
        const CorpusResource& r = corpus[k];
        store::ResourceWrite w{r.type, r.id, 1, r.last_updated, r.json, rows[k - i].compartment, &rows[k - i].rows};
        ASSIGN_OR_RETURN(store::WriteResult res, txn.Put(w));
        (void)res;
      }
      return Status::Ok();
    }));
  }
  return Status::Ok();
}

}  // namespace bevan::search::testing
