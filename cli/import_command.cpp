#include "import_command.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "json/json.h"
#include "rest/importer.h"
#include "store/store.h"

namespace bevan::cli {

namespace {

std::string Rate(double per_second) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.0f", per_second);
  return buf;
}

}  // namespace

int RunImport(const ImportArgs& args) {
  auto store = store::OpenStore(args.db);
  if (!store.ok()) {
    std::cerr << "bevan import: cannot open the store " << args.db << ": " << store.status().message() << "\n";
    return 2;
  }
  bool tty = isatty(STDERR_FILENO) != 0;
  rest::ImportOptions options;
  options.threads = args.threads;
  options.progress_every = tty ? 0.2 : 5.0;
  options.progress = [tty](const rest::ImportProgress& p) {
    double fraction = p.bytes_total ? static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total) : 0;
    double rate = p.seconds > 0 ? static_cast<double>(p.resources) / p.seconds : 0;
    double eta = fraction > 0.01 ? p.seconds * (1 - fraction) / fraction : 0;
    char line[160];
    if (p.indexing) {
      std::cerr << (tty ? "\n" : "") << "import: " << p.resources << " resources read; building search indexes\n"
                << std::flush;
      return;
    }
    if (tty) {
      int width = 30;
      int filled = static_cast<int>(fraction * width);
      std::string bar(static_cast<size_t>(filled), '#');
      bar.append(static_cast<size_t>(width - filled), '.');
      std::snprintf(line, sizeof(line), "\r[%s] %5.1f%%  %llu resources  %s/s  ETA %.0fs   ", bar.c_str(),
                    fraction * 100, static_cast<unsigned long long>(p.resources), Rate(rate).c_str(), eta);
    } else {
      std::snprintf(line, sizeof(line), "import: %.1f%%, %llu resources, %s/s, ETA %.0fs\n", fraction * 100,
                    static_cast<unsigned long long>(p.resources), Rate(rate).c_str(), eta);
    }
    std::cerr << line << std::flush;
  };
  auto summary = rest::Import(**store, args.paths, options);
  if (tty) std::cerr << "\n";
  if (!summary.ok()) {
    std::cerr << "bevan import: " << summary.status().message() << "\n";
    return 2;
  }
  const rest::ImportSummary& s = *summary;
  std::cout << "type                         created    updated  unchanged\n";
  for (const auto& [type, c] : s.by_type) {
    char row[128];
    std::snprintf(row, sizeof(row), "%-24s %11llu %10llu %10llu\n", type.c_str(),
                  static_cast<unsigned long long>(c.created), static_cast<unsigned long long>(c.updated),
                  static_cast<unsigned long long>(c.unchanged));
    std::cout << row;
  }
  double rate = s.seconds > 0 ? static_cast<double>(s.loaded + s.unchanged) / s.seconds : 0;
  std::cout << "imported " << s.loaded << " resources (" << s.unchanged << " unchanged, " << s.rejected
            << " rejected) in " << s.seconds << " s: " << Rate(rate) << " resources/s";
  if (s.bulk) std::cout << " (empty store: search indexes built at the end, in " << s.index_seconds << " s)";
  std::cout << "\n";
  if (!s.errors.empty()) {
    std::ostream* out = &std::cerr;
    std::ofstream file;
    if (!args.errors_file.empty()) {
      file.open(args.errors_file);
      if (file) out = &file;
    }
    for (const auto& e : s.errors) {
      *out << "# " << e.file << (e.line ? ":" + std::to_string(e.line) : std::string()) << "\n" << e.outcome << "\n";
    }
    if (s.rejected > s.errors.size()) {
      *out << "# ... and " << (s.rejected - s.errors.size()) << " more rejected resources\n";
    }
  }
  return s.rejected > 0 ? 1 : 0;
}

}  // namespace bevan::cli
