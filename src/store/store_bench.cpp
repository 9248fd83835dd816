// store_bench: durable single-resource creates per second with N concurrent
// writer threads, each create its own write transaction (as REST's create is).
//
//   store_bench [--backend sqlite|postgresql] [--threads N] [--seconds S]
//               [--tokens K] [--body BYTES] [--dir DIR] [--normal] [--inflight W]
//
// --threads N: N threads each calling the blocking Store::Put in a loop.
// --inflight W: one thread keeping W Store::TransactAsync creates in flight
// (how an event-loop server writes).
//
// SQLite writes to a fresh file in DIR (default /tmp); PostgreSQL runs in a
// throw-away cluster with fsync=on (so commits are durable as in production).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "store/postgres/pg_test_cluster.h"
#include "store/store.h"

namespace {

using namespace bevan;
using namespace bevan::store;

int Run(int argc, char** argv) {
  std::string backend = "sqlite", dir = "/tmp";
  int threads = 8, seconds = 5, tokens = 5, body_size = 1500;
  bool normal = false;
  int inflight = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--backend") {
      backend = next();
    } else if (a == "--threads") {
      threads = std::atoi(next().c_str());
    } else if (a == "--seconds") {
      seconds = std::atoi(next().c_str());
    } else if (a == "--tokens") {
      tokens = std::atoi(next().c_str());
    } else if (a == "--body") {
      body_size = std::atoi(next().c_str());
    } else if (a == "--dir") {
      dir = next();
    } else if (a == "--normal") {
      normal = true;
    } else if (a == "--inflight") {
      inflight = std::atoi(next().c_str());
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  std::unique_ptr<PgTestCluster> cluster;
  std::string url, sqlite_path;
  if (backend == "postgresql") {
    PgTestCluster::Options o;
    o.fsync = true;
    auto c = PgTestCluster::Start(o);
    if (!c.ok()) {
      std::fprintf(stderr, "%s\n", c.status().ToString().c_str());
      return 1;
    }
    cluster = std::move(c).value();
    auto u = cluster->CreateDatabase("bench");
    if (!u.ok()) {
      std::fprintf(stderr, "%s\n", u.status().ToString().c_str());
      return 1;
    }
    url = *u;
  } else {
    sqlite_path = dir + "/bevan-store-bench-" + std::to_string(getpid()) + ".db";
    url = "sqlite:" + sqlite_path;
  }
  StoreOptions options;
  options.sqlite_synchronous_full = !normal;
  options.pg_pool_size = threads;
  auto opened = OpenStore(url, options);
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
    return 1;
  }
  Store& store = **opened;

  std::atomic<bool> stop{false};
  std::atomic<long> creates{0}, errors{0};
  std::vector<std::thread> workers;
  // Bodies of varied text (not one repeated byte) so compression and page
  // layout are realistic.
  auto make_body = [body_size](const std::string& id, long i) {
    std::string body = "{\"resourceType\":\"Observation\",\"id\":\"" + id + "\",\"note\":\"";
    for (long x = i * 2654435761u; static_cast<int>(body.size()) < body_size - 2; x = x * 6364136223846793005 + 1) {
      body += static_cast<char>('a' + ((x >> 33) % 26));
    }
    return body + "\"}";
  };
  auto make_rows = [tokens](long i) {
    IndexRows rows;
    for (int k = 0; k < tokens; ++k) {
      rows.tokens.push_back({"code" + std::to_string(k), "http://loinc.org", std::to_string((i * 7 + k) % 5000)});
    }
    return rows;
  };
  auto started = std::chrono::steady_clock::now();
  if (inflight > 0) {
    threads = 0;
    workers.emplace_back([&] {
      std::mutex mu;
      std::condition_variable cv;
      int in_flight = 0;
      for (long i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return in_flight < inflight; });
          ++in_flight;
        }
        std::string id = "a-" + std::to_string(i);
        auto body = std::make_shared<std::string>(make_body(id, i));
        auto rows = std::make_shared<IndexRows>(make_rows(i));
        store.TransactAsync(
            [&store, id, body, rows, i](Transaction& txn) {
              return txn.Put({"Observation", id, 1, store.Now(), *body, "p" + std::to_string(i % 1000), rows.get()})
                  .status();
            },
            [&](Status s) {
              (s.ok() ? creates : errors).fetch_add(1, std::memory_order_relaxed);
              std::lock_guard lock(mu);
              --in_flight;
              cv.notify_one();
            });
      }
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return in_flight == 0; });
    });
  }
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (long i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        std::string id = std::to_string(t) + "-" + std::to_string(i);
        std::string body = make_body(id, i);
        IndexRows rows = make_rows(i);
        auto w = store.Put({"Observation", id, 1, store.Now(), body, "p" + std::to_string(i % 1000), &rows});
        (w.ok() ? creates : errors).fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& w : workers) w.join();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf(
      "backend=%s%s threads=%d inflight=%d tokens=%d body=%dB: %ld creates in %.1f s = %.0f creates/s (%ld errors)\n",
      backend.c_str(), backend == "sqlite" ? (normal ? " synchronous=NORMAL" : " synchronous=FULL") : " fsync=on",
      threads, inflight, tokens, body_size, creates.load(), elapsed, creates.load() / elapsed, errors.load());
  opened->reset();
  if (!sqlite_path.empty()) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((sqlite_path + suffix).c_str());
  }
  return errors.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
