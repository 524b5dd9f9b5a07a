// policies::Timer over libevent evtimers of one event_base (one per worker loop).
//
//   after(ms, cb) --evtimer--> loop turn --> cb()   (cancel(id) drops it before it fires)
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <unordered_map>

#include "policies/fill.h"

namespace corral::loop {

class LoopTimer final : public policies::Timer {
 public:
  explicit LoopTimer(event_base* base) : base_(base) {}
  ~LoopTimer() override;  // pending callbacks are dropped, never run
  LoopTimer(const LoopTimer&) = delete;
  LoopTimer& operator=(const LoopTimer&) = delete;

  uint64_t after(int64_t delay_ms, std::function<void()> cb) override;
  void cancel(uint64_t id) override;
  size_t pending() const { return pending_.size(); }

 private:
  struct Pending;
  static void onFire(evutil_socket_t, short, void* arg);
  event_base* base_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Pending*> pending_;
};

}  // namespace corral::loop
