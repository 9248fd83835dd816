// Shared by the writer and the verifier: the chain's hash and the head file.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "audit/audit.h"
#include "common/status.h"

namespace bevan::audit::internal {

using Hash = std::array<unsigned char, 32>;

// The stored form of a record: compact JSON with short keys, empty fields
// left out (about 250 bytes where the AuditEvent is about 1.5 KB). The
// AuditEvent is rendered from it when read.
std::string EncodeRecord(const AuditRecord& record);
// InvalidArgument if `text` is not an encoded record.
Result<AuditRecord> DecodeRecord(std::string_view text);

// The columns of one `audit` row that the chain covers.
struct ChainedRow {
  int64_t seq = 0;
  int64_t time_us = 0;
  std::string_view agent;
  char action = 'R';
  int outcome = 0;
  std::string_view patients;  // ids joined by '\n'
  std::string_view record;    // EncodeRecord's text
};

// SHA-256 (or HMAC-SHA256 with a non-empty key) over prev, then every field
// of `row`, each length-prefixed so that no two rows encode alike.
Hash ChainHash(const Hash& prev, const ChainedRow& row, std::string_view key);

// A short fixed MAC of the key, stored in the log's metadata so that a wrong
// key is reported as such rather than as a broken chain.
std::string KeyCheck(std::string_view key);

std::string Hex(const unsigned char* data, size_t size);
inline std::string Hex(const Hash& h) { return Hex(h.data(), h.size()); }

struct Head {
  int64_t seq = 0;
  std::string hash_hex;
};

std::string HeadPath(const std::string& log_path);
// NotFound when there is no head file; InvalidArgument when it is malformed.
Result<Head> ReadHead(const std::string& log_path);
// Atomically replaces the head file (write a temporary, fsync, rename).
Status WriteHead(const std::string& log_path, const Head& head);

}  // namespace bevan::audit::internal
