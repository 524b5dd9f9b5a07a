// Client: the dedicated connection. It is a pipe (upstream::Connection::setPipe): every frame
// Redis sends on it arrives here in order, and the session pairs replies with its slots:
//
//   frame ──> a push (RESP3 '>'), a pub/sub message while subscribed, a MONITOR line?
//                 yes: straight to the client        no: the head slot's reply
//   (un)subscribe confirmations are replies of the (un)subscribe slot (one per channel) and
//   keep the subscription counts; the last one that leaves none ends the subscribed link.
//
// Requests on it carry a deadline (command_timeout, a blocking command's block time plus a
// margin, or none); one that passes it, or the connection's end, is a loss (session.h).
#include <algorithm>
#include <cctype>

#include "commands/command_table.h"
#include "proxy/net/client.h"
#include "proxy/net/log.h"
#include "proxy/net/worker.h"

namespace corral::net {
namespace {

bool isConfirmation(std::string_view k) {
  return k == "subscribe" || k == "psubscribe" || k == "ssubscribe" || k == "unsubscribe" ||
         k == "punsubscribe" || k == "sunsubscribe";
}

bool isMessage(std::string_view k) { return k == "message" || k == "pmessage" || k == "smessage"; }

}  // namespace

int64_t Client::blockingTimeout(const commands::CommandInfo* cmd, const codec::Request& req) const {
  const int64_t block = blockMs(cmd->name, req.args);
  if (block < 0) return -1;  // blocks for ever: no deadline
  if (block == 0) return 0;  // malformed: Redis answers at once
  // Redis times blocked clients out from its cron (hz 10 by default), so the reply can trail
  // the block time by 100 ms or more: allow at least a second on top.
  return block + std::max<int64_t>(worker_.upstreamConfig().command_timeout.count(), 1000);
}

void Client::sendDedicatedRaw(std::string_view bytes, uint8_t flags, Rewrite rewrite, int64_t arg,
                              int64_t timeout_ms, uint32_t frames) {
  if (dedicated_ == nullptr || !dedicated_->accepting()) {
    // Only possible in the instant between a loss and its event: answer like the loss would.
    worker_.stats().upstream_errors.add();
    replyLocal(dedicated_ != nullptr ? std::string_view(dedicated_->unavailableError())
                                     : std::string_view("-ERR corral: upstream unavailable\r\n"));
    return;
  }
  Slot s;
  s.start_us = worker_.loop_.now_us;
  const int64_t own =
      timeout_ms == 0 ? worker_.upstreamConfig().command_timeout.count() : timeout_ms;
  s.deadline_ms = own < 0 ? -1 : worker_.nowMs() + own;
  s.arg = arg;
  s.frames = frames;
  s.cmd = (flags & kHidden) ? kNoCommand : cur_cmd_;
  s.rewrite = rewrite;
  s.flags = flags;
  pending_.push_back(std::move(s));
  ++next_seq_;
  worker_.stats().forwarded.add();
  worker_.stats().pending.add();
  pending_bytes_ += bytes.size();
  if (worker_.cluster() != nullptr && dedicated_slot_ < 0 && inMulti() && !(flags & kHidden))
      [[unlikely]] {
    extras().tx_prefix.append(bytes);  // replayed if the transaction moves (client_cluster.cc)
  }
  dedicated_->enqueueRaw(bytes);
}

void Client::onDedicatedFrame(std::string_view frame) {
  if (frame.empty()) return;
  const char t = frame[0];
  codec::PubsubFrame pf;
  codec::readPubsubFrame(frame, &pf);
  const std::string_view kind = pf.has_kind ? pf.kind : std::string_view();
  const int64_t count = pf.has_count ? pf.count : -1;
  const bool confirmation = isConfirmation(kind);
  const bool head_subscribing =
      !pending_.empty() &&
      (pending_.front().flags & (kSubscribing | kOnDedicated)) == (kSubscribing | kOnDedicated);
  bool reply = true;
  if (confirmation && head_subscribing) {
    reply = true;
  } else if (t == '>') {
    reply = false;  // RESP3 push: messages, invalidations, unsolicited confirmations
  } else if (t == '*' && subscribedUpstream() && (isMessage(kind) || confirmation)) {
    reply = false;  // RESP2 pub/sub traffic (and the extra frames of a SUBSCRIBE run by EXEC)
  } else if (monitoring_ && t == '+' && frame.size() > 1 &&
             std::isdigit(static_cast<unsigned char>(frame[1]))) {
    reply = false;  // a MONITOR line: "+<timestamp> [db addr] ..."
  }
  if (confirmation) {
    if (reply && (pending_.front().flags & kFramesUnknown)) {
      // UNSUBSCRIBE with no channel: one confirmation per channel Redis had, or one.
      const uint32_t had = kind == "unsubscribe"    ? channels_
                           : kind == "punsubscribe" ? patterns_
                                                    : shard_channels_;
      pending_.front().frames = std::max<uint32_t>(had, 1);
      pending_.front().flags &= static_cast<uint8_t>(~kFramesUnknown);
    }
    noteConfirmation(kind, count);
  }
  if (!reply) {
    deliver(frame);
    overSubscriberLimits();
    return;
  }
  if (pending_.empty() || !(pending_.front().flags & kOnDedicated)) {
    // Redis sends nothing unasked on a connection in this state; pass it on, not lose it.
    log()->debug("unpaired frame on a dedicated connection client={} type={}", id_, t);
    deliver(frame);
    return;
  }
  answerDedicatedHead(frame);
  if (st_.link == Link::kSubscribed && !subscribedUpstream()) {
    bool more = false;  // an (un)subscribe still on its way decides instead
    for (size_t i = 0; i < pending_.size() && !more; ++i) {
      more = (pending_[i].flags & kSubscribing) != 0;
    }
    if (!more) sessionEvent(Event::kSubscriptionsEnded);
  }
}

void Client::answerDedicatedHead(std::string_view frame) {
  Slot& h = pending_.front();
  const bool error = frame[0] == '-' || frame[0] == '!';
  Stats::Worker& st = worker_.stats();
  if (h.cmd != kNoCommand && error) st.per_command_errors[h.cmd].add();
  if (h.flags & kHidden) {
    if (error) {
      if (h.rewrite == Rewrite::kProtocol) {
        // Redis refused the protocol the client was promised: it cannot be spoken.
        log()->warn("upstream refused HELLO client={} err={}", id_,
                    frame.substr(0, frame.find('\r')));
        onDedicatedLost("refused the client's protocol (HELLO)");
        return;
      }
      if (h.rewrite == Rewrite::kReauth) {
        // The user the client logged in as (from a cached verdict) is refused now: nothing more
        // may run on this connection as the previous user.
        log()->info(
            "upstream refused the client's credentials on its dedicated connection "
            "client={}",
            id_);
        onDedicatedLost("refused the client's credentials (AUTH)");
        return;
      }
      worker_.policies().followupSink()->onUpstreamReply(0, frame);
    }
  } else if (h.rewrite != Rewrite::kNone) {
    const std::string rewritten = rewriteReply(h, frame);
    if (!(h.flags & kSilent)) deliver(rewritten);
  } else if (!(h.flags & kSilent)) {
    deliver(frame);
  }
  if ((h.flags & kMonitorOk) && frame.starts_with("+OK")) monitoring_ = true;
  if (error || h.frames <= 1) {
    if (h.cmd != kNoCommand && h.start_us != kUntimed) {
      st.observeLatency(worker_.loop_.now_us - h.start_us);
    }
    st.pending.sub();
    pending_.pop_front();
    ++head_seq_;
    popAnswered();
  } else {
    --h.frames;
  }
}

void Client::noteConfirmation(std::string_view kind, int64_t count) {
  if (count < 0) return;
  const auto n = static_cast<uint32_t>(std::min<int64_t>(count, UINT32_MAX));
  const uint32_t total = channels_ + patterns_;  // Redis counts channels and patterns together
  if (kind == "subscribe") {
    if (n > total) ++channels_;
  } else if (kind == "psubscribe") {
    if (n > total) ++patterns_;
  } else if (kind == "unsubscribe") {
    if (n < total && channels_ > 0) --channels_;
  } else if (kind == "punsubscribe") {
    if (n < total && patterns_ > 0) --patterns_;
  } else {
    shard_channels_ = n;  // ssubscribe / sunsubscribe count shard channels alone
  }
}

void Client::onDedicatedLost(std::string_view why) {
  if (dedicated_ == nullptr) return;
  const std::string error = upstream::upstreamError(dedicated_->addrText(), why);
  log()->info("dedicated upstream connection lost client={} peer={} reason={} state={}/{}", id_,
              peer_, why, linkName(st_.link), txName(st_.tx));
  // Releases it and answers what waited on it with the error; closes the client if it held
  // server-side state (session.h).
  sessionEvent(Event::kUpstreamLost, error);
}

void Client::checkDeadline(int64_t now_ms) {
  if (dedicated_ == nullptr || pending_.empty()) return;
  const Slot& h = pending_.front();
  if (!(h.flags & kOnDedicated) || h.deadline_ms < 0 || now_ms < h.deadline_ms) return;
  log()->warn("dedicated upstream request timed out client={} addr={}", id_,
              dedicated_->addrText());
  onDedicatedLost("timeout");
}

bool Client::overSubscriberLimits() {
  // A subscriber that does not read must not grow corral's memory: like Redis's
  // client-output-buffer-limit pubsub, a hard limit, and a soft one with a grace time
  // (checked as frames arrive and as the client's socket drains).
  const config::Limits& l = worker_.limits();
  const size_t queued = out_.readable();
  bool cut = queued > l.pubsub_hard_bytes;
  if (queued > l.pubsub_soft_bytes) {
    Extras& x = extras();
    if (x.soft_since_ms < 0) x.soft_since_ms = worker_.nowMs();
    cut = cut || worker_.nowMs() - x.soft_since_ms >= l.pubsub_soft_time.count();
  } else if (extras_ != nullptr) {
    extras_->soft_since_ms = -1;
  }
  if (!cut) return false;
  worker_.stats().slow_consumers.add();
  log()->warn("slow subscriber disconnected client={} peer={} queued_bytes={}", id_, peer_, queued);
  closeNow("output buffer limit");
  return true;
}

}  // namespace corral::net
