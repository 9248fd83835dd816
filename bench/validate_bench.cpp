// Validation throughput over the Synthea sample, in MB/s of resource JSON per
// core: validation of parsed documents, and parse + validate together. Each
// run checks that every resource is valid (a validator that rejects or skips
// everything cannot look fast).
//
//   build/bench/validate_bench --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include "bench_data.h"
#include "fhir/validate.h"
#include "fhirpath/invariants.h"
#include "json/json.h"

namespace {

using bevan::bench::SyntheaCorpus;

void Report(benchmark::State& state, size_t errors) {
  const auto& c = SyntheaCorpus();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * c.bytes));
  state.counters["resources/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * c.resources.size()), benchmark::Counter::kIsRate);
  if (errors != 0) state.SkipWithError("validation reported errors on the Synthea sample");
}

void BM_Validate(benchmark::State& state) {
  const auto& c = SyntheaCorpus();
  std::vector<bevan::json::Document> docs;
  for (const auto& r : c.resources) docs.push_back(std::move(bevan::json::Document::Parse(r)).value());
  size_t errors = 0;
  for (auto _ : state) {
    for (const auto& d : docs) errors += bevan::fhir::Validate(d.root()).ErrorCount();
  }
  Report(state, errors);
}

void BM_ParseValidate(benchmark::State& state) {
  const auto& c = SyntheaCorpus();
  size_t errors = 0;
  for (auto _ : state) {
    for (const auto& r : c.resources) errors += bevan::fhir::ValidateJson(r).ErrorCount();
  }
  Report(state, errors);
}

// Structural validation plus every FHIRPath invariant of the model.
void BM_ValidateWithInvariants(benchmark::State& state) {
  const auto& c = SyntheaCorpus();
  std::vector<bevan::json::Document> docs;
  for (const auto& r : c.resources) docs.push_back(std::move(bevan::json::Document::Parse(r)).value());
  auto options = bevan::fhirpath::FullValidation();
  size_t errors = 0;
  for (auto _ : state) {
    for (const auto& d : docs) errors += bevan::fhir::Validate(d.root(), options).ErrorCount();
  }
  Report(state, errors);
}

BENCHMARK(BM_Validate);
BENCHMARK(BM_ValidateWithInvariants);
BENCHMARK(BM_ParseValidate);

}  // namespace

BENCHMARK_MAIN();
