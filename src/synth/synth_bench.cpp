// synth_bench [PATIENTS] [DIR]: the generator's output rate on one thread.
// Without DIR the output goes to a sink that only counts bytes (generation
// cost alone); with DIR it is written as NDJSON files there (generation plus
// buffered file writes). Prints resources, bytes, seconds and resources/s.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "synth/synth.h"

namespace {

class CountingSink final : public bevan::synth::Sink {
 public:
  bevan::Status Write(bevan::synth::ResourceType, std::string_view json) override {
    bytes_ += json.size() + 1;
    return bevan::Status::Ok();
  }
  uint64_t bytes() const { return bytes_; }

 private:
  uint64_t bytes_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  bevan::synth::Options options;
  options.patients = argc > 1 ? static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 10)) : 20000;
  std::string dir = argc > 2 ? argv[2] : "";
  CountingSink counting;
  auto start = std::chrono::steady_clock::now();
  auto counts =
      dir.empty() ? bevan::synth::Generate(options, counting) : bevan::synth::GenerateToDirectory(options, dir);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!counts.ok()) {
    std::fprintf(stderr, "synth_bench: %s\n", counts.status().ToString().c_str());
    return 1;
  }
  std::printf("%-18s %10s\n", "type", "resources");
  for (size_t t = 0; t < bevan::synth::kResourceTypeCount; ++t) {
    std::printf("%-18s %10llu\n",
                std::string(bevan::synth::ResourceTypeName(static_cast<bevan::synth::ResourceType>(t))).c_str(),
                static_cast<unsigned long long>(counts->by_type[t]));
  }
  uint64_t total = counts->total();
  std::printf("patients %u, resources %llu, %s%.2f s, %.0f resources/s%s\n", options.patients,
              static_cast<unsigned long long>(total), dir.empty() ? "" : "to files, ", seconds, total / seconds,
              dir.empty() ? (", " + std::to_string(counting.bytes() / (1 << 20)) + " MiB").c_str() : "");
  return 0;
}
