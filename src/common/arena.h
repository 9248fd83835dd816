// Arena: a bump allocator for short-lived object graphs (one JSON document,
// one request). Memory is released all at once when the arena is destroyed
// or Reset(). Objects allocated here must be trivially destructible: their
// destructors never run.
//
// Blocks are chained through a header at their start, so an arena costs one
// heap allocation per block and nothing else. Moving an arena keeps every
// pointer it handed out valid.
//
// Not thread-safe: one arena belongs to one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

namespace bevan {

class Arena {
 public:
  // `first_block` is the size of the first block (allocated on first use);
  // later blocks grow geometrically up to kMaxBlock, and a request larger than
  // the next block gets a block of its own.
  explicit Arena(size_t first_block = 4096);
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  Arena(Arena&& other) noexcept;
  Arena& operator=(Arena&& other) noexcept;
  ~Arena();

  // Returns `size` bytes aligned to `align` (a power of two, at most 64).
  void* Allocate(size_t size, size_t align = alignof(std::max_align_t)) {
    size_t pad = (-reinterpret_cast<uintptr_t>(ptr_)) & (align - 1);
    if (static_cast<size_t>(end_ - ptr_) < size + pad) return AllocateSlow(size, align);
    char* p = ptr_ + pad;
    ptr_ = p + size;
    return p;
  }

  // Uninitialised storage for `n` objects of trivially destructible type T.
  template <typename T>
  T* AllocateArray(size_t n) {
    static_assert(std::is_trivially_destructible_v<T>);
    return static_cast<T*>(Allocate(n * sizeof(T), alignof(T)));
  }

  // Copies `s` into the arena; the view stays valid for the arena's life.
  std::string_view CopyString(std::string_view s) {
    if (s.empty()) return {};
    char* p = static_cast<char*>(Allocate(s.size(), 1));
    std::memcpy(p, s.data(), s.size());
    return {p, s.size()};
  }

  // Frees every block but the first, which is kept for reuse.
  void Reset();

  // Bytes of all blocks held (for tests and statistics).
  size_t BytesReserved() const { return reserved_; }

 private:
  struct Block {
    Block* prev;
    size_t size;  // including this header
  };
  static constexpr size_t kHeader = 64;  // keeps the payload 64-byte aligned
  static constexpr size_t kMaxBlock = 1 << 20;

  void* AllocateSlow(size_t size, size_t align);
  Block* NewBlock(size_t payload);
  void FreeBlocks(Block* until);

  Block* last_ = nullptr;  // most recent block; chained to older ones
  char* ptr_ = nullptr;
  char* end_ = nullptr;
  size_t next_block_;
  size_t first_block_;
  size_t reserved_ = 0;
};

}  // namespace bevan
