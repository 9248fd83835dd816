// bevan: one binary for the node, the coordinator and the tools.
#include <CLI/CLI.hpp>

#include <iostream>

#include "commands.h"
#include "fhir/model.h"

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

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (v->parsed()) return bevan::cli::RunValidate(validate);
  return 2;
}
