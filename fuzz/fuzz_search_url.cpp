// fuzz_search_url: search::ParseSearchQuery on the input as a query string
// (GET query or POST _search form body) for a few resource types. Errors are
// fine; crashes, sanitizer reports and hangs are not.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "search/query.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bevan::search;
  std::string_view query(reinterpret_cast<const char*>(data), size);
  ParseOptions options;
  options.base_url = "http://127.0.0.1:8080/fhir";
  for (std::string_view type : {"Patient", "Observation", "Encounter", "MedicationRequest", "Condition"}) {
    auto parsed = ParseSearchQuery(type, query, options);
    (void)parsed;
  }
  auto pairs = DecodeQueryString(query);
  if (pairs.ok()) (void)ParseSearchParams("Observation", *pairs, options);
  return 0;
}
