// A FIFO ring over a power-of-two array that grows by doubling and never shrinks below what a
// burst needed (freed with release() when empty). push_back/pop_front never allocate in steady
// state, unlike std::deque, which allocates and frees a chunk every few hundred bytes.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

namespace corral::codec {

// What pop_front does to the element it leaves: back to T{}, unless T's namespace provides a
// cheaper recycle(T&) that leaves it as emplace_back's callers expect.
template <typename T>
void recycle(T& v) {
  v = T{};
}

template <typename T>
class Ring {
 public:
  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& front() { return data_[head_]; }
  T& back() { return data_[(head_ + size_ - 1) & (cap_ - 1)]; }
  T& operator[](size_t i) { return data_[(head_ + i) & (cap_ - 1)]; }

  void push_back(T v) {
    if (size_ == cap_) grow();
    data_[(head_ + size_) & (cap_ - 1)] = std::move(v);
    ++size_;
  }
  // An element at the back to fill in place: T{} or, with a recycle() of T's own, what that
  // leaves.
  T& emplace_back() {
    if (size_ == cap_) grow();
    ++size_;
    return data_[(head_ + size_ - 1) & (cap_ - 1)];
  }
  void pop_front() {
    recycle(data_[head_]);
    head_ = (head_ + 1) & (cap_ - 1);
    --size_;
  }
  void clear() {
    while (size_ > 0) pop_front();
    head_ = 0;
  }
  // Frees the storage of an empty ring (idle connections keep none).
  void release() {
    if (size_ != 0) return;
    data_.reset();
    cap_ = 0;
    head_ = 0;
  }

 private:
  void grow() {
    size_t ncap = cap_ ? cap_ * 2 : 8;
    std::unique_ptr<T[]> n(new T[ncap]);
    for (size_t i = 0; i < size_; ++i) n[i] = std::move(data_[(head_ + i) & (cap_ - 1)]);
    data_ = std::move(n);
    cap_ = ncap;
    head_ = 0;
  }

  std::unique_ptr<T[]> data_;
  size_t cap_ = 0;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace corral::codec
