// The CapabilityStatement (GET /fhir/metadata): what this server implements,
// no more and no less.
#pragma once

#include <string>
#include <string_view>

namespace bevan::rest {

// The SMART on FHIR endpoints of the authorisation server, when one guards the API.
struct SmartEndpoints {
  std::string authorize;
  std::string token;
  std::string introspect;
};

// Compact JSON of the CapabilityStatement for a server at `base_url`; with
// `smart`, rest.security declares SMART-on-FHIR and its OAuth URIs.
std::string CapabilityStatementJson(std::string_view base_url, const SmartEndpoints* smart = nullptr);

}  // namespace bevan::rest
