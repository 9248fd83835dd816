#include "rest/indexer.h"

#include <unordered_map>
#include <vector>

#include "fhir/model.h"
#include "fhirpath/fhirpath.h"

namespace bevan::rest {

namespace {

// Splits on '|' outside parentheses and quotes.
std::vector<std::string_view> SplitUnion(std::string_view e) {
  std::vector<std::string_view> parts;
  int depth = 0;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    char c = e[i];
    if (c == '\'' && (i == 0 || e[i - 1] != '\\')) quoted = !quoted;
    if (quoted) continue;
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == '|' && depth == 0) {
      parts.push_back(e.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(e.substr(start));
  for (auto& p : parts) {
    while (!p.empty() && p.front() == ' ') p.remove_prefix(1);
    while (!p.empty() && p.back() == ' ') p.remove_suffix(1);
  }
  return parts;
}

// The identifier param for token extraction.
constexpr std::string_view kIdentifierParam = "identifier";

}  // namespace

std::string ExpressionForType(std::string_view expression, std::string_view type) {
  std::string out;
  std::string dot = std::string(type) + ".";
  std::string paren = "(" + dot;
  for (std::string_view part : SplitUnion(expression)) {
    if (part.starts_with(dot) || part.starts_with(paren)) {
      if (!out.empty()) out += " | ";
      out += part;
    }
  }
  return out.empty() ? std::string(expression) : out;
}

struct Indexer::Impl {
  struct Compiled {
    std::string param;
    fhirpath::Expression expression;
  };
  struct PerType {
    std::vector<Compiled> tokens;       // identifier
    std::vector<Compiled> compartment;  // Patient compartment params
    bool is_patient = false;
  };
  std::unordered_map<std::string, PerType> types;
  size_t failed = 0;
};

Indexer::Indexer() : impl_(std::make_unique<Impl>()) {
  const fhir::TypeDef* patient = fhir::FindResourceType("Patient");
  for (std::string_view type : fhir::ResourceTypeNames()) {
    Impl::PerType per;
    per.is_patient = patient && type == patient->name;
    auto compile = [&](std::string_view code, std::string expr) -> std::optional<fhirpath::Expression> {
      fhirpath::CompileOptions options;
      options.context_type = type;
      auto e = fhirpath::Expression::Compile(expr, options);
      if (!e.ok()) {
        ++impl_->failed;
        (void)code;
        return std::nullopt;
      }
      return std::move(e).value();
    };
    if (const fhir::SearchParamDef* sp = fhir::FindSearchParam(type, kIdentifierParam);
        sp && sp->type == fhir::SearchParamType::kToken && !sp->expression.empty()) {
      if (auto e = compile(sp->code, ExpressionForType(sp->expression, type))) {
        per.tokens.push_back({std::string(sp->code), std::move(*e)});
      }
    }
    for (std::string_view code : fhir::PatientCompartmentParams(type)) {
      const fhir::SearchParamDef* sp = fhir::FindSearchParam(type, code);
      if (!sp || sp->expression.empty()) continue;
      // "X.subject.where(resolve() is Patient)": the Patient test is done on
      // the reference text below, which needs no resolution.
      std::string expr = ExpressionForType(sp->expression, type);
      for (std::string_view filter : {".where(resolve() is Patient)", ".where(resolve() is Patient) "}) {
        for (size_t at; (at = expr.find(filter)) != std::string::npos;) expr.erase(at, filter.size());
      }
      if (auto e = compile(code, expr)) per.compartment.push_back({std::string(code), std::move(*e)});
    }
    impl_->types.emplace(std::string(type), std::move(per));
  }
}

Indexer::~Indexer() = default;

size_t Indexer::failed_expressions() const { return impl_->failed; }

bool Indexer::Indexes(std::string_view type, std::string_view param) const {
  auto it = impl_->types.find(std::string(type));
  if (it == impl_->types.end()) return false;
  for (const auto& c : it->second.tokens) {
    if (c.param == param) return true;
  }
  return false;
}

Status Indexer::Extract(std::string_view type, std::string_view id, const json::Value& resource, store::IndexRows& rows,
                        std::string& compartment) const {
  auto it = impl_->types.find(std::string(type));
  if (it == impl_->types.end()) return InvalidArgumentError("unknown resource type " + std::string(type));
  const Impl::PerType& per = it->second;
  Arena arena(4096);
  for (const auto& c : per.tokens) {
    ASSIGN_OR_RETURN(fhirpath::Collection items, c.expression.Evaluate(resource, arena));
    for (const fhirpath::Item& item : items) {
      const json::Value* v = item.node();
      if (!v || !v->is_object()) continue;
      const json::Value* value = v->Find("value");
      if (!value || !value->is_string()) continue;
      const json::Value* system = v->Find("system");
      rows.tokens.push_back({c.param, system && system->is_string() ? std::string(system->as_string()) : std::string(),
                             std::string(value->as_string())});
    }
  }
  compartment.clear();
  if (per.is_patient) {
    compartment = id;
    return Status::Ok();
  }
  constexpr std::string_view kPrefix = "Patient/";
  for (const auto& c : per.compartment) {
    ASSIGN_OR_RETURN(fhirpath::Collection items, c.expression.Evaluate(resource, arena));
    for (const fhirpath::Item& item : items) {
      const json::Value* v = item.node();
      if (!v || !v->is_object()) continue;
      const json::Value* ref = v->Find("reference");
      if (!ref || !ref->is_string()) continue;
      std::string_view r = ref->as_string();
      // Relative "Patient/id" (or ".../Patient/id" on this server).
      size_t at = r.rfind(kPrefix);
      if (at == std::string_view::npos || (at != 0 && r[at - 1] != '/')) continue;
      std::string_view pid = r.substr(at + kPrefix.size());
      pid = pid.substr(0, pid.find('/'));
      if (pid.empty()) continue;
      compartment = pid;
      return Status::Ok();
    }
  }
  return Status::Ok();
}

}  // namespace bevan::rest
