#include "http/message.h"

#include <strings.h>

namespace bevan::http {

std::string_view FindHeader(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), name.size()) == 0) return v;
  }
  return {};
}

void Request::SetTarget(std::string_view t) {
  size_t q = t.find('?');
  path.assign(t.substr(0, q));
  if (q == std::string_view::npos) {
    query.clear();
  } else {
    query.assign(t.substr(q + 1));
  }
  target.assign(t);
}

void Response::SetHeader(std::string name, std::string value) {
  for (auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), name.size()) == 0) {
      v = std::move(value);
      return;
    }
  }
  headers.emplace_back(std::move(name), std::move(value));
}

}  // namespace bevan::http
