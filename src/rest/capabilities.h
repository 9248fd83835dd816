// The CapabilityStatement (GET /fhir/metadata): what this server implements,
// no more and no less.
#pragma once

#include <string>
#include <string_view>

namespace bevan::rest {

// Compact JSON of the CapabilityStatement for a server at `base_url`.
std::string CapabilityStatementJson(std::string_view base_url);

}  // namespace bevan::rest
