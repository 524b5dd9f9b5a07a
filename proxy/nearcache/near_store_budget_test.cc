// NearStore under memory pressure: max_bytes under 10x more keys than fit, LRU order, TinyLFU
// admission, a budget shared by two stores, the expiry sweep.
#include <doctest/doctest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "proxy/nearcache/near_store.h"
#include "proxy/nearcache/test_util.h"

namespace corral::nearcache {
namespace {

using test::bulk;
using test::fill;
using test::get;

std::string key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "key:%05d", i);
  return buf;
}
const std::string kReply = bulk(std::string(20, 'v'));
const size_t kEntry = NearStore::entryBytes(key(0), kReply);  // 9 + 27 + overhead

StoreOptions opts(Policy p, size_t entries) {
  StoreOptions o;
  o.max_bytes = entries * kEntry;
  o.policy = p;
  o.expected_entries = entries;
  return o;
}

TEST_CASE("memory: max_bytes holds under 10x more distinct keys than fit") {
  for (Policy p : {Policy::kLru, Policy::kTinyLfu}) {
    CAPTURE(static_cast<int>(p));
    NearStore s(opts(p, 100));
    size_t most = 0;
    for (int i = 0; i < 1000; ++i) {
      CHECK_FALSE(s.lookup(key(i), 0).has_value());
      fill(s, key(i), kReply, 1000, 0);
      most = std::max(most, s.stats().bytes);
    }
    CHECK(most == 100 * kEntry);
    CHECK(s.stats().entries == 100);
    if (p == Policy::kLru) {
      // Each new key evicts the oldest: the last 100 stay.
      CHECK(s.stats().evictions == 900);
      CHECK(get(s, key(899), 0) == "(miss)");
      CHECK(get(s, key(900), 0) == kReply);
      CHECK(get(s, key(999), 0) == kReply);
    } else {
      // Every key was asked for once, like its victim: a newcomer does not beat it, unless the
      // doorkeeper mistakes it for a key seen before (a false positive, a few percent).
      CHECK(s.stats().admissions_rejected > 850);
      CHECK(s.stats().admissions_rejected + s.stats().evictions == 900);
    }
  }
}

TEST_CASE("memory: replies of random sizes, random keys; the byte count is the entries' sum") {
  for (Policy p : {Policy::kLru, Policy::kTinyLfu}) {
    CAPTURE(static_cast<int>(p));
    StoreOptions o = opts(p, 100);
    NearStore s(o);
    std::mt19937 rng(42);
    std::vector<std::string> replies(1000);
    for (auto& r : replies) r = bulk(std::string(rng() % 300, 'x'));
    bool held = true;
    for (int op = 0; op < 20000; ++op) {
      const int k = static_cast<int>(rng() % 1000);
      if (!s.lookup(key(k), op).has_value()) {
        fill(s, key(k), replies[k], op + 5000, op);
      }
      if (rng() % 50 == 0) s.invalidate(key(static_cast<int>(rng() % 1000)));
      held = held && s.stats().bytes <= o.max_bytes;
    }
    CHECK(held);
    size_t sum = 0, present = 0;
    for (int k = 0; k < 1000; ++k) {
      if (s.lookup(key(k), 20000).has_value()) {
        sum += NearStore::entryBytes(key(k), replies[k]);
        ++present;
      }
    }
    CHECK(present == s.stats().entries);
    CHECK(sum == s.stats().bytes);
    CHECK(present > 10);
  }
}

TEST_CASE("table: a store sized for 16 entries grows to 2,000 and loses none") {
  StoreOptions o = opts(Policy::kLru, 2000);
  o.expected_entries = 16;
  NearStore s(o);
  for (int i = 0; i < 2000; ++i) {
    REQUIRE(fill(s, key(i), kReply, 100 + i % 2, 0) == FillResult::kStored);
  }
  int found = 0;
  for (int i = 0; i < 2000; ++i) found += s.lookup(key(i), 0).has_value() ? 1 : 0;
  CHECK(found == 2000);
  // One full round of the (grown) table finds every expired entry.
  CHECK(s.sweep(100, 2048) == 1000);
  CHECK(s.stats().entries == 1000);
  CHECK(get(s, key(1), 100) == kReply);
}

TEST_CASE("lru: a lookup makes an entry recent; the least recent goes first") {
  NearStore s(opts(Policy::kLru, 3));
  for (int i = 0; i < 3; ++i) REQUIRE(fill(s, key(i), kReply, 1000, 0) == FillResult::kStored);
  CHECK(s.lookup(key(0), 0).has_value());
  REQUIRE(fill(s, key(3), kReply, 1000, 0) == FillResult::kStored);
  CHECK(s.stats().evictions == 1);
  CHECK(get(s, key(1), 0) == "(miss)");
  CHECK(get(s, key(0), 0) == kReply);
  CHECK(get(s, key(2), 0) == kReply);
  CHECK(get(s, key(3), 0) == kReply);
}

