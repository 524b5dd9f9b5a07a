// Zipf(theta) popularity over n items for the benchmarks (nearcache_hitratio, zipf_get): rank 0
// is the most popular, rank i is drawn with probability proportional to 1 / (i + 1)^theta.
//
//   ZipfRanks z(100000, 0.99);  z.rank(u) for u uniform in [0, 1)  -->  a rank in [0, n)
//
// Sampling inverts the cumulative distribution by binary search (about 17 steps for 100,000
// items): cheap enough for traces drawn before the timed part of a benchmark, which is how both
// users draw them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace corral::bench {

class ZipfRanks {
 public:
  ZipfRanks(size_t n, double theta) : cdf_(n) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) {
      sum += 1.0 / std::pow(static_cast<double>(i + 1), theta);
      cdf_[i] = sum;
    }
    for (double& c : cdf_) c /= sum;
  }

  // The rank whose cumulative probability first reaches u; u in [0, 1).
  size_t rank(double u) const {
    const auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
    return std::min<size_t>(static_cast<size_t>(it - cdf_.begin()), cdf_.size() - 1);
  }

  // The share of draws that land on the `top` most popular ranks (1 for top >= n).
  double share(size_t top) const { return top == 0 ? 0.0 : cdf_[std::min(top, cdf_.size()) - 1]; }

  size_t size() const { return cdf_.size(); }

 private:
  std::vector<double> cdf_;  // normalised: cdf_.back() == 1
};

}  // namespace corral::bench
