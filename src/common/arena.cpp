#include "common/arena.h"

#include <algorithm>
#include <cstdint>

namespace bevan {

Arena::Arena(size_t first_block) : next_block_(first_block), first_block_(first_block) {}

void* Arena::AllocateSlow(size_t size, size_t align) {
  size_t want = size + align;
  size_t block = std::max(next_block_, want);
  blocks_.push_back(std::make_unique_for_overwrite<char[]>(block));
  block_sizes_.push_back(block);
  reserved_ += block;
  if (want <= next_block_) {
    // A normal block: later allocations continue in it.
    ptr_ = blocks_.back().get();
    end_ = ptr_ + block;
    next_block_ = std::min(next_block_ * 2, kMaxBlock);
    return Allocate(size, align);
  }
  // An oversized request gets a block of its own; the current block stays in use.
  char* base = blocks_.back().get();
  size_t pad = (-reinterpret_cast<uintptr_t>(base)) & (align - 1);
  return base + pad;
}

void Arena::Reset() {
  if (blocks_.empty()) return;
  // Keep the first block only if it is a normal one.
  size_t keep = block_sizes_[0] == first_block_ ? 1 : 0;
  blocks_.resize(keep);
  block_sizes_.resize(keep);
  reserved_ = keep ? block_sizes_[0] : 0;
  next_block_ = first_block_;
  if (keep) {
    ptr_ = blocks_[0].get();
    end_ = ptr_ + block_sizes_[0];
    next_block_ = std::min(first_block_ * 2, kMaxBlock);
  } else {
    ptr_ = end_ = nullptr;
  }
}

}  // namespace bevan
