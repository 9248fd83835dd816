#include "audit_command.h"

#include <chrono>
#include <cstdio>

#include "audit/audit.h"

namespace bevan::cli {

int RunAuditVerify(const AuditVerifyArgs& args) {
  auto start = std::chrono::steady_clock::now();
  auto report = audit::Verify(args.log, audit::KeyFromEnvironment());
  if (!report.ok()) {
    std::fprintf(stderr, "bevan audit verify: %s\n", report.status().ToString().c_str());
    return 2;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!report->ok) {
    if (report->bad_seq > 0) {
      std::fprintf(stderr, "audit log damaged at event %lld: %s\n", static_cast<long long>(report->bad_seq),
                   report->problem.c_str());
    } else {
      std::fprintf(stderr, "audit log damaged: %s\n", report->problem.c_str());
    }
    std::fprintf(stderr, "(%lld events verified before the problem)\n", static_cast<long long>(report->events));
    return 1;
  }
  std::printf("audit log intact: %lld events, head %s (%.2f s)\n", static_cast<long long>(report->events),
              report->head.empty() ? "-" : report->head.c_str(), secs);
  return 0;
}

}  // namespace bevan::cli
