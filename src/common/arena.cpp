#include "common/arena.h"

#include <algorithm>
#include <new>
#include <utility>

namespace bevan {

Arena::Arena(size_t first_block) : next_block_(first_block), first_block_(first_block) {}

Arena::Arena(Arena&& other) noexcept
    : last_(std::exchange(other.last_, nullptr)),
      ptr_(std::exchange(other.ptr_, nullptr)),
      end_(std::exchange(other.end_, nullptr)),
      next_block_(other.next_block_),
      first_block_(other.first_block_),
      reserved_(std::exchange(other.reserved_, 0)) {}

Arena& Arena::operator=(Arena&& other) noexcept {
  if (this != &other) {
    FreeBlocks(nullptr);
    last_ = std::exchange(other.last_, nullptr);
    ptr_ = std::exchange(other.ptr_, nullptr);
    end_ = std::exchange(other.end_, nullptr);
    next_block_ = other.next_block_;
    first_block_ = other.first_block_;
    reserved_ = std::exchange(other.reserved_, 0);
  }
  return *this;
}

Arena::~Arena() { FreeBlocks(nullptr); }

Arena::Block* Arena::NewBlock(size_t payload) {
  size_t total = kHeader + payload;
  auto* b = static_cast<Block*>(::operator new (total, std::align_val_t{kHeader}));
  b->size = total;
  reserved_ += total;
  return b;
}

void Arena::FreeBlocks(Block* until) {
  while (last_ != until) {
    Block* prev = last_->prev;
    reserved_ -= last_->size;
    ::operator delete (last_, std::align_val_t{kHeader});
    last_ = prev;
  }
}

void* Arena::AllocateSlow(size_t size, size_t align) {
  size_t want = size + align;
  if (want <= next_block_) {
    // A normal block: later allocations continue in it.
    Block* b = NewBlock(next_block_);
    b->prev = last_;
    last_ = b;
    ptr_ = reinterpret_cast<char*>(b) + kHeader;
    end_ = reinterpret_cast<char*>(b) + b->size;
    next_block_ = std::min(next_block_ * 2, std::max(kMaxBlock, first_block_));
    return Allocate(size, align);
  }
  // An oversized request gets a block of its own, linked behind the current
  // block so that the current block stays in use.
  Block* b = NewBlock(want);
  if (last_) {
    b->prev = last_->prev;
    last_->prev = b;
  } else {
    b->prev = nullptr;
    last_ = b;
    ptr_ = end_ = reinterpret_cast<char*>(b) + b->size;  // full: next request opens a normal block
  }
  char* base = reinterpret_cast<char*>(b) + kHeader;
  size_t pad = (-reinterpret_cast<uintptr_t>(base)) & (align - 1);
  return base + pad;
}

void Arena::Reset() {
  if (!last_) return;
  // Find the oldest block; keep it if it is a normal one.
  Block* oldest = last_;
  while (oldest->prev) oldest = oldest->prev;
  bool keep = oldest->size == kHeader + first_block_;
  Block* b = last_;
  while (b) {
    Block* prev = b->prev;
    if (!(keep && b == oldest)) {
      reserved_ -= b->size;
      ::operator delete (b, std::align_val_t{kHeader});
    }
    b = prev;
  }
  next_block_ = first_block_;
  if (keep) {
    last_ = oldest;
    ptr_ = reinterpret_cast<char*>(oldest) + kHeader;
    end_ = reinterpret_cast<char*>(oldest) + oldest->size;
    next_block_ = std::min(first_block_ * 2, std::max(kMaxBlock, first_block_));
  } else {
    last_ = nullptr;
    ptr_ = end_ = nullptr;
  }
}

}  // namespace bevan
