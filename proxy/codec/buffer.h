// A growable contiguous byte buffer: [start_, end_) holds unread bytes, [end_, cap_) is free.
//
// Frames must be contiguous for the span-based parsers, so this is one malloc'd block rather
// than a chain. An empty buffer may give its memory back (release()), which is what keeps idle
// connections small. Not thread-safe; owned by one connection.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

namespace corral::codec {

class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { std::free(data_); }

  const char* readPtr() const { return data_ + start_; }
  size_t readable() const { return end_ - start_; }
  bool empty() const { return start_ == end_; }
  size_t capacity() const { return cap_; }

  // Drops n unread bytes from the front. An emptied buffer rewinds so the next read starts at 0.
  void consume(size_t n) {
    start_ += n;
    if (start_ == end_) start_ = end_ = 0;
  }

  char* writePtr() { return data_ + end_; }
  size_t writable() const { return cap_ - end_; }
  void commit(size_t n) { end_ += n; }

  // Makes room for at least n more bytes: moves unread bytes to the front when that is enough,
  // else grows (doubling). Invalidates pointers into the buffer, not offsets from readPtr().
  void reserve(size_t n) {
    if (cap_ - end_ >= n) return;
    if (start_ > 0) {  // compact first: often enough, and growth then copies less
      size_t used = end_ - start_;
      std::memmove(data_, data_ + start_, used);
      start_ = 0;
      end_ = used;
      if (cap_ - end_ >= n) return;
    }
    // Start small: an idle client's buffer that held one short reply stays cheap.
    size_t want = cap_ ? cap_ : 512;
    while (want - end_ < n) want *= 2;
    char* p = static_cast<char*>(std::realloc(data_, want));
    if (p == nullptr) throw std::bad_alloc();
    data_ = p;
    cap_ = want;
  }

  void append(const char* p, size_t n) {
    reserve(n);
    std::memcpy(data_ + end_, p, n);
    end_ += n;
  }

  // Frees the memory of an empty buffer (idle connections keep no buffer).
  void release() {
    if (start_ != end_) return;
    std::free(data_);
    data_ = nullptr;
    start_ = end_ = cap_ = 0;
  }

  // Gives back memory above `keep` bytes when the buffer is empty (after a burst).
  void shrinkIfEmpty(size_t keep) {
    if (start_ == end_ && cap_ > keep) release();
  }

 private:
  char* data_ = nullptr;
  size_t start_ = 0;
  size_t end_ = 0;
  size_t cap_ = 0;
};

}  // namespace corral::codec