TEST_CASE("tinylfu: a key asked for more often than the victim gets in; a one-hit key does not") {
  NearStore s(opts(Policy::kTinyLfu, 100));
  for (int i = 0; i < 100; ++i) {
    for (int n = 0; n < 3; ++n) s.lookup(key(i), 0);
    REQUIRE(fill(s, key(i), kReply, 1000, 0) == FillResult::kStored);
  }
  s.lookup(key(500), 0);
  CHECK(fill(s, key(500), kReply, 1000, 0) == FillResult::kRejected);
  CHECK(s.stats().admissions_rejected == 1);
  for (int n = 0; n < 3; ++n) s.lookup(key(501), 0);  // as often as the victim: not enough
  CHECK(fill(s, key(501), kReply, 1000, 0) == FillResult::kRejected);
  s.lookup(key(501), 0);
  CHECK(fill(s, key(501), kReply, 1000, 0) == FillResult::kStored);
  CHECK(s.stats().evictions == 1);
  CHECK(s.stats().entries == 100);
  CHECK(get(s, key(0), 0) == "(miss)");  // the least recently used
  CHECK(get(s, key(501), 0) == kReply);
}

TEST_CASE("tinylfu: worthFilling says whether a fill would get in, before it is read") {
  NearStore s(opts(Policy::kTinyLfu, 10));
  CHECK(s.worthFilling(key(0)));  // empty
  for (int i = 0; i < 10; ++i) {
    CHECK(get(s, key(i), 0) == "(miss)");
    CHECK(s.worthFilling(key(i)));  // room
    REQUIRE(fill(s, key(i), kReply, 1000, 0) == FillResult::kStored);
  }
  for (int r = 0; r < 3; ++r) {
    for (int i = 0; i < 10; ++i) CHECK(get(s, key(i), 0) == kReply);  // the residents are hot
  }
  CHECK(get(s, key(500), 0) == "(miss)");
  CHECK_FALSE(s.worthFilling(key(500)));  // full, and asked for once: it would be refused
  CHECK(fill(s, key(500), kReply, 1000, 0) == FillResult::kRejected);
  for (int r = 0; r < 6; ++r) CHECK(get(s, key(500), 0) == "(miss)");
  CHECK(s.worthFilling(key(500)));  // asked for more often than the victim now
  CHECK(fill(s, key(500), kReply, 1000, 0) == FillResult::kStored);
  NearStore lru(opts(Policy::kLru, 1));
  REQUIRE(fill(lru, key(0), kReply, 1000, 0) == FillResult::kStored);
  CHECK(lru.worthFilling(key(1)));  // LRU admits everything
}

TEST_CASE("tinylfu: an expired victim is dropped without a contest") {
  NearStore s(opts(Policy::kTinyLfu, 2));
  for (int n = 0; n < 5; ++n) s.lookup(key(0), 0);
  REQUIRE(fill(s, key(0), kReply, /*expires*/ 10, 0) == FillResult::kStored);
  REQUIRE(fill(s, key(1), kReply, 1000, 0) == FillResult::kStored);
  CHECK(fill(s, key(2), kReply, 1000, 20) == FillResult::kStored);
  CHECK(s.stats().expirations == 1);
  CHECK(s.stats().evictions == 0);
  CHECK(get(s, key(1), 20) == kReply);
}

TEST_CASE("budget: two stores share a cap; the one holding more gives way") {
  SharedBudget budget(150 * kEntry);
  NearStore a(opts(Policy::kLru, 100), &budget);
  NearStore b(opts(Policy::kLru, 100), &budget);
  CHECK(budget.stores() == 2);
  bool held = true;
  for (int i = 0; i < 100; ++i) {
    REQUIRE(fill(a, key(i), kReply, 1000, 0) == FillResult::kStored);
    held = held && budget.usedBytes() <= budget.maxBytes();
  }
  CHECK(budget.usedBytes() == 100 * kEntry);
  for (int i = 0; i < 100; ++i) {
    REQUIRE(fill(b, key(i), kReply, 1000, 0) == FillResult::kStored);
    held = held && budget.usedBytes() <= budget.maxBytes();
  }
  CHECK(held);
  CHECK(a.stats().entries + b.stats().entries == 150);
  CHECK(a.stats().entries == 75);
  CHECK(b.stats().entries == 75);
  CHECK(a.stats().evictions == 25);
  CHECK(budget.usedBytes() == a.stats().bytes + b.stats().bytes);
  // b's own cap still holds: 300 more keys into b alone.
  for (int i = 100; i < 400; ++i) fill(b, key(i), kReply, 1000, 0);
  CHECK(b.stats().bytes <= b.maxBytes());
  CHECK(budget.usedBytes() <= budget.maxBytes());
  CHECK(a.stats().entries == 75);  // on a tie the store that needs room gives way
  CHECK(b.stats().entries == 75);
  // invalidateAll and destruction give their bytes back.
  const size_t a_bytes = a.stats().bytes;
  b.invalidateAll();
  CHECK(budget.usedBytes() == a_bytes);
  {
    NearStore c(opts(Policy::kTinyLfu, 100), &budget);
    REQUIRE(fill(c, key(7), kReply, 1000, 0) == FillResult::kStored);
    CHECK(budget.usedBytes() == a_bytes + kEntry);
    CHECK(budget.stores() == 3);
  }
  CHECK(budget.usedBytes() == a_bytes);
  CHECK(budget.stores() == 2);
}

