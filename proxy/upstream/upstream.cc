#include "proxy/upstream/upstream.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <random>

#include "proxy/loop/clock.h"
#include "proxy/upstream/log.h"

namespace corral::upstream {
namespace {

// Handshake steps, carried in Inflight::seq of corral's own commands.
constexpr uint64_t kStepAuth = 1;
constexpr uint64_t kStepSelect = 2;
constexpr uint64_t kStepInfo = 3;
constexpr uint64_t kStepDatabases = 4;
constexpr uint64_t kStepClientId = 5;
constexpr uint64_t kStepPing = 6;
constexpr uint64_t kStepRole = 7;
constexpr uint64_t kStepReadOnly = 8;
constexpr uint64_t kStepHello = 9;
constexpr uint64_t kStepTracking = 10;

constexpr size_t kReadChunk = 64 * 1024;
constexpr int kMaxReadsPerEvent = 16;

constexpr std::string_view kReplyTooLarge =
    "-ERR corral: reply too large (limits.max_reply_bytes)\r\n";

const char* stepName(uint64_t step) {
  switch (step) {
    case kStepAuth:
      return "auth";
    case kStepSelect:
      return "select";
    case kStepInfo:
      return "info";
    case kStepDatabases:
      return "config-get-databases";
    case kStepClientId:
      return "client-id";
    case kStepPing:
      return "ping";
    case kStepRole:
      return "role";
    case kStepReadOnly:
      return "readonly";
    case kStepHello:
      return "hello";
    case kStepTracking:
      return "client-tracking";
  }
  return "unknown";
}

uint64_t jitterSeed(const std::string& text) {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ std::hash<std::string>{}(text);
}

}  // namespace

Counters& counters() {
  static Counters c;
  return c;
}

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
      limits_(limits),
      learn_version_(learn_version),
      reconnect_(reconnect),
      owner_id_(owner_id),
      parser_(codec::Limits{.max_reply_bytes = limits.max_reply_bytes}),
      reply_limit_(limits.max_reply_bytes),
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
  ++attempts_;
  connect_started_ms_ = ctx_.now_ms;
  if (addr_.addr.kind == config::ListenAddress::Kind::kTcp && addr_.addr.host.empty()) {
    // Sentinel's template before any sentinel has named the primary (retarget() sets it).
    fail("unavailable", Then::kBackoff, "no address yet: no sentinel has named the primary");
    return;
  }
  SockAddr sa;
  std::string err;
  if (resolveNow(addr_.addr, &sa, &err)) {
    connectTo(sa);
    return;
  }
  if (!err.empty()) {
    fail("unavailable", Then::kBackoff, "resolve failed: " + err);
    return;
  }
  // A host name: looked up on every attempt, without blocking the loop. Until the answer the
  // connection is kConnecting with no socket; connect_timeout covers the lookup too.
  state_ = State::kConnecting;
  lookup_.start(ctx_.dns, addr_.addr, [this](bool ok, const SockAddr& a, const std::string& e) {
    if (ok) {
      connectTo(a);
    } else {
      fail("unavailable", Then::kBackoff, "resolve failed: " + e);
    }
  });
}

