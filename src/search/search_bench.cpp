// search_bench: latency of typical FHIR searches through the search layer's
// public API (ParseSearchQuery + ExecuteSearch), on synthetic data.
//
//   search_bench [--patients N] [--backend sqlite|postgresql] [--iterations K]
//
// Data per patient: 30 Observations (one of 20 LOINC codes, a date in
// 2015..2024, a quantity), 10 Encounters (date, one of 200 practitioners, one
// of 20 organisations), 5 Conditions. PostgreSQL runs in a throw-away cluster.
// Prints p50 / p99 per query shape and the load rate.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "json/json.h"
#include "search/extract.h"
#include "search/search.h"
#include "store/postgres/pg_test_cluster.h"

namespace bevan::search {
namespace {

using Clock = std::chrono::steady_clock;

std::string Date(std::mt19937& rng) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:00Z", 2015 + static_cast<int>(rng() % 10),
                1 + static_cast<int>(rng() % 12), 1 + static_cast<int>(rng() % 28), static_cast<int>(rng() % 24),
                static_cast<int>(rng() % 60));
  return buf;
}

const char* const kFamilies[] = {"Smith",   "Jones",    "Taylor", "Brown",    "Williams", "Wilson", "Johnson",
                                 "Davies",  "Robinson", "Wright", "Thompson", "Evans",    "Walker", "White",
                                 "Roberts", "Green",    "Hall",   "Wood",     "Jackson",  "Clarke"};

struct Resource {
  std::string type, id, json;
};

std::vector<Resource> Generate(int patients) {
  std::mt19937 rng(42);
  std::vector<Resource> out;
  for (int o = 0; o < 20; ++o) {
    out.push_back({"Organization", "org" + std::to_string(o),
                   "{\"resourceType\":\"Organization\",\"id\":\"org" + std::to_string(o) + "\",\"name\":\"Trust " +
                       std::to_string(o) + " Hospitals\"}"});
  }
  for (int p = 0; p < 200; ++p) {
    out.push_back({"Practitioner", "dr" + std::to_string(p),
                   "{\"resourceType\":\"Practitioner\",\"id\":\"dr" + std::to_string(p) +
                       "\",\"name\":[{\"family\":\"" + kFamilies[p % 20] + "\",\"given\":[\"Doc\"]}]}"});
  }
  for (int i = 0; i < patients; ++i) {
    std::string pid = "pat" + std::to_string(i);
    char birth[16];
    std::snprintf(birth, sizeof birth, "%04d-%02d-%02d", 1930 + static_cast<int>(rng() % 90),
                  1 + static_cast<int>(rng() % 12), 1 + static_cast<int>(rng() % 28));
    out.push_back({"Patient", pid,
                   "{\"resourceType\":\"Patient\",\"id\":\"" + pid + "\",\"name\":[{\"family\":\"" +
                       kFamilies[rng() % 20] + std::to_string(i % 50) + "\",\"given\":[\"Pat\"]}],\"birthDate\":\"" +
                       birth + "\",\"gender\":\"" + (i % 2 ? "male" : "female") +
                       "\",\"managingOrganization\":{\"reference\":\"Organization/org" + std::to_string(i % 20) +
                       "\"}}"});
    for (int k = 0; k < 30; ++k) {
      std::string id = pid + "-o" + std::to_string(k);
      out.push_back({"Observation", id,
                     "{\"resourceType\":\"Observation\",\"id\":\"" + id +
                         "\",\"status\":\"final\",\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"" +
                         std::to_string(1000 + rng() % 20) + "-1\"}]},\"subject\":{\"reference\":\"Patient/" + pid +
                         "\"},\"effectiveDateTime\":\"" + Date(rng) +
                         "\",\"valueQuantity\":{\"value\":" + std::to_string(rng() % 200) +
                         ",\"system\":\"http://unitsofmeasure.org\",\"code\":\"mg/dL\"}}"});
    }
    for (int k = 0; k < 10; ++k) {
      std::string id = pid + "-e" + std::to_string(k);
      std::string start = Date(rng);
      out.push_back({"Encounter", id,
                     "{\"resourceType\":\"Encounter\",\"id\":\"" + id +
                         "\",\"status\":\"finished\",\"class\":{\"code\":\"AMB\"},\"subject\":{\"reference\":"
                         "\"Patient/" +
                         pid + "\"},\"participant\":[{\"individual\":{\"reference\":\"Practitioner/dr" +
                         std::to_string(rng() % 200) + "\"}}],\"period\":{\"start\":\"" + start + "\",\"end\":\"" +
                         start.substr(0, 11) + "23:59:00Z\"},\"serviceProvider\":{\"reference\":\"Organization/org" +
                         std::to_string(rng() % 20) + "\"}}"});
    }
    for (int k = 0; k < 5; ++k) {
      std::string id = pid + "-c" + std::to_string(k);
      out.push_back({"Condition", id,
                     "{\"resourceType\":\"Condition\",\"id\":\"" + id +
                         "\",\"code\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"" +
                         std::to_string(2000 + rng() % 50) + "\"}]},\"subject\":{\"reference\":\"Patient/" + pid +
                         "\"},\"onsetDateTime\":\"" + Date(rng) + "\"}"});
    }
  }
  return out;
}

