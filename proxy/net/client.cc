// Client: the socket, framing, reply ordering and flushing (see client.h for the picture).
#include "proxy/net/client.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "commands/command_table.h"
#include "proxy/loop/clock.h"
#include "proxy/net/log.h"
#include "proxy/net/worker.h"

namespace corral::net {
namespace {

// An idle client's output buffer up to this size is kept between bursts.
constexpr size_t kKeepOutputBytes = 16 * 1024;

}  // namespace

Client::Client(Worker& worker, int fd, uint64_t id, std::string peer)
    : worker_(worker),
      fd_(fd),
      id_(id),
      peer_(std::move(peer)),
      parser_(codec::Limits{.max_args = worker.limits().max_args,
                            .max_bulk_bytes = worker.limits().max_bulk_bytes,
                            .max_request_bytes = worker.limits().max_request_bytes,
                            .max_inline_bytes = worker.limits().max_inline_bytes,
                            .max_depth = worker.limits().max_reply_depth}),
      primary_slot_(static_cast<uint32_t>(id)),
      db_(worker.defaultDb()) {
  // "1.2.3.4:5678" or "[::1]:5678" -> the address alone (rate limits key clients by it).
  if (!peer_.empty() && peer_[0] == '[') {
    peer_ip_ = peer_.substr(1, peer_.find(']') - 1);
  } else {
    peer_ip_ = peer_.substr(0, peer_.rfind(':'));
  }
}

Client::~Client() {
  if (rev_ != nullptr) event_free(rev_);
  if (wev_ != nullptr) event_free(wev_);
  if (fd_ >= 0) ::close(fd_);
}

void Client::start() {
  rev_ = event_new(worker_.loop_.base, fd_, EV_READ | EV_PERSIST, &Client::onEvent, this);
  wev_ = event_new(worker_.loop_.base, fd_, EV_WRITE | EV_PERSIST, &Client::onEvent, this);
  setReadEnabled(true);
}

void Client::onEvent(evutil_socket_t, short what, void* arg) {
  auto* self = static_cast<Client*>(arg);
  if (what & EV_WRITE) {
    self->flush();
    if (!self->closed()) self->maybeResume();
  } else if (what & EV_READ) {
    self->worker_.loop_.now_us = loop::monotonicUs();  // requests' latency starts here
    self->onReadable();
  }
}

void Client::setReadEnabled(bool on) {
  if (on == read_enabled_ || rev_ == nullptr) return;
  read_enabled_ = on;
  if (on) {
    event_add(rev_, nullptr);
  } else {
    event_del(rev_);
  }
}

void Client::setWriteEnabled(bool on) {
  if (on == write_enabled_ || wev_ == nullptr) return;
  write_enabled_ = on;
  if (on) {
    event_add(wev_, nullptr);
  } else {
    event_del(wev_);
  }
}

void Client::onReadable() {
  for (int i = 0; i < 4; ++i) {
    if (closed() || paused_ || close_after_flush_ || draining_) return;
    const bool use_scratch = in_.empty();
    char* buf;
    size_t cap;
    if (use_scratch) {
      buf = worker_.readScratch();
      cap = Worker::kReadScratch;
    } else {
      in_.reserve(16 * 1024);
      buf = in_.writePtr();
      cap = in_.writable();
    }
    ssize_t n = ::recv(fd_, buf, cap, 0);
    if (n == 0) {
      closeNow("eof");
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) closeNow(std::strerror(errno));
      return;
    }
    const auto got = static_cast<size_t>(n);
    if (use_scratch) {
      size_t used = process(buf, got);
      // Keep what is left (a partial frame, or input held back by backpressure).
      if (!closed() && !close_after_flush_ && used < got) in_.append(buf + used, got - used);
    } else {
      in_.commit(got);
      size_t used = process(in_.readPtr(), in_.readable());
      if (closed()) return;
      in_.consume(close_after_flush_ ? in_.readable() : used);
    }
    if (in_.empty()) in_.release();
    if (got < cap) return;  // the socket is drained
  }
}

bool Client::overLimits() const {
  const config::Limits& l = worker_.limits();
  return pending_.size() >= l.max_pending || out_.readable() >= l.max_output_bytes;
}

