#include "proxy/sentinel/topology.h"

namespace corral::sentinel {

std::shared_ptr<const Topology> TopologyBoard::get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return topology_;
}

Status TopologyBoard::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

void TopologyBoard::addWaker(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(mu_);
  wakers_.push_back(std::move(wake));
}

void TopologyBoard::requestRefresh() const {
  std::function<void()> hook;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hook = refresh_;
  }
  if (hook) hook();
}

void TopologyBoard::publish(Topology t) {
  std::vector<std::function<void()>> wakers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    topology_ = std::make_shared<const Topology>(std::move(t));
    generation_.fetch_add(1, std::memory_order_acq_rel);
    wakers = wakers_;
  }
  for (const auto& w : wakers) w();
}

void TopologyBoard::setStatus(Status s) {
  std::lock_guard<std::mutex> lock(mu_);
  status_ = std::move(s);
}

void TopologyBoard::setRefreshHook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  refresh_ = std::move(hook);
}

}  // namespace corral::sentinel