Status Load(store::Store& store, const std::vector<Resource>& data) {
  constexpr size_t kBatch = 1000;
  for (size_t i = 0; i < data.size(); i += kBatch) {
    size_t end = std::min(data.size(), i + kBatch);
    std::vector<ExtractResult> rows;
    std::vector<std::string> bodies;
    for (size_t k = i; k < end; ++k) {
      ASSIGN_OR_RETURN(json::Document d, json::Document::Parse(data[k].json));
      ASSIGN_OR_RETURN(ExtractResult x, Extract(data[k].type, data[k].id, d.root()));
      rows.push_back(std::move(x));
    }
    store::Micros now = store.Now();
    RETURN_IF_ERROR(store.Transact([&](store::Transaction& txn) -> Status {
      for (size_t k = i; k < end; ++k) {
        store::ResourceWrite w{data[k].type,     data[k].id, 1, now, data[k].json, rows[k - i].compartment,
                               &rows[k - i].rows};
        ASSIGN_OR_RETURN(store::WriteResult r, txn.Put(w));
        (void)r;
      }
      return Status::Ok();
    }));
  }
  return Status::Ok();
}

int Main(int argc, char** argv) {
  int patients = 1000, iterations = 300;
  bool explain = false;
  for (int i = 1; i < argc; ++i) explain = explain || !std::strcmp(argv[i], "--explain");
  std::string backend = "sqlite";
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--patients")) patients = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--backend")) backend = argv[i + 1];
    if (!std::strcmp(argv[i], "--iterations")) iterations = std::atoi(argv[i + 1]);
  }
  std::unique_ptr<store::PgTestCluster> cluster;
  std::string url = "sqlite::memory:";
  if (backend == "postgresql") {
    auto c = store::PgTestCluster::Start();
    if (!c.ok()) {
      std::fprintf(stderr, "%s\n", c.status().ToString().c_str());
      return 2;
    }
    cluster = std::move(c).value();
    auto u = cluster->CreateDatabase("bench");
    if (!u.ok()) return 2;
    url = *u;
  }
  store::StoreOptions options;
  options.sqlite_synchronous_full = false;
  auto store = store::OpenStore(url, options);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 2;
  }
  std::vector<Resource> data = Generate(patients);
  auto t0 = Clock::now();
  Status loaded = Load(**store, data);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.ToString().c_str());
    return 2;
  }
  double load_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (Status a = (*store)->Analyze(); !a.ok()) {
    std::fprintf(stderr, "%s\n", a.ToString().c_str());
    return 2;
  }
  std::printf("%s, %d patients, %zu resources loaded in %.1f s (%.0f/s)\n", backend.c_str(), patients, data.size(),
              load_s, data.size() / load_s);
  std::mt19937 rng(7);
  auto pat = [&] { return "pat" + std::to_string(rng() % patients); };
  auto code = [&] { return std::to_string(1000 + rng() % 20) + "-1"; };
  struct Shape {
    const char* name;
    const char* type;
    std::function<std::string()> query;
    // 0: the first page; 1: the page its `next` link gives; 2: the page the
    // second page's `previous` link gives (cursors fetched untimed).
    int page = 0;
  };
  std::vector<Shape> shapes = {
      {"patient-scoped Observation?patient&code&date", "Observation",
       [&] { return "patient=" + pat() + "&code=http://loinc.org|" + code() + "&date=ge2019-01-01"; }},
      {"Patient?family&birthdate", "Patient",
       [&] { return std::string("family=") + kFamilies[rng() % 20] + "&birthdate=ge1960"; }},
      {"Encounter?date&_sort=-date&_count=50", "Encounter",
       [&] { return "date=ge2024-0" + std::to_string(1 + rng() % 9) + "&_sort=-date&_count=50"; }},
      {"  ... its next page (_cursor)", "Encounter",
       [&] { return "date=ge2024-0" + std::to_string(1 + rng() % 9) + "&_sort=-date&_count=50"; }, 1},
      {"  ... the previous page from the second", "Encounter",
       [&] { return "date=ge2024-0" + std::to_string(1 + rng() % 9) + "&_sort=-date&_count=50"; }, 2},
      {"Encounter?patient&_include practitioner (page of 10)", "Encounter",
       [&] { return "patient=" + pat() + "&_include=Encounter:participant"; }},
      {"Encounter?service-provider&_include subject (page of 50)", "Encounter",
       [&] { return "service-provider=org" + std::to_string(rng() % 20) + "&_count=50&_include=Encounter:subject"; }},
      {"Patient?_id&_revinclude Observation (30)", "Patient",
       [&] { return "_id=" + pat() + "&_revinclude=Observation:subject"; }},
      {"two-level chain Observation?subject.organization.name", "Observation",
       [&] {
         return "code=" + code() + "&subject:Patient.organization.name=Trust " + std::to_string(rng() % 20) +
                "&_count=20";
       }},
      {"_has Patient?_has:Observation:patient:code", "Patient",
       [&] { return std::string("family=") + kFamilies[rng() % 20] + "&_has:Observation:patient:code=" + code(); }},
      {"_total=accurate Observation?code", "Observation",
       [&] { return "code=" + code() + "&_total=accurate&_count=10"; }},
  };
  std::printf("%-60s %9s %9s %8s\n", "query", "p50 ms", "p99 ms", "hits");
  for (const Shape& shape : shapes) {
    std::vector<double> ms;
    size_t hits = 0;
    for (int i = 0; i < iterations; ++i) {
      std::string q = shape.query();
      std::string cursor;
      for (int page = 0; page < shape.page; ++page) {
        auto pq = ParseSearchQuery(shape.type, q + cursor);
        auto pr = pq.ok() ? ExecuteSearch(**store, *pq) : Result<SearchResult>(pq.status());
        if (!pr.ok() || !pr->next_cursor || (page == 1 && !pr->previous_cursor)) {
          std::fprintf(stderr, "%s: no cursor for page %d\n", q.c_str(), page + 1);
          return 1;
        }
        cursor = "&_cursor=" + (page == 1 ? *pr->previous_cursor : *pr->next_cursor);
      }
      q += cursor;
      auto start = Clock::now();
      auto parsed = ParseSearchQuery(shape.type, q);
      if (!parsed.ok()) {
        std::fprintf(stderr, "%s: %s\n", q.c_str(), parsed.status().ToString().c_str());
        return 1;
      }
      auto r = ExecuteSearch(**store, *parsed);
      if (!r.ok()) {
        std::fprintf(stderr, "%s: %s\n", q.c_str(), r.status().ToString().c_str());
        return 1;
      }
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      if (explain && i == 0) {
        auto plan = BuildPlan(*parsed);
        if (plan.ok()) {
          auto e = (*store)->ExplainSearch(*plan);
          std::printf("%s?%s\n%s\n", shape.type, q.c_str(), e.ok() ? e->c_str() : e.status().ToString().c_str());
        }
        if (!parsed->revincludes.empty() || !parsed->includes.empty()) {
          store::IncludeQuery iq;
          for (const auto& h : r->matches) iq.rids.push_back(h.rid);
          for (const auto* list : {&parsed->includes, &parsed->revincludes}) {
            for (const IncludeParam& inc : *list) {
              iq.specs.push_back({inc.reverse, inc.source_type, inc.param, inc.target_type});
            }
          }
          auto e = (*store)->ExplainInclude(iq);
          std::printf("%s\n", e.ok() ? e->c_str() : e.status().ToString().c_str());
        }
      }
      hits += r->matches.size() + r->included.size();
    }
    std::sort(ms.begin(), ms.end());
    std::printf("%-60s %9.3f %9.3f %8.1f\n", shape.name, ms[ms.size() / 2], ms[ms.size() * 99 / 100],
                static_cast<double>(hits) / iterations);
  }
  return 0;
}

}  // namespace
}  // namespace bevan::search

int main(int argc, char** argv) { return bevan::search::Main(argc, argv); }
