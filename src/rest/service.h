// FHIR R4 REST semantics over a Store: the interactions of the RESTful API
// (create, read, vread, update, patch, delete, history, capabilities),
// conditional operations, batch and transaction Bundles, and $validate.
//
// Requests arrive as plain HTTP messages whose path starts with the FHIR
// base path ("/fhir"). Every error is answered with an OperationOutcome and
// leaves stored data untouched. Thread-safe: one FhirService serves all I/O
// threads.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "auth/access.h"
#include "http/message.h"
#include "rest/capabilities.h"
#include "store/store.h"

namespace bevan::rest {

class BulkExporter;  // rest/export.h
}  // namespace bevan::rest
namespace bevan::audit {
class AuditLog;  // audit/audit.h
}  // namespace bevan::audit
namespace bevan::rest {

struct ServiceOptions {
  std::string base_path = "/fhir";                      // where the FHIR API lives
  std::string base_url = "http://127.0.0.1:8080/fhir";  // absolute, for Location and fullUrl
  size_t max_bundle_entries = 1000;                     // over: 413
  int default_page_size = 50;
  int max_page_size = 1000;
  bool validate_writes = true;       // reject invalid resources with 422
  BulkExporter* exporter = nullptr;  // answers the $export endpoints when set (not owned)
  // Set when a SMART authorisation server guards the API: the
  // CapabilityStatement then declares it.
  std::optional<SmartEndpoints> smart;
  // When set, every interaction through Handle/HandleAsync (but metadata) is
  // recorded: who, which patients and resources, action and outcome. If the
  // log cannot take a record the request is answered 503 instead.
  audit::AuditLog* audit = nullptr;
};

class FhirService {
 public:
  FhirService(store::Store& store, ServiceOptions options);
  ~FhirService();
  FhirService(const FhirService&) = delete;
  FhirService& operator=(const FhirService&) = delete;

  // Handles one request under base_path.
  void Handle(const http::Request& req, http::Response& res) const;

  // The same, finishing asynchronously where the store allows it: creates
  // and updates are committed with Store::TransactAsync (many in flight share
  // one group commit; no thread waits), everything else is handled at once.
  // Calls `done` exactly once.
  void HandleAsync(const http::Request& req, http::Response& res, std::function<void()> done) const;

  // The same for an authenticated caller: every interaction is checked
  // against `who`'s scopes and patient context (auth/access.h). Refused
  // interactions get 403; resources outside a patient-context grant are
  // answered as unknown (404) and left out of searches, includes, history,
  // $everything and totals. `who` need only live until the call returns.
  void Handle(const http::Request& req, http::Response& res, const auth::Access& who) const;
  void HandleAsync(const http::Request& req, http::Response& res, const auth::Access& who,
                   std::function<void()> done) const;

  // Whether a request should run on the server's work pool (Bundles).
  bool IsLong(const http::Request& req) const;

  // Fills `res` with an OperationOutcome for an error the HTTP server
  // produced itself (413, 431, 408, 503, 500).
  static void ServerError(int status, std::string_view message, http::Response& res);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace bevan::rest
