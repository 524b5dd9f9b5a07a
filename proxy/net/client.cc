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

// A client with nothing pending gives its output buffer back at once when it is at most this
// big (one malloc and free per burst, a few instructions per request at pipeline depth 16), so
// that an idle connection holds none; a bigger one is kept for the next burst and given back
// on the worker's tick once the client has been idle for a second (releaseIdleMemory).
constexpr size_t kReleaseOutputBytes = 4 * 1024;

}  // namespace

Client::Client(Worker& worker, int fd, uint64_t id, std::string peer)
    : worker_(worker),
      worker_armed_(worker.armed()),
      fd_(fd),
      id_(id),
      peer_(std::move(peer)),
      parser_(worker.codecLimits()),
      primary_slot_(static_cast<uint32_t>(id)),
      created_ms_(worker.nowMs()),
      last_active_ms_(worker.nowMs()),
      db_(worker.defaultDb()) {
  bindShared();
  // Before AUTH, Redis takes only small requests (10 elements, 16 KiB bulks): so does corral.
  parser_.setAuthRequired(worker.shared().auth != nullptr && worker.shared().auth->gate());
}

Client::~Client() {
  dropUserPool();
  if (ev_ != nullptr) event_free(ev_);
  if (fd_ >= 0) ::close(fd_);
}

Client::Extras& Client::extras() {
  if (extras_ == nullptr) extras_ = std::make_unique<Extras>();
  return *extras_;
}

void Client::start() {
  ev_ = event_new(worker_.loop_.base, fd_, EV_READ | EV_PERSIST, &Client::onEvent, this);
  read_enabled_ = true;
  event_add(ev_, nullptr);
  // The handshake thread may have read the first request with the handshake's last bytes.
  if (tls_ != nullptr && tls_->pending()) event_active(ev_, EV_READ, 0);
}

void Client::onEvent(evutil_socket_t, short what, void* arg) {
  auto* self = static_cast<Client*>(arg);
  if (what & EV_CLOSED) {
    // The peer went away while corral was not reading it (a request waiting for earlier ones,
    // a blocked pop, backpressure): like Redis, which reads EOF from a blocked client, let go
    // of everything now rather than when the wait ends, which may be never.
    self->closeNow("eof while waiting");
    return;
  }
  if (what & EV_WRITE) {
    self->flush();
    if (!self->closed()) self->maybeResume();
  }
  if ((what & EV_READ) && !self->closed()) {
    self->worker_.loop_.now_us = loop::monotonicUs();  // requests' latency starts here
    self->onReadable();
    // TLS: a write that waited for a read can go on now.
    if (self->tls_ != nullptr && !self->closed() && !self->out_.empty()) self->flush();
  }
}

void Client::setReadEnabled(bool on) {
  if (on == read_enabled_ || ev_ == nullptr) return;
  read_enabled_ = on;
  armEvent();
  if (on && tls_ != nullptr && tls_->pending()) event_active(ev_, EV_READ, 0);
}

void Client::setWriteEnabled(bool on) {
  if (on == write_enabled_ || ev_ == nullptr) return;
  write_enabled_ = on;
  armEvent();
}

void Client::armEvent() {
  // One event per client (a few hundred bytes less per idle connection than two). While not
  // reading, only the peer's close is watched (EV_CLOSED: EPOLLRDHUP), so that a client that
  // disconnects while paused is noticed; writing is watched only while the socket is full.
  const short what = static_cast<short>((read_enabled_ ? EV_READ : EV_CLOSED) |
                                        (write_enabled_ ? EV_WRITE : 0) | EV_PERSIST);
  event_del(ev_);
  event_assign(ev_, worker_.loop_.base, fd_, what, &Client::onEvent, this);
  event_add(ev_, nullptr);
}

void Client::onReadable() {
  last_active_ms_ = worker_.nowMs();
  for (int i = 0; i < 4; ++i) {
    if (closed() || paused_ || st_.link == Link::kClosing) return;
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
    ssize_t n = readSome(buf, cap);
    if (n == 0) {
      closeNow("eof");
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) closeNow(ioError().c_str());
      return;
    }
    const auto got = static_cast<size_t>(n);
    if (use_scratch) {
      size_t used = process(buf, got);
      // Keep what is left (a partial frame, or input held back by backpressure).
      if (!closed() && st_.link != Link::kClosing && used < got) {
        in_.append(buf + used, got - used);
      }
    } else {
      in_.commit(got);
      size_t used = process(in_.readPtr(), in_.readable());
      if (closed()) return;
      in_.consume(st_.link == Link::kClosing ? in_.readable() : used);
    }
    if (in_.empty()) in_.release();
    // A short read drained the socket (TLS: when OpenSSL holds nothing more; epoll is
    // level-triggered, so bytes still on the socket wake us again).
    if (got < cap && (tls_ == nullptr || !tls_->pending())) return;
  }
  // Records OpenSSL already decrypted do not make the socket readable: come back for them.
  if (tls_ != nullptr && tls_->pending()) event_active(ev_, EV_READ, 0);
}

