#include "export_command.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "rest/export.h"
#include "store/store.h"

namespace bevan::cli {

int RunExport(const ExportArgs& args) {
  rest::ExportSpec spec;
  spec.level = args.patient_only ? rest::ExportSpec::Level::kPatient : rest::ExportSpec::Level::kSystem;
  std::vector<std::pair<std::string, std::string>> params;
  if (!args.types.empty()) params.emplace_back("_type", args.types);
  if (!args.since.empty()) params.emplace_back("_since", args.since);
  if (Status st = rest::ParseExportParams(params, spec); !st.ok()) {
    std::cerr << "bevan export: " << st.message() << "\n";
    return 1;
  }
  std::error_code ec;
  std::filesystem::create_directories(args.out, ec);
  if (ec) {
    std::cerr << "bevan export: cannot create " << args.out << ": " << ec.message() << "\n";
    return 2;
  }
  auto store = store::OpenStore(args.db);
  if (!store.ok()) {
    std::cerr << "bevan export: cannot open the store " << args.db << ": " << store.status().message() << "\n";
    return 2;
  }
  bool tty = isatty(STDERR_FILENO) != 0;
  rest::WriteExportOptions options;
  options.max_resources_per_file = 0;  // one file per type
  options.progress_every = tty ? 0.2 : 5.0;
  options.progress = [tty](const rest::ExportProgress& p) {
    double rate = p.seconds > 0 ? static_cast<double>(p.resources) / p.seconds : 0;
    char line[200];
    std::snprintf(line, sizeof(line), "%sexport: %zu/%zu types, %llu resources, %.0f resources/s, %.1f MB (%s)   %s",
                  tty ? "\r" : "", p.types_done, p.types_total, static_cast<unsigned long long>(p.resources), rate,
                  static_cast<double>(p.bytes) / 1e6, p.type.c_str(), tty ? "" : "\n");
    std::cerr << line << std::flush;
  };
  auto start = std::chrono::steady_clock::now();
  auto files = rest::WriteExport(**store, spec, args.out, options);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (tty) std::cerr << "\n";
  if (!files.ok()) {
    std::cerr << "bevan export: " << files.status().message() << "\n";
    return 2;
  }
  uint64_t total = 0, bytes = 0;
  for (const rest::ExportFile& f : *files) {
    std::printf("%-28s %10llu\n", f.name.c_str(), static_cast<unsigned long long>(f.count));
    total += f.count;
    bytes += f.bytes;
  }
  std::printf("exported %llu resources (%.1f MB) to %s in %.2f s: %.0f resources/s\n",
              static_cast<unsigned long long>(total), static_cast<double>(bytes) / 1e6, args.out.c_str(), seconds,
              seconds > 0 ? static_cast<double>(total) / seconds : 0.0);
  return 0;
}

}  // namespace bevan::cli