void Client::pauseReading() {
  if (paused_) return;
  paused_ = true;
  setReadEnabled(false);
  worker_.stats().backpressure_pauses.add();
}

void Client::maybeResume() {
  if (!paused_ || closed() || close_after_flush_ || draining_) return;
  if (waiting_idle_) {
    if (inflight_refs_ > 0) return;
    waiting_idle_ = false;
  }
  const config::Limits& l = worker_.limits();
  if (pending_.size() > l.max_pending / 2 || out_.readable() > l.max_output_bytes / 2) return;
  paused_ = false;
  setReadEnabled(true);
  if (!in_.empty()) {
    size_t used = process(in_.readPtr(), in_.readable());
    if (closed()) return;
    in_.consume(close_after_flush_ ? in_.readable() : used);
    if (in_.empty()) in_.release();
  }
}

size_t Client::process(const char* data, size_t len) {
  size_t pos = 0;
  while (pos < len && !close_after_flush_) {
    if (overLimits()) {
      pauseReading();
      break;
    }
    codec::ParseResult r = parser_.parse(data + pos, len - pos, req_);
    pos += r.consumed;
    switch (r.status) {
      case codec::ParseStatus::kIncomplete:
        return pos;
      case codec::ParseStatus::kComplete:
        if (!req_.args.empty() && !handleRequest(req_)) {
          // It must wait for this client's replies in flight; parse it again then.
          pos -= r.consumed;
          waiting_idle_ = true;
          pauseReading();
          return pos;
        }
        break;
      case codec::ParseStatus::kOversize:
        worker_.stats().oversize_requests.add();
        log()->debug("request too large client={} peer={}", id_, peer_);
        replyError(codec::errorText(r.error));
        break;
      case codec::ParseStatus::kDiscarded:
        break;
      case codec::ParseStatus::kError:
        // Framing is lost: answer like Redis does, then close once the reply is out.
        worker_.stats().protocol_errors.add();
        log()->debug("protocol error client={} peer={} err={}", id_, peer_,
                     codec::errorText(r.error));
        replyError(codec::errorText(r.error));
        close_after_flush_ = true;
        setReadEnabled(false);
        return len;
    }
  }
  return pos;
}

bool Client::handleRequest(const codec::Request& request) {
  const bool done = dispatch(request);
  // A request that must wait is parsed and decided again later: that second decision must not
  // count or take rate-limit tokens twice. Nothing armed for this request outlives it.
  policy_replay_ = !done;
  next_hitmiss_ = nullptr;
  next_fill_.reset();
  hidden_.clear();
  policy_route_ = kRouteDefault;
  cur_cmd_ = kNoCommand;
  return done;
}

void Client::replyError(std::string_view msg) {
  if (cur_cmd_ != kNoCommand) worker_.stats().per_command_errors[cur_cmd_].add();
  std::string s;
  s.reserve(msg.size() + 3);
  s.push_back('-');
  s.append(msg);
  s.append("\r\n");
  replyLocal(s);
}

void Client::replyLocal(std::string_view bytes) {
  if (pending_.empty()) {
    deliver(bytes);
    return;
  }
  pending_.push_back(Slot{std::make_unique<std::string>(bytes)});
  ++next_seq_;
}

void Client::deliver(std::string_view bytes) {
  out_.append(bytes.data(), bytes.size());
  worker_.markDirty(this);
}

void Client::onUpstreamReply(uint64_t seq, std::string_view reply) {
  if (seq == upstream::kPipeFrame || seq == upstream::kPipeClosed) {
    onPipe(seq, reply);
    return;
  }
  --inflight_refs_;
  worker_.stats().pending.sub();
  if (closed()) {
    if (inflight_refs_ == 0) worker_.clientClosed(this);
    return;
  }
  const uint64_t idx = seq - head_seq_;
  if (pending_[idx].fill != nullptr) [[unlikely]] {
    onFillReply(idx, seq, reply);  // counts the hit or miss itself (what Redis answered)
    return;
  }
  {
    const Slot& slot = pending_[idx];
    if (slot.cmd != kNoCommand) {
      Stats::Worker& st = worker_.stats();
      if (!reply.empty() && reply[0] == '-') st.per_command_errors[slot.cmd].add();
      st.observeLatency(worker_.loop_.now_us - slot.start_us);
    }
  }
  if (pending_[idx].hitmiss != nullptr) [[unlikely]] {
    pending_[idx].hitmiss->countRead(reply);
  }
  if (pending_[idx].rewrite != Rewrite::kNone) [[unlikely]] {
    const Rewrite rw = pending_[idx].rewrite;
    pending_[idx].rewrite = Rewrite::kNone;
    const std::string rewritten = rewriteReply(rw, reply);
    place(idx, rewritten);
    return;
  }
  place(idx, reply);
}

