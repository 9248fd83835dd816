// URL pieces the REST layer parses: percent-decoding, query strings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/percent.h"

namespace bevan::rest {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// PercentDecode (a decoded NUL is refused) and PercentEncode: common/percent.h.
using ::bevan::PercentDecode;
using ::bevan::PercentEncode;

// Splits "a=1&b=x%20y" into decoded pairs, in order. nullopt on a bad escape.
std::optional<QueryParams> ParseQuery(std::string_view query);

// The first value of `name`, or nullopt.
std::optional<std::string_view> FirstParam(const QueryParams& params, std::string_view name);

// `params` re-encoded as "?a=1&b=2" without the parameter `dropped` (paging
// links keep a request's parameters but its cursor); empty when none remain.
std::string QueryWithout(const QueryParams& params, std::string_view dropped);

// A whole decimal integer of at least 1 ("3"); nullopt for anything else
// (sign, spaces, overflow, 0).
std::optional<int64_t> ParsePositiveInt(std::string_view s);

}  // namespace bevan::rest
