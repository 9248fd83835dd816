#include "rest/export.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "common/ids.h"
#include "fhir/model.h"
#include "fhir/operation_outcome.h"
#include "json/json.h"
#include "rest/time.h"
#include "rest/url.h"
#include "search/query.h"
#include "search/search.h"

namespace bevan::rest {

using fhir::IssueType;
using fhir::OperationOutcome;
using fhir::Severity;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kNdjson = "application/fhir+ndjson";

std::vector<std::string> SplitComma(std::string_view v) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t comma = v.find(',', start);
    out.emplace_back(v.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

bool InPatientCompartment(std::string_view type) {
  return type == "Patient" || !fhir::PatientCompartmentParams(type).empty();
}

// The types an export of `spec` covers, in a stable order.
std::vector<std::string> ExportTypes(const ExportSpec& spec) {
  if (!spec.types.empty()) return spec.types;
  std::vector<std::string> types;
  for (std::string_view t : fhir::ResourceTypeNames()) {
    if (spec.level == ExportSpec::Level::kSystem || InPatientCompartment(t)) types.emplace_back(t);
  }
  return types;
}

// _typeFilter values are "Type?query" separated by commas, but the queries
// may hold commas too (a, b values): a comma starts a new filter only where
// a known resource type and '?' follow it.
std::vector<std::string> SplitTypeFilters(std::string_view v) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= v.size(); ++i) {
    bool boundary = i == v.size();
    if (!boundary && v[i] == ',') {
      size_t q = v.find('?', i + 1);
      boundary = q != std::string_view::npos && fhir::FindResourceType(v.substr(i + 1, q - i - 1)) != nullptr;
    }
    if (boundary) {
      out.emplace_back(v.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

Status Bad(std::string_view param, std::string message) {
  return InvalidArgumentError(std::string(param) + ": " + std::move(message));
}

// The rids of `type` that any of `queries` matches, sorted.
Result<std::vector<store::Rid>> FilterRids(store::Store& store, std::string_view type,
                                           const std::vector<std::string>& queries, const std::string& base,
                                           const std::atomic<bool>* cancel) {
  std::vector<store::Rid> rids;
  search::ParseOptions po;
  po.base_url = base;
  for (const std::string& query : queries) {
    ASSIGN_OR_RETURN(search::SearchQuery q, search::ParseSearchQuery(type, query, po));
    q.count = 1000;
    q.sort.clear();
    for (;;) {
      if (cancel && cancel->load(std::memory_order_relaxed)) return UnavailableError("cancelled");
      ASSIGN_OR_RETURN(search::SearchResult r, search::ExecuteSearch(store, q));
      for (const store::SearchHit& h : r.matches) rids.push_back(h.rid);
      if (!r.next_cursor) break;
      q.cursor = *r.next_cursor;
    }
  }
  std::sort(rids.begin(), rids.end());
  rids.erase(std::unique(rids.begin(), rids.end()), rids.end());
  return rids;
}

// One NDJSON output file being written through a large buffer.
class NdjsonFile {
 public:
  NdjsonFile() { buf_.reserve(kBuffer + (1 << 16)); }
  ~NdjsonFile() {
    if (f_) std::fclose(f_);
  }
  NdjsonFile(const NdjsonFile&) = delete;
  NdjsonFile& operator=(const NdjsonFile&) = delete;

  Status Open(const std::string& path) {
    f_ = std::fopen(path.c_str(), "wb");
    if (!f_) return IoError("cannot create " + path + ": " + std::strerror(errno));
    path_ = path;
    return Status::Ok();
  }
  bool open() const { return f_ != nullptr; }

  Status Append(std::string_view body) {
    size_t at = buf_.size();
    buf_.append(body);
    // A raw line break cannot occur inside a JSON string, so outside strings
    // it is whitespace: replacing it keeps the resource and the NDJSON intact.
    if (std::memchr(body.data(), '\n', body.size()) || std::memchr(body.data(), '\r', body.size())) {
      for (size_t i = at; i < buf_.size(); ++i) {
        if (buf_[i] == '\n' || buf_[i] == '\r') buf_[i] = ' ';
      }
    }
    buf_.push_back('\n');
    if (buf_.size() >= kBuffer) return Flush();
    return Status::Ok();
  }

  Status Close() {
    RETURN_IF_ERROR(Flush());
    int rc = std::fclose(f_);
    f_ = nullptr;
    if (rc != 0) return IoError("cannot write " + path_ + ": " + std::strerror(errno));
    return Status::Ok();
  }

 private:
  static constexpr size_t kBuffer = 1 << 20;

  Status Flush() {
    if (!buf_.empty() && std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size()) {
      return IoError("cannot write " + path_ + ": " + std::strerror(errno));
    }
    buf_.clear();
    return Status::Ok();
  }

  std::FILE* f_ = nullptr;
  std::string path_;
  std::string buf_;
};

}  // namespace

Status ParseExportParams(const std::vector<std::pair<std::string, std::string>>& params, ExportSpec& spec) {
  std::vector<std::string> filters;
  for (const auto& [k, v] : params) {
    if (k == "_type") {
      for (std::string& t : SplitComma(v)) {
        if (!fhir::FindResourceType(t)) return Bad("_type", "unknown resource type '" + t + "'");
        if (spec.level != ExportSpec::Level::kSystem && !InPatientCompartment(t)) {
          return Bad("_type", "'" + t + "' is not in the Patient compartment");
        }
        if (std::find(spec.types.begin(), spec.types.end(), t) == spec.types.end()) spec.types.push_back(t);
      }
    } else if (k == "_since") {
      auto range = ParseDateTimeRange(v);
      if (!range || v.size() < 20) return Bad("_since", "must be an instant (e.g. 2024-01-01T00:00:00Z)");
      spec.since = range->lo;
    } else if (k == "_outputFormat") {
      if (v != "application/fhir+ndjson" && v != "application/ndjson" && v != "ndjson") {
        return Bad("_outputFormat",
                   "'" + v + "' is not supported (application/fhir+ndjson, application/ndjson, ndjson)");
      }
    } else if (k == "_typeFilter") {
      for (std::string& f : SplitTypeFilters(v)) filters.push_back(std::move(f));
    } else if (k != "_format") {
      return Bad(k, "is not a supported $export parameter (_type, _since, _typeFilter, _outputFormat)");
    }
  }
  for (const std::string& f : filters) {
    size_t q = f.find('?');
    std::string type = f.substr(0, q);
    if (q == std::string::npos || !fhir::FindResourceType(type)) {
      return Bad("_typeFilter", "'" + f + "' is not of the form Type?search-parameters");
    }
    if (!spec.types.empty() && std::find(spec.types.begin(), spec.types.end(), type) == spec.types.end()) {
      return Bad("_typeFilter", "'" + type + "' is not among the exported types (_type)");
    }
    if (spec.level != ExportSpec::Level::kSystem && !InPatientCompartment(type)) {
      return Bad("_typeFilter", "'" + type + "' is not in the Patient compartment");
    }
    std::string query = f.substr(q + 1);
    auto parsed = search::ParseSearchQuery(type, query);
    if (!parsed.ok()) return Bad("_typeFilter", parsed.status().message());
    if (!parsed->unknown.empty()) {
      return Bad("_typeFilter", "unknown search parameter '" + parsed->unknown[0].first + "' for " + type);
    }
    if (!parsed->includes.empty() || !parsed->revincludes.empty() || parsed->cursor) {
      return Bad("_typeFilter", "_include, _revinclude and _cursor are not allowed");
    }
    spec.type_filters.emplace_back(type, std::move(query));
  }
  return Status::Ok();
}

Result<std::vector<std::string>> GroupMemberPatients(std::string_view group_json) {
  ASSIGN_OR_RETURN(json::Document doc, json::Document::Parse(group_json));
  const json::Value* rt = doc.root().Find("resourceType");
  if (!rt || !rt->is_string() || rt->as_string() != "Group") return InvalidArgumentError("not a Group");
  std::vector<std::string> ids;
  const json::Value* members = doc.root().Find("member");
  if (!members) return ids;
  for (const json::Value& m : members->items()) {
    const json::Value* entity = m.Find("entity");
    const json::Value* ref = entity ? entity->Find("reference") : nullptr;
    if (!ref || !ref->is_string()) continue;
    std::string_view r = ref->as_string();
    if (size_t slash = r.rfind("/Patient/"); slash != std::string_view::npos) r.remove_prefix(slash + 1);
    if (!r.starts_with("Patient/")) continue;
    std::string id(r.substr(8));
    if (id.empty() || id.find('/') != std::string::npos) continue;
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(std::move(id));
  }
  return ids;
}

Result<std::vector<ExportFile>> WriteExport(store::Store& store, const ExportSpec& spec, const std::string& directory,
                                            const WriteExportOptions& options) {
  std::vector<ExportFile> files;
  std::vector<std::string> types = ExportTypes(spec);
  ExportProgress progress;
  progress.types_total = types.size();
  auto start = Clock::now();
  auto last_report = start;
  auto report = [&](bool force) {
    if (!options.progress) return;
    auto now = Clock::now();
    if (!force && std::chrono::duration<double>(now - last_report).count() < options.progress_every) return;
    last_report = now;
    progress.seconds = std::chrono::duration<double>(now - start).count();
    options.progress(progress);
  };
  auto cancelled = [&] { return options.cancel && options.cancel->load(std::memory_order_relaxed); };

  for (const std::string& type : types) {
    if (cancelled()) return UnavailableError("cancelled");
    progress.type = type;
    std::vector<std::string> queries;
    for (const auto& [t, q] : spec.type_filters) {
      if (t == type) queries.push_back(q);
    }
    std::optional<std::vector<store::Rid>> allowed;
    if (!queries.empty()) {
      ASSIGN_OR_RETURN(allowed, FilterRids(store, type, queries, options.search_base, options.cancel));
      if (allowed->empty()) {
        ++progress.types_done;
        continue;
      }
    }
    store::ScanQuery q;
    q.type = type;
    q.since = spec.since;
    q.chunk = options.scan_chunk;
    if (spec.level == ExportSpec::Level::kPatient) q.scope = store::ScanScope::kAnyCompartment;
    if (spec.level == ExportSpec::Level::kGroup) {
      q.scope = store::ScanScope::kTheseCompartments;
      q.compartments = spec.patients;
    }
    NdjsonFile out;
    ExportFile* current = nullptr;
    uint64_t seen = 0;
    Status st = store.Scan(q, [&](const store::ScanRow& row) -> Status {
      if ((++seen & 1023) == 0) {
        if (cancelled()) return UnavailableError("cancelled");
        report(false);
      }
      if (allowed && !std::binary_search(allowed->begin(), allowed->end(), row.rid)) return Status::Ok();
      bool full = current && ((options.max_resources_per_file && current->count >= options.max_resources_per_file) ||
                              (options.max_file_bytes && current->bytes >= options.max_file_bytes));
      if (full) {
        RETURN_IF_ERROR(out.Close());
        current = nullptr;
      }
      if (!current) {
        size_t n = 1;
        for (const ExportFile& f : files) n += f.type == type;
        ExportFile f;
        f.type = type;
        f.name = type + (n == 1 ? std::string() : "-" + std::to_string(n)) + ".ndjson";
        RETURN_IF_ERROR(out.Open(directory + "/" + f.name));
        files.push_back(std::move(f));
        current = &files.back();
      }
      RETURN_IF_ERROR(out.Append(row.body));
      ++current->count;
      current->bytes += row.body.size() + 1;
      ++progress.resources;
      progress.bytes += row.body.size() + 1;
      return Status::Ok();
    });
    if (out.open()) {
      Status closed = out.Close();
      if (st.ok()) st = closed;
    }
    RETURN_IF_ERROR(st);
    ++progress.types_done;
    report(false);
  }
  report(true);
  return files;
}

// ---------------------------------------------------------------------------
// The asynchronous service.

namespace {

struct Job {
  std::string id;
  std::string client;
  std::string request;  // the kick-off URL, for the manifest
  ExportSpec spec;
  store::Micros transaction_time = 0;
  std::string dir;
  std::vector<std::string> warnings;  // OperationOutcome diagnostics for the manifest's error file
  std::atomic<bool> cancel{false};
  std::atomic<bool> exited{false};  // the worker thread has returned (join is immediate)
  std::thread thread;

  // Guarded by Impl::mu_.
  enum class State { kRunning, kDone, kFailed } state = State::kRunning;
  ExportProgress progress;
  std::vector<ExportFile> files;
  std::string error_file;  // name of the OperationOutcome NDJSON file, if any
  std::string failure;
  Clock::time_point finished;
};

void SetOutcome(http::Response& res, int status, IssueType code, std::string message, std::string location = "") {
  OperationOutcome o;
  o.Add(Severity::kError, code, std::move(location), std::move(message));
  res.status = status;
  res.SetHeader("Content-Type", "application/fhir+json; charset=utf-8");
  res.body = o.ToJson();
}

}  // namespace

class BulkExporter::Impl {
 public:
  Impl(store::Store& store, ExportOptions options) : store_(store), opt_(std::move(options)) {}

  ~Impl() {
    std::map<std::string, std::shared_ptr<Job>> jobs;
    {
      std::lock_guard lock(mu_);
      jobs.swap(jobs_);
      for (auto& j : retired_) jobs.emplace(j->id, j);
      retired_.clear();
    }
    for (auto& [id, job] : jobs) job->cancel = true;
    for (auto& [id, job] : jobs) {
      if (job->thread.joinable()) job->thread.join();
      RemoveDir(*job);
    }
  }

  bool Handles(const http::Request& req) const {
    std::string_view p = req.path;
    if (!p.starts_with(opt_.base_path)) return false;
    p.remove_prefix(opt_.base_path.size());
    return p == "/$export" || p == "/Patient/$export" || (p.starts_with("/Group/") && p.ends_with("/$export")) ||
           p == "/$export-poll-status" || p.starts_with("/$export-file/");
  }

  void Handle(const http::Request& req, http::Response& res, std::string_view client) {
    Sweep();
    std::string_view p = std::string_view(req.path).substr(opt_.base_path.size());
    if (p == "/$export-poll-status") return Poll(req, res, client);
    if (p.starts_with("/$export-file/")) return File(req, p.substr(14), res, client);
    return KickOff(req, p, res, client);
  }

  size_t JobCount() const {
    std::lock_guard lock(mu_);
    return jobs_.size();
  }

 private:
  void KickOff(const http::Request& req, std::string_view p, http::Response& res, std::string_view client) {
    if (req.method != "GET") {
      return SetOutcome(res, 405, IssueType::kNotSupported, "$export is started with GET (Prefer: respond-async)");
    }
    if (req.Header("Prefer").find("respond-async") == std::string_view::npos) {
      return SetOutcome(res, 400, IssueType::kInvalid, "$export needs the header Prefer: respond-async");
    }
    if (auto accept = req.Header("Accept"); !accept.empty() && accept.find("json") == std::string_view::npos &&
                                            accept.find("*/*") == std::string_view::npos) {
      return SetOutcome(res, 400, IssueType::kNotSupported, "Accept must be application/fhir+json");
    }
    auto params = ParseQuery(req.query);
    if (!params) return SetOutcome(res, 400, IssueType::kInvalid, "malformed query string");
    auto job = std::make_shared<Job>();
    ExportSpec& spec = job->spec;
    if (p == "/Patient/$export") {
      spec.level = ExportSpec::Level::kPatient;
    } else if (p != "/$export") {
      spec.level = ExportSpec::Level::kGroup;
      std::string_view gid = p.substr(7, p.size() - 7 - 8);  // "/Group/" ... "/$export"
      auto group = store_.Read("Group", gid);
      if (!group.ok() || group->deleted) {
        return SetOutcome(res, 404, IssueType::kNotSupported, "Group/" + std::string(gid) + " is not known");
      }
      auto members = GroupMemberPatients(group->body);
      if (!members.ok()) return SetOutcome(res, 500, IssueType::kInvalid, members.status().message());
      for (std::string& id : *members) {
        auto exists = store_.Exists("Patient", id);
        if (exists.ok() && *exists) {
          spec.patients.push_back(std::move(id));
        } else {
          job->warnings.push_back("Group member Patient/" + id + " does not exist; skipped");
        }
      }
    }
    if (Status st = ParseExportParams(*params, spec); !st.ok()) {
      std::string msg = st.message();
      return SetOutcome(res, 400, IssueType::kInvalid, msg, msg.substr(0, msg.find(':')));
    }
    {
      std::lock_guard lock(mu_);
      int running = 0;
      for (auto& [id, j] : jobs_) running += j->state == Job::State::kRunning;
      if (running >= opt_.max_running_jobs ||
          static_cast<int>(jobs_.size()) >= opt_.max_running_jobs + opt_.max_kept_jobs) {
        res.SetHeader("Retry-After", "30");
        return SetOutcome(res, 429, IssueType::kTooCostly, "too many export jobs; try again later");
      }
      job->id = RandomHex(32);
      job->client = client;
      job->request = opt_.base_url + std::string(p) + (req.query.empty() ? "" : "?" + req.query);
      job->transaction_time = store_.Now();
      job->dir = opt_.directory + "/" + job->id;
      std::error_code ec;
      std::filesystem::create_directories(job->dir, ec);
      if (ec) return SetOutcome(res, 500, IssueType::kInvalid, "cannot create the export directory");
      job->progress.types_total = ExportTypes(spec).size();
      jobs_.emplace(job->id, job);
      job->thread = std::thread([this, job] { Run(job); });
    }
    res.status = 202;
    res.SetHeader("Content-Location", opt_.base_url + "/$export-poll-status?_jobId=" + job->id);
  }

  void Run(const std::shared_ptr<Job>& job) {
    WriteExportOptions wo;
    wo.max_resources_per_file = opt_.max_resources_per_file;
    wo.max_file_bytes = opt_.max_file_bytes;
    wo.search_base = opt_.base_url;
    wo.cancel = &job->cancel;
    wo.progress_every = 0.25;
    wo.progress = [this, &job](const ExportProgress& p) {
      std::lock_guard lock(mu_);
      job->progress = p;
    };
    auto files = WriteExport(store_, job->spec, job->dir, wo);
    std::string error_file;
    if (files.ok() && !job->warnings.empty()) {
      error_file = "errors.ndjson";
      std::string lines;
      for (const std::string& w : job->warnings) {
        OperationOutcome o;
        o.Add(Severity::kWarning, IssueType::kNotSupported, "", w);
        lines += o.ToJson() + "\n";
      }
      std::FILE* f = std::fopen((job->dir + "/" + error_file).c_str(), "wb");
      if (!f || std::fwrite(lines.data(), 1, lines.size(), f) != lines.size()) error_file.clear();
      if (f) std::fclose(f);
    }
    bool remove = false;
    {
      std::lock_guard lock(mu_);
      job->finished = Clock::now();
      if (files.ok()) {
        job->state = Job::State::kDone;
        job->files = std::move(*files);
        job->error_file = error_file;
      } else {
        job->state = Job::State::kFailed;
        job->failure = files.status().message();
      }
      remove = job->cancel.load();
    }
    // Cancelled: the job is no longer listed; its files go now.
    if (remove) RemoveDir(*job);
    job->exited = true;
  }

  void Poll(const http::Request& req, http::Response& res, std::string_view client) {
    auto params = ParseQuery(req.query);
    auto id = params ? FirstParam(*params, "_jobId") : std::nullopt;
    if (!id) return SetOutcome(res, 400, IssueType::kRequired, "_jobId is required", "_jobId");
    std::shared_ptr<Job> job = Find(*id, client);
    if (!job) return SetOutcome(res, 404, IssueType::kNotSupported, "no such export job (unknown, expired or deleted)");
    if (req.method == "DELETE") {
      {
        std::lock_guard lock(mu_);
        jobs_.erase(job->id);
        job->cancel = true;
        retired_.push_back(job);
      }
      if (job->exited) RemoveDir(*job);  // finished: nothing else will remove them
      res.status = 202;
      return;
    }
    if (req.method != "GET") return SetOutcome(res, 405, IssueType::kNotSupported, "use GET or DELETE");
    std::lock_guard lock(mu_);
    if (job->state == Job::State::kRunning) {
      const ExportProgress& pr = job->progress;
      res.status = 202;
      res.SetHeader("X-Progress", std::to_string(pr.types_done) + " of " + std::to_string(pr.types_total) + " types, " +
                                      std::to_string(pr.resources) + " resources" +
                                      (pr.type.empty() ? "" : " (" + pr.type + ")"));
      res.SetHeader("Retry-After", "2");
      return;
    }
    if (job->state == Job::State::kFailed) {
      return SetOutcome(res, 500, IssueType::kInvalid, "the export failed: " + job->failure);
    }
    std::string m = "{\"transactionTime\":";
    json::WriteString(FormatInstant(job->transaction_time), m);
    m += ",\"request\":";
    json::WriteString(job->request, m);
    m += ",\"requiresAccessToken\":";
    m += opt_.requires_access_token ? "true" : "false";
    m += ",\"output\":[";
    std::string prefix = opt_.base_url + "/$export-file/" + job->id + "/";
    for (size_t i = 0; i < job->files.size(); ++i) {
      const ExportFile& f = job->files[i];
      if (i) m += ",";
      m += "{\"type\":";
      json::WriteString(f.type, m);
      m += ",\"url\":";
      json::WriteString(prefix + f.name, m);
      m += ",\"count\":" + std::to_string(f.count) + "}";
    }
    m += "],\"error\":[";
    if (!job->error_file.empty()) {
      m += "{\"type\":\"OperationOutcome\",\"url\":";
      json::WriteString(prefix + job->error_file, m);
      m += "}";
    }
    m += "]}";
    res.status = 200;
    res.SetHeader("Content-Type", "application/json");
    res.SetHeader("Expires",
                  FormatHttpDate(job->transaction_time + static_cast<store::Micros>(opt_.expire_seconds * 1e6)));
    res.body = std::move(m);
  }

  void File(const http::Request& req, std::string_view rest, http::Response& res, std::string_view client) {
    if (req.method != "GET") return SetOutcome(res, 405, IssueType::kNotSupported, "use GET");
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return SetOutcome(res, 404, IssueType::kNotSupported, "no such file");
    std::shared_ptr<Job> job = Find(rest.substr(0, slash), client);
    std::string_view name = rest.substr(slash + 1);
    bool listed = false;
    if (job) {
      std::lock_guard lock(mu_);
      if (job->state == Job::State::kDone) {
        listed = name == job->error_file && !name.empty();
        for (const ExportFile& f : job->files) listed = listed || f.name == name;
      }
    }
    if (!listed) return SetOutcome(res, 404, IssueType::kNotSupported, "no such export file");
    std::string path = job->dir + "/" + std::string(name);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      return SetOutcome(res, 404, IssueType::kNotSupported, "the export file is gone");
    }
    // Streamed from disk by the HTTP server, never held in memory.
    res.status = 200;
    res.SetHeader("Content-Type", std::string(kNdjson));
    res.body_file = std::move(path);
  }

  std::shared_ptr<Job> Find(std::string_view id, std::string_view client) {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(std::string(id));
    if (it == jobs_.end() || it->second->client != client) return nullptr;
    return it->second;
  }

  // Removes expired jobs and joins finished threads of removed ones.
  void Sweep() {
    std::vector<std::shared_ptr<Job>> gone;
    {
      std::lock_guard lock(mu_);
      auto now = Clock::now();
      for (auto it = jobs_.begin(); it != jobs_.end();) {
        Job& j = *it->second;
        if (j.state != Job::State::kRunning &&
            std::chrono::duration<double>(now - j.finished).count() > opt_.expire_seconds) {
          retired_.push_back(it->second);
          it = jobs_.erase(it);
        } else {
          ++it;
        }
      }
      for (auto it = retired_.begin(); it != retired_.end();) {
        if ((*it)->exited) {
          gone.push_back(*it);
          it = retired_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& j : gone) {
      if (j->thread.joinable()) j->thread.join();
      RemoveDir(*j);
    }
  }

  static void RemoveDir(const Job& job) {
    std::error_code ec;
    std::filesystem::remove_all(job.dir, ec);
  }

  store::Store& store_;
  const ExportOptions opt_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
  std::vector<std::shared_ptr<Job>> retired_;  // removed from jobs_, thread not yet joined
};

BulkExporter::BulkExporter(store::Store& store, ExportOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(options))) {}
BulkExporter::~BulkExporter() = default;
bool BulkExporter::Handles(const http::Request& req) const { return impl_->Handles(req); }
void BulkExporter::Handle(const http::Request& req, http::Response& res, std::string_view client) {
  impl_->Handle(req, res, client);
}
size_t BulkExporter::JobCount() const { return impl_->JobCount(); }

}  // namespace bevan::rest
