// The process-wide learning state (command_learn.h). Nothing here runs per request: once per
// process, on one worker.
#include "proxy/net/command_learn.h"

#include <string>
#include <string_view>

#include "commands/command_table.h"
#include "proxy/codec/resp.h"
#include "proxy/net/command_reply.h"
#include "proxy/net/log.h"

namespace corral::net {

CommandLearning::~CommandLearning() {
  if (overlay_ != nullptr && commands::currentOverlay() == overlay_.get()) {
    commands::setOverlay(nullptr);
  }
}

bool CommandLearning::claim() {
  uint8_t idle = kIdle;
  return state_.compare_exchange_strong(idle, kAsking, std::memory_order_acq_rel);
}

size_t CommandLearning::onReply(std::string_view reply, std::string_view addr) {
  codec::FrameReader rd(reply);
  std::string_view err;
  if (rd.error(&err)) {
    if (err.starts_with("ERR corral: upstream")) {
      // The connection failed under the request: the next ready connection asks again.
      log()->debug("upstream COMMAND failed, will ask again addr={} err={}", addr, err);
      state_.store(kIdle, std::memory_order_release);
      return 0;
    }
    // Refused (an ACL without COMMAND, a renamed command) or over limits.max_reply_bytes: asking
    // again would get the same answer.
    log()->warn(
        "upstream COMMAND refused addr={} err={}: commands newer than Redis {} stay unknown "
        "(global.unknown_commands decides)",
        addr, err.substr(0, 200), commands::kRedisVersion);
    state_.store(kSettled, std::memory_order_release);
    return 0;
  }
  ParsedCommands parsed;
  if (!parseCommandReply(reply, &parsed)) {
    log()->warn(
        "upstream COMMAND reply unusable addr={} bytes={}: commands newer than Redis {} "
        "stay unknown (global.unknown_commands decides)",
        addr, reply.size(), commands::kRedisVersion);
    state_.store(kSettled, std::memory_order_release);
    return 0;
  }
  commands::Overlay::Report report;
  overlay_ = commands::Overlay::build(parsed.commands, &report);
  commands::setOverlay(overlay_.get());
  state_.store(kSettled, std::memory_order_release);
  log()->info(
      "upstream commands learnt addr={} reported={} learnt={} not_learnt={} malformed={} "
      "truncated={}",
      addr, parsed.commands.size(), report.learnt, report.skipped.size(), parsed.malformed,
      parsed.truncated);
  if (!report.skipped.empty()) {
    // The server's own names and reasons; a handful is enough to tell an operator why.
    std::string first;
    for (size_t i = 0; i < report.skipped.size() && i < 10; ++i) {
      if (!first.empty()) first += "; ";
      first += report.skipped[i];
    }
    log()->info("upstream commands not learnt (unknown to corral) addr={} count={} first=[{}]",
                addr, report.skipped.size(), first);
  }
  return report.learnt;
}

}  // namespace corral::net
