#include "rest/url.h"

#include <charconv>

namespace bevan::rest {

std::optional<QueryParams> ParseQuery(std::string_view query) {
  QueryParams out;
  size_t i = 0;
  while (i <= query.size() && !query.empty()) {
    size_t amp = query.find('&', i);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view part = query.substr(i, amp - i);
    if (!part.empty()) {
      size_t eq = part.find('=');
      auto name = PercentDecode(part.substr(0, eq), true);
      auto value = PercentDecode(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1), true);
      if (!name || !value) return std::nullopt;
      out.emplace_back(std::move(*name), std::move(*value));
    }
    i = amp + 1;
    if (amp == query.size()) break;
  }
  return out;
}

std::optional<std::string_view> FirstParam(const QueryParams& params, std::string_view name) {
  for (const auto& [k, v] : params) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::string QueryWithout(const QueryParams& params, std::string_view dropped) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (k == dropped) continue;
    out += out.empty() ? "?" : "&";
    out += PercentEncode(k) + "=" + PercentEncode(v);
  }
  return out;
}

std::optional<int64_t> ParsePositiveInt(std::string_view s) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || p != s.data() + s.size() || n < 1) return std::nullopt;
  return n;
}

}  // namespace bevan::rest
