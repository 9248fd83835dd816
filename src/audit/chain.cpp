#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "audit/internal.h"

namespace bevan::audit::internal {

namespace {

void PutU64(unsigned char* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<unsigned char>(v & 0xff);
    v >>= 8;
  }
}

// Feeds the digest through one callback so that plain and keyed chains
// encode identically.
template <class Update>
void Encode(const Hash& prev, const ChainedRow& row, Update update) {
  unsigned char buf[8];
  update(prev.data(), prev.size());
  PutU64(buf, static_cast<uint64_t>(row.seq));
  update(buf, 8);
  PutU64(buf, static_cast<uint64_t>(row.time_us));
  update(buf, 8);
  auto field = [&](std::string_view s) {
    PutU64(buf, s.size());
    update(buf, 8);
    update(reinterpret_cast<const unsigned char*>(s.data()), s.size());
  };
  field(row.agent);
  unsigned char small[2] = {static_cast<unsigned char>(row.action), static_cast<unsigned char>(row.outcome)};
  update(small, 2);
  field(row.patients);
  field(row.record);
}

}  // namespace

Hash ChainHash(const Hash& prev, const ChainedRow& row, std::string_view key) {
  Hash out{};
  if (key.empty()) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    // Fetched once: OpenSSL 3 would otherwise look the algorithm up per call.
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    EVP_DigestInit_ex(ctx, sha256, nullptr);
    Encode(prev, row, [&](const unsigned char* p, size_t n) { EVP_DigestUpdate(ctx, p, n); });
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, out.data(), &len);
    EVP_MD_CTX_free(ctx);
    return out;
  }
  // EVP_MAC would do as well; HMAC_CTX is deprecated in OpenSSL 3, so build
  // HMAC from EVP_MAC (fetched once).
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0), OSSL_PARAM_construct_end()};
  EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params);
  Encode(prev, row, [&](const unsigned char* p, size_t n) { EVP_MAC_update(ctx, p, n); });
  size_t len = 0;
  EVP_MAC_final(ctx, out.data(), &len, out.size());
  EVP_MAC_CTX_free(ctx);
  return out;
}

EventHasher::EventHasher(std::string_view key) {
  if (key.empty()) {
    md_ = EVP_MD_CTX_new();
  } else {
    static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    mac_ = EVP_MAC_CTX_new(mac);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0), OSSL_PARAM_construct_end()};
    EVP_MAC_init(mac_, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params);
  }
}

EventHasher::~EventHasher() {
  EVP_MD_CTX_free(md_);
  EVP_MAC_CTX_free(mac_);
}

Hash EventHasher::Next(const Hash& prev, int64_t seq, std::string_view record) {
  unsigned char head[16];
  PutU64(head, static_cast<uint64_t>(seq));
  PutU64(head + 8, record.size());
  const auto* data = reinterpret_cast<const unsigned char*>(record.data());
  Hash out{};
  if (md_ != nullptr) {
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    EVP_DigestInit_ex(md_, sha256, nullptr);
    EVP_DigestUpdate(md_, prev.data(), prev.size());
    EVP_DigestUpdate(md_, head, sizeof(head));
    EVP_DigestUpdate(md_, data, record.size());
    unsigned int len = 0;
    EVP_DigestFinal_ex(md_, out.data(), &len);
    return out;
  }
  // A null key restarts with the key set in the constructor (its pads
  // already hashed), rather than hashing the key again per event.
  EVP_MAC_init(mac_, nullptr, 0, nullptr);
  EVP_MAC_update(mac_, prev.data(), prev.size());
  EVP_MAC_update(mac_, head, sizeof(head));
  EVP_MAC_update(mac_, data, record.size());
  size_t len = 0;
  EVP_MAC_final(mac_, out.data(), &len, out.size());
  return out;
}

std::string KeyCheck(std::string_view key) {
  ChainedRow row;
  row.record = "bevan-audit-key-check";
  return Hex(ChainHash(Hash{}, row, key)).substr(0, 16);
}

std::string Hex(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 15]);
  }
  return out;
}

std::string HeadPath(const std::string& log_path) { return log_path + ".head"; }

Result<Head> ReadHead(const std::string& log_path) {
  std::ifstream in(HeadPath(log_path));
  if (!in) return NotFoundError("no head file " + HeadPath(log_path));
  std::string magic, version;
  Head head;
  if (!(in >> magic >> version >> head.seq >> head.hash_hex) || magic != "bevan-audit-head" || version != "1" ||
      head.seq < 0 || head.hash_hex.size() != 64) {
    return InvalidArgumentError("malformed head file " + HeadPath(log_path));
  }
  return head;
}

Status WriteHead(const std::string& log_path, const Head& head) {
  std::string path = HeadPath(log_path);
  std::string tmp = path + ".tmp";
  std::string text = "bevan-audit-head 1\n" + std::to_string(head.seq) + " " + head.hash_hex + "\n";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("cannot write " + tmp);
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) return IoError("cannot write " + path);
  return Status::Ok();
}

}  // namespace bevan::audit::internal
