// Learning a newer server's commands: one COMMAND per process, on a worker's shared primary
// connection once it is ready, and the commands the built-in table (Redis 7.0.15) lacks laid
// over it (commands/overlay.h), so that their keys meet the policies like any other command's.
//
//   Worker::onTick --primary ready, claim()--> "COMMAND" on pools_[0][0]
//        --reply--> parseCommandReply --> [CommandDesc] --Overlay::build--> setOverlay
//                                                              (kept for the process's life)
//
// Until the overlay is set (a few ms after the first primary connection is ready), and for good
// when the server refuses COMMAND, commands the built-in table does not know are unknown:
// global.unknown_commands decides what happens to them (docs/policies.md).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "commands/overlay.h"
#include "proxy/net/command_reply.h"

namespace corral::net {

// The process-wide state of learning, held by SharedState. Thread-safe: workers race to
// claim(); exactly one asks at a time, and only one install happens per process.
class CommandLearning {
 public:
  CommandLearning() = default;
  ~CommandLearning();  // takes the overlay off the table before freeing it
  CommandLearning(const CommandLearning&) = delete;
  CommandLearning& operator=(const CommandLearning&) = delete;

  // True for one caller at a time until learning is settled: that caller sends COMMAND and
  // passes the reply to onReply(). False while another worker asks, or once settled.
  bool claim();
  // The reply to the claimed COMMAND (Redis's bytes, or corral's own -ERR corral: ... for an
  // upstream that failed). Installs the overlay, or settles without one (the server refused
  // COMMAND, or the reply was unusable), or gives the claim back for a later try (the upstream
  // was unavailable or timed out). `addr` names the upstream in logs. Returns the number of
  // commands learnt.
  size_t onReply(std::string_view reply, std::string_view addr);
  // Learning is over (an overlay is set, or the server cannot tell): nobody needs to ask.
  bool settled() const { return state_.load(std::memory_order_acquire) == kSettled; }

 private:
  static constexpr uint8_t kIdle = 0;
  static constexpr uint8_t kAsking = 1;
  static constexpr uint8_t kSettled = 2;
  std::atomic<uint8_t> state_{kIdle};
  std::unique_ptr<commands::Overlay> overlay_;  // set once, by the worker that learnt
};

}  // namespace corral::net
