// FillStore's decoding of the fill lookup scripts' replies, hash keys and string keys alike:
// every answer code, and malformed replies as store errors.
#include <doctest/doctest.h>

#include "proxy/upstream/fill_store.h"

namespace corral::upstream {
namespace {

using Kind = policies::LookupResult::Kind;

TEST_CASE("fill store: a hash lookup's value becomes HGETALL's RESP2 reply") {
  const auto r = FillStore::decodeHashLookup(
      "*3\r\n:1\r\n*4\r\n$1\r\na\r\n$1\r\nx\r\n$3\r\nage\r\n$2\r\n42\r\n:59000\r\n");
  CHECK(r.kind == Kind::kValue);
  CHECK(r.value == "*4\r\n$1\r\na\r\n$1\r\nx\r\n$3\r\nage\r\n$2\r\n42\r\n");
  CHECK(r.pttl == 59000);
}

TEST_CASE("fill store: a hash lookup's other answers are the string lookup's") {
  CHECK(FillStore::decodeHashLookup("*1\r\n:2\r\n").kind == Kind::kNegative);
  CHECK(FillStore::decodeHashLookup("*1\r\n:3\r\n").kind == Kind::kLeaseWon);
  const auto held = FillStore::decodeHashLookup("*2\r\n:4\r\n:1500\r\n");
  CHECK(held.kind == Kind::kLeaseHeld);
  CHECK(held.pttl == 1500);
  CHECK(FillStore::decodeHashLookup("*1\r\n:5\r\n").kind == Kind::kMissing);
  const auto err = FillStore::decodeHashLookup(
      "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
  CHECK(err.kind == Kind::kError);
  CHECK(err.error == "WRONGTYPE Operation against a key holding the wrong kind of value");
}

TEST_CASE("fill store: malformed hash lookup replies are store errors") {
  for (const char* bad : {
           "*3\r\n:1\r\n*0\r\n:10\r\n",                              // no fields
           "*3\r\n:1\r\n*1\r\n$1\r\na\r\n:10\r\n",                   // odd count
           "*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n:10\r\n",            // a nil value
           "*3\r\n:1\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n",               // no pttl
           "*3\r\n:1\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n:10\r\n:1\r\n",  // trailing bytes
           "*3\r\n:1\r\n$1\r\na\r\n:10\r\n",                         // a string value
           "*1\r\n:9\r\n",                                           // unknown code
       }) {
    INFO(bad);
    const auto r = FillStore::decodeHashLookup(bad);
    CHECK(r.kind == Kind::kError);
    CHECK_FALSE(r.error.empty());
    CHECK(r.value.empty());
  }
}

}  // namespace
}  // namespace corral::upstream
