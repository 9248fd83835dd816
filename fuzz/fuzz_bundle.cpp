// fuzz_bundle: POSTs the input as a batch/transaction Bundle to a FhirService
// over a fresh in-memory SQLite store (one per input, so that every crash
// reproduces from its input alone). Whatever the input, the service must
// answer with a status in 200..599 and a JSON object body (a Bundle or an
// OperationOutcome) that our own parser accepts.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <unistd.h>

#include "http/message.h"
#include "json/json.h"
#include "rest/service.h"
#include "store/store.h"

namespace {

[[noreturn]] void Fail(const char* what, const bevan::http::Response& res) {
  std::fprintf(stderr, "fuzz_bundle: %s (status %d)\n%s\n", what, res.status, res.body.c_str());
  std::abort();
}

}  // namespace

// The in-memory store is a temporary SQLite file (WAL needs one): on tmpfs
// its commits cost no disk flush, which makes this target some ten times
// faster.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (access("/dev/shm", W_OK) == 0) setenv("TMPDIR", "/dev/shm", 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bevan;
  if (size > 64 * 1024) return 0;
  store::StoreOptions store_options;
  store_options.sqlite_synchronous_full = false;
  auto store = store::OpenStore("sqlite::memory:", store_options);
  if (!store.ok()) {
    std::fprintf(stderr, "fuzz_bundle: cannot open the store: %s\n", store.status().ToString().c_str());
    std::abort();
  }
  rest::ServiceOptions options;
  options.base_url = "http://fuzz/fhir";
  options.max_bundle_entries = 50;
  rest::FhirService service(**store, options);

  http::Request req;
  req.method = "POST";
  req.target = "/fhir";
  req.path = "/fhir";
  req.headers = {{"Content-Type", "application/fhir+json"}};
  req.body.assign(reinterpret_cast<const char*>(data), size);
  http::Response res;
  service.Handle(req, res);

  if (res.status < 200 || res.status > 599) Fail("status out of range", res);
  auto body = json::Document::Parse(res.body);
  if (!body.ok()) Fail("response body is not JSON", res);
  if (!body->root().is_object() || !body->root().Find("resourceType")) Fail("response is not a resource", res);
  return 0;
}