bool Client::overLimits() const {
  const config::Limits& l = worker_.limits();
  return pending_.size() >= l.max_pending || out_.readable() >= l.max_output_bytes ||
         pending_bytes_ >= l.max_pending_bytes;
}

void Client::pauseReading() {
  if (paused_) return;
  paused_ = true;
  setReadEnabled(false);
  worker_.stats().backpressure_pauses.add();
}

void Client::maybeResume() {
  if (!paused_ || closed() || st_.link == Link::kClosing) return;
  if (waiting_) {
    if (!pending_.empty()) return;
    waiting_ = false;
  }
  const config::Limits& l = worker_.limits();
  if (pending_.size() > l.max_pending / 2 || out_.readable() > l.max_output_bytes / 2 ||
      pending_bytes_ > l.max_pending_bytes / 2) {
    return;
  }
  paused_ = false;
  setReadEnabled(true);
  if (!in_.empty()) {
    size_t used = process(in_.readPtr(), in_.readable());
    if (closed()) return;
    in_.consume(st_.link == Link::kClosing ? in_.readable() : used);
    if (in_.empty()) in_.release();
  }
}

size_t Client::process(const char* data, size_t len) {
  // The worker's: a parsed request never outlives handleRequest, and one client at a time
  // parses on a worker (an idle client keeps no argument vector of its own).
  codec::Request& req = worker_.parsedRequest();
  size_t pos = 0;
  while (pos < len && st_.link != Link::kClosing) {
    if (overLimits()) {
      pauseReading();
      break;
    }
    codec::ParseResult r = parser_.parse(data + pos, len - pos, req);
    pos += r.consumed;
    switch (r.status) {
      case codec::ParseStatus::kIncomplete:
        return pos;
      case codec::ParseStatus::kComplete:
        if (!req.args.empty() && !handleRequest(req)) {
          // It must wait for this client's earlier requests; parse it again then.
          pos -= r.consumed;
          waiting_ = true;
          pauseReading();
          return pos;
        }
        if (closed()) return len;
        break;
      case codec::ParseStatus::kOversize:
        worker_.stats().oversize_requests.add();
        log()->debug("request too large client={} peer={}", id_, peer_);
        replyError(codec::errorText(r));
        break;
      case codec::ParseStatus::kDiscarded:
        break;
      case codec::ParseStatus::kError:
        // Framing is lost: answer like Redis does, then close once the reply is out.
        worker_.stats().protocol_errors.add();
        log()->debug("protocol error client={} peer={} err={}", id_, peer_, codec::errorText(r));
        cur_flags_ = 0;  // Redis answers a protocol error even with CLIENT REPLY OFF
        replyError(codec::errorText(r));
        st_.link = Link::kClosing;
        setReadEnabled(false);
        worker_.markDirty(this);
        return len;
    }
  }
  return pos;
}

void Client::replyError(std::string_view msg) {
  if (cur_cmd_ != kNoCommand) worker_.stats().per_command_errors[cur_cmd_].add();
  std::string& s = worker_.scratch();
  s.clear();
  codec::appendError(s, msg);
  replyLocal(s);
}

void Client::replyArity(const commands::CommandInfo* cmd) {
  std::string msg = "ERR wrong number of arguments for '";
  msg.append(cmd->name);
  msg.append("' command");
  replyError(msg);
}

Client::Slot& Client::newSlot(uint8_t flags) {
  Slot& s = pending_.emplace_back();
  s.hitmiss = nullptr;
  s.start_us = worker_.loop_.now_us;
  s.deadline_ms = -1;
  s.arg = 0;
  s.frames = 1;
  s.cmd = cur_cmd_;
  s.rewrite = Rewrite::kNone;
  s.flags = flags;
  ++next_seq_;
  return s;
}

void Client::replyLocal(std::string_view bytes) {
  if (cur_flags_ & kSilent) return;  // CLIENT REPLY OFF/SKIP: Redis sends nothing either
  if (pending_.empty()) {
    deliver(bytes);
    return;
  }
  Slot& s = newSlot(kReady);
  s.cmd = kNoCommand;
  s.more().reply.assign(bytes);
}

void Client::deliver(std::string_view bytes) {
  out_.append(bytes.data(), bytes.size());
  worker_.markDirty(this);
}

