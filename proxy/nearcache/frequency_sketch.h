// How often a key was asked for lately, approximately, in a few bytes per cached entry: the
// admission filter of the near cache's TinyLFU policy (near_store.h).
//
//   record(hash) --> doorkeeper (a Bloom filter): first sighting? set its bits, stop here
//                      \--> count-min sketch: 4 rows of 4-bit counters, the smallest raised
//   estimate(hash) = min over the 4 rows + 1 if the doorkeeper holds the key
//   every sample_size records: every counter halved, the doorkeeper cleared (aging)
//
// The doorkeeper keeps the one-hit wonders, most keys of a long-tailed workload, out of the
// counters, so the counters can be few and small. Halving makes the counts a moving window: a key
// that was hot an hour ago does not keep out a key that is hot now. Single-threaded; no
// allocation after construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace corral::nearcache {

class FrequencySketch {
 public:
  // Sized for about `expected_entries` distinct cached keys (at least 64, rounded up to a power
  // of two): 4 x that many 4-bit counters and 64 doorkeeper bits per entry (10 bytes per entry in
  // all); counts age after 10 x that many records.
  explicit FrequencySketch(size_t expected_entries);

  // One access to the key whose 64-bit hash is `hash`.
  void record(uint64_t hash);
  // Accesses of that key within the current window, 0..16 (15 in the counters, 1 in the
  // doorkeeper); may overcount (hash collisions), never undercounts within the window.
  uint32_t estimate(uint64_t hash) const;

  // Records since the last halving, and the halvings so far (tests and the benchmark read them).
  size_t additions() const { return additions_; }
  size_t resets() const { return resets_; }
  size_t sampleSize() const { return sample_size_; }

 private:
  static constexpr int kRows = 4;

  size_t counterIndex(uint64_t hash, int row) const;
  uint32_t counter(size_t index) const;
  bool doorkeeperHas(uint64_t hash) const;
  void doorkeeperAdd(uint64_t hash);
  void age();

  std::vector<uint64_t> counters_;  // 16 counters of 4 bits per word, kRows rows one after another
  size_t row_mask_ = 0;             // counters per row - 1 (a power of two)
  std::vector<uint64_t> doorkeeper_;
  size_t door_mask_ = 0;  // doorkeeper bits - 1
  size_t sample_size_ = 0;
  size_t additions_ = 0;
  size_t resets_ = 0;
};

}  // namespace corral::nearcache
