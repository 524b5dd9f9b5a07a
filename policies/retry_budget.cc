// The retry budget's sliding window (see retry_budget.h).
#include "policies/retry_budget.h"

namespace corral::policies {

namespace {

constexpr int64_t kNsPerSecond = 1'000'000'000;

}  // namespace

RetryBudget::Slot& RetryBudget::slot(int64_t second) {
  Slot& s = slots_[static_cast<size_t>(second % kWindowSeconds)];
  if (s.second != second) s = Slot{second, 0, 0};
  return s;
}

void RetryBudget::recordRequest(int64_t now_ns) {
  const int64_t second = now_ns / kNsPerSecond;
  std::lock_guard<std::mutex> lock(mu_);
  ++slot(second).requests;
}

bool RetryBudget::tryRetry(const config::OriginRetrySpec& spec, int64_t now_ns) {
  const int64_t second = now_ns / kNsPerSecond;
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t requests = 0;
  uint64_t retries = 0;
  for (const Slot& s : slots_) {
    if (s.second > second - kWindowSeconds && s.second <= second) {
      requests += s.requests;
      retries += s.retries;
    }
  }
  const double allowed =
      spec.budget * static_cast<double>(requests) +
      static_cast<double>(spec.min_per_second) * static_cast<double>(kWindowSeconds);
  if (static_cast<double>(retries + 1) > allowed) {
    exhausted_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  ++slot(second).retries;
  return true;
}

}  // namespace corral::policies