void Client::onUpstreamReply(uint64_t seq, std::string_view reply) {
  if (seq == upstream::kPipeFrame) {
    if (!closed()) onDedicatedFrame(reply);
    return;
  }
  if (seq == upstream::kPipeClosed) {
    if (!closed()) onDedicatedLost("unavailable");
    return;
  }
  --inflight_refs_;
  worker_.stats().pending.sub();
  if (closed()) {
    if (inflight_refs_ == 0) worker_.clientClosed(this);
    return;
  }
  const uint64_t idx = seq - head_seq_;
  Slot& slot = pending_[idx];
  const bool looked = (slot.flags & kLooked) != 0;
  if (looked && slot.extra != nullptr && slot.extra->fill != nullptr) [[unlikely]] {
    // Counts the hit or miss itself (what Redis answered); the final answer comes back here.
    onFillReply(idx, seq, reply);
    return;
  }
  if (slot.cmd != kNoCommand) {
    Stats::Worker& st = worker_.stats();
    if (!reply.empty() && reply[0] == '-') st.per_command_errors[slot.cmd].add();
    st.observeLatency(worker_.loop_.now_us - slot.start_us);
  }
  if (looked) [[unlikely]] {
    if (slot.hitmiss != nullptr) slot.hitmiss->countRead(reply);
    if (slot.extra != nullptr && !slot.extra->near_keys.empty()) {
      // A fill begun while the write was on its way may have read the value before it.
      for (const std::string& k : slot.extra->near_keys) worker_.near().invalidate(k);
    }
    if (slot.rewrite != Rewrite::kNone) {
      const std::string rewritten = rewriteReply(slot, reply);
      place(idx, rewritten);
      return;
    }
  }
  place(idx, reply);
}

namespace {
constexpr size_t kSpareExtras = 1024;      // per worker thread
constexpr size_t kSpareReplyBytes = 4096;  // a larger stored reply's buffer is freed
}  // namespace

// The spare holders of this thread (Slot::takeExtra, Slot::giveBackExtra).
thread_local std::vector<std::unique_ptr<Client::SlotExtra>> Client::spare_extras_;

std::unique_ptr<Client::SlotExtra> Client::Slot::takeExtra() {
  if (spare_extras_.empty()) return std::make_unique<SlotExtra>();
  std::unique_ptr<SlotExtra> e = std::move(spare_extras_.back());
  spare_extras_.pop_back();
  return e;
}

void Client::Slot::giveBackExtra() {
  std::unique_ptr<SlotExtra> e = std::move(extra);
  if (spare_extras_.size() >= kSpareExtras || e->reply.capacity() > kSpareReplyBytes) return;
  e->reply.clear();
  e->fill.reset();
  e->tx.reset();
  e->near_keys.clear();
  spare_extras_.push_back(std::move(e));
}

void Client::place(uint64_t idx, std::string_view reply) {
  Slot& slot = pending_[idx];
  if (idx != 0) {
    // Dropped replies still hold their place until the head moves past them.
    slot.flags |= kReady;
    if (!(slot.flags & kSilent)) slot.more().reply.assign(reply);
    return;
  }
  if (!(slot.flags & kSilent)) deliver(reply);
  pending_.pop_front();
  ++head_seq_;
  if (!pending_.empty()) {
    if (pending_.front().flags & kReady) popAnswered();
  } else {
    onAllAnswered();
  }
}

void Client::popAnswered() {
  while (!pending_.empty() && (pending_.front().flags & kReady)) {
    Slot& h = pending_.front();
    if (h.extra != nullptr && !h.extra->reply.empty()) deliver(h.extra->reply);
    pending_.pop_front();
    ++head_seq_;
  }
  if (pending_.empty()) onAllAnswered();
}

void Client::onAllAnswered() {
  pending_bytes_ = 0;
  if (extras_ != nullptr && !extras_->near_written.empty()) [[unlikely]] {
    // A transaction's (or a WATCHer's) writes of near keys have all run now: a fill begun while
    // they were on their way may have read the value from before them.
    for (const std::string& k : extras_->near_written) worker_.near().invalidate(k);
    extras_->near_written.clear();
  }
  if (dedicated_ != nullptr) {
    // A cluster's nodes have RESP3 connections too: a client that held its dedicated
    // connection for pushes only, and holds none now, goes back to the shared ones.
    const bool push_over = st_.link == Link::kPush && worker_.cluster() != nullptr &&
                           !subscribedUpstream() && !monitoring_ &&
                           (extras_ == nullptr || extras_->tracking_redirect < 0);
    sessionEvent(push_over ? Event::kPushEnded : Event::kIdle);
  }
  if (waiting_ || st_.link == Link::kClosing) worker_.markDirty(this);
}

void Client::forwardShared(const commands::CommandInfo* cmd, const codec::Request& req) {
  if (armed().near != nullptr && forwardNear(req)) [[unlikely]] {
    return;
  }
  if (worker_.cluster() != nullptr) [[unlikely]] {
    forwardToCluster(cmd, req, 0, Rewrite::kNone, 0);
    return;
  }
  forward(sharedConnection(cmd), req, 0);
}

