// Worker's private helper types, shared by its files (worker.cc, worker_route.cc).
#pragma once

#include <memory>
#include <string_view>

#include "proxy/net/worker.h"

namespace corral::net {

// A SCRIPT KILL-like request on a connection of its own, closed once answered.
struct Worker::BusyCall final : upstream::ReplySink {
  upstream::ReplySink* sink = nullptr;
  uint64_t seq = 0;
  std::unique_ptr<upstream::Connection> conn;
  bool done = false;
  void onUpstreamReply(uint64_t, std::string_view reply) override {
    if (done) return;
    done = true;
    sink->onUpstreamReply(seq, reply);
  }
};

// COMMAND on this worker's first primary connection, once it is ready; the reply goes to the
// process-wide learning state. Owned by the worker, so it outlives the connection it waits on
// (pools_ are cleared first in ~Worker, failing what is in flight into onUpstreamReply).
struct Worker::CommandAsk final : upstream::ReplySink {
  explicit CommandAsk(Worker& worker) : w(worker) {}
  Worker& w;
  bool in_flight = false;
  bool settled = false;  // nothing more to ask, on this worker or any other
  void onUpstreamReply(uint64_t, std::string_view reply) override {
    in_flight = false;
    const size_t learnt = w.shared_.commands.onReply(reply, w.cfg_.upstream.primary.text);
    if (learnt > 0) w.stats_->commands_learnt.set(learnt);
  }
};

}  // namespace corral::net
