// Bevan's FHIRPath engine over bench/fhirpath/expressions.json and the
// Synthea sample: prints one JSON line per expression, in the same form as
// bench/fhirpath/fhirpath-js-bench.mjs, so bench/fhirpath/run can put both
// engines side by side. Expressions are compiled once; each evaluation gets
// a reset arena.
//
//   build/bench/fhirpath_bench SYNTHEA_DIR EXPRESSIONS_JSON [SECONDS_PER_EXPRESSION [NAME]]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "fhirpath/fhirpath.h"
#include "json/json.h"

namespace {

using bevan::Arena;
using bevan::json::Document;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: fhirpath_bench SYNTHEA_DIR EXPRESSIONS_JSON [SECONDS]\n");
    return 2;
  }
  std::string dir = argv[1];
  double budget = argc > 3 ? std::stod(argv[3]) : 1.0;
  std::string only = argc > 4 ? argv[4] : "";
  if (!std::filesystem::is_directory(dir)) {
    std::fprintf(stderr, "fhirpath_bench: %s is not a directory\n", dir.c_str());
    return 2;
  }
  // Resources by type, and collection Bundles of 100 resources in file order.
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".ndjson" && e.path().filename() != "log.ndjson") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> lines;
  for (const auto& f : files) {
    std::ifstream in(f);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) lines.push_back(line);
    }
  }
  std::vector<Document> docs;
  std::map<std::string, std::vector<const bevan::json::Value*>> by_type;
  docs.reserve(lines.size() + lines.size() / 100 + 1);
  for (const auto& l : lines) {
    docs.push_back(std::move(Document::Parse(l)).value());
    by_type[std::string(docs.back().root().Find("resourceType")->as_string())].push_back(&docs.back().root());
  }
  for (size_t i = 0; i < lines.size(); i += 100) {
    std::string b = R"({"resourceType":"Bundle","type":"collection","entry":[)";
    for (size_t k = i; k < std::min(lines.size(), i + 100); ++k) {
      if (k > i) b += ",";
      b += R"({"resource":)" + lines[k] + "}";
    }
    b += "]}";
    docs.push_back(std::move(Document::Parse(b)).value());
    by_type["Bundle"].push_back(&docs.back().root());
  }

  auto exprs = Document::Parse(ReadFile(argv[2]));
  if (!exprs.ok()) {
    std::fprintf(stderr, "fhirpath_bench: %s\n", exprs.status().message().c_str());
    return 2;
  }
  Arena arena(1 << 16);
  for (const auto& e : exprs->root().items()) {
    std::string name(e.Find("name")->as_string());
    if (!only.empty() && name != only) continue;
    std::string input(e.Find("input")->as_string());
    std::string text(e.Find("expression")->as_string());
    bevan::fhirpath::CompileOptions options;
    options.context_type = input;
    auto compiled = bevan::fhirpath::Expression::Compile(text, options);
    if (!compiled.ok()) {
      std::printf("{\"name\":\"%s\",\"error\":\"%s\"}\n", name.c_str(), compiled.status().message().c_str());
      continue;
    }
    const auto& inputs = by_type[input];
    size_t results = 0, trues = 0;
    for (const auto* r : inputs) {
      arena.Reset();
      auto out = compiled->Evaluate(*r, arena);
      if (!out.ok()) {
        std::printf("{\"name\":\"%s\",\"error\":\"%s\"}\n", name.c_str(), out.status().message().c_str());
        results = SIZE_MAX;
        break;
      }
      results += out->size();
      for (const auto& item : *out) {
        if (item.kind() == bevan::fhirpath::ItemKind::kBoolean && item.boolean()) ++trues;
      }
    }
    if (results == SIZE_MAX) continue;
    // Bounded: whole passes until the time budget is spent (at most 10 million evaluations).
    size_t evaluations = 0;
    auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    size_t sink = 0;
    while (elapsed < budget && evaluations < 10'000'000) {
      for (const auto* r : inputs) {
        arena.Reset();
        auto out = compiled->Evaluate(*r, arena);
        sink += out.ok() ? out->size() : 0;
        ++evaluations;
      }
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    std::printf(
        "{\"name\":\"%s\",\"evaluations\":%zu,\"seconds\":%.6f,\"evals_per_sec\":%.1f,\"inputs\":%zu,"
        "\"results\":%zu,\"trues\":%zu,\"sink\":%zu}\n",
        name.c_str(), evaluations, elapsed, evaluations / elapsed, inputs.size(), results, trues, sink);
    std::fflush(stdout);
  }
  return 0;
}
