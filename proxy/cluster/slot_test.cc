// keySlot against CLUSTER KEYSLOT of a real redis-server. This binary also counts heap
// allocations (operator new is replaced below; redirect_test.cc reads the counter) so that
// "no allocation" is checked, not just claimed.
#include "proxy/cluster/slot.h"

#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "tests/support/count_allocations.h"

namespace corral::cluster {
namespace {

// Reference values: `CLUSTER KEYSLOT <key>` answered by redis-server 7.0.15 (cluster-enabled,
// loopback), sent as raw RESP by testdata/capture.py, which prints this table. They are Redis's
// answers, not our code's.
const std::pair<std::string_view, uint16_t> kRedisKeySlots[] = {
    {std::string_view("", 0), 0},
    {std::string_view("a", 1), 15495},
    {std::string_view("foo", 3), 12182},
    {std::string_view("bar", 3), 5061},
    {std::string_view("hello", 5), 866},
    {std::string_view("key:000001", 10), 5493},
    {std::string_view("user:1000", 9), 1649},
    {std::string_view("123456789", 9), 12739},
    {std::string_view("{", 1), 4092},
    {std::string_view("}", 1), 12090},
    {std::string_view("{}", 2), 15257},
    {std::string_view("}{", 2), 12793},
    {std::string_view("{{a}}", 5), 10276},
    {std::string_view("{a}}", 4), 15495},
    {std::string_view("a{b}{c}", 7), 3300},
    {std::string_view("{user1000}.following", 20), 3443},
    {std::string_view("{user1000}.followers", 20), 3443},
    {std::string_view("foo{}{bar}", 10), 8363},
    {std::string_view("foo{{bar}}zap", 13), 4015},
    {std::string_view("foo{bar}{zap}", 13), 5061},
    {std::string_view("{}a", 3), 10875},
    {std::string_view("a{}", 3), 6082},
    {std::string_view("a{", 2), 14311},
    {std::string_view("a}", 2), 5921},
    {std::string_view("a{b", 3), 13340},
    {std::string_view("a}b{c}", 6), 7365},
    {std::string_view("{a", 2), 10276},
    {std::string_view("{a}", 3), 15495},
    {std::string_view("a{a}", 4), 15495},
    {std::string_view("x{a}y", 5), 15495},
    {std::string_view("{ab}", 4), 13567},
    {std::string_view("{abc}def", 8), 7638},
    {std::string_view("}{a}", 4), 15495},
    {std::string_view("{}{a}", 5), 13650},
    {std::string_view("{{}}", 4), 4092},
    {std::string_view("{a}{", 4), 15495},
    {std::string_view("{{", 2), 7007},
    {std::string_view("}}", 2), 4415},
    {std::string_view("\x00", 1), 0},
    {std::string_view("\x00\x01\x02", 3), 4979},
    {std::string_view("\xff\xfe", 2), 3374},
    {std::string_view("{\x00}", 3), 0},
    {std::string_view("k\x0d\x0av", 4), 13318},
    {std::string_view("space key", 9), 4398},
    {std::string_view("\xc3\xbcn\xc3\xaf"
                      "c\xc3\xb8"
                      "d\xc3\xa9",
                      11),
     1067},
    {std::string_view("emoji \xf0\x9f\x98\x80", 10), 12190},
    {std::string_view("0", 1), 13907},
    {std::string_view("16384", 5), 3025},
    {std::string_view("slot:{tag}:1", 12), 8338},
    {std::string_view("{tag}", 5), 8338},
    {std::string_view("tag", 3), 8338},
};

TEST_CASE("keySlot matches CLUSTER KEYSLOT of redis-server 7.0.15") {
  for (const auto& entry : kRedisKeySlots) {
    const std::string_view key = entry.first;  // (clang 14 cannot capture a structured binding)
    CAPTURE(key);
    CHECK(keySlot(key) == entry.second);
  }
  // CLUSTER KEYSLOT of 1000 'x' (no tag), from the same server.
  CHECK(keySlot(std::string(1000, 'x')) == 3195);
}

TEST_CASE("hash tags: only the bytes between the first '{' and the next '}' count") {
  CHECK(keySlot("{user1000}.following") == keySlot("user1000"));
  CHECK(keySlot("a{b}{c}") == keySlot("b"));
  CHECK(keySlot("{{a}}") == keySlot("{a"));  // the tag ends at the first '}' after the '{'
  CHECK(keySlot("}{a}") == keySlot("a"));    // a '}' before the first '{' does not matter
  CHECK(keySlot("{}a") != keySlot("a"));     // empty tag: the whole key is hashed
  CHECK(keySlot("{}{a}") != keySlot("a"));   // ... and the search does not go on
  for (const auto& [key, slot] : kRedisKeySlots) CHECK(keySlot(key) < kSlots);
}

TEST_CASE("keySlot allocates nothing") {
  const std::string long_key(4096, 'k');
  const uint64_t before = g_allocations.load();
  uint32_t sum = 0;
  for (int i = 0; i < 100; ++i) sum += keySlot(long_key) + keySlot("{tag}rest");
  CHECK(g_allocations.load() == before);
  CHECK(sum > 0);
}

}  // namespace
}  // namespace corral::cluster
