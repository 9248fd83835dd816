// `bevan audit verify --log PATH`: recomputes the audit log's hash chain and
// compares its end with the head file (see src/audit/audit.h). A keyed log
// needs its key in BEVAN_AUDIT_KEY.
#pragma once

#include <string>

namespace bevan::cli {

struct AuditVerifyArgs {
  std::string log;  // the audit SQLite file
};

// Prints "audit log intact: N events, head <hash>" and returns 0, or names
// the first bad event on standard error and returns 1; 2 when the log cannot
// be read.
int RunAuditVerify(const AuditVerifyArgs& args);

}  // namespace bevan::cli
