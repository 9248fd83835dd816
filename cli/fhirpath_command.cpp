#include "fhirpath_command.h"

#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "fhirpath/fhirpath.h"
#include "json/json.h"

namespace bevan::cli {

namespace {

class StderrTrace : public fhirpath::TraceSink {
 public:
  void Trace(std::string_view name, fhirpath::Collection items) override {
    std::string line = "trace ";
    line += name;
    line += ": [";
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) line += ",";
      fhirpath::AppendJson(items[i], line);
    }
    line += "]\n";
    std::cerr << line;
  }
};

bool ReadInput(const std::string& file, std::string* out) {
  std::ostringstream ss;
  if (file.empty() || file == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(file, std::ios::binary);
    if (!in) return false;
    ss << in.rdbuf();
  }
  *out = ss.str();
  return true;
}

}  // namespace

int RunFhirpath(const FhirpathArgs& args) {
  // Without a file and with a terminal on stdin there is no input resource.
  bool has_input = !args.file.empty() || !isatty(STDIN_FILENO);
  json::Document doc;
  std::string context_type = args.context_type;
  std::string text;
  if (has_input) {
    if (!ReadInput(args.file, &text)) {
      std::cerr << "bevan fhirpath: cannot read " << args.file << "\n";
      return 2;
    }
    if (args.file.empty() && text.find_first_not_of(" \t\r\n") == std::string::npos) has_input = false;
  }
  if (has_input) {
    auto parsed = json::Document::Parse(text);
    if (!parsed.ok()) {
      std::cerr << "bevan fhirpath: " << parsed.status().message() << "\n";
      return 2;
    }
    doc = std::move(parsed).value();
    if (context_type.empty()) {
      if (const json::Value* rt = doc.root().Find("resourceType"); rt != nullptr && rt->is_string()) {
        context_type = std::string(rt->as_string());
      }
    }
  }
  fhirpath::CompileOptions options;
  options.context_type = context_type;
  options.allow_choice_type_names = args.lenient;
  auto expr = fhirpath::Expression::Compile(args.expression, options);
  if (!expr.ok()) {
    std::cerr << "bevan fhirpath: " << expr.status().message() << "\n";
    return 1;
  }
  Arena arena;
  StderrTrace trace;
  fhirpath::EvalOptions eval;
  if (args.trace) eval.trace = &trace;
  auto result =
      has_input ? expr->Evaluate(doc.root(), arena, eval) : expr->Evaluate(fhirpath::Collection(), arena, eval);
  if (!result.ok()) {
    std::cerr << "bevan fhirpath: " << result.status().message() << "\n";
    return 1;
  }
  std::string out = "[";
  for (size_t i = 0; i < result->size(); ++i) {
    out += i == 0 ? "\n  " : ",\n  ";
    fhirpath::AppendJson((*result)[i], out);
  }
  out += result->empty() ? "]\n" : "\n]\n";
  std::cout << out;
  return 0;
}

}  // namespace bevan::cli