void Client::place(uint64_t idx, std::string_view reply) {
  if (idx != 0) {
    pending_[idx].reply = std::make_unique<std::string>(reply);
    return;
  }
  deliver(reply);
  pending_.pop_front();
  ++head_seq_;
  while (!pending_.empty() && pending_.front().reply) {
    deliver(*pending_.front().reply);
    pending_.pop_front();
    ++head_seq_;
  }
  if (dedicated_ != nullptr) maybeUnpin();
}

void Client::forward(upstream::Connection* conn, const codec::Request& req, int64_t timeout_ms,
                     Rewrite rewrite) {
  if (!conn->accepting()) {
    worker_.stats().upstream_errors.add();
    replyLocal(conn->unavailableError());
    if (conn == dedicated_.get()) {
      // The dedicated connection died and its state with it: back to shared connections.
      leaveMulti();
      maybeUnpin();
    }
    return;
  }
  pending_.push_back(
      Slot{nullptr, rewrite, next_hitmiss_, std::move(next_fill_), worker_.loop_.now_us, cur_cmd_});
  next_hitmiss_ = nullptr;
  ++next_seq_;
  ++inflight_refs_;
  worker_.stats().forwarded.add();
  worker_.stats().pending.add();
  conn->enqueue(this, next_seq_ - 1, wireBytes(req), timeout_ms);
  if (!hidden_.empty()) [[unlikely]] {
    if (in_multi_ && conn == dedicated_.get()) {
      multi_hidden_.append(hidden_);  // queued by Redis: sent after EXEC instead
    } else {
      hidden_.sendOn(conn, worker_.policies().followupSink());
    }
    hidden_.clear();
  }
}

std::string_view Client::encode(const std::vector<std::string_view>& args) {
  std::string& s = worker_.scratch();
  s.clear();
  codec::appendCommand(s, args);
  return s;
}

std::string_view Client::wireBytes(const codec::Request& req) {
  // Inline commands are re-encoded: upstream connections only ever carry multibulk.
  return req.is_inline ? encode(req.args) : req.frame;
}

void Client::replyArity(const commands::CommandInfo* cmd) {
  std::string msg = "ERR wrong number of arguments for '";
  msg.append(cmd->name);
  msg.append("' command");
  replyError(msg);
}

void Client::flush() {
  while (!out_.empty()) {
    ssize_t n = ::send(fd_, out_.readPtr(), out_.readable(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        setWriteEnabled(true);
        if (pipe_) overSubscriberLimits();
        return;
      }
      closeNow(std::strerror(errno));
      return;
    }
    out_.consume(static_cast<size_t>(n));
  }
  setWriteEnabled(false);
  if (pending_.empty() && (!pipe_ || close_after_flush_)) {
    // Keep a small buffer for the next burst (no malloc per turn); give back a large one.
    out_.shrinkIfEmpty(kKeepOutputBytes);
    if (close_after_flush_ || draining_) closeNow(draining_ ? "shutdown" : "quit");
  }
}

void Client::beginDrain() {
  draining_ = true;
  setReadEnabled(false);
  if (pending_.empty() && out_.empty()) closeNow("shutdown");
}

void Client::closeNow(const char* why) {
  if (closed()) return;
  log()->debug("client closed id={} peer={} reason={}", id_, peer_, why);
  event_free(rev_);
  event_free(wev_);
  rev_ = wev_ = nullptr;
  ::close(fd_);
  fd_ = -1;
  in_.consume(in_.readable());
  in_.release();
  out_.consume(out_.readable());
  out_.release();
  // Closing a dedicated connection is what ends a blocked command or a transaction upstream.
  if (dedicated_ != nullptr) worker_.releaseDedicated(std::move(dedicated_));
  worker_.clientClosed(this);
}

}  // namespace corral::net