void Connection::connectTo(const SockAddr& sa) {
  const sockaddr_storage& ss = sa.ss;
  const socklen_t len = sa.len;
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail("unavailable", Then::kBackoff, std::string("socket failed: ") + std::strerror(errno));
    return;
  }
  if (ss.ss_family != AF_UNIX) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&ss), len);
  if (rc != 0 && errno != EINPROGRESS) {
    const std::string reason = std::string("connect failed: ") + std::strerror(errno);
    ::close(fd);
    fail("unavailable", Then::kBackoff, reason);
    return;
  }
  fd_ = fd;
  if (addr_.addr.tls) {
    std::string tls_err;
    if (!startTls(&tls_err)) {
      fail("unavailable", Then::kBackoff, "TLS: " + tls_err);
      return;
    }
  }
  rev_ = event_new(ctx_.base, fd_, EV_READ | EV_PERSIST, &Connection::onEvent, this);
  wev_ = event_new(ctx_.base, fd_, EV_WRITE | EV_PERSIST, &Connection::onEvent, this);
  state_ = State::kConnecting;
  write_armed_ = false;
  armWrite(true);  // writable = connected (or failed: SO_ERROR tells)

  // The handshake goes first in the out buffer; client requests queue behind it. AUTH and
  // SELECT (or else PING) must succeed for the connection to be ready; the rest is optional.
  handshake_left_ = 0;
  std::string cmd;
  if (!addr_.password.empty() || auth_always_) {
    if (addr_.user.empty()) {
      codec::appendCommand(cmd, {"AUTH", addr_.password});
    } else {
      codec::appendCommand(cmd, {"AUTH", addr_.user, addr_.password});
    }
    enqueueInternal(kStepAuth, cmd);
    ++handshake_left_;
  }
  if (addr_.db != 0) {
    cmd.clear();
    std::string db = std::to_string(addr_.db);
    codec::appendCommand(cmd, {"SELECT", db});
    enqueueInternal(kStepSelect, cmd);
    ++handshake_left_;
  }
  if (check_role_) {
    // Also what shows NOAUTH, so no PING is needed beside it.
    cmd.clear();
    codec::appendCommand(cmd, {"ROLE"});
    enqueueInternal(kStepRole, cmd);
    ++handshake_left_;
  }
  if (resp3_) {
    // After AUTH (a server with a password refuses HELLO before it); also what shows NOAUTH.
    cmd.clear();
    codec::appendCommand(cmd, {"HELLO", "3"});
    enqueueInternal(kStepHello, cmd);
    ++handshake_left_;
  }
  if (tracking_) {
    cmd.clear();
    codec::appendCommand(cmd, {"CLIENT", "TRACKING", "ON"});
    enqueueInternal(kStepTracking, cmd);
    ++handshake_left_;
  }
  if (read_only_) {
    // A cluster replica serves reads of its primary's slots only after READONLY.
    cmd.clear();
    codec::appendCommand(cmd, {"READONLY"});
    enqueueInternal(kStepReadOnly, cmd);
    ++handshake_left_;
  }
  if (handshake_left_ == 0 && handshake_ping_) {
    // Without AUTH or SELECT, a PING is what tells a server that wants a password (NOAUTH)
    // from one that serves us.
    cmd.clear();
    codec::appendCommand(cmd, {"PING"});
    enqueueInternal(kStepPing, cmd);
    ++handshake_left_;
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
  handshake_bytes_ = queued_bytes_;
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
  if (!dirty_ && (state_ == State::kReady || state_ == State::kHandshake)) {
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
    // TLS: a write that waited for the handshake (or for any read) can go on now.
    if (self->tls_ != nullptr && self->fd_ >= 0 && !self->out_.empty()) self->flush();
  } else if (what & EV_WRITE) {
    if (self->read_wants_write_) {
      self->read_wants_write_ = false;
      self->onReadable();
      if (self->fd_ < 0) return;
    }
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
    fail("unavailable", Then::kBackoff, std::string("connect failed: ") + std::strerror(err));
    return;
  }
  // Connected, but not ready until the handshake succeeds: the backoff and down_ stay as they are,
  // so a server that refuses the handshake is retried no faster than one that refuses TCP.
  state_ = State::kHandshake;
  log()->debug("upstream connected addr={} handshake_steps={}", addr_.text, handshake_left_);
  last_progress_ms_ = ctx_.now_ms;
  event_add(rev_, nullptr);
  armWrite(false);
  if (handshake_left_ == 0) onHandshakeDone();
  flush();
}

void Connection::onHandshakeDone() {
  state_ = State::kReady;
  if (tls_ != nullptr) saveTlsSession();
  if (down_ || failures_ > 0) {
    log()->info("upstream ready addr={} after_failures={} down_for_ms={}", addr_.text, failures_,
                ctx_.now_ms - down_since_ms_);
  } else {
    log()->debug("upstream ready addr={}", addr_.text);
  }
  down_ = fenced_;
  failures_ = 0;
  failures_unlogged_ = 0;
  last_reason_.clear();
  backoff_ms_ = 0;
  if (check_role_ && !out_.empty()) markDirty();  // what waited behind ROLE goes now
}

