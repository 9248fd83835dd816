// A throw-away PostgreSQL cluster for tests and benchmarks: initdb into a
// fresh temporary directory, a postgres server on a free 127.0.0.1 port (its
// unix socket in that directory too), databases on demand, and everything
// stopped and removed when the object is destroyed.
//
// PostgreSQL refuses to run as root, so when the process is root the server
// runs as the unprivileged user `nobody`, which then owns the directory.
// The server binaries come from $BEVAN_PG_BIN, else the newest
// /usr/lib/postgresql/<major>/bin (Debian's `postgresql` package). When none
// is found Start() fails with a message saying so: a test must fail, not skip.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace bevan::store {

class PgTestCluster {
 public:
  struct Options {
    // fsync=off makes a test cluster fast; benchmarks of durable writes keep it on.
    bool fsync = false;
  };

  // Starts a cluster and waits until it accepts connections (up to 60 s).
  static Result<std::unique_ptr<PgTestCluster>> Start(const Options& options);
  static Result<std::unique_ptr<PgTestCluster>> Start() { return Start(Options{}); }

  // One cluster for the whole process (default options), started on the
  // first call and stopped at exit; nullptr when it could not start, with
  // the reason in *why. Test binaries share it across their suites.
  static PgTestCluster* Shared(std::string* why);

  // Stops the server (fast shutdown, then SIGKILL after 10 s) and removes the directory.
  ~PgTestCluster();
  PgTestCluster(const PgTestCluster&) = delete;
  PgTestCluster& operator=(const PgTestCluster&) = delete;

  // Creates database `name` ([a-z0-9_]+, kInvalidArgument otherwise) and
  // returns its postgresql:// URL.
  Result<std::string> CreateDatabase(std::string_view name);

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }

 private:
  PgTestCluster() = default;

  std::string dir_;
  int port_ = 0;
  pid_t server_pid_ = -1;
};

}  // namespace bevan::store
