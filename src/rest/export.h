// FHIR Bulk Data Access (v2) export: `$export` at system, Patient and
// Group level, asynchronous jobs that write NDJSON files, the status and
// manifest, file download and cancellation. `bevan export` (cli) writes files
// with the same code (WriteExport) without the HTTP part.
//
// Resources are written as the store holds them (Store::Scan hands out the
// stored bytes; nothing is parsed or re-serialised), one per line, a type at a
// time, never more than one chunk of a type in memory.
//
// HTTP surface (paths under the FHIR base, e.g. /fhir):
//   GET    /$export, /Patient/$export, /Group/{id}/$export   kick-off (Prefer: respond-async)
//          -> 202, Content-Location: {base}/$export-poll-status?_jobId={job}
//   GET    /$export-poll-status?_jobId={job}   202 + X-Progress + Retry-After while running;
//                                              200 + manifest when done; 500 + OperationOutcome if it failed
//   DELETE /$export-poll-status?_jobId={job}   cancels, removes the files: 202
//   GET    /$export-file/{job}/{file}          application/fhir+ndjson
// An unknown, expired, cancelled job, or one requested by another client: 404.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "http/message.h"
#include "store/store.h"

namespace bevan::rest {

// What to export: the parsed kick-off parameters.
struct ExportSpec {
  enum class Level { kSystem, kPatient, kGroup };
  Level level = Level::kSystem;
  // Group level: the Group's member Patient ids (resolved at kick-off).
  std::vector<std::string> patients;
  // _type; empty: every type (Patient and Group level: every type of the
  // Patient compartment).
  std::vector<std::string> types;
  std::optional<store::Micros> since;  // _since: last_updated > since
  // _typeFilter: (type, search query); several for one type are ORed, and a
  // type with any filter exports only the resources some filter matches.
  std::vector<std::pair<std::string, std::string>> type_filters;
};

// Parses kick-off query parameters (already percent-decoded). `level` and,
// for Group level, `patients` are the caller's. kInvalidArgument (-> 400)
// naming the parameter for anything unknown or malformed: unknown types,
// _since that is not an instant, _typeFilter with unknown search parameters,
// an _outputFormat other than application/fhir+ndjson, application/ndjson, ndjson.
Status ParseExportParams(const std::vector<std::pair<std::string, std::string>>& params, ExportSpec& spec);

// The Patient ids a Group's JSON lists as members (member.entity references
// to Patient/{id}); kInvalidArgument when it is not a Group.
Result<std::vector<std::string>> GroupMemberPatients(std::string_view group_json);

// One written file.
struct ExportFile {
  std::string type;
  std::string name;  // file name inside the output directory ("Observation.ndjson", "Observation-2.ndjson")
  uint64_t count = 0;
  uint64_t bytes = 0;
};

struct ExportProgress {
  size_t types_done = 0;
  size_t types_total = 0;
  std::string type;  // the type being written
  uint64_t resources = 0;
  uint64_t bytes = 0;
  double seconds = 0;
};

struct WriteExportOptions {
  // A type's file is split after this many resources (Type.ndjson,
  // Type-2.ndjson, ...); 0: never. Files are also split after max_file_bytes
  // (0: never), so a download never holds more than that.
  uint64_t max_resources_per_file = 100000;
  uint64_t max_file_bytes = 0;
  int scan_chunk = 5000;    // Store::Scan chunk
  std::string search_base;  // base URL for search parameters in _typeFilter
  // Called between chunks of output (about every `progress_every` seconds) and once at the end.
  std::function<void(const ExportProgress&)> progress;
  double progress_every = 1.0;
  // Set from another thread to stop: WriteExport then returns kUnavailable ("cancelled").
  const std::atomic<bool>* cancel = nullptr;
};

// Writes the resources `spec` selects as NDJSON files into `directory`
// (which must exist), a type at a time; types with nothing to export get no
// file. Returns the files in writing order. Fails on a store or file error
// (files written so far stay; the caller removes the directory).
Result<std::vector<ExportFile>> WriteExport(store::Store& store, const ExportSpec& spec, const std::string& directory,
                                            const WriteExportOptions& options);

struct ExportOptions {
  std::string base_path = "/fhir";                      // where requests arrive
  std::string base_url = "http://127.0.0.1:8080/fhir";  // absolute, for Content-Location and manifest URLs
  std::string directory;                                // jobs' files go to directory/{job}/ (created); required
  int max_running_jobs = 2;                             // a kick-off beyond this many unfinished jobs: 429
  int max_kept_jobs = 32;                               // finished jobs kept until they expire (beyond: 429)
  double expire_seconds = 3600;                         // a finished job and its files are removed after this
  uint64_t max_resources_per_file = 100000;
  uint64_t max_file_bytes = 256u << 20;
  bool requires_access_token = false;  // the manifest's requiresAccessToken
};

// The asynchronous export service. Thread-safe; owns one worker thread per
// running job (at most max_running_jobs). Destruction cancels running jobs,
// waits for them and removes every job's files.
class BulkExporter {
 public:
  BulkExporter(store::Store& store, ExportOptions options);
  ~BulkExporter();
  BulkExporter(const BulkExporter&) = delete;
  BulkExporter& operator=(const BulkExporter&) = delete;

  // Whether `req` is one of the export endpoints above (path and method
  // shape only): then Handle answers it.
  bool Handles(const http::Request& req) const;

  // Answers an export request. `client` names who asks (e.g. the access
  // token's client id; empty without authorisation): a job is visible only
  // to the client that started it.
  void Handle(const http::Request& req, http::Response& res, std::string_view client);

  // Jobs not yet removed (running or finished); for tests.
  size_t JobCount() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace bevan::rest
