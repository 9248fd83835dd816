#include "http/compress.h"

#include <zlib.h>

#include <cctype>

namespace bevan::http {

bool AcceptsGzip(std::string_view v) {
  // Tokens separated by commas, each "coding[;q=x]".
  size_t i = 0;
  while (i < v.size()) {
    size_t end = v.find(',', i);
    if (end == std::string_view::npos) end = v.size();
    std::string_view item = v.substr(i, end - i);
    i = end + 1;
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    size_t semi = item.find(';');
    std::string_view coding = item.substr(0, semi);
    while (!coding.empty() && coding.back() == ' ') coding.remove_suffix(1);
    bool gzip = coding.size() == 4 && std::tolower(static_cast<unsigned char>(coding[0])) == 'g' &&
                std::tolower(static_cast<unsigned char>(coding[1])) == 'z' &&
                std::tolower(static_cast<unsigned char>(coding[2])) == 'i' &&
                std::tolower(static_cast<unsigned char>(coding[3])) == 'p';
    if (!gzip && coding != "*") continue;
    if (semi == std::string_view::npos) return true;
    std::string_view params = item.substr(semi + 1);
    size_t q = params.find("q=");
    if (q == std::string_view::npos) return true;
    std::string_view qv = params.substr(q + 2);
    // q=0, q=0.0, q=0.000 refuse.
    bool zero = !qv.empty() && qv[0] == '0';
    for (size_t k = 1; zero && k < qv.size() && qv[k] != ' ' && qv[k] != ';'; ++k) {
      if (qv[k] != '.' && qv[k] != '0') zero = false;
    }
    return !zero;
  }
  return false;
}

bool Gzip(std::string_view in, std::string& out, int level) {
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
  out.resize(deflateBound(&zs, static_cast<uLong>(in.size())) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return rc == Z_STREAM_END;
}

bool Gunzip(std::string_view in, std::string& out, size_t max_out) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return false;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  out.clear();
  char buf[16384];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) break;
    out.append(buf, sizeof(buf) - zs.avail_out);
    if (out.size() > max_out) {
      rc = Z_DATA_ERROR;
      break;
    }
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
      rc = Z_DATA_ERROR;  // truncated
      break;
    }
  }
  inflateEnd(&zs);
  return rc == Z_STREAM_END;
}

}  // namespace bevan::http
