#include "store/postgres/pg_test_cluster.h"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

namespace bevan::store {
namespace {

namespace fs = std::filesystem;

std::string FindBinDir() {
  if (const char* env = std::getenv("BEVAN_PG_BIN"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  std::string best;
  int best_major = -1;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    int major = std::atoi(entry.path().filename().c_str());
    if (major > best_major && fs::exists(entry.path() / "bin" / "postgres", ec)) {
      best_major = major;
      best = (entry.path() / "bin").string();
    }
  }
  return best;
}

// A port the kernel considers free right now (a tiny race with other
// processes remains; Start retries on a failed server start).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

struct RunAs {
  bool drop = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

// Forks and execs argv with stdout and stderr appended to `log`, as `user`.
// The child dies with its parent (PR_SET_PDEATHSIG), so a crashed test leaves
// no server behind. Only async-signal-safe calls happen between fork and exec.
Result<pid_t> Spawn(const std::vector<std::string>& args, const std::string& log, const RunAs& user) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return IoError("fork failed");
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    if (user.drop) {
      if (setgroups(0, nullptr) != 0 || setgid(user.gid) != 0 || setuid(user.uid) != 0) _exit(126);
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

std::string ReadLog(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  if (out.size() > 2000) out = "..." + out.substr(out.size() - 2000);
  return out;
}

std::string ConnInfo(int port, std::string_view db) {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/" + std::string(db) + "?connect_timeout=10";
}

}  // namespace

PgTestCluster* PgTestCluster::Shared(std::string* why) {
  static Result<std::unique_ptr<PgTestCluster>> shared = Start();
  if (!shared.ok()) {
    if (why) *why = shared.status().ToString();
    return nullptr;
  }
  return shared->get();
}

Result<std::unique_ptr<PgTestCluster>> PgTestCluster::Start(const Options& options) {
  std::string bin = FindBinDir();
  if (bin.empty() || !fs::exists(bin + "/initdb") || !fs::exists(bin + "/postgres")) {
    return UnavailableError(
        "PostgreSQL server binaries not found (looked in $BEVAN_PG_BIN and /usr/lib/postgresql/*/bin); "
        "install Debian's `postgresql` package (scripts/install-deps does)");
  }
  RunAs user;
  if (geteuid() == 0) {
    passwd* pw = getpwnam("nobody");
    if (pw == nullptr) return UnavailableError("running as root and there is no user `nobody` to run PostgreSQL as");
    user = {true, pw->pw_uid, pw->pw_gid};
  }

  std::unique_ptr<PgTestCluster> cluster(new PgTestCluster());
  std::string templ = (fs::temp_directory_path() / "bevan-pg-XXXXXX").string();
  if (mkdtemp(templ.data()) == nullptr) return IoError("cannot create a temporary directory for PostgreSQL");
  cluster->dir_ = templ;
  if (user.drop && chown(templ.c_str(), user.uid, user.gid) != 0) {
    return IoError("cannot hand " + templ + " to user nobody");
  }
  std::string data = templ + "/data";
  std::string log = templ + "/server.log";

  ASSIGN_OR_RETURN(pid_t initdb, Spawn({bin + "/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                                        "--locale=C", "--no-sync", "--no-instructions"},
                                       log, user));
  int wstatus = 0;
  waitpid(initdb, &wstatus, 0);
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return InternalError("initdb failed (exit " + std::to_string(WEXITSTATUS(wstatus)) + "): " + ReadLog(log));
  }

  for (int attempt = 0; attempt < 5; ++attempt) {
    int port = FreePort();
    if (port <= 0) return IoError("no free port on 127.0.0.1");
    ASSIGN_OR_RETURN(pid_t server, Spawn({bin + "/postgres", "-D", data, "-k", templ, "-h", "127.0.0.1", "-p",
                                          std::to_string(port), "-c", options.fsync ? "fsync=on" : "fsync=off", "-c",
                                          "max_connections=200", "-c", "shared_buffers=64MB"},
                                         log, user));
    std::string ping = ConnInfo(port, "postgres");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    bool exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      if (PQping(ping.c_str()) == PQPING_OK) {
        cluster->port_ = port;
        cluster->server_pid_ = server;
        return cluster;
      }
      if (waitpid(server, &wstatus, WNOHANG) == server) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!exited) {
      kill(server, SIGKILL);
      waitpid(server, &wstatus, 0);
      return UnavailableError("PostgreSQL did not become ready within 60 s: " + ReadLog(log));
    }
    // Most likely the port was taken in between: try another.
  }
  return UnavailableError("PostgreSQL failed to start: " + ReadLog(log));
}

PgTestCluster::~PgTestCluster() {
  if (server_pid_ > 0) {
    kill(server_pid_, SIGINT);  // fast shutdown
    int wstatus = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (waitpid(server_pid_, &wstatus, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(server_pid_, SIGKILL);
        waitpid(server_pid_, &wstatus, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

Result<std::string> PgTestCluster::CreateDatabase(std::string_view name) {
  if (name.empty()) return InvalidArgumentError("empty database name");
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return InvalidArgumentError("database names are [a-z0-9_]+");
    }
  }
  PGconn* conn = PQconnectdb(ConnInfo(port_, "postgres").c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    PQfinish(conn);
    return UnavailableError("cannot connect to the test cluster: " + msg);
  }
  // The name was checked above to be a plain identifier: DDL takes no parameters.
  std::string sql = "CREATE DATABASE " + std::string(name);
  PGresult* r = PQexec(conn, sql.c_str());
  Status s;
  if (PQresultStatus(r) != PGRES_COMMAND_OK) s = InternalError("CREATE DATABASE: " + std::string(PQerrorMessage(conn)));
  PQclear(r);
  PQfinish(conn);
  RETURN_IF_ERROR(s);
  return ConnInfo(port_, name);
}

}  // namespace bevan::store
