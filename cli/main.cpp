// bevan: one binary for the node, the coordinator and the tools.
#include <CLI/CLI.hpp>

#include <iostream>

#include "audit_command.h"
#include "auth_command.h"
#include "commands.h"
#include "demo_command.h"
#include "explain_command.h"
#include "export_command.h"
#include "fhir/model.h"
#include "fhirpath_command.h"
#include "import_command.h"
#include "reindex_command.h"
#include "serve_command.h"
#include "synth_command.h"

#ifndef BEVAN_VERSION
#define BEVAN_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  CLI::App app{"Bevan: an open, fast FHIR R4 health data platform"};
  app.set_version_flag(
      "--version", std::string("bevan ") + BEVAN_VERSION + " (FHIR " + std::string(bevan::fhir::FhirVersion()) + ")");
  app.require_subcommand(1);

  bevan::cli::ValidateArgs validate;
  CLI::App* v = app.add_subcommand("validate", "Validate FHIR R4 resources (JSON or NDJSON files)");
  v->add_option("files", validate.files, "Files to validate ('-' for standard input)")->required();
  v->add_flag("--ndjson", validate.ndjson, "Each file holds one resource per line");
  v->add_flag("--compact", validate.compact, "Print each OperationOutcome on one line");
  v->add_flag("!--no-uk-core", validate.uk_core, "Skip UK Core checks (NHS number, ODS codes)");
  v->add_flag("!--no-invariants", validate.invariants, "Skip FHIRPath invariants (pat-1, dom-3, ...)");

  bevan::cli::FhirpathArgs fhirpath;
  CLI::App* fp = app.add_subcommand("fhirpath", "Evaluate a FHIRPath expression over a FHIR resource (JSON)");
  fp->add_option("expression", fhirpath.expression, "FHIRPath expression")->required();
  fp->add_option("file", fhirpath.file, "Resource file ('-' or omitted: standard input)");
  fp->add_flag("--trace", fhirpath.trace, "Print trace() output on standard error");
  fp->add_flag("--lenient", fhirpath.lenient, "Accept choice-type JSON names such as valueQuantity");
  fp->add_option("--type", fhirpath.context_type, "Context type (default: the input's resourceType)");

  bevan::cli::ImportArgs import_args;
  CLI::App* im = app.add_subcommand("import", "Load NDJSON and Bundle files (or directories of them) into a store");
  im->add_option("paths", import_args.paths, "Files or directories")->required();
  im->add_option("--db", import_args.db, "Store: sqlite:PATH or postgresql://...")->capture_default_str();
  im->add_option("--threads", import_args.threads, "Parse and validation threads (0: one per core)");
  im->add_option("--errors", import_args.errors_file, "Write rejected resources' OperationOutcomes to this file");

  bevan::cli::ReindexArgs reindex_args;
  CLI::App* ri = app.add_subcommand("reindex", "Rebuild the search index rows of stored resources (no new versions)");
  ri->add_option("--db", reindex_args.db, "Store: sqlite:PATH or postgresql://...")->capture_default_str();
  ri->add_option("--type", reindex_args.type, "Only this resource type");
  ri->add_option("--batch", reindex_args.batch, "Resources per write transaction")->capture_default_str();

  bevan::cli::ExplainArgs explain_args;
  CLI::App* xp = app.add_subcommand("explain", "Print a search's SQL statements and query plans, and time it");
  xp->add_option("search", explain_args.search, "Type?query (or ?query for a system-level search)")->required();
  xp->add_option("--db", explain_args.db, "Store: sqlite:PATH or postgresql://...")->capture_default_str();
  xp->add_option("--repeat", explain_args.repeat, "Timed runs (0: none)")->capture_default_str();

  bevan::cli::ServeArgs serve;
  CLI::App* sv =
      app.add_subcommand("serve", "Run the FHIR R4 server (loopback only until authorisation is configured)");
  sv->add_option("--db", serve.db, "Store: sqlite:PATH or postgresql://...")->capture_default_str();
  sv->add_option("--address", serve.address, "Listen address")->capture_default_str();
  sv->add_option("--port", serve.port, "Listen port (0: any free port)")->capture_default_str();
  sv->add_option("--threads", serve.threads, "I/O threads (0: one per core)")->capture_default_str();
  sv->add_flag_callback(
      "--no-pin-threads", [&serve] { serve.pin_threads = false; },
      "Let the I/O threads run on any CPU (default: each on its own when there are no more threads than CPUs)");
  sv->add_option("--config", serve.config, "JSON config file (db, address, port, threads, tls_cert, tls_key, ...)");
  sv->add_option("--tls-cert", serve.tls_cert, "TLS certificate chain (PEM)");
  sv->add_option("--tls-key", serve.tls_key, "TLS private key (PEM)");
  sv->add_option("--base-url", serve.base_url, "Public base URL (default http://ADDRESS:PORT/fhir)");
  sv->add_option("--audit-log", serve.audit_log, "Audit trail file (default: DB.audit.db next to a SQLite store)");
  sv->add_option("--rate-limit", serve.rate_limit, "Requests per second per client or address (0: off)")
      ->capture_default_str();
  sv->add_option("--cors-origin", serve.cors_origins, "An origin allowed to call the API from browsers (repeat)");
  sv->add_option("--export-dir", serve.export_dir, "Bulk Data $export files (default: DB.export beside SQLite)");

  bevan::cli::SynthArgs synth;
  CLI::App* sy =
      app.add_subcommand("synth", "Write a synthetic English NHS trust as NDJSON (one file per resource type)");
  sy->add_option("--patients", synth.patients, "Number of patients (1 to 900000)")->required();
  sy->add_option("--seed", synth.seed, "Random seed: the same seed gives byte-identical files")->capture_default_str();
  sy->add_option("--trust", synth.trust, "The trust's ODS code")->capture_default_str();
  sy->add_option("--as-of", synth.as_of, "The date treated as today, YYYY-MM-DD (default 2026-04-01)");
  sy->add_option("--out", synth.out, "Output directory (created if missing)")->required();

  bevan::cli::AuditVerifyArgs audit_verify;
  CLI::App* au = app.add_subcommand("audit", "Audit trail tools");
  au->require_subcommand(1);
  CLI::App* au_verify =
      au->add_subcommand("verify", "Check the audit log's hash chain (BEVAN_AUDIT_KEY for a keyed log)");
  au_verify->add_option("--log", audit_verify.log, "The audit log (SQLite file)")->required();

  bevan::cli::ExportArgs export_args;
  CLI::App* ex = app.add_subcommand("export", "Write the store's resources as NDJSON, one Type.ndjson per type");
  ex->add_option("--db", export_args.db, "Store: sqlite:PATH or postgresql://...")->capture_default_str();
  ex->add_option("--out", export_args.out, "Output directory (created if missing)")->required();
  ex->add_option("--type", export_args.types, "Only these types (comma-separated)");
  ex->add_option("--since", export_args.since, "Only resources changed after this instant");
  ex->add_flag("--patient-only", export_args.patient_only, "Only resources in some Patient's compartment");

  bevan::cli::DemoArgs demo;
  CLI::App* dm = app.add_subcommand("demo", "Generate, import and serve a synthetic NHS trust on 127.0.0.1");
  dm->add_option("--dir", demo.dir, "Working directory (trust, database, exports)")->capture_default_str();
  dm->add_option("--patients", demo.patients, "Patients in the trust")->capture_default_str();
  dm->add_option("--port", demo.port, "Listen port")->capture_default_str();
  dm->add_flag("--auth", demo.auth, "Serve with SMART on FHIR authorisation and seeded demo users");

  CLI::App* ah = app.add_subcommand("auth", "SMART authorisation server tools");
  ah->require_subcommand(1);
  CLI::App* ah_hash = ah->add_subcommand(
      "hash-password", "Read a password on standard input and print its Argon2id hash (users and clients files)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (v->parsed()) return bevan::cli::RunValidate(validate);
  if (sv->parsed()) return bevan::cli::RunServe(serve);
  if (ah_hash->parsed()) return bevan::cli::RunAuthHashPassword();
  if (fp->parsed()) return bevan::cli::RunFhirpath(fhirpath);
  if (im->parsed()) return bevan::cli::RunImport(import_args);
  if (ri->parsed()) return bevan::cli::RunReindex(reindex_args);
  if (xp->parsed()) return bevan::cli::RunExplain(explain_args);
  if (sy->parsed()) return bevan::cli::RunSynth(synth);
  if (ex->parsed()) return bevan::cli::RunExport(export_args);
  if (dm->parsed()) return bevan::cli::RunDemo(demo);
  if (au_verify->parsed()) return bevan::cli::RunAuditVerify(audit_verify);
  return 2;
}