void Connection::flush() {
  dirty_ = false;
  if (state_ != State::kReady && state_ != State::kHandshake) return;
  bool held = false;  // client bytes wait until ROLE has answered (checkRole)
  while (!out_.empty()) {
    size_t len = out_.readable();
    if (check_role_ && state_ != State::kReady) {
      held = written_bytes_ >= handshake_bytes_;
      if (held) break;
      len = std::min<size_t>(len, handshake_bytes_ - written_bytes_);
    }
    ssize_t n = sendSome(out_.readPtr(), len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      fail("unavailable", Then::kBackoff, ioError("write failed"));
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
    // A TLS write waiting to read (its handshake) is resumed by the read event, not this one.
    armWrite(!held && (tls_ == nullptr || tls_->wantsWrite()));
  }
}

void Connection::onReadable() {
  for (int i = 0; i < kMaxReadsPerEvent; ++i) {
    in_.reserve(kReadChunk);
    ssize_t n = recvSome(in_.writePtr(), in_.writable());
    if (n == 0) {
      fail("unavailable", Then::kBackoff, "closed by the server");
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      fail("unavailable", Then::kBackoff, ioError("read failed"));
      return;
    }
    in_.commit(static_cast<size_t>(n));
    last_progress_ms_ = ctx_.now_ms;
    while (!in_.empty()) {
      // A reload may change limits.max_reply_bytes; it applies from the next reply on.
      if (limits_.max_reply_bytes != reply_limit_ && !parser_.midFrame()) {
        reply_limit_ = limits_.max_reply_bytes;
        parser_.setLimits(codec::Limits{.max_reply_bytes = reply_limit_});
      }
      codec::ReplyResult r = parser_.parse(in_.readPtr(), in_.readable());
      if (r.status == codec::ParseStatus::kIncomplete) {
        in_.consume(r.consumed);  // > 0 only while a reply too large is dropped
        break;
      }
      if (r.status == codec::ParseStatus::kDiscarded) {
        in_.consume(r.consumed);  // its request was answered at kOversize
        continue;
      }
      if (r.status == codec::ParseStatus::kOversize) {
        in_.consume(r.consumed);
        if (!replyTooLarge()) return;
        continue;
      }
      if (r.status == codec::ParseStatus::kComplete && push_sink_ != nullptr &&
          in_.readPtr()[0] == '>') [[unlikely]] {
        // A tracking connection's invalidation: never the reply of a request.
        push_sink_->onUpstreamReply(0, std::string_view(in_.readPtr(), r.consumed));
        if (fd_ < 0) return;
        in_.consume(r.consumed);
        continue;
      }
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
                     codec::errorText(r.error), inflight_.size());
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
    // A short read drained the socket; TLS reads one record at a time, so go on until kAgain.
    if (static_cast<size_t>(n) < kReadChunk && (tls_ == nullptr || !tls_->pending())) break;
  }
  if (in_.empty()) in_.shrinkIfEmpty(kReadChunk);
  // Records OpenSSL already decrypted do not make the socket readable: come back for them.
  if (tls_ != nullptr && tls_->pending()) event_active(rev_, EV_READ, 0);
}

// Corral's own handshake replies, read with codec::FrameReader like every reply corral looks
// into. AUTH and SELECT (or PING) must succeed; INFO, CONFIG GET databases and CLIENT ID only
// tell corral things it can live without (an ACL may deny them).
bool Connection::handleInternalReply(uint64_t step, std::string_view reply) {
  codec::FrameReader rd(reply);
  std::string_view err;
  if (rd.error(&err)) {
    if (step == kStepInfo || step == kStepDatabases || step == kStepClientId) return true;
    counters().handshake_failures.fetch_add(1, std::memory_order_relaxed);
    std::string reason = "handshake failed: ";
    reason += stepName(step);
    reason += ": ";
    // Redis's text, e.g. "WRONGPASS invalid username-password pair ..." (never the password).
    reason.append(err.substr(0, 200));
    fail("unavailable", Then::kBackoff, reason);
    return false;
  }
  switch (step) {
    case kStepRole:
      if (!checkPrimaryRole(reply)) return false;
      [[fallthrough]];
    case kStepAuth:
    case kStepSelect:
    case kStepPing:
    case kStepReadOnly:
    case kStepHello:
    case kStepTracking:
      if (handshake_left_ > 0 && --handshake_left_ == 0) onHandshakeDone();
      break;
    case kStepClientId: {
      int64_t id = 0;
      if (codec::FrameReader ids(reply);
          ids.integer(&id) && ids.atEnd() && id >= 0 && ctx_.ids != nullptr) {
        ctx_.ids->set(owner_id_, static_cast<uint64_t>(id), addr_.text);
      }
      break;
    }
    case kStepDatabases: {
      // ["databases", "<count>"]: a RESP2 array (or a RESP3 map) of one name/value pair.
      codec::FrameReader cfg(reply);
      codec::ReplyType type = codec::ReplyType::kArray;
      int64_t n = 0;
      std::string_view name;
      std::string_view value;
      bool nil = false;
      if (cfg.aggregate(&type, &n) &&
          ((type == codec::ReplyType::kArray && n == 2) ||
           (type == codec::ReplyType::kMap && n == 1)) &&
          cfg.bulk(&name, &nil) && cfg.bulk(&value, &nil) && !nil && cfg.atEnd()) {
        int64_t count = 0;
        const auto r = std::from_chars(value.data(), value.data() + value.size(), count);
        if (r.ec == std::errc() && r.ptr == value.data() + value.size() && count > 0) {
          ctx_.databases = count;
        }
      }
      break;
    }
    case kStepInfo: {
      std::string_view text;
      if (codec::FrameReader info(reply); info.string(&text)) {
        constexpr std::string_view kKey = "redis_version:";
        const size_t p = text.find(kKey);
        if (p != std::string_view::npos) {
          const size_t start = p + kKey.size();
          const size_t end = text.find_first_of("\r\n", start);
          ctx_.redis_version = std::string(text.substr(start, end - start));
        }
      }
      break;
    }
    default:
      break;
  }
  return true;
}

// The reply at the front is over limits.max_reply_bytes: ReplyParser drops it as it arrives, and
// its request gets an error now. Framing goes on, so everyone else's replies stay paired.
bool Connection::replyTooLarge() {
  counters().replies_too_large.fetch_add(1, std::memory_order_relaxed);
  const uint64_t limit = reply_limit_;
  if (last_too_large_log_ms_ < 0 || ctx_.now_ms - last_too_large_log_ms_ >= kFailureLogEveryMs) {
    log()->warn("upstream reply too large, dropped addr={} limit_bytes={} earlier_unlogged={}",
                addr_.text, limit, too_large_unlogged_);
    last_too_large_log_ms_ = ctx_.now_ms;
    too_large_unlogged_ = 0;
  } else {
    ++too_large_unlogged_;
  }
  if (inflight_.empty()) {
    if (pipe_sink_ != nullptr) {
      // An unsolicited frame (pub/sub, MONITOR) cannot be answered with an error in its place:
      // the client would take it for the reply to something else. The session ends visibly.
      fail("unavailable", Then::kReconnect);
      return false;
    }
    log()->error("upstream protocol desync addr={} reply with no request inflight=0", addr_.text);
    fail("unavailable", Then::kReconnect);
    return false;
  }
  const Inflight entry = inflight_.front();
  inflight_.pop_front();
  if (first_unsent_ > 0) --first_unsent_;
  if (entry.sink != nullptr) {
    entry.sink->onUpstreamReply(entry.seq, kReplyTooLarge);
    return fd_ >= 0;
  }
  return handleInternalReply(entry.seq, kReplyTooLarge);
}

}  // namespace corral::upstream
