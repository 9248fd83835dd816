// JSON parse and write throughput over the Synthea sample: Bevan's DOM side by
// side with nlohmann::json and RapidJSON on the same bytes. Each benchmark
// checks its output so that a broken parser cannot look fast.
//
//   build/bench/json_bench --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <nlohmann/json.hpp>

#include "bench_data.h"
#include "json/json.h"

namespace {

using bevan::bench::SyntheaCorpus;

void Report(benchmark::State& state, size_t checksum) {
  const auto& c = SyntheaCorpus();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * c.bytes));
  state.counters["resources/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * c.resources.size()), benchmark::Counter::kIsRate);
  if (checksum == 0) state.SkipWithError("no output");
}

void BM_Bevan_Parse(benchmark::State& state) {
  const auto& c = SyntheaCorpus();
  size_t members = 0;
  for (auto _ : state) {
    for (const auto& r : c.resources) {
      auto doc = bevan::json::Document::Parse(r);
      if (!doc.ok()) state.SkipWithError(doc.status().message().c_str());
      members += doc->root().size();
    }
  }
  Report(state, members);
}

void BM_Bevan_ParseWrite(benchmark::State& state) {
  const auto& c = SyntheaCorpus();
  std::string out;
  size_t bytes = 0;
  for (auto _ : state) {
    for (const auto& r : c.resources) {
      auto doc = bevan::json::Document::Parse(r);
      out.clear();
      bevan::json::Write(doc->root(), out);
      if (out.size() != r.size()) state.SkipWithError("round trip changed the size");
      bytes += out.size();
    }
  }
  Report(state, bytes);
}

void BM_Bevan_Write(benchmark::State& state) {
  const auto& c = SyntheaCorpus();
  std::vector<bevan::json::Document> docs;
  for (const auto& r : c.resources) docs.push_back(std::move(bevan::json::Document::Parse(r)).value());
  std::string out;
  size_t bytes = 0;
  for (auto _ : state) {
    for (const auto& d : docs) {
      out.clear();
      bevan::json::Write(d.root(), out);
      bytes += out.size();
    }
  }
  Report(state, bytes);
}

void BM_Nlohmann_Parse(benchmark::State& state) {
  const auto& c = SyntheaCorpus();
  size_t members = 0;
  for (auto _ : state) {
    for (const auto& r : c.resources) members += nlohmann::json::parse(r).size();
  }
  Report(state, members);
}

void BM_Nlohmann_ParseWrite(benchmark::State& state) {
  const auto& c = SyntheaCorpus();
  size_t bytes = 0;
  for (auto _ : state) {
    for (const auto& r : c.resources) bytes += nlohmann::json::parse(r).dump().size();
  }
  Report(state, bytes);
}

// RapidJSON's fastest in-situ-free DOM parse; numbers become doubles (decimals
// such as 1.50 are not kept).
void BM_RapidJson_Parse(benchmark::State& state) {
  const auto& c = SyntheaCorpus();
  size_t members = 0;
  for (auto _ : state) {
    for (const auto& r : c.resources) {
      rapidjson::Document d;
      d.Parse(r.data(), r.size());
      if (d.HasParseError()) state.SkipWithError("rapidjson parse error");
      members += d.MemberCount();
    }
  }
  Report(state, members);
}

template <unsigned kFlags>
void RapidParseWrite(benchmark::State& state) {
  const auto& c = SyntheaCorpus();
  size_t bytes = 0;
  rapidjson::StringBuffer buffer;
  for (auto _ : state) {
    for (const auto& r : c.resources) {
      rapidjson::Document d;
      d.Parse<kFlags>(r.data(), r.size());
      buffer.Clear();
      rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
      d.Accept(writer);
      bytes += buffer.GetSize();
    }
  }
  Report(state, bytes);
}

void BM_RapidJson_ParseWrite(benchmark::State& state) { RapidParseWrite<rapidjson::kParseDefaultFlags>(state); }
// Numbers kept as strings: the only RapidJSON mode that keeps decimals exact.
void BM_RapidJson_ParseWrite_ExactNumbers(benchmark::State& state) {
  RapidParseWrite<rapidjson::kParseNumbersAsStringsFlag>(state);
}

BENCHMARK(BM_Bevan_Parse);
BENCHMARK(BM_Bevan_Write);
BENCHMARK(BM_Bevan_ParseWrite);
BENCHMARK(BM_RapidJson_Parse);
BENCHMARK(BM_RapidJson_ParseWrite);
BENCHMARK(BM_RapidJson_ParseWrite_ExactNumbers);
BENCHMARK(BM_Nlohmann_Parse);
BENCHMARK(BM_Nlohmann_ParseWrite);

}  // namespace

BENCHMARK_MAIN();
