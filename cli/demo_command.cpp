#include "demo_command.h"

#include <filesystem>
#include <fstream>
#include <iostream>

#include "auth_command.h"
#include "import_command.h"
#include "serve_command.h"
#include "store/store.h"
#include "synth_command.h"

namespace bevan::cli {

namespace {

namespace fs = std::filesystem;

// The import marker: the trust's patient count, written after a complete
// import, so a second `bevan demo` starts serving at once.
std::string ReadMarker(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

// The id of one Patient, for the examples.
std::string SomePatient(const std::string& db) {
  auto store = store::OpenStore(db);
  if (!store.ok()) return "<id>";
  std::string id = "<id>";
  store::ScanQuery q;
  q.type = "Patient";
  q.chunk = 1;
  (void)(*store)->Scan(q, [&](const store::ScanRow& row) {
    id = std::string(row.id);
    return UnavailableError("one is enough");
  });
  return id;
}

void PrintThingsToTry(uint16_t port, const std::string& patient) {
  std::string base = "http://127.0.0.1:" + std::to_string(port) + "/fhir";
  std::cout << "\n== Serving FHIR R4 at " << base << " (Ctrl-C stops it). Things to try:\n"
            << "  curl -s " << base << "/metadata | head -c 300\n"
            << "  curl -s '" << base << "/Patient?birthdate=lt1950&_summary=count'\n"
            << "  curl -s " << base << "/Patient/" << patient << "\n"
            << "  curl -s '" << base << "/Observation?patient=" << patient
            << "&code=http://loinc.org|8867-4&_sort=-date&_count=5'\n"
            << "  curl -s " << base << "/Patient/" << patient << "/\\$everything\n"
            << "  curl -si -H 'Prefer: respond-async' '" << base
            << "/\\$export?_type=Patient,Condition'   # then GET the Content-Location until 200\n"
            << "  curl -s -X POST -H 'Content-Type: application/fhir+json' "
               "-d '{\"resourceType\":\"Patient\",\"birthDate\":\"1970-02-30\"}' "
            << base << "/Patient   # 422 with an OperationOutcome\n"
            << "  (every request above is in the audit trail: build/bevan audit verify --log demo/bevan.db.audit.db;\n"
            << "   bevan demo --auth serves the same trust behind SMART on FHIR sign-in with demo users)\n\n"
            << std::flush;
}

}  // namespace

int RunDemo(const DemoArgs& args) {
  std::error_code ec;
  fs::create_directories(args.dir, ec);
  if (ec) {
    std::cerr << "bevan demo: cannot create " << args.dir << ": " << ec.message() << "\n";
    return 2;
  }
  std::string trust = args.dir + "/trust";
  std::string db = "sqlite:" + args.dir + "/bevan.db";
  std::string marker = args.dir + "/imported";
  std::string wanted = std::to_string(args.patients) + " patients";

  // A trust of another size is replaced, and so is its database.
  if (ReadMarker(trust + "/patients") != wanted) {
    std::cout << "== Generating a synthetic trust of " << args.patients << " patients in " << trust << "\n";
    fs::remove_all(trust, ec);
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(args.dir + "/bevan.db" + suffix, ec);
    fs::remove(marker, ec);
    SynthArgs synth;
    synth.patients = args.patients;
    synth.out = trust;
    if (int rc = RunSynth(synth); rc != 0) return rc;
    std::ofstream(trust + "/patients") << wanted << "\n";
  }
  if (ReadMarker(marker) != wanted) {
    std::cout << "== Importing it into " << args.dir << "/bevan.db\n";
    ImportArgs import;
    import.db = db;
    import.paths = {trust};
    if (int rc = RunImport(import); rc != 0) {
      std::cerr << "bevan demo: the import did not complete\n";
      return rc;
    }
    std::ofstream(marker) << wanted << "\n";
  } else {
    std::cout << "== " << args.dir << "/bevan.db already holds the trust (" << wanted << ")\n";
  }
  std::string patient = SomePatient(db);
  ServeArgs serve;
  serve.db = db;
  serve.port = args.port;
  serve.export_dir = args.dir + "/export";
  if (args.auth) {
    auto demo = WriteDemoAuth(args.dir + "/auth", patient);
    if (!demo.ok()) {
      std::cerr << "bevan demo: the demo users: " << demo.status().message() << "\n";
      return 2;
    }
    serve.auth = demo->config;
    std::cout << "\n== SMART on FHIR authorisation is on (demo only)\n"
              << "  discovery:   http://127.0.0.1:" << args.port << "/.well-known/smart-configuration\n"
              << "  users:       ";
    for (size_t i = 0; i < demo->users.size(); ++i) {
      std::cout << (i ? ", " : "") << demo->users[i].username << " (" << demo->users[i].role << ")";
    }
    std::cout << "\n  passwords:   " << demo->credentials_file << "\n"
              << "  client:      " << demo->client_id << " (public, PKCE S256), redirect " << demo->redirect_uri
              << "\n  Every /fhir request but /fhir/metadata needs a bearer token from that flow.\n";
  } else {
    PrintThingsToTry(args.port, patient);
  }
  return RunServe(serve);
}

}  // namespace bevan::cli