TEST_CASE(
    "resize: a smaller max_bytes or shared cap evicts the least recent; a larger one admits more") {
  SharedBudget budget(300 * kEntry);
  NearStore a(opts(Policy::kLru, 100), &budget);
  NearStore b(opts(Policy::kLru, 100), &budget);
  for (int i = 0; i < 100; ++i) REQUIRE(fill(a, key(i), kReply, 1000, 0) == FillResult::kStored);
  for (int i = 0; i < 60; ++i) REQUIRE(fill(b, key(i), kReply, 1000, 0) == FillResult::kStored);
  a.setMaxBytes(40 * kEntry);
  CHECK(a.stats().entries == 40);
  CHECK(a.stats().evictions == 60);
  CHECK(get(a, key(59), 0) == "(miss)");
  CHECK(get(a, key(60), 0) == kReply);  // the 40 most recent stay
  CHECK(budget.usedBytes() == 100 * kEntry);
  // The shared cap shrinks: the larger member (b, 60 entries) gives way until both hold 40, then
  // they take turns.
  budget.setMaxBytes(70 * kEntry);
  CHECK(budget.usedBytes() == 70 * kEntry);
  CHECK(a.stats().entries + b.stats().entries == 70);
  CHECK(a.stats().entries >= 35);
  CHECK(b.stats().entries >= 35);
  CHECK(budget.usedBytes() == a.stats().bytes + b.stats().bytes);
  // An entry over the new shared cap is refused.
  const std::string big = bulk(std::string(80 * kEntry, 'x'));
  CHECK(fill(a, key(500), big, 1000, 0) == FillResult::kTooLarge);
  // Larger again: a takes up to its own new cap.
  a.setMaxBytes(200 * kEntry);
  budget.setMaxBytes(1000 * kEntry);
  for (int i = 100; i < 300; ++i) fill(a, key(i), kReply, 1000, 0);
  CHECK(a.stats().entries == 200);
  CHECK(a.stats().bytes <= a.maxBytes());
}

TEST_CASE("budget: an entry larger than the shared cap is refused, not stored by emptying all") {
  SharedBudget budget(2 * kEntry);
  NearStore a(opts(Policy::kLru, 100), &budget);
  REQUIRE(fill(a, key(0), kReply, 1000, 0) == FillResult::kStored);
  const std::string big = bulk(std::string(2 * kEntry, 'x'));
  CHECK(fill(a, key(1), big, 1000, 0) == FillResult::kTooLarge);
  CHECK(get(a, key(0), 0) == kReply);
}

TEST_CASE("sweep: bounded steps; a full round drops every expired entry and nothing else") {
  NearStore s(opts(Policy::kLru, 100));  // 128 buckets (expected_entries rounded up)
  for (int i = 0; i < 100; ++i) {
    REQUIRE(fill(s, key(i), kReply, i % 2 == 0 ? 50 : 1000, 0) == FillResult::kStored);
  }
  CHECK(s.sweep(49, 1000) == 0);
  size_t dropped = 0;
  for (int step = 0; step < 4; ++step) dropped += s.sweep(50, 1);
  CHECK(dropped < 50);  // 4 of 128 buckets
  for (int step = 0; step < 124; ++step) dropped += s.sweep(50, 1);
  CHECK(dropped == 50);
  CHECK(s.stats().expirations == 50);
  CHECK(s.stats().entries == 50);
  CHECK(s.stats().bytes == 50 * kEntry);
  CHECK(get(s, key(1), 50) == kReply);
  CHECK(get(s, key(0), 49) == "(miss)");
  s.invalidateAll();
  CHECK(s.sweep(5000, 1000) == 0);
}

}  // namespace
}  // namespace corral::nearcache