upstream::Connection* Client::sharedConnection(const commands::CommandInfo* cmd) {
  const int8_t route = armed().route;
  if (route == Armed::kRouteDefault && fixed_route_) [[likely]] {
    return primary_;  // what Worker::route would choose, without asking
  }
  // A user of its own: replicas are logged in as corral, whose ACL is not the user's.
  if (user_pool_ != nullptr) return primary_;
  const bool read_only = commands::readsOnly(cmd);
  if (route == Armed::kRouteDefault) return worker_.route(read_only, primary_slot_, db_);
  if (route == Armed::kRoutePrimary) return worker_.route(false, primary_slot_, db_);
  return worker_.route(read_only, primary_slot_, db_, static_cast<config::ReadFrom>(route));
}

upstream::Connection* Client::primaryConnection() {
  return user_pool_ != nullptr ? primary_ : worker_.route(false, primary_slot_, db_);
}

void Client::forward(upstream::Connection* conn, const codec::Request& req, int64_t timeout_ms,
                     Rewrite rewrite, int64_t arg) {
  if (worker_.cluster() != nullptr) [[unlikely]] {
    // The slot decides (client_cluster.cc). The hot path (routeShared) calls it directly.
    forwardToCluster(commands::lookup(req.args), req, timeout_ms, rewrite, arg);
    return;
  }
  if (!conn->accepting()) {
    replyUnavailable(conn->unavailableError());
    return;
  }
  const std::string_view bytes = wireBytes(req);
  conn->enqueue(this, openSlot(rewrite, arg, bytes.size()), bytes, timeout_ms);
  Armed& a = armed();
  if (!a.hidden.empty()) [[unlikely]] {
    sendHidden(a.hidden, conn);
    a.hidden.clear();
  }
}

void Client::replyUnavailable(std::string_view error) {
  worker_.stats().upstream_errors.add();
  if (cur_cmd_ != kNoCommand) worker_.stats().per_command_errors[cur_cmd_].add();
  replyLocal(error);
  armed().hidden.clear();
}

uint64_t Client::openSlot(Rewrite rewrite, int64_t arg, size_t bytes) {
  Armed& a = armed();
  Slot& s = newSlot(cur_flags_);
  if (a.fill != nullptr || a.hitmiss != nullptr || rewrite != Rewrite::kNone ||
      !a.near_drop.empty()) [[unlikely]] {
    s.flags |= kLooked;
    if (a.fill != nullptr) s.more().fill = std::move(a.fill);
    if (!a.near_drop.empty()) s.more().near_keys.swap(a.near_drop);
    s.hitmiss = a.hitmiss;
    s.arg = arg;
    s.rewrite = rewrite;
    a.hitmiss = nullptr;
  }
  ++inflight_refs_;
  worker_.stats().forwarded.add();
  worker_.stats().pending.add();
  pending_bytes_ += bytes;
  return next_seq_ - 1;
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

void Client::flush() {
  while (!out_.empty()) {
    ssize_t n = writeSome(out_.readPtr(), out_.readable());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // (A TLS write waiting to read goes on with the next read: onEvent.)
        setWriteEnabled(tls_ == nullptr || tls_->wantsWrite());
        if (st_.link == Link::kSubscribed || st_.link == Link::kPush) overSubscriberLimits();
        return;
      }
      closeNow(ioError().c_str());
      return;
    }
    out_.consume(static_cast<size_t>(n));
  }
  setWriteEnabled(false);
  if (extras_ != nullptr) extras_->soft_since_ms = -1;
  if (pending_.empty()) {
    if (out_.capacity() <= kReleaseOutputBytes) out_.release();
    if (st_.link == Link::kClosing) closeNow("closing");
  }
}

void Client::releaseIdleMemory() {
  // Called on the worker's tick for clients idle for a while: a busy client keeps its warm
  // buffers (no malloc per request), an idle one costs only its Client object.
  if (!out_.empty() || !pending_.empty() || closed()) return;
  out_.release();
  pending_.release();
  if (in_.empty()) in_.release();
}

void Client::beginDrain() { sessionEvent(Event::kDrain, "-ERR corral: shutting down\r\n"); }

void Client::kill() {
  if (closed()) return;
  // Like Redis, CLIENT KILL closes at once: replies not yet written are lost.
  closeNow("killed");
}

void Client::closeNow(const char* why) {
  if (closed()) return;
  log()->debug("client closed id={} peer={} reason={}", id_, peer_, why);
  sessionEvent(Event::kClientClosed);  // gives the dedicated connection back
  dropUserPool();
  event_free(ev_);
  ev_ = nullptr;
  tls_.reset();
  ::close(fd_);
  fd_ = -1;
  in_.consume(in_.readable());
  in_.release();
  out_.consume(out_.readable());
  out_.release();
  worker_.clientClosed(this);
}

}  // namespace corral::net
