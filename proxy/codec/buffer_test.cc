// Buffer and Ring: the containers under every connection.
#include "proxy/codec/buffer.h"

#include <doctest/doctest.h>

#include <string>

#include "proxy/codec/ring.h"

using corral::codec::Buffer;
using corral::codec::Ring;

TEST_CASE("buffer: append, consume, rewind when emptied") {
  Buffer b;
  CHECK(b.empty());
  CHECK(b.capacity() == 0);
  b.append("hello", 5);
  CHECK(b.readable() == 5);
  CHECK(std::string(b.readPtr(), b.readable()) == "hello");
  b.consume(2);
  CHECK(std::string(b.readPtr(), b.readable()) == "llo");
  b.consume(3);
  CHECK(b.empty());
  // An emptied buffer rewinds: the next write starts at the front of the allocation.
  b.append("x", 1);
  CHECK(b.writable() == b.capacity() - 1);
}

TEST_CASE("buffer: reserve compacts before growing and keeps the unread bytes") {
  Buffer b;
  b.reserve(100);
  const size_t cap = b.capacity();
  REQUIRE(cap >= 100);
  std::string fill(cap, 'a');
  fill[cap - 1] = 'z';
  b.append(fill.data(), fill.size());
  b.consume(cap - 3);  // "aaz" left at the end
  b.reserve(cap - 3);  // fits after compaction: no growth
  CHECK(b.capacity() == cap);
  CHECK(std::string(b.readPtr(), b.readable()) == "aaz");
  b.reserve(cap);  // must grow now
  CHECK(b.capacity() >= cap + 3);
  CHECK(std::string(b.readPtr(), b.readable()) == "aaz");
}

TEST_CASE("buffer: write pointer and commit, release only when empty") {
  Buffer b;
  b.reserve(10);
  std::memcpy(b.writePtr(), "abc", 3);
  b.commit(3);
  b.release();  // not empty: keeps its memory
  CHECK(b.readable() == 3);
  CHECK(b.capacity() > 0);
  b.consume(3);
  b.release();
  CHECK(b.capacity() == 0);
  b.append("big", 3);
  b.consume(3);
  b.shrinkIfEmpty(1 << 20);  // under the bound: kept
  CHECK(b.capacity() > 0);
  b.shrinkIfEmpty(16);
  CHECK(b.capacity() == 0);
}

TEST_CASE("ring: FIFO order across growth and wrap-around") {
  Ring<int> r;
  int next_in = 0;
  int next_out = 0;
  // Interleave pushes and pops so the head wraps while the ring grows from 8 to 64.
  for (int round = 0; round < 50; ++round) {
    for (int k = 0; k < 3; ++k) r.push_back(next_in++);
    r.pop_front();
    ++next_out;
    CHECK(r.front() == next_out);
    CHECK(r.back() == next_in - 1);
    CHECK(r.size() == static_cast<size_t>(next_in - next_out));
  }
  for (size_t i = 0; i < r.size(); ++i) CHECK(r[i] == next_out + static_cast<int>(i));
  r.clear();
  CHECK(r.empty());
  r.release();
  r.push_back(7);
  CHECK(r.front() == 7);
}

TEST_CASE("ring: popped elements are reset (no lingering ownership)") {
  Ring<std::string> r;
  r.push_back(std::string(100, 'x'));
  std::string* slot = &r.front();
  r.pop_front();
  CHECK(slot->empty());
}
