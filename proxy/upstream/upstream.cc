#include "proxy/upstream/upstream.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <random>

#include "config/logging.h"
#include "proxy/loop/clock.h"

namespace corral::upstream {
namespace {

// Handshake steps, carried in Inflight::seq of corral's own commands.
constexpr uint64_t kStepAuth = 1;
constexpr uint64_t kStepSelect = 2;
constexpr uint64_t kStepInfo = 3;
constexpr uint64_t kStepDatabases = 4;
constexpr uint64_t kStepClientId = 5;

constexpr size_t kReadChunk = 64 * 1024;
constexpr int kMaxReadsPerEvent = 16;

const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = logging::get("upstream");
  return logger;
}

// Resolves addr into a sockaddr. Numeric addresses never block; a host name is resolved with
// getaddrinfo, which does block the loop (acceptable for a sidecar whose upstream is usually
// an IP or a local name; noted in proxy/upstream/README.md).
bool resolve(const config::ListenAddress& addr, sockaddr_storage& ss, socklen_t& len,
             std::string& err) {
  std::memset(&ss, 0, sizeof(ss));
  if (addr.kind == config::ListenAddress::Kind::kUnix) {
    auto* un = reinterpret_cast<sockaddr_un*>(&ss);
    if (addr.path.size() >= sizeof(un->sun_path)) {
      err = "unix socket path too long";
      return false;
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, addr.path.c_str(), addr.path.size() + 1);
    len = sizeof(sockaddr_un);
    return true;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(addr.port);
  int rc = getaddrinfo(addr.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    err = gai_strerror(rc);
    return false;
  }
  std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
  len = res->ai_addrlen;
  freeaddrinfo(res);
  return true;
}

uint64_t jitterSeed(const std::string& text) {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ std::hash<std::string>{}(text);
}

}  // namespace

std::string upstreamError(std::string_view addr_text, std::string_view why) {
  std::string s = "-ERR corral: upstream ";
  s.append(addr_text);
  s.push_back(' ');
  s.append(why);
  s.append("\r\n");
  return s;
}

Connection::Connection(LoopContext& ctx, const config::UpstreamAddress& addr,
                       const config::UpstreamConfig& cfg, const config::Limits& limits,
                       bool learn_version, bool reconnect, uint64_t owner_id)
    : ctx_(ctx),
      addr_(addr),
      cfg_(cfg),
      learn_version_(learn_version),
      reconnect_(reconnect),
      owner_id_(owner_id),
      parser_(codec::Limits{.max_depth = limits.max_reply_depth}),
      error_unavailable_(upstreamError(addr.text, "unavailable")),
      error_timeout_(upstreamError(addr.text, "timeout")) {
  rng_state_ = jitterSeed(addr.text) | 1;
}

Connection::~Connection() {
  if (owner_id_ != 0 && ctx_.ids != nullptr) ctx_.ids->erase(owner_id_);
  if (fd_ >= 0) {
    event_free(rev_);
    event_free(wev_);
    ::close(fd_);
  }
}

void Connection::start() {
  if (state_ == State::kIdle) connectNow();
}

void Connection::connectNow() {
  sockaddr_storage ss;
  socklen_t len = 0;
  std::string err;
  ++attempts_;
  connect_started_ms_ = ctx_.now_ms;
  if (!resolve(addr_.addr, ss, len, err)) {
    log()->debug("upstream resolve failed addr={} err={}", addr_.text, err);
    fail("unavailable", Then::kBackoff);
    return;
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    log()->warn("upstream socket failed addr={} err={}", addr_.text, std::strerror(errno));
    fail("unavailable", Then::kBackoff);
    return;
  }
  if (ss.ss_family != AF_UNIX) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  if (rc != 0 && errno != EINPROGRESS) {
    log()->debug("upstream connect failed addr={} err={}", addr_.text, std::strerror(errno));
    ::close(fd);
    fail("unavailable", Then::kBackoff);
    return;
  }
  fd_ = fd;
  rev_ = event_new(ctx_.base, fd_, EV_READ | EV_PERSIST, &Connection::onEvent, this);
  wev_ = event_new(ctx_.base, fd_, EV_WRITE | EV_PERSIST, &Connection::onEvent, this);
  state_ = State::kConnecting;
  write_armed_ = false;
  armWrite(true);  // writable = connected (or failed: SO_ERROR tells)

  // The handshake goes first in the out buffer; client requests queue behind it.
  std::string cmd;
  if (!addr_.password.empty()) {
    if (addr_.user.empty()) {
      codec::appendCommand(cmd, {"AUTH", addr_.password});
    } else {
      codec::appendCommand(cmd, {"AUTH", addr_.user, addr_.password});
    }
    enqueueInternal(kStepAuth, cmd);
  }
  if (addr_.db != 0) {
    cmd.clear();
    std::string db = std::to_string(addr_.db);
    codec::appendCommand(cmd, {"SELECT", db});
    enqueueInternal(kStepSelect, cmd);
  }
  if (owner_id_ != 0) {
    cmd.clear();
    codec::appendCommand(cmd, {"CLIENT", "ID"});
    enqueueInternal(kStepClientId, cmd);
  }
  if (learn_version_) {
    cmd.clear();
    codec::appendCommand(cmd, {"INFO", "server"});
    enqueueInternal(kStepInfo, cmd);
    cmd.clear();
    codec::appendCommand(cmd, {"CONFIG", "GET", "databases"});
    enqueueInternal(kStepDatabases, cmd);
  }
}

void Connection::enqueueInternal(uint64_t step, std::string_view request) {
  out_.append(request.data(), request.size());
  queued_bytes_ += request.size();
  inflight_.push_back(Inflight{nullptr, step, queued_bytes_, -1, 0});
}

void Connection::enqueue(ReplySink* sink, uint64_t seq, std::string_view request,
                         int64_t timeout_ms) {
  out_.append(request.data(), request.size());
  queued_bytes_ += request.size();
  inflight_.push_back(Inflight{sink, seq, queued_bytes_, -1, timeout_ms});
  markDirty();
}

void Connection::enqueueRaw(std::string_view request) {
  out_.append(request.data(), request.size());
  queued_bytes_ += request.size();
  markDirty();
}

void Connection::markDirty() {
  if (!dirty_ && state_ == State::kReady) {
    dirty_ = true;
    ctx_.dirty.push_back(this);
  }
}

void Connection::armWrite(bool on) {
  if (on == write_armed_ || wev_ == nullptr) return;
  write_armed_ = on;
  if (on) {
    event_add(wev_, nullptr);
  } else {
    event_del(wev_);
  }
}

void Connection::onEvent(evutil_socket_t, short what, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  self->ctx_.now_ms = loop::monotonicMs();  // the turn's clock predates the wait that ended here
  self->ctx_.now_us = loop::monotonicUs();
  if (what & EV_READ) {
    self->onReadable();
  } else if (what & EV_WRITE) {
    self->onWritable();
  }
}

void Connection::onWritable() {
  if (state_ == State::kConnecting) {
    onConnected();
    return;
  }
  flush();
}

void Connection::onConnected() {
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    log()->debug("upstream connect failed addr={} err={}", addr_.text, std::strerror(err));
    fail("unavailable", Then::kBackoff);
    return;
  }
  state_ = State::kReady;
  if (down_ || failures_ > 0) {
    log()->info("upstream connected addr={} after_failures={}", addr_.text, failures_);
  } else {
    log()->debug("upstream connected addr={}", addr_.text);
  }
  down_ = false;
  failures_ = 0;
  backoff_ms_ = 0;
  last_progress_ms_ = ctx_.now_ms;
  event_add(rev_, nullptr);
  armWrite(false);
  flush();
}

