#include "synth_command.h"

#include <chrono>
#include <cstdio>
#include <iostream>

#include "synth/calendar.h"
#include "synth/synth.h"

namespace bevan::cli {

int RunSynth(const SynthArgs& args) {
  synth::Options options;
  options.patients = args.patients;
  options.seed = args.seed;
  options.trust_ods = args.trust;
  if (!args.as_of.empty()) {
    auto day = synth::ParseIsoDate(args.as_of);
    if (!day.ok()) {
      std::cerr << "bevan synth: --as-of: " << day.status().message() << "\n";
      return 1;
    }
    options.as_of = *day;
  }
  if (Status s = synth::CheckOptions(options); !s.ok()) {
    std::cerr << "bevan synth: " << s.message() << "\n";
    return 1;
  }
  auto start = std::chrono::steady_clock::now();
  auto counts = synth::GenerateToDirectory(options, args.out);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!counts.ok()) {
    std::cerr << "bevan synth: " << counts.status().message() << "\n";
    return 2;
  }
  for (size_t t = 0; t < synth::kResourceTypeCount; ++t) {
    std::printf("%-18s %10llu\n", std::string(synth::ResourceTypeName(static_cast<synth::ResourceType>(t))).c_str(),
                static_cast<unsigned long long>(counts->by_type[t]));
  }
  std::printf("%llu resources for %u patients in %s (%.2f s, %.0f resources/s)\n",
              static_cast<unsigned long long>(counts->total()), options.patients, args.out.c_str(), seconds,
              seconds > 0 ? counts->total() / seconds : 0.0);
  return 0;
}

}  // namespace bevan::cli
