// Shared by the writer, the reader and the verifier: the stored record
// forms, the chain's hash, the block container and the head file.
#pragma once

#include <openssl/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "audit/audit.h"
#include "common/status.h"

namespace bevan::audit::internal {

using Hash = std::array<unsigned char, 32>;

// ---- Format 2 (blocks) ----------------------------------------------------

// The stored form of a record in a block: binary, every field present,
// strings as varint length + bytes, in this order: time (varint), action,
// outcome (one byte each), user, client id, the patients (count, then each),
// then subtype, description, source address, request id, purpose of use,
// resource type, query, the entities (count, then each), entity_count. The
// fields queries filter on come first so that PeekRecord stops early.
// Appends to `out` (no allocation once `out` has grown).
void AppendRecord(const AuditRecord& record, std::string& out);

// The leading fields of an encoded record, viewing into it.
struct RecordHead {
  int64_t time_us = 0;
  char action = 0;
  int outcome = 0;
  std::string_view user;
  std::string_view client_id;
  std::string_view patients;  // `patient_count` length-prefixed ids
  uint64_t patient_count = 0;

  std::string_view agent() const { return user.empty() ? client_id : user; }
  // Whether `id` is one of the patients.
  bool HasPatient(std::string_view id) const;
  // Calls f(id) for every patient, in stored order (duplicates included).
  template <class F>
  void ForEachPatient(F f) const;
};

// False if `record` is not a well-formed encoded record.
bool PeekRecord(std::string_view record, RecordHead& head);
// InvalidArgument if `record` is not a well-formed encoded record.
Result<AuditRecord> DecodeBinaryRecord(std::string_view record);

// A block's payload: the records, each prefixed by its varint length, as one
// zstd frame. The contexts are reused between blocks; one per thread.
struct ZstdContexts;
std::unique_ptr<ZstdContexts, void (*)(ZstdContexts*)> NewZstdContexts();
Status CompressBlock(ZstdContexts& z, std::string_view raw, std::string& out);
// InvalidArgument if `stored` is not a zstd frame of at most `limit` bytes.
Status DecompressBlock(ZstdContexts& z, std::string_view stored, size_t limit, std::string& raw);
// Splits length-prefixed records; false if `raw` is not a sequence of them.
bool SplitRecords(std::string_view raw, std::vector<std::string_view>& records);
// Appends the varint length of `record` and then `record` to `raw`.
void AppendFramed(std::string_view record, std::string& raw);

// A block's distinct patients (or agents), sorted: a varint count, then each
// length-prefixed. Stored with the block so that queries can use the block
// before its index rows are written (see kIndexLag).
void AppendKeys(const std::vector<std::string_view>& sorted, std::string& out);
// False if `blob` is malformed.
bool SplitKeys(std::string_view blob, std::vector<std::string_view>& keys);
bool KeysContain(std::string_view blob, std::string_view key);

// The upper bounds of one block: the writer starts a new block when either
// is reached, so a query decodes a bounded amount per block it visits.
inline constexpr size_t kBlockEvents = 1024;
inline constexpr size_t kBlockBytes = 256 * 1024;  // uncompressed; one record may exceed it alone
// The patient and agent indexes are written for many blocks at once: when
// this many blocks are not yet indexed, the writer indexes them in one go
// (each index page is then written once per run rather than once per batch,
// which was most of the writer's cost). Queries read the keys of the
// unindexed blocks (fewer than this many) directly.
inline constexpr int64_t kIndexLag = 16;

// What a reader accepts when decompressing (a record's query is bounded by
// the HTTP request size, far below this).
inline constexpr size_t kBlockDecodeLimit = 64 * 1024 * 1024;

// The chain of format 2: hash_seq = SHA-256 (or HMAC-SHA256 with a non-empty
// key) over the previous hash, seq (8 bytes, big-endian), the record's length
// (8 bytes) and the record. The record holds every field, including those
// the indexes are built from. Holds its OpenSSL context, so reuse one per
// thread; not thread-safe.
class EventHasher {
 public:
  explicit EventHasher(std::string_view key);
  ~EventHasher();
  EventHasher(const EventHasher&) = delete;
  EventHasher& operator=(const EventHasher&) = delete;
  Hash Next(const Hash& prev, int64_t seq, std::string_view record);

 private:
  EVP_MD_CTX* md_ = nullptr;
  EVP_MAC_CTX* mac_ = nullptr;
};

// ---- Format 1 (one row per event), read and verified only -----------------

// The stored form of a format-1 record: compact JSON with short keys, empty
// fields left out. EncodeRecord is kept for tests.
std::string EncodeRecord(const AuditRecord& record);
// InvalidArgument if `text` is not an encoded record.
Result<AuditRecord> DecodeRecord(std::string_view text);

// The columns of one format-1 `audit` row that the chain covers.
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

// ---- Both formats -----------------------------------------------------------

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

// ---- Varints (LEB128), for the record and block encodings ------------------

inline void PutVarint(uint64_t v, std::string& out) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Reads a varint from the front of `in`; false if truncated or too long.
inline bool GetVarint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    auto b = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (b < 0x80) return true;
  }
  return false;
}

// Reads a varint-length-prefixed string from the front of `in`.
inline bool GetString(std::string_view& in, std::string_view& s) {
  uint64_t n = 0;
  if (!GetVarint(in, n) || n > in.size()) return false;
  s = in.substr(0, n);
  in.remove_prefix(n);
  return true;
}

template <class F>
void RecordHead::ForEachPatient(F f) const {
  std::string_view in = patients;
  std::string_view id;
  for (uint64_t i = 0; i < patient_count && GetString(in, id); ++i) f(id);
}

}  // namespace bevan::audit::internal
