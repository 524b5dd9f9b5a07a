// The TinyLFU sketch: exact counts while there are no collisions, saturation, never an
// undercount within a window, and aging.
#include "proxy/nearcache/frequency_sketch.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace corral::nearcache {
namespace {

uint64_t h(const std::string& s) { return std::hash<std::string_view>{}(s); }

TEST_CASE("sketch: the first sighting goes to the doorkeeper, the next ones to the counters") {
  FrequencySketch sk(1024);
  const uint64_t a = h("a");
  CHECK(sk.estimate(a) == 0);
  sk.record(a);
  CHECK(sk.estimate(a) == 1);
  for (int i = 2; i <= 9; ++i) {
    sk.record(a);
    CHECK(sk.estimate(a) == static_cast<uint32_t>(i));
  }
  CHECK(sk.estimate(h("b")) == 0);
  CHECK(sk.additions() == 9);
}

TEST_CASE("sketch: counts saturate at 15 in the counters plus 1 in the doorkeeper") {
  FrequencySketch sk(1024);
  for (int i = 0; i < 100; ++i) sk.record(h("hot"));
  CHECK(sk.estimate(h("hot")) == 16);
}

TEST_CASE("sketch: never undercounts within a window; overcounts are rare") {
  FrequencySketch sk(1024);
  std::mt19937 rng(7);
  std::vector<int> truth(600);
  std::vector<uint64_t> hashes;
  for (size_t k = 0; k < truth.size(); ++k) hashes.push_back(h("key:" + std::to_string(k)));
  // 600 keys, 1..12 accesses each, interleaved: ~3,900 records, under the 10,240 sample.
  std::vector<size_t> order;
  for (size_t k = 0; k < truth.size(); ++k) {
    truth[k] = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < truth[k]; ++i) order.push_back(k);
  }
  std::shuffle(order.begin(), order.end(), rng);
  for (size_t k : order) sk.record(hashes[k]);
  REQUIRE(sk.resets() == 0);
  int over = 0;
  for (size_t k = 0; k < truth.size(); ++k) {
    const auto est = sk.estimate(hashes[k]);
    CHECK(est >= static_cast<uint32_t>(truth[k]));
    if (est != static_cast<uint32_t>(truth[k])) ++over;
  }
  CHECK(over < 30);  // under 5%
}

TEST_CASE("sketch: after sample_size records every count is halved and the doorkeeper cleared") {
  FrequencySketch sk(1024);
  REQUIRE(sk.sampleSize() == 10240);
  for (int i = 0; i < 10; ++i) sk.record(h("a"));  // 1 in the doorkeeper, 9 in the counters
  REQUIRE(sk.estimate(h("a")) == 10);
  size_t n = 0;
  while (sk.resets() == 0 && n < 20000) sk.record(h("other:" + std::to_string(n++)));
  CHECK(n == 10240 - 10);
  CHECK(sk.estimate(h("a")) == 4);  // 9 / 2, and the doorkeeper bit is gone
  // The window restarts half full: the next halving comes after half a sample.
  CHECK(sk.additions() == 10240 / 2);
}

}  // namespace
}  // namespace corral::nearcache