void Connection::flush() {
  dirty_ = false;
  if (state_ != State::kReady) return;
  while (!out_.empty()) {
    ssize_t n = ::send(fd_, out_.readPtr(), out_.readable(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      log()->warn("upstream write failed addr={} err={}", addr_.text, std::strerror(errno));
      fail("unavailable", Then::kBackoff);
      return;
    }
    out_.consume(static_cast<size_t>(n));
    written_bytes_ += static_cast<uint64_t>(n);
    last_progress_ms_ = ctx_.now_ms;
  }
  // Start the command-timeout clock of every request now fully written.
  while (first_unsent_ < inflight_.size() &&
         inflight_[first_unsent_].end_offset <= written_bytes_) {
    inflight_[first_unsent_].sent_ms = ctx_.now_ms;
    ++first_unsent_;
  }
  if (out_.empty()) {
    out_.shrinkIfEmpty(kReadChunk);
    armWrite(false);
  } else {
    armWrite(true);
  }
}

void Connection::onReadable() {
  for (int i = 0; i < kMaxReadsPerEvent; ++i) {
    in_.reserve(kReadChunk);
    ssize_t n = ::recv(fd_, in_.writePtr(), in_.writable(), 0);
    if (n == 0) {
      log()->warn("upstream closed the connection addr={} inflight={}", addr_.text,
                  inflight_.size());
      fail("unavailable", Then::kBackoff);
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      log()->warn("upstream read failed addr={} err={}", addr_.text, std::strerror(errno));
      fail("unavailable", Then::kBackoff);
      return;
    }
    in_.commit(static_cast<size_t>(n));
    last_progress_ms_ = ctx_.now_ms;
    while (!in_.empty()) {
      codec::ReplyResult r = parser_.parse(in_.readPtr(), in_.readable());
      if (r.status == codec::ParseStatus::kIncomplete) break;
      if (r.status == codec::ParseStatus::kComplete && inflight_.empty() && pipe_) {
        // A pipe: every frame to its owner, in order (none once the owner let it go).
        if (pipe_sink_ != nullptr) {
          pipe_sink_->onUpstreamReply(kPipeFrame, std::string_view(in_.readPtr(), r.consumed));
          if (fd_ < 0) return;  // the sink gave up on this connection
        }
        in_.consume(r.consumed);
        continue;
      }
      if (r.status != codec::ParseStatus::kComplete || inflight_.empty()) {
        log()->error("upstream protocol desync addr={} parse_error={} inflight={}", addr_.text,
                     static_cast<int>(r.error), inflight_.size());
        fail("unavailable", Then::kReconnect);
        return;
      }
      Inflight entry = inflight_.front();
      inflight_.pop_front();
      if (first_unsent_ > 0) --first_unsent_;
      std::string_view reply(in_.readPtr(), r.consumed);
      if (entry.sink != nullptr) {
        entry.sink->onUpstreamReply(entry.seq, reply);
      } else if (!handleInternalReply(entry.seq, reply)) {
        return;  // the connection failed and was reset
      }
      in_.consume(r.consumed);
    }
    if (static_cast<size_t>(n) < kReadChunk) break;  // drained the socket
  }
  if (in_.empty()) in_.shrinkIfEmpty(kReadChunk);
}

bool Connection::handleInternalReply(uint64_t step, std::string_view reply) {
  if (!reply.empty() && reply[0] == '-') {
    std::string_view msg = reply.substr(1);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.remove_suffix(1);
    // The version and db count are optional: INFO or CONFIG may be denied by an ACL.
    if (step == kStepInfo || step == kStepDatabases || step == kStepClientId) return true;
    log()->error("upstream handshake failed addr={} step={} err={}", addr_.text,
                 step == kStepAuth ? "auth" : "select", msg);
    fail("unavailable", Then::kBackoff);
    return false;
  }
  if (step == kStepClientId) {
    // ":<id>\r\n"
    uint64_t id = 0;
    bool ok = reply.size() > 3 && reply[0] == ':';
    for (size_t i = 1; ok && i < reply.size() && reply[i] != '\r'; ++i) {
      if (reply[i] < '0' || reply[i] > '9') ok = false;
      id = id * 10 + static_cast<uint64_t>(reply[i] - '0');
    }
    if (ok && ctx_.ids != nullptr) ctx_.ids->set(owner_id_, id);
    return true;
  }
  if (step == kStepDatabases) {
    // *2\r\n$9\r\ndatabases\r\n$N\r\n<count>\r\n: the count is the last line.
    std::string_view body = reply;
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
    const size_t nl = body.rfind('\n');
    if (nl != std::string_view::npos) {
      int64_t n = 0;
      const std::string_view digits = body.substr(nl + 1);
      bool ok = !digits.empty() && digits.size() < 10;
      for (char ch : digits) {
        if (ch < '0' || ch > '9') ok = false;
        if (ok) n = n * 10 + (ch - '0');
      }
      if (ok && n > 0) ctx_.databases = n;
    }
    return true;
  }
  if (step == kStepInfo) {
    constexpr std::string_view kKey = "redis_version:";
    size_t p = reply.find(kKey);
    if (p != std::string_view::npos) {
      size_t e = reply.find('\r', p);
      ctx_.redis_version = std::string(reply.substr(p + kKey.size(), e - p - kKey.size()));
    }
  }
  return true;
}

void Connection::fail(std::string_view why, Then then) {
  const bool was_connected = fd_ >= 0;
  if (fd_ >= 0) {
    event_free(rev_);
    event_free(wev_);
    rev_ = wev_ = nullptr;
    ::close(fd_);
    fd_ = -1;
  }
  state_ = State::kIdle;
  write_armed_ = false;
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
    down_ = true;  // a dedicated connection is never reconnected: its state is gone
    if (ReplySink* sink = pipe_sink_; sink != nullptr) {
      pipe_sink_ = nullptr;
      sink->onUpstreamReply(kPipeClosed, {});
    }
    return;
  }
  if (then == Then::kBackoff) {
    if (!down_) {
      log()->warn("upstream unavailable addr={} reason={}", addr_.text,
                  was_connected ? "connection lost" : "connect failed");
    }
    down_ = true;
    ++failures_;
    scheduleReconnect();
  } else if (then == Then::kReconnect) {
    // A timeout or a desync says nothing about the server being down: reconnect at once, and
    // let requests queue meanwhile.
    connectNow();
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
        log()->debug("upstream connect timeout addr={}", addr_.text);
        fail("unavailable", Then::kBackoff);
      }
      return;
    case State::kReady:
      break;
  }
  if (inflight_.empty()) return;
  const int64_t limit = cfg_.command_timeout.count();
  const Inflight& oldest = inflight_.front();
  const int64_t own = oldest.timeout_ms == 0 ? limit : oldest.timeout_ms;
  const bool reply_late = own > 0 && oldest.sent_ms >= 0 && now - oldest.sent_ms >= own;
  // A request stuck in our out buffer (Redis not reading) has no send time; no write progress
  // for a whole timeout counts the same.
  const bool write_stuck = !out_.empty() && now - last_progress_ms_ >= limit;
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
