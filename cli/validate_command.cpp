#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "fhir/validate.h"
#include "fhirpath/invariants.h"
#include "json/json.h"

namespace bevan::cli {

namespace {

struct Totals {
  size_t resources = 0;
  size_t invalid = 0;
  size_t errors = 0;
  size_t warnings = 0;
};

// The "Type/id" label of a resource for messages (no patient data).
std::string Label(std::string_view text) {
  auto doc = json::Document::Parse(text);
  if (!doc.ok() || !doc->root().is_object()) return "";
  std::string out;
  if (const json::Value* rt = doc->root().Find("resourceType"); rt && rt->is_string()) out = rt->as_string();
  if (const json::Value* id = doc->root().Find("id"); id && id->is_string()) out += "/" + std::string(id->as_string());
  return out;
}

void CheckOne(std::string_view text, const std::string& where, const ValidateArgs& args, Totals& totals) {
  fhir::ValidateOptions options = args.invariants ? fhirpath::FullValidation() : fhir::ValidateOptions();
  options.uk_core = args.uk_core;
  fhir::OperationOutcome outcome = fhir::ValidateJson(text, options);
  ++totals.resources;
  size_t errors = outcome.ErrorCount();
  totals.errors += errors;
  totals.warnings += outcome.issues.size() - errors;
  if (outcome.issues.empty()) return;
  if (errors > 0) ++totals.invalid;
  std::string label = Label(text);
  std::cout << "# " << where << (label.empty() ? "" : " " + label) << ": " << errors << " error(s)\n"
            << outcome.ToJson(!args.compact) << "\n";
}

bool ReadAll(std::istream& in, std::string& out) {
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return !in.bad();
}

}  // namespace

int RunValidate(const ValidateArgs& args) {
  Totals totals;
  bool io_error = false;
  for (const std::string& file : args.files) {
    std::ifstream fin;
    std::istream* in = &std::cin;
    std::string name = file == "-" ? "<stdin>" : file;
    if (file != "-") {
      fin.open(file, std::ios::binary);
      if (!fin) {
        std::cerr << "bevan validate: cannot open " << file << "\n";
        io_error = true;
        continue;
      }
      in = &fin;
    }
    if (args.ndjson) {
      std::string line;
      size_t line_no = 0;
      while (std::getline(*in, line)) {
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        CheckOne(line, name + ":" + std::to_string(line_no), args, totals);
      }
    } else {
      std::string text;
      if (!ReadAll(*in, text)) {
        std::cerr << "bevan validate: cannot read " << name << "\n";
        io_error = true;
        continue;
      }
      CheckOne(text, name, args, totals);
    }
  }
  std::cout << "validated " << totals.resources << " resource(s): " << totals.resources - totals.invalid << " valid, "
            << totals.invalid << " invalid (" << totals.errors << " error(s), " << totals.warnings << " warning(s))\n";
  if (io_error) return 2;
  return totals.invalid > 0 ? 1 : 0;
}

}  // namespace bevan::cli
