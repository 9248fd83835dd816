// fuzz_json: json::Document::Parse, then the writer round trip. Whatever
// parses must write (compact and pretty) to text that parses again to an
// equal document, and compact output must be a fixed point of parse + write.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "json/json.h"

namespace {

[[noreturn]] void Fail(const char* what, const std::string& text) {
  std::fprintf(stderr, "fuzz_json: %s\n%s\n", what, text.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bevan::json;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  ParseOptions options;
  options.max_size = 1u << 20;
  ErrorLocation where;
  auto doc = Document::Parse(input, options, &where);
  if (!doc.ok()) {
    if (where.offset > size) Fail("error offset past the end of the input", doc.status().ToString());
    return 0;
  }
  // Everything reachable must be readable (ASan checks the reads).
  (void)doc->root().AsInt64();
  (void)doc->root().AsDouble();

  std::string compact = ToString(doc->root());
  auto again = Document::Parse(compact, options);
  if (!again.ok()) Fail("compact output does not parse", again.status().ToString() + "\n" + compact);
  if (!(again->root() == doc->root())) Fail("compact output parses to a different document", compact);
  if (ToString(again->root()) != compact) Fail("compact write is not a fixed point", compact);

  std::string pretty = ToString(doc->root(), {.pretty = true});
  auto from_pretty = Document::Parse(pretty, options);
  if (!from_pretty.ok()) Fail("pretty output does not parse", from_pretty.status().ToString() + "\n" + pretty);
  if (!(from_pretty->root() == doc->root())) Fail("pretty output parses to a different document", pretty);

  // Deep copy into another document must be equal too.
  Document copy;
  copy.set_root(copy.Import(doc->root()));
  if (!(copy.root() == doc->root())) Fail("Import gives a different document", compact);
  return 0;
}
