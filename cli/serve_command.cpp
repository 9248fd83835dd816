#include "serve_command.h"

#include <atomic>
#include <fstream>
#include <iostream>
#include <sstream>

#include "http/server.h"
#include "json/json.h"
#include "rest/export.h"
#include "rest/service.h"
#include "store/store.h"

namespace bevan::cli {

namespace {

// Reads the config file: a JSON object whose keys override the defaults
// (command-line flags given explicitly win; see main.cpp).
Status ApplyConfig(const std::string& path, ServeArgs& args) {
  std::ifstream in(path);
  if (!in) return IoError("cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  ASSIGN_OR_RETURN(json::Document doc, json::Document::Parse(ss.str()));
  if (!doc.root().is_object()) return InvalidArgumentError(path + ": the config must be a JSON object");
  for (const json::Member& m : doc.root().members()) {
    std::string_view k = m.name();
    const json::Value& v = m.value;
    auto str = [&](std::string& out) -> Status {
      if (!v.is_string()) return InvalidArgumentError(path + ": '" + std::string(k) + "' must be a string");
      out = v.as_string();
      return Status::Ok();
    };
    auto num = [&](auto& out, int64_t lo, int64_t hi) -> Status {
      auto n = v.AsInt64();
      if (!n || *n < lo || *n > hi) {
        return InvalidArgumentError(path + ": '" + std::string(k) + "' must be an integer in [" + std::to_string(lo) +
                                    ", " + std::to_string(hi) + "]");
      }
      out = static_cast<std::remove_reference_t<decltype(out)>>(*n);
      return Status::Ok();
    };
    if (k == "db") {
      RETURN_IF_ERROR(str(args.db));
    } else if (k == "address") {
      RETURN_IF_ERROR(str(args.address));
    } else if (k == "port") {
      RETURN_IF_ERROR(num(args.port, 0, 65535));
    } else if (k == "threads") {
      RETURN_IF_ERROR(num(args.threads, 0, 256));
    } else if (k == "tls_cert") {
      RETURN_IF_ERROR(str(args.tls_cert));
    } else if (k == "tls_key") {
      RETURN_IF_ERROR(str(args.tls_key));
    } else if (k == "base_url") {
      RETURN_IF_ERROR(str(args.base_url));
    } else if (k == "max_body_bytes") {
      RETURN_IF_ERROR(num(args.max_body_bytes, 1024, int64_t{1} << 32));
    } else if (k == "max_bundle_entries") {
      RETURN_IF_ERROR(num(args.max_bundle_entries, 1, 1000000));
    } else {
      return InvalidArgumentError(path + ": unknown setting '" + std::string(k) + "'");
    }
  }
  return Status::Ok();
}

bool IsLoopback(const std::string& address) {
  return address == "127.0.0.1" || address.starts_with("127.") || address == "::1" || address == "localhost";
}

}  // namespace

int RunServe(ServeArgs args) {
  if (!args.config.empty()) {
    if (Status st = ApplyConfig(args.config, args); !st.ok()) {
      std::cerr << "bevan serve: " << st.message() << "\n";
      return 2;
    }
  }
  if (args.address == "localhost") args.address = "127.0.0.1";
  // Until authorisation exists, the server must not be reachable from other machines.
  if (!IsLoopback(args.address)) {
    std::cerr << "bevan serve: refusing to listen on " << args.address
              << ": without authorisation configured Bevan serves loopback only (127.0.0.1)\n";
    return 2;
  }
  auto store = store::OpenStore(args.db);
  if (!store.ok()) {
    std::cerr << "bevan serve: cannot open the store " << args.db << ": " << store.status().message() << "\n";
    return 1;
  }
  bool tls = !args.tls_cert.empty() || !args.tls_key.empty();
  rest::ServiceOptions options;
  options.max_bundle_entries = args.max_bundle_entries;
  options.base_url = args.base_url;

  http::ServerOptions http_options;
  http_options.address = args.address;
  http_options.port = args.port;
  http_options.io_threads = args.threads;
  http_options.max_body_bytes = args.max_body_bytes;
  http_options.tls_cert_file = args.tls_cert;
  http_options.tls_key_file = args.tls_key;
  http_options.make_error = rest::FhirService::ServerError;

  // The service is created after binding, once the port (and so the base
  // URL) is known; until then requests get 503.
  std::unique_ptr<rest::FhirService> service;
  std::atomic<const rest::FhirService*> ready{nullptr};
  // Creates and updates are asynchronous (they wait for a group commit
  // without holding a thread). Other writes (Bundles, deletes, patches,
  // conditional operations) wait in Store::Transact on a pool large enough
  // that many share one group commit; reads stay on the I/O threads.
  http_options.work_threads = 32;
  http_options.work_queue_limit = 4096;
  http_options.is_long = [](const http::Request& req) {
    if (req.method == "GET" || req.method == "HEAD") return false;
    bool plain_write = (req.method == "POST" || req.method == "PUT") && req.query.empty() &&
                       req.Header("If-None-Exist").empty() && req.path.size() > 6 && req.path.starts_with("/fhir/");
    return !plain_write;
  };
  http_options.async_handler = [&ready](const http::Request& req, http::Response& res, std::function<void()> done) {
    const rest::FhirService* s = ready.load(std::memory_order_acquire);
    if (!s) {
      rest::FhirService::ServerError(503, "starting up", res);
      return done();
    }
    if (req.path == "/fhir" || req.path.starts_with("/fhir/")) return s->HandleAsync(req, res, std::move(done));
    rest::FhirService::ServerError(404, "not found: the FHIR API is under /fhir", res);
    done();
  };
  auto server = http::Server::Start(http_options, [&ready](const http::Request& req, http::Response& res) {
    const rest::FhirService* s = ready.load(std::memory_order_acquire);
    if (!s) return rest::FhirService::ServerError(503, "starting up", res);
    if (req.path == "/fhir" || req.path.starts_with("/fhir/")) return s->Handle(req, res);
    rest::FhirService::ServerError(404, "not found: the FHIR API is under /fhir", res);
  });
  if (!server.ok()) {
    std::cerr << "bevan serve: " << server.status().message() << "\n";
    return 1;
  }
  if (options.base_url.empty()) {
    options.base_url =
        std::string(tls ? "https" : "http") + "://" + args.address + ":" + std::to_string((*server)->port()) + "/fhir";
  }
  rest::ExportOptions export_options;
  export_options.base_url = options.base_url;
  export_options.directory = !args.export_dir.empty()        ? args.export_dir
                             : args.db.starts_with("sqlite:") ? args.db.substr(7) + ".export"
                                                              : "./bevan-export";
  rest::BulkExporter exporter(**store, export_options);
  options.exporter = &exporter;
  service = std::make_unique<rest::FhirService>(**store, options);
  ready.store(service.get(), std::memory_order_release);
  std::cout << "bevan: serving FHIR R4 at " << options.base_url << " (store " << (*store)->backend()
            << ", loopback only: no authorisation configured)" << std::endl;
  (*server)->RunUntilSignal();
  std::cout << "bevan: stopped" << std::endl;
  return 0;
}

}  // namespace bevan::cli
