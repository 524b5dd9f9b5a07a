// The TinyLFU frequency sketch: a doorkeeper Bloom filter in front of a count-min sketch of 4-bit
// counters, halved every sample (frequency_sketch.h has the picture).
#include "proxy/nearcache/frequency_sketch.h"

#include <algorithm>
#include <bit>

namespace corral::nearcache {
namespace {

// splitmix64's finaliser: the caller's hash is std::hash, whose low bits are good but which we
// index four times; remixing with a different seed per row makes the rows independent enough.
uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

constexpr uint64_t kRowSeeds[4] = {0x9e3779b97f4a7c15ULL, 0xc2b2ae3d27d4eb4fULL,
                                   0x165667b19e3779f9ULL, 0xd6e8feb86659fd93ULL};
constexpr uint64_t kDoorSeed = 0x27d4eb2f165667c5ULL;
// Halving every counter of a word at once: shift right, then clear the bit each counter got from
// its neighbour above.
constexpr uint64_t kHalfMask = 0x7777777777777777ULL;

}  // namespace

FrequencySketch::FrequencySketch(size_t expected_entries) {
  const size_t n = std::bit_ceil(std::max<size_t>(expected_entries, 64));
  counters_.assign(kRows * n / 16, 0);
  row_mask_ = n - 1;
  // The doorkeeper sees every distinct key of a window, up to 10 per entry: at 64 bits per entry
  // and 3 probes, even that worst case gives about 5% false positives.
  doorkeeper_.assign(n, 0);
  door_mask_ = n * 64 - 1;
  // Ten samples per entry is the window the TinyLFU paper (Einziger, Friedman, Manes) measures
  // with; with 4-bit counters a key seen more than 15 times in a window is simply "hot".
  sample_size_ = 10 * n;
}

size_t FrequencySketch::counterIndex(uint64_t hash, int row) const {
  return static_cast<size_t>(row) * (row_mask_ + 1) + (mix(hash + kRowSeeds[row]) & row_mask_);
}

uint32_t FrequencySketch::counter(size_t index) const {
  return static_cast<uint32_t>((counters_[index >> 4] >> ((index & 15) * 4)) & 0xF);
}

bool FrequencySketch::doorkeeperHas(uint64_t hash) const {
  // Three probes by double hashing (Kirsch and Mitzenmacher): a + i*b from one 64-bit mix.
  const uint64_t h = mix(hash ^ kDoorSeed);
  const uint64_t a = h & 0xffffffffULL, b = (h >> 32) | 1;
  for (uint64_t i = 0; i < 3; ++i) {
    const size_t bit = (a + i * b) & door_mask_;
    if ((doorkeeper_[bit >> 6] & (uint64_t{1} << (bit & 63))) == 0) return false;
  }
  return true;
}

void FrequencySketch::doorkeeperAdd(uint64_t hash) {
  const uint64_t h = mix(hash ^ kDoorSeed);
  const uint64_t a = h & 0xffffffffULL, b = (h >> 32) | 1;
  for (uint64_t i = 0; i < 3; ++i) {
    const size_t bit = (a + i * b) & door_mask_;
    doorkeeper_[bit >> 6] |= uint64_t{1} << (bit & 63);
  }
}

void FrequencySketch::record(uint64_t hash) {
  if (!doorkeeperHas(hash)) {
    doorkeeperAdd(hash);
  } else {
    // Conservative update: raise only the counters that equal the minimum. The others already
    // overcount (collisions); raising them too only adds error.
    size_t idx[kRows];
    uint32_t low = 15;
    for (int r = 0; r < kRows; ++r) {
      idx[r] = counterIndex(hash, r);
      low = std::min(low, counter(idx[r]));
    }
    if (low < 15) {
      for (int r = 0; r < kRows; ++r) {
        if (counter(idx[r]) == low) counters_[idx[r] >> 4] += uint64_t{1} << ((idx[r] & 15) * 4);
      }
    }
  }
  if (++additions_ >= sample_size_) age();
}

uint32_t FrequencySketch::estimate(uint64_t hash) const {
  uint32_t low = 15;
  for (int r = 0; r < kRows; ++r) low = std::min(low, counter(counterIndex(hash, r)));
  return low + (doorkeeperHas(hash) ? 1 : 0);
}

void FrequencySketch::age() {
  for (uint64_t& w : counters_) w = (w >> 1) & kHalfMask;
  std::fill(doorkeeper_.begin(), doorkeeper_.end(), 0);
  // What survives the halving is half the window's weight, so the next window starts half full.
  additions_ /= 2;
  ++resets_;
}

}  // namespace corral::nearcache
