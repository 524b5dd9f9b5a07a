// Connection: when things go wrong. fail() closes and fails what is in flight, then backs
// off, reconnects at once, or stays closed; noteFailure() logs without flooding; tick() keeps
// the connect, handshake and command timeouts.
#include <unistd.h>

#include <algorithm>

#include "proxy/upstream/log.h"
#include "proxy/upstream/upstream.h"

namespace corral::upstream {
namespace {}  // namespace

void Connection::fail(std::string_view why, Then then, std::string_view reason) {
  lookup_.cancel();
  if (fd_ >= 0) {
    event_free(rev_);
    event_free(wev_);
    rev_ = wev_ = nullptr;
    tls_.reset();
    read_wants_write_ = false;
    ::close(fd_);
    fd_ = -1;
  }
  state_ = State::kIdle;
  write_armed_ = false;
  handshake_left_ = 0;
  if (on_reset_) on_reset_();  // tracking: no invalidation reaches this worker any more
  const std::string& err = (why == "timeout") ? error_timeout_ : error_unavailable_;
  while (!inflight_.empty()) {
    Inflight e = inflight_.front();
    inflight_.pop_front();
    if (e.sink != nullptr) e.sink->onUpstreamReply(e.seq, err);
  }
  inflight_.release();
  out_.consume(out_.readable());
  out_.release();
  in_.consume(in_.readable());
  in_.release();
  parser_.reset();
  first_unsent_ = 0;
  queued_bytes_ = written_bytes_ = 0;
  if (!reconnect_) {
    // One client's connection: its client is told (kPipeClosed or the error replies above).
    if (!reason.empty()) {
      log()->debug("dedicated upstream connection failed addr={} reason=\"{}\"", addr_.text,
                   reason);
    }
    down_ = true;  // a dedicated connection is never reconnected: its state is gone
    if (ReplySink* sink = pipe_sink_; sink != nullptr) {
      pipe_sink_ = nullptr;
      sink->onUpstreamReply(kPipeClosed, {});
    }
    return;
  }
  if (then == Then::kBackoff) {
    noteFailure(reason.empty() ? std::string_view("unavailable") : reason);
    down_ = true;
    scheduleReconnect();
  } else if (then == Then::kReconnect) {
    // A timeout or a desync says nothing about the server being down: reconnect at once, and
    // let requests queue meanwhile.
    connectNow();
  }
}

void Connection::noteFailure(std::string_view reason) {
  ++failures_;
  const int64_t now = ctx_.now_ms;
  if (!down_ || reason != last_reason_) {
    // A change of state (up to down) or of reason: always worth a line. A refused handshake is
    // the operator's to fix (a wrong password); a server that cannot be reached may come back.
    if (!down_) down_since_ms_ = now;
    if (reason.substr(0, 10) == "handshake ") {
      log()->error("upstream unavailable addr={} reason=\"{}\" failures={}", addr_.text, reason,
                   failures_);
    } else {
      log()->warn("upstream unavailable addr={} reason=\"{}\" failures={}", addr_.text, reason,
                  failures_);
    }
    last_reason_.assign(reason);
    last_failure_log_ms_ = now;
    failures_unlogged_ = 0;
    return;
  }
  ++failures_unlogged_;
  if (now - last_failure_log_ms_ >= kFailureLogEveryMs) {
    log()->warn(
        "upstream still unavailable addr={} reason=\"{}\" failures_since_last_log={} "
        "down_for_ms={}",
        addr_.text, reason, failures_unlogged_, now - down_since_ms_);
    last_failure_log_ms_ = now;
    failures_unlogged_ = 0;
  }
}

void Connection::scheduleReconnect() {
  const int64_t lo = cfg_.reconnect_min.count();
  const int64_t hi = cfg_.reconnect_max.count();
  backoff_ms_ = backoff_ms_ == 0 ? lo : std::min(backoff_ms_ * 2, hi);
  // Jitter in [backoff/2, backoff], never below reconnect_min/2: bounded attempt rate.
  rng_state_ ^= rng_state_ << 13;
  rng_state_ ^= rng_state_ >> 7;
  rng_state_ ^= rng_state_ << 17;
  int64_t half = std::max<int64_t>(backoff_ms_ / 2, 1);
  int64_t delay = half + static_cast<int64_t>(rng_state_ % static_cast<uint64_t>(half + 1));
  delay = std::max(delay, std::max<int64_t>(lo / 2, 1));
  next_attempt_ms_ = ctx_.now_ms + delay;
}

void Connection::tick() {
  const int64_t now = ctx_.now_ms;
  switch (state_) {
    case State::kIdle:
      if (down_ && now >= next_attempt_ms_) connectNow();
      return;
    case State::kConnecting:
      if (now - connect_started_ms_ >= cfg_.connect_timeout.count()) {
        fail("unavailable", Then::kBackoff, "connect timeout");
      }
      return;
    case State::kHandshake:
      // A TLS peer that never finishes its handshake is a connect failure (backoff), not a
      // command timeout (which reconnects at once).
      if (tls_ != nullptr && !tls_->handshakeDone() &&
          now - connect_started_ms_ >= cfg_.connect_timeout.count()) {
        fail("unavailable", Then::kBackoff, "TLS: handshake timeout");
        return;
      }
      break;
    case State::kReady:
      break;
  }
  if (inflight_.empty()) return;
  const int64_t limit = cfg_.command_timeout.count();
  const Inflight& oldest = inflight_.front();
  const int64_t own = oldest.timeout_ms == 0 ? limit : oldest.timeout_ms;
  const bool reply_late = own > 0 && oldest.sent_ms >= 0 && now - oldest.sent_ms >= own;
  // A request stuck in our out buffer (Redis not reading) has no send time; no write progress
  // for a whole timeout counts the same. Bytes queued in this loop turn (dirty_: their flush is
  // still to come) are not stuck, however long the connection was idle before them.
  const bool write_stuck = !out_.empty() && !dirty_ && now - last_progress_ms_ >= limit;
  if (reply_late || write_stuck) {
    log()->warn("upstream command timeout addr={} inflight={} timeout_ms={}", addr_.text,
                inflight_.size(), limit);
    fail("timeout", Then::kReconnect);
  }
}

void Connection::shutdown() {
  fail("unavailable", Then::kStay);
  down_ = true;  // nothing may be enqueued any more
}

}  // namespace corral::upstream
