// audit_bench: AuditLog::Append throughput with the background writer (the
// cost a read pays for being audited), end-to-end committed events/s, and
// Verify's rate. Checks that every appended event was committed and that
// the chain verifies.
//
//   audit_bench [events] [threads]     (default 200000 events, 4 threads)
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit.h"

namespace {

using Clock = std::chrono::steady_clock;

double Secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// User + system CPU seconds of the whole process: robust to a loaded
// machine, and what auditing takes from the server.
double CpuSecs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

bevan::audit::AuditRecord Record(int i) {
  bevan::audit::AuditRecord r;
  r.subtype = "read";
  r.user = "Practitioner/" + std::to_string(i % 100);
  r.client_id = "ehr-app";
  r.source_address = "10.1.2.3";
  r.request_id = "0123456789abcdef0123456789abcdef";
  r.purpose_of_use = "TREAT";
  r.patients = {std::to_string(i % 5000)};
  r.entities = {"Observation/" + std::to_string(i)};
  return r;
}

int Run(const std::string& path, int events, int threads, const std::string& key) {
  for (const char* s : {"", "-wal", "-shm", ".head"}) std::remove((path + s).c_str());
  auto log = bevan::audit::AuditLog::Open({.path = path, .key = key});
  if (!log.ok()) {
    std::fprintf(stderr, "%s\n", log.status().ToString().c_str());
    return 1;
  }
  std::atomic<int> failures{0};
  std::atomic<int64_t> append_ns{0};
  auto t0 = Clock::now();
  double cpu0 = CpuSecs();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      int64_t ns = 0;
      for (int i = t; i < events; i += threads) {
        bevan::audit::AuditRecord r = Record(i);
        auto a = Clock::now();
        if (!(*log)->Append(std::move(r)).ok()) ++failures;
        ns += std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - a).count();
      }
      append_ns += ns;
    });
  }
  for (auto& th : pool) th.join();
  auto t1 = Clock::now();
  if (!(*log)->Flush().ok()) ++failures;
  auto t2 = Clock::now();
  double cpu = CpuSecs() - cpu0;
  int64_t committed = (*log)->committed();
  log->reset();
  auto v0 = Clock::now();
  auto report = bevan::audit::Verify(path, key);
  auto v1 = Clock::now();
  bool ok = failures == 0 && committed == events && report.ok() && report->ok && report->events == events;
  std::printf("| %-11s | %7d | %7d | %10.0f | %9.2f | %14.0f | %12.1f | %11.0f | %-5s |\n",
              key.empty() ? "sha256" : "hmac-sha256", events, threads, events / Secs(t0, t1),
              static_cast<double>(append_ns) / events / 1000.0, events / Secs(t0, t2), cpu / events * 1e6,
              events / Secs(v0, v1), ok ? "ok" : "FAILED");
  for (const char* s : {"", "-wal", "-shm", ".head"}) std::remove((path + s).c_str());
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  int events = argc > 1 ? std::atoi(argv[1]) : 200000;
  int threads = argc > 2 ? std::atoi(argv[2]) : 4;
  std::string path =
      (std::filesystem::temp_directory_path() / ("bevan_audit_bench_" + std::to_string(getpid()) + ".db")).string();
  std::printf(
      "| chain       |  events | threads |  appends/s | µs/append | committed ev/s | CPU µs/event | verify ev/s | "
      "check |\n");
  std::printf(
      "|-------------|---------|---------|------------|-----------|----------------|--------------|-------------|------"
      "-|\n");
  int rc = Run(path, events, threads, "");
  rc |= Run(path, events, threads, "bench-key");
  return rc;
}
