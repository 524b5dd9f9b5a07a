#include "proxy/loop/timer.h"

namespace corral::loop {

struct LoopTimer::Pending {
  LoopTimer* owner;
  uint64_t id;
  event* ev;
  std::function<void()> cb;
};

LoopTimer::~LoopTimer() {
  for (auto& [id, p] : pending_) {
    event_free(p->ev);
    delete p;
  }
}

uint64_t LoopTimer::after(int64_t delay_ms, std::function<void()> cb) {
  auto* p = new Pending{this, next_id_++, nullptr, std::move(cb)};
  p->ev = evtimer_new(base_, &LoopTimer::onFire, p);
  const int64_t ms = delay_ms < 0 ? 0 : delay_ms;
  timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  evtimer_add(p->ev, &tv);
  pending_.emplace(p->id, p);
  return p->id;
}

void LoopTimer::cancel(uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  event_free(it->second->ev);
  delete it->second;
  pending_.erase(it);
}

void LoopTimer::onFire(evutil_socket_t, short, void* arg) {
  auto* p = static_cast<Pending*>(arg);
  p->owner->pending_.erase(p->id);
  std::function<void()> cb = std::move(p->cb);
  event_free(p->ev);
  delete p;
  cb();  // may schedule or cancel other timers: this one is gone already
}

}  // namespace corral::loop
