// NearStore, one entry and one ticket at a time: every state of an entry (absent, filling,
// stored, expired, invalidated) and of a ticket (in flight, cancelled by invalidate or by
// invalidateAll, settled), the races between fills and invalidations, and the allocations of the
// hot path (operator new is counted: tests/support/count_allocations.h). The clock is a plain
// number: no sleeps.
#include "proxy/nearcache/near_store.h"

#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "proxy/nearcache/test_util.h"
#include "tests/support/count_allocations.h"

namespace corral::nearcache {
namespace {

using test::bulk;
using test::fill;
using test::get;

StoreOptions opts(Policy p = Policy::kLru, size_t max_bytes = 1 << 20) {
  StoreOptions o;
  o.max_bytes = max_bytes;
  o.policy = p;
  o.expected_entries = 1024;
  return o;
}

TEST_CASE("entry: absent, stored, served byte for byte, expired at its deadline") {
  for (Policy p : {Policy::kLru, Policy::kTinyLfu}) {
    NearStore s(opts(p));
    CHECK(get(s, "k", 100) == "(miss)");
    CHECK(s.stats().misses == 1);
    const std::string reply = bulk(std::string_view("v\r\nwith\0binary", 14));
    CHECK(fill(s, "k", reply, /*expires*/ 200, /*now*/ 100) == FillResult::kStored);
    CHECK(s.stats().entries == 1);
    CHECK(s.stats().bytes == NearStore::entryBytes("k", reply));
    CHECK(s.stats().bytes == 1 + reply.size() + NearStore::kEntryOverhead);
    CHECK(get(s, "k", 100) == reply);
    CHECK(get(s, "k", 199) == reply);
    CHECK(s.stats().hits == 2);
    // At the deadline it is gone, and dropped (not only hidden).
    CHECK(get(s, "k", 200) == "(miss)");
    CHECK(s.stats().expirations == 1);
    CHECK(s.stats().entries == 0);
    CHECK(s.stats().bytes == 0);
    CHECK(s.stats().misses == 2);
    CHECK(s.fillRecords() == 0);
  }
}

TEST_CASE("entry: a reply already expired, or too large, is not stored and settles its ticket") {
  StoreOptions o = opts();
  o.max_entry_bytes = 200;
  NearStore s(o);
  CHECK(fill(s, "k", bulk("v"), 100, 100) == FillResult::kExpired);
  CHECK(fill(s, "k", bulk("v"), 99, 100) == FillResult::kExpired);
  const std::string big(200, 'x');
  CHECK(fill(s, "k", big, 1000, 100) == FillResult::kTooLarge);
  CHECK(s.stats().too_large == 1);
  // Exactly at the limit fits.
  const std::string fits(200 - 1 - NearStore::kEntryOverhead, 'x');
  CHECK(fill(s, "k", fits, 1000, 100) == FillResult::kStored);
  CHECK(s.stats().entries == 1);
  CHECK(s.stats().fills_in_flight == 0);
  CHECK(s.fillRecords() == 0);
}

TEST_CASE("entry: invalidate drops it; a refill replaces it with the newer reply and expiry") {
  NearStore s(opts());
  REQUIRE(fill(s, "k", bulk("1"), 1000, 0) == FillResult::kStored);
  CHECK(s.invalidate("k"));
  CHECK(s.stats().invalidations == 1);
  CHECK(get(s, "k", 1) == "(miss)");
  CHECK_FALSE(s.invalidate("k"));  // nothing left to drop, no fill in flight
  CHECK_FALSE(s.invalidate("never"));
  REQUIRE(fill(s, "k", bulk("2"), 1000, 0) == FillResult::kStored);
  REQUIRE(fill(s, "k", bulk("22"), 50, 0) == FillResult::kStored);
  CHECK(s.stats().entries == 1);
  CHECK(s.stats().bytes == NearStore::entryBytes("k", bulk("22")));
  CHECK(get(s, "k", 49) == bulk("22"));
  CHECK(get(s, "k", 50) == "(miss)");
}

TEST_CASE("ticket: in flight until completed or abandoned; then nothing is kept for the key") {
  NearStore s(opts());
  const FillTicket t = s.beginFill("k");
  CHECK(s.stats().fills_in_flight == 1);
  CHECK(s.fillRecords() == 1);
  s.abandon(t, "k");
  CHECK(s.stats().fills_in_flight == 0);
  CHECK(s.fillRecords() == 0);
  CHECK(get(s, "k", 0) == "(miss)");
  // Settling twice is a caller bug; the second is refused, and stores nothing.
  const FillTicket u = s.beginFill("k");
  CHECK(s.complete(u, "k", bulk("v"), 100, 0) == FillResult::kStored);
  CHECK(s.invalidate("k"));
  CHECK(s.complete(u, "k", bulk("old"), 100, 0) == FillResult::kCancelled);
  CHECK(get(s, "k", 0) == "(miss)");
  CHECK(s.stats().fills_in_flight == 0);
}

TEST_CASE("race: invalidate between beginFill and complete cancels the fill") {
  for (Policy p : {Policy::kLru, Policy::kTinyLfu}) {
    NearStore s(opts(p));
    CHECK(get(s, "k", 0) == "(miss)");
    const FillTicket t = s.beginFill("k");
    CHECK(s.invalidate("k"));  // a write through corral
    CHECK(s.complete(t, "k", bulk("old"), 1000, 0) == FillResult::kCancelled);
    CHECK(get(s, "k", 0) == "(miss)");
    CHECK(s.stats().fills_cancelled == 1);
    CHECK(s.stats().invalidations == 0);  // no entry was dropped, a ticket was cancelled
    CHECK(s.fillRecords() == 0);
  }
}

TEST_CASE("dropEntry: the entry goes, fills in flight are left to the caller") {
  NearStore s(opts());
  CHECK(fill(s, "k", bulk("v1"), 1000, 0) == FillResult::kStored);
  const FillTicket t = s.beginFill("k");
  CHECK(s.dropEntry("k"));  // a push ahead of the fill's reply on the fill's own connection
  CHECK(get(s, "k", 0) == "(miss)");
  CHECK(s.stats().invalidations == 1);
  CHECK(s.complete(t, "k", bulk("v2"), 1000, 0) == FillResult::kStored);
  CHECK(get(s, "k", 0) == bulk("v2"));
  CHECK_FALSE(s.dropEntry("other"));
  CHECK(s.fillRecords() == 0);
}

TEST_CASE("race: two fills of one key, both valid: the later complete wins, one entry") {
  NearStore s(opts());
  const FillTicket a = s.beginFill("k");
  const FillTicket b = s.beginFill("k");
  CHECK(s.fillRecords() == 1);  // one record per key, however many fills
  CHECK(s.stats().fills_in_flight == 2);
  CHECK(s.complete(b, "k", bulk("v"), 1000, 0) == FillResult::kStored);
  CHECK(s.fillRecords() == 1);
  CHECK(s.complete(a, "k", bulk("v"), 2000, 0) == FillResult::kStored);
  CHECK(s.fillRecords() == 0);
  CHECK(s.stats().entries == 1);
  CHECK(get(s, "k", 1500) == bulk("v"));
}

TEST_CASE("race: two fills, an invalidation between their beginnings") {
  // A began before the change and may carry the old value; B began after and may not.
  SUBCASE("the old one completes first") {
    NearStore s(opts());
    const FillTicket a = s.beginFill("k");
    s.invalidate("k");
    const FillTicket b = s.beginFill("k");
    CHECK(s.complete(a, "k", bulk("old"), 1000, 0) == FillResult::kCancelled);
    CHECK(s.complete(b, "k", bulk("new"), 1000, 0) == FillResult::kStored);
    CHECK(get(s, "k", 0) == bulk("new"));
    CHECK(s.fillRecords() == 0);
  }
  SUBCASE("the new one completes first; the old one must not replace it") {
    NearStore s(opts());
    const FillTicket a = s.beginFill("k");
    s.invalidate("k");
    const FillTicket b = s.beginFill("k");
    CHECK(s.complete(b, "k", bulk("new"), 1000, 0) == FillResult::kStored);
    CHECK(s.complete(a, "k", bulk("old"), 1000, 0) == FillResult::kCancelled);
    CHECK(get(s, "k", 0) == bulk("new"));
    CHECK(s.fillRecords() == 0);
  }
  SUBCASE("both began before: both cancelled") {
    NearStore s(opts());
    const FillTicket a = s.beginFill("k");
    const FillTicket b = s.beginFill("k");
    s.invalidate("k");
    CHECK(s.complete(b, "k", bulk("old"), 1000, 0) == FillResult::kCancelled);
    CHECK(s.complete(a, "k", bulk("old"), 1000, 0) == FillResult::kCancelled);
    CHECK(get(s, "k", 0) == "(miss)");
    CHECK(s.stats().fills_cancelled == 2);
  }
}

TEST_CASE("race: an invalidation of another key cancels nothing") {
  NearStore s(opts());
  const FillTicket t = s.beginFill("k");
  CHECK_FALSE(s.invalidate("j"));
  CHECK(s.complete(t, "k", bulk("v"), 1000, 0) == FillResult::kStored);
}

TEST_CASE("race: invalidateAll during fills cancels every ticket and frees their records") {
  NearStore s(opts());
  REQUIRE(fill(s, "stored", bulk("s"), 1000, 0) == FillResult::kStored);
  const FillTicket a = s.beginFill("a");
  const FillTicket b = s.beginFill("b");
  const FillTicket b2 = s.beginFill("b");
  s.invalidateAll();
  CHECK(s.stats().entries == 0);
  CHECK(s.stats().bytes == 0);
  CHECK(s.stats().invalidations == 1);
  CHECK(s.stats().flushes == 1);
  CHECK(s.stats().fills_in_flight == 0);
  CHECK(s.fillRecords() == 0);  // even for fills whose replies never come
  // A new-epoch fill of "b" starts while the old ones are still out.
  const FillTicket nb = s.beginFill("b");
  CHECK(s.complete(a, "a", bulk("old"), 1000, 0) == FillResult::kCancelled);
  CHECK(s.complete(b, "b", bulk("old"), 1000, 0) == FillResult::kCancelled);
  s.abandon(b2, "b");
  // The old tickets left the new fill's record alone.
  CHECK(s.fillRecords() == 1);
  CHECK(s.stats().fills_in_flight == 1);
  CHECK(s.complete(nb, "b", bulk("new"), 1000, 0) == FillResult::kStored);
  CHECK(get(s, "a", 0) == "(miss)");
  CHECK(get(s, "b", 0) == bulk("new"));
  CHECK(get(s, "stored", 0) == "(miss)");
  CHECK(s.fillRecords() == 0);
}

TEST_CASE("race: a write through corral (invalidate at send and at its reply)") {
  NearStore s(opts());
  REQUIRE(fill(s, "k", bulk("old"), 1000, 0) == FillResult::kStored);
  const FillTicket before = s.beginFill("k");  // a refill, sent before the write
  s.invalidate("k");                           // the write is sent
  CHECK(get(s, "k", 0) == "(miss)");           // nobody is served the old value from here on
  // A fill sent while the write is in flight may read either value; it may be stored...
  const FillTicket during = s.beginFill("k");
  CHECK(s.complete(during, "k", bulk("old"), 1000, 0) == FillResult::kStored);
  const FillTicket during2 = s.beginFill("k");
  s.invalidate("k");  // ...until the write's reply arrives
  CHECK(get(s, "k", 0) == "(miss)");
  CHECK(s.complete(before, "k", bulk("old"), 1000, 0) == FillResult::kCancelled);
  CHECK(s.complete(during2, "k", bulk("old"), 1000, 0) == FillResult::kCancelled);
  CHECK(get(s, "k", 0) == "(miss)");
  const FillTicket after = s.beginFill("k");
  CHECK(s.complete(after, "k", bulk("new"), 1000, 0) == FillResult::kStored);
  CHECK(get(s, "k", 0) == bulk("new"));
  CHECK(s.fillRecords() == 0);
}

TEST_CASE("tickets: generations are never reused across a key's records") {
  // A ticket kept past its settlement (a caller bug) must not match a later record of its key.
  NearStore s(opts());
  const FillTicket first = s.beginFill("k");
  s.abandon(first, "k");
  const FillTicket second = s.beginFill("k");
  CHECK(second.generation != first.generation);
  CHECK(s.complete(first, "k", bulk("stale"), 1000, 0) == FillResult::kCancelled);
  CHECK(s.complete(second, "k", bulk("v"), 1000, 0) == FillResult::kCancelled);  // its record
  CHECK(get(s, "k", 0) == "(miss)");  // went with the buggy settlement: refused, never stale
}

TEST_CASE("hot path: lookups allocate nothing; a complete allocates the entry once") {
  for (Policy p : {Policy::kLru, Policy::kTinyLfu}) {
    NearStore s(opts(p));
    const std::string key = "a-key-longer-than-the-small-string-buffer:0001";
    const std::string reply = bulk(std::string(100, 'v'));
    REQUIRE(fill(s, key, reply, 1000, 0) == FillResult::kStored);
    const FillTicket t = s.beginFill(key);
    size_t before = g_allocations.load();
    size_t hits = 0;
    for (int i = 0; i < 1000; ++i) {
      hits += s.lookup(key, 1).has_value() ? 1 : 0;
      hits += s.lookup("missing-key-also-longer-than-sso-buffer", 1).has_value() ? 1 : 0;
    }
    s.invalidate("unknown");
    CHECK(g_allocations.load() - before == 0);
    CHECK(hits == 1000);
    s.invalidate(key);
    const FillTicket u = s.beginFill(key);
    before = g_allocations.load();
    CHECK(s.complete(u, key, reply, 1000, 0) == FillResult::kStored);
    CHECK(g_allocations.load() - before == 1);
    before = g_allocations.load();
    CHECK(s.complete(t, key, reply, 1000, 0) == FillResult::kCancelled);
    CHECK(g_allocations.load() - before == 0);
  }
}

}  // namespace
}  // namespace corral::nearcache
