#include "rest/importer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/ids.h"
#include "fhir/model.h"
#include "fhir/validate.h"
#include "fhirpath/invariants.h"
#include "http/message.h"
#include "json/json.h"
#include "rest/service.h"
#include "rest/write.h"

namespace bevan::rest {

namespace {

namespace fs = std::filesystem;

struct Line {
  size_t file = 0;  // index into files
  size_t line = 0;
  std::string text;
};

struct Prepared {
  std::string type;
  std::string id;
  PreparedWrite write;
};

struct Chunk {
  std::vector<Line> lines;
  uint64_t bytes = 0;
};

fhir::OperationOutcome Outcome(std::string message) {
  fhir::OperationOutcome o;
  o.Add(fhir::Severity::kError, fhir::IssueType::kInvalid, "", std::move(message));
  return o;
}

}  // namespace

Result<ImportSummary> Import(store::Store& store, const std::vector<std::string>& paths, const ImportOptions& options) {
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  // Files, in a stable order.
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(p, ec)) {
        auto ext = e.path().extension();
        if ((ext == ".ndjson" || ext == ".json") && e.path().filename() != "log.ndjson") found.push_back(e.path());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      return IoError("cannot read " + p + ": no such file or directory");
    }
  }
  ImportSummary summary;
  uint64_t total_bytes = 0;
  for (const auto& f : files) {
    std::error_code ec;
    total_bytes += fs::file_size(f, ec);
  }

  fhir::ValidateOptions validate = fhirpath::FullValidation();
  std::mutex mu;  // guards summary
  auto reject = [&](size_t file, size_t line, const fhir::OperationOutcome& o) {
    std::lock_guard lock(mu);
    ++summary.rejected;
    if (summary.errors.size() < options.max_errors_kept) summary.errors.push_back({files[file], line, o.ToJson()});
  };

  // Bundles of type batch/transaction go through the REST service (their
  // references may need rewriting); other files are read line by line.
  std::deque<Chunk> queue;
  bool reading_done = false;
  std::condition_variable cv_work, cv_space;
  std::atomic<uint64_t> bytes_done{0}, resources_seen{0};
  Status failure;
  std::atomic<bool> failed{false};
  const size_t max_queue = 8;
  // Batches handed to the store and not yet committed (guarded by mu).
  std::condition_variable cv_committed;
  int in_flight = 0;
  const int max_in_flight = 4;
  std::vector<std::vector<Prepared>> garbage;  // committed batches, freed by the workers

  auto worker = [&] {
    for (;;) {
      Chunk chunk;
      {
        std::unique_lock lock(mu);
        cv_work.wait(lock, [&] { return !queue.empty() || reading_done; });
        if (queue.empty()) return;
        chunk = std::move(queue.front());
        queue.pop_front();
        cv_space.notify_one();
      }
      {
        std::vector<std::vector<Prepared>> done;
        {
          std::lock_guard lock(mu);
          done.swap(garbage);
        }
      }
      std::vector<Prepared> batch;
      std::vector<std::pair<size_t, size_t>> where;  // file, line of each prepared
      for (Line& l : chunk.lines) {
        resources_seen.fetch_add(1, std::memory_order_relaxed);
        auto doc = json::Document::Parse(l.text);
        if (!doc.ok()) {
          reject(l.file, l.line, Outcome(doc.status().message()));
          continue;
        }
        fhir::OperationOutcome o = fhir::Validate(doc->root(), validate);
        if (o.HasErrors()) {
          reject(l.file, l.line, o);
          continue;
        }
        Prepared p;
        p.type = doc->root().Find("resourceType")->as_string();
        const json::Value* id = doc->root().Find("id");
        p.id = id && id->is_string() ? std::string(id->as_string()) : NewUuid();
        json::Document& d = *doc;
        if (Status st = PrepareWrite(p.type, p.id, d, d.root(), p.write); !st.ok()) {
          reject(l.file, l.line, Outcome(st.message()));
          continue;
        }
        batch.push_back(std::move(p));
        where.emplace_back(l.file, l.line);
      }
      // One store transaction per batch; a resource already stored with the
      // same content is left alone. The worker does not wait for the commit:
      // it goes on to its next chunk while the store writes this one (at most
      // max_in_flight batches are queued in the store).
      {
        std::unique_lock lock(mu);
        cv_committed.wait(lock, [&] { return in_flight < max_in_flight || failed; });
        if (failed) return;
        ++in_flight;
      }
      auto pending = std::make_shared<std::vector<Prepared>>(std::move(batch));
      auto counts = std::make_shared<std::map<std::string, TypeCounts>>();
      uint64_t chunk_bytes = chunk.bytes;
      store.TransactAsync(
          [&store, pending, counts](store::Transaction& tx) -> Status {
            counts->clear();
            for (const Prepared& p : *pending) {
              auto cur = tx.Read(p.type, p.id, true);
              if (cur.ok() && !cur->deleted && SameContent(cur->body, p.write)) {
                ++(*counts)[p.type].unchanged;
                continue;
              }
              if (!cur.ok() && cur.status().code() != StatusCode::kNotFound) return cur.status();
              ASSIGN_OR_RETURN(CommitResult r, CommitWrite(store, tx, p.type, p.id, p.write, std::nullopt));
              ++(r.created ? (*counts)[p.type].created : (*counts)[p.type].updated);
            }
            return Status::Ok();
          },
          [&, pending, counts, chunk_bytes](Status st) {
            std::lock_guard lock(mu);
            // The batch is freed by a worker, not on the store's writer thread.
            garbage.push_back(std::move(*pending));
            --in_flight;
            if (!st.ok()) {
              if (!failed.exchange(true)) failure = st;
              cv_space.notify_all();
            } else {
              for (const auto& [type, c] : *counts) {
                TypeCounts& t = summary.by_type[type];
                t.created += c.created;
                t.updated += c.updated;
                t.unchanged += c.unchanged;
                summary.loaded += c.created + c.updated;
                summary.unchanged += c.unchanged;
              }
              bytes_done.fetch_add(chunk_bytes, std::memory_order_relaxed);
            }
            cv_committed.notify_all();
          });
    }
  };

  // Into an empty store, the store may defer its search indexes to one sorted
  // build at the end (Store::BeginBulkLoad); they are built whatever happens.
  ASSIGN_OR_RETURN(bool bulk, store.BeginBulkLoad());
  summary.bulk = bulk;

  int n = options.threads > 0 ? options.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> workers;
  for (int i = 0; i < n; ++i) workers.emplace_back(worker);

  auto push = [&](Chunk chunk) {
    std::unique_lock lock(mu);
    cv_space.wait(lock, [&] { return queue.size() < max_queue || failed; });
    if (failed) return false;
    queue.push_back(std::move(chunk));
    cv_work.notify_one();
    return true;
  };
  double last_report = 0;
  auto report = [&](bool force) {
    if (!options.progress) return;
    double now = elapsed();
    if (!force && now - last_report < options.progress_every) return;
    last_report = now;
    options.progress({bytes_done.load(), total_bytes, resources_seen.load(), now});
  };

  Status read_error;
  std::unique_ptr<FhirService> service;  // for batch/transaction Bundle files
  for (size_t fi = 0; fi < files.size() && !failed; ++fi) {
    std::ifstream in(files[fi], std::ios::binary);
    if (!in) {
      read_error = IoError("cannot read " + files[fi]);
      break;
    }
    bool ndjson = files[fi].ends_with(".ndjson");
    if (!ndjson) {
      // A whole JSON file: a single resource or a Bundle.
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      auto doc = json::Document::Parse(text);
      if (!doc.ok()) {
        reject(fi, 0, Outcome(doc.status().message()));
        continue;
      }
      const json::Value* rt = doc->root().Find("resourceType");
      const json::Value* bt = doc->root().Find("type");
      bool bundle = rt && rt->as_string() == "Bundle";
      std::string_view btype = bt ? bt->as_string() : "";
      if (bundle && (btype == "batch" || btype == "transaction")) {
        if (!service) service = std::make_unique<FhirService>(store, ServiceOptions{});
        http::Request req;
        req.method = "POST";
        req.path = "/fhir";
        req.body = std::move(text);
        http::Response res;
        service->Handle(req, res);
        if (res.status != 200) {
          auto o = json::Document::Parse(res.body);
          std::lock_guard lock(mu);
          ++summary.rejected;
          summary.errors.push_back({files[fi], 0, res.body});
        } else {
          std::lock_guard lock(mu);
          summary.loaded += doc->root().Find("entry") ? doc->root().Find("entry")->size() : 0;
        }
        bytes_done.fetch_add(req.body.size());
        continue;
      }
      Chunk chunk;
      if (bundle) {
        // collection, searchset, history...: import the entries' resources.
        size_t k = 0;
        if (const json::Value* entries = doc->root().Find("entry")) {
          for (const json::Value& e : entries->items()) {
            ++k;
            if (const json::Value* r = e.Find("resource")) chunk.lines.push_back({fi, k, json::ToString(*r)});
          }
        }
      } else {
        chunk.lines.push_back({fi, 1, json::ToString(doc->root())});
      }
      chunk.bytes = text.size();
      if (!push(std::move(chunk))) break;
      report(false);
      continue;
    }
    Chunk chunk;
    std::string line;
    size_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      chunk.bytes += line.size() + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      chunk.lines.push_back({fi, line_no, std::move(line)});
      if (chunk.lines.size() >= options.batch) {
        if (!push(std::move(chunk))) break;
        chunk = Chunk();
        report(false);
      }
    }
    if (!chunk.lines.empty() || chunk.bytes) push(std::move(chunk));
    report(false);
  }
  {
    std::lock_guard lock(mu);
    reading_done = true;
  }
  cv_work.notify_all();
  for (auto& t : workers) t.join();
  {
    std::unique_lock lock(mu);
    cv_committed.wait(lock, [&] { return in_flight == 0; });
  }
  report(true);
  if (bulk) {
    if (options.progress) options.progress({bytes_done.load(), total_bytes, resources_seen.load(), elapsed(), true});
    auto index_start = std::chrono::steady_clock::now();
    Status built = store.EndBulkLoad();
    summary.index_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - index_start).count();
    if (!built.ok()) return built;
  }
  if (!read_error.ok()) return read_error;
  if (failed) return failure;
  // Fresh planner statistics after a bulk load (PostgreSQL plans badly without them).
  if (summary.loaded > 0) RETURN_IF_ERROR(store.Analyze());
  summary.bytes = total_bytes;
  summary.seconds = elapsed();
  return summary;
}

}  // namespace bevan::rest
