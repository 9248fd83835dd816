#include "rest/capabilities.h"

#include <vector>

#include "fhir/model.h"
#include "json/json.h"
#include "search/extract.h"

#ifndef BEVAN_VERSION
#define BEVAN_VERSION "0.0.0"
#endif

namespace bevan::rest {

namespace {

json::Member M(json::Document& d, std::string_view k, json::Value v) { return {d.MakeString(k), v}; }

json::Value Obj(json::Document& d, std::initializer_list<json::Member> members) {
  return d.MakeObject(std::vector<json::Member>(members));
}

json::Value Codes(json::Document& d, std::string_view key, std::initializer_list<std::string_view> codes) {
  std::vector<json::Value> items;
  for (std::string_view c : codes) items.push_back(Obj(d, {M(d, key, d.MakeString(c))}));
  return d.MakeArray(items);
}

}  // namespace

std::string CapabilityStatementJson(std::string_view base_url, const SmartEndpoints* smart) {
  json::Document d;
  std::vector<json::Value> resources;
  for (std::string_view type : fhir::ResourceTypeNames()) {
    std::vector<json::Value> params;
    for (const search::IndexedParam* p : search::Extractor::Default().Params(type)) {
      // Built-in parameters, and SearchParameter resources active on this server.
      const fhir::SearchParamDef* def = p->def != nullptr ? p->def : fhir::FindSearchParam(type, p->code);
      if (!def) continue;
      static constexpr std::string_view kTypeNames[] = {"number",    "date",     "string", "token",  "reference",
                                                        "composite", "quantity", "uri",    "special"};
      params.push_back(Obj(d, {M(d, "name", d.MakeString(def->code)), M(d, "definition", d.MakeString(def->url)),
                               M(d, "type", d.MakeString(kTypeNames[static_cast<int>(def->type)]))}));
    }
    resources.push_back(Obj(
        d, {M(d, "type", d.MakeString(type)),
            M(d, "interaction",
              Codes(d, "code",
                    {"read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create",
                     "search-type"})),
            M(d, "versioning", d.MakeString("versioned")), M(d, "readHistory", json::Value::Bool(true)),
            M(d, "updateCreate", json::Value::Bool(true)), M(d, "conditionalCreate", json::Value::Bool(true)),
            M(d, "conditionalRead", d.MakeString("modified-since")), M(d, "conditionalUpdate", json::Value::Bool(true)),
            M(d, "conditionalDelete", d.MakeString("single")), M(d, "searchParam", d.MakeArray(params))}));
  }
  json::Value everything_op =
      Obj(d, {M(d, "name", d.MakeString("everything")),
              M(d, "definition", d.MakeString("http://hl7.org/fhir/OperationDefinition/Patient-everything"))});
  json::Value validate_op =
      Obj(d, {M(d, "name", d.MakeString("validate")),
              M(d, "definition", d.MakeString("http://hl7.org/fhir/OperationDefinition/Resource-validate"))});
  std::vector<json::Value> operations = {validate_op, everything_op};
  // Bulk Data Access v2 (rest/export.h): system, Patient and Group level.
  for (std::string_view op : {"export", "patient-export", "group-export"}) {
    operations.push_back(Obj(
        d,
        {M(d, "name", d.MakeString(op)),
         M(d, "definition", d.MakeString("http://hl7.org/fhir/uv/bulkdata/OperationDefinition/" + std::string(op)))}));
  }
  json::Value rest =
      Obj(d, {M(d, "mode", d.MakeString("server")), M(d, "resource", d.MakeArray(resources)),
              M(d, "interaction", Codes(d, "code", {"transaction", "batch", "history-system", "search-system"})),
              M(d, "operation", d.MakeArray(operations))});
  if (smart != nullptr) {
    std::vector<json::Value> uris;
    for (auto [name, url] : {std::pair<std::string_view, std::string_view>{"authorize", smart->authorize},
                             {"token", smart->token},
                             {"introspect", smart->introspect}}) {
      if (!url.empty()) uris.push_back(Obj(d, {M(d, "url", d.MakeString(name)), M(d, "valueUri", d.MakeString(url))}));
    }
    json::Value oauth =
        Obj(d, {M(d, "url", d.MakeString("http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris")),
                M(d, "extension", d.MakeArray(uris))});
    json::Value coding =
        Obj(d, {M(d, "system", d.MakeString("http://terminology.hl7.org/CodeSystem/restful-security-service")),
                M(d, "code", d.MakeString("SMART-on-FHIR"))});
    json::Value service = Obj(d, {M(d, "coding", d.MakeArray({&coding, 1}))});
    json::Value security =
        Obj(d, {M(d, "extension", d.MakeArray({&oauth, 1})), M(d, "service", d.MakeArray({&service, 1})),
                M(d, "description", d.MakeString("SMART App Launch v2: OAuth 2.0 bearer tokens with SMART scopes"))});
    rest = d.WithMember(rest, "security", security);
  }
  json::Value json_format = d.MakeString("json");
  json::Value patch_formats[2] = {d.MakeString("application/json-patch+json"), d.MakeString("application/fhir+json")};
  json::Value root = Obj(
      d, {M(d, "resourceType", d.MakeString("CapabilityStatement")), M(d, "status", d.MakeString("active")),
          M(d, "date", d.MakeString("2026-11-24")), M(d, "publisher", d.MakeString("Bevan")),
          M(d, "kind", d.MakeString("instance")),
          M(d, "software", Obj(d, {M(d, "name", d.MakeString("Bevan")), M(d, "version", d.MakeString(BEVAN_VERSION))})),
          M(d, "implementation",
            Obj(d, {M(d, "description", d.MakeString("Bevan FHIR R4 server")), M(d, "url", d.MakeString(base_url))})),
          M(d, "fhirVersion", d.MakeString(fhir::FhirVersion())), M(d, "format", d.MakeArray({&json_format, 1})),
          M(d, "patchFormat", d.MakeArray(patch_formats)), M(d, "rest", d.MakeArray({&rest, 1}))});
  return json::ToString(root);
}

}  // namespace bevan::rest
