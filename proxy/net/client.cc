#include "proxy/net/client.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <set>
#include <unordered_map>

#include "commands/command_table.h"
#include "config/logging.h"
#include "proxy/loop/clock.h"
#include "proxy/net/redact.h"
#include "proxy/net/worker.h"

namespace corral::net {

// Commands corral answers itself or refuses; looked up only for commands whose flags say they
// may be one (see kMaybeLocal), so GET/SET never pay for it.
enum class Client::Local : uint8_t {
  kPing,
  kEcho,
  kQuit,
  kHello,
  kAuth,
  kSelect,
  kReset,
  kClient,  // CLIENT container: SETINFO (unknown to Redis 7.0) is answered locally
  kClientSetname,
  kClientGetname,
  kClientId,
  kXread,  // blocking only with BLOCK
  kMulti,  // the following are served on a dedicated connection
  kExecDiscard,
  kWatch,
  kUnwatch,
  kBlocking,
  kInfo,       // forwarded; the reply gets corral's "# Proxy" section
  kConfigGet,  // forwarded; corral's upstream credentials are blanked in the reply
  kKeyspace,   // keyspace-wide reads: always the primary (SCAN, KEYS, DBSIZE, RANDOMKEY)
  kPipe,       // from here on the client talks to its own upstream connection, as a pipe
  kRefuse,     // needs connection state this version does not carry yet (pub/sub, RESP3, ...)
  kForward,    // not in the table: forwarded
};

namespace {

using Local = Client::Local;

const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = logging::get("net");
  return logger;
}

using commands::CommandInfo;

// An idle client's output buffer up to this size is kept between bursts.
constexpr size_t kKeepOutputBytes = 16 * 1024;

constexpr uint32_t kMaybeLocal = commands::kConnState | commands::kTransaction |
                                 commands::kBlocking | commands::kPubSub | commands::kNoKey;

const std::unordered_map<const CommandInfo*, Local>& localTable() {
  static const std::unordered_map<const CommandInfo*, Local> table = [] {
    std::unordered_map<const CommandInfo*, Local> t;
    auto add = [&t](std::initializer_list<std::string_view> args, Local what) {
      std::vector<std::string_view> v(args);
      const CommandInfo* c = commands::lookup(v);
      if (c != nullptr) t.emplace(c, what);
    };
    add({"ping"}, Local::kPing);
    add({"echo"}, Local::kEcho);
    add({"quit"}, Local::kQuit);
    add({"hello"}, Local::kHello);
    add({"auth"}, Local::kAuth);
    add({"select"}, Local::kSelect);
    add({"reset"}, Local::kReset);
    add({"client"}, Local::kClient);
    add({"info"}, Local::kInfo);
    add({"config", "get"}, Local::kConfigGet);
    for (std::string_view name : {"scan", "keys", "dbsize", "randomkey"}) {
      add({name}, Local::kKeyspace);
    }
    add({"client", "setname"}, Local::kClientSetname);
    add({"client", "getname"}, Local::kClientGetname);
    add({"client", "id"}, Local::kClientId);
    add({"xread"}, Local::kXread);
    add({"xreadgroup"}, Local::kXread);
    add({"multi"}, Local::kMulti);
    add({"exec"}, Local::kExecDiscard);
    add({"discard"}, Local::kExecDiscard);
    add({"watch"}, Local::kWatch);
    add({"unwatch"}, Local::kUnwatch);
    for (std::string_view name : {"blpop", "brpop", "blmove", "blmpop", "bzpopmin", "bzpopmax",
                                  "bzmpop", "brpoplpush", "wait", "waitaof"}) {
      add({name}, Local::kBlocking);
    }
    for (std::string_view name : {"subscribe", "psubscribe", "ssubscribe", "monitor"}) {
      add({name}, Local::kPipe);
    }
    // Unsubscribing while not subscribed: Redis answers on the connection itself, which is
    // what a pipe gives too (the reply says "0 subscriptions").
    for (std::string_view name : {"unsubscribe", "punsubscribe", "sunsubscribe"}) {
      add({name}, Local::kPipe);
    }
    for (std::string_view name : {"readonly", "readwrite", "asking", "sync", "psync", "replconf"}) {
      add({name}, Local::kRefuse);
    }
    for (std::string_view sub : {"tracking", "reply", "caching"}) {
      add({"client", sub}, Local::kPipe);
    }
    for (std::string_view sub :
         {"no-evict", "no-touch", "trackinginfo", "getredir", "pause", "unpause"}) {
      // PAUSE/UNPAUSE would stop every client of the shared connection's server: refused too.
      add({"client", sub}, Local::kRefuse);
    }
    // Any other blocking command would hold a shared connection: refuse it as well.
    for (const CommandInfo& c : commands::allCommands()) {
      if ((c.flags & commands::kBlocking) && !t.contains(&c)) t.emplace(&c, Local::kRefuse);
    }
    return t;
  }();
  return table;
}

// How long a blocking command may block, in ms: -1 for ever (a zero timeout), 0 when the
// argument is not a number (Redis will answer at once with an error).
int64_t blockMs(std::string_view name, const std::vector<std::string_view>& args) {
  auto seconds = [](std::string_view s) -> int64_t {
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v < 0) return 0;
    return v == 0 ? -1 : static_cast<int64_t>(v * 1000.0) + 1;
  };
  auto millis = [](std::string_view s) -> int64_t {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v < 0) return 0;
    return v == 0 ? -1 : v;
  };
  const size_t n = args.size();
  if (name == "blmpop" || name == "bzmpop") return n > 1 ? seconds(args[1]) : 0;
  if (name == "wait") return n > 2 ? millis(args[2]) : 0;
  if (name == "waitaof") return n > 3 ? millis(args[3]) : 0;
  if (name == "xread" || name == "xreadgroup") {
    for (size_t i = 1; i + 1 < n; ++i) {
      if (commands::equalsIgnoreCase(args[i], "STREAMS")) break;
      if (commands::equalsIgnoreCase(args[i], "BLOCK")) return millis(args[i + 1]);
    }
    return 0;
  }
  return n > 1 ? seconds(args[n - 1]) : 0;  // BLPOP, BRPOP, BZPOP*, BLMOVE, BRPOPLPUSH
}

bool parseInt(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string upperName(const CommandInfo* cmd, const codec::Request& req) {
  std::string s(req.args[0]);
  if (cmd != nullptr && cmd->name.find('|') != std::string_view::npos && req.args.size() > 1) {
    s.push_back(' ');
    s.append(req.args[1]);
  }
  for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

// GET k and PTTL k in one step, for fill policies with freshness rules.
constexpr std::string_view kGetWithPttl =
    "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}";

// A GET-like reply: nil (RESP2 "$-1"/"*-1", RESP3 "_") or an empty collection is a miss,
// an error neither, anything else a hit.
void countHitMiss(policies::PolicyCounters& c, std::string_view reply) {
  if (reply.size() > 1 && reply[0] == '$' && reply[1] != '-') {  // the common case: a value
    c.hits.add();
    return;
  }
  if (reply.empty() || reply[0] == '-' || reply[0] == '!') return;
  if (reply[0] == '_' || reply.starts_with("$-1") || reply.starts_with("*-1") ||
      reply.starts_with("*0\r") || reply.starts_with("%0\r") || reply.starts_with("~0\r")) {
    c.misses.add();
  } else {
    c.hits.add();
  }
}

}  // namespace

void HiddenCommands::add(std::initializer_list<std::string_view> args) {
  codec::appendArrayHeader(bytes_, args.size());
  for (std::string_view a : args) codec::appendBulk(bytes_, a);
  ends_.push_back(bytes_.size());
}

void HiddenCommands::append(const HiddenCommands& other) {
  const size_t base = bytes_.size();
  bytes_ += other.bytes_;
  for (size_t e : other.ends_) ends_.push_back(base + e);
}

void HiddenCommands::sendOn(upstream::Connection* conn, upstream::ReplySink* sink) const {
  size_t start = 0;
  for (size_t end : ends_) {
    conn->enqueue(sink, 0, std::string_view(bytes_).substr(start, end - start), 0);
    start = end;
  }
}

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

bool Client::dispatch(const codec::Request& request) {
  // Clients repeat commands: checking the previous one first skips the table's hashing.
  const CommandInfo* cmd = last_cmd_;
  if (cmd == nullptr || !commands::equalsIgnoreCase(request.args[0], cmd->name)) {
    cmd = commands::lookup(request.args);
    last_cmd_ =
        (cmd != nullptr && cmd->nsubcommands == 0 && cmd->name.find('|') == std::string_view::npos)
            ? cmd
            : nullptr;
  }
  if (cmd != nullptr) {
    // Counted per top-level command; subcommands are not counted.
    const int64_t idx = commands::topLevelIndex(cmd);
    if (idx >= 0 && static_cast<size_t>(idx) < Stats::kCommandSlots) {
      worker_.stats().per_command[idx].add();
      cur_cmd_ = static_cast<uint16_t>(idx);
    }
  }
  Local what = Local::kForward;
  if (cmd != nullptr && (cmd->flags & kMaybeLocal) != 0) {
    const auto& table = localTable();
    if (auto it = table.find(cmd); it != table.end()) what = it->second;
  }
  if (what == Local::kXread) {
    what = blockMs(cmd->name, request.args) != 0 ? Local::kBlocking : Local::kForward;
  }
  if (!authenticated_ && gateAuth(cmd, what, request)) return true;
  // Policies see every request but credentials (AUTH, and HELLO which may carry them).
  const codec::Request* use = &request;
  if (!worker_.policies().set().trivial() && what != Local::kAuth && what != Local::kHello &&
      !applyPolicies(cmd, request, &use)) {
    return true;
  }
  const codec::Request& req = *use;
  if (pipe_) {
    worker_.stats().requests.add();
    // Credentials are corral's business, never the upstream's, in pipe mode too.
    if (what == Local::kAuth) {
      handleLocal(cmd, what, req);
      return true;
    }
    if (pubsub_only_) trackPubsubRequest(req);
    forwardRaw(req);
    return true;
  }
  // HELLO 3: the client speaks RESP3 from now on; its own connection carries that.
  if (what == Local::kHello && req.args.size() >= 2 && req.args[1] == "3") {
    // Check HELLO's own options here; what goes upstream is HELLO 3 [SETNAME name].
    if (!helloOptionsOk(req)) return true;
    what = Local::kPipe;
  }
  if (what == Local::kPipe) {
    if (in_multi_) {
      worker_.stats().requests.add();
      forward(dedicated_.get(), req, 0);  // queued by Redis inside the transaction
      return true;
    }
    if (inflight_refs_ > 0) return false;  // earlier replies first
    worker_.stats().requests.add();
    if (dedicated_ == nullptr) {
      dedicated_ = worker_.acquireDedicated(db_, id_);
      if (dedicated_ == nullptr) {
        worker_.stats().upstream_errors.add();
        replyError("ERR corral: too many dedicated upstream connections (upstream.max_dedicated)");
        return true;
      }
    }
    pipe_ = true;
    watching_ = false;  // WATCH state lives on upstream; a pipe never unpins anyway
    // Pub/sub alone (RESP2) ends with the last unsubscribe; MONITOR, tracking, CLIENT REPLY and
    // RESP3 keep the pipe for the client's life.
    const std::string_view n = cmd != nullptr ? cmd->name : std::string_view();
    pubsub_only_ = n == "subscribe" || n == "psubscribe" || n == "ssubscribe" ||
                   n == "unsubscribe" || n == "punsubscribe" || n == "sunsubscribe";
    pubsub_expected_ = 0;
    dedicated_->setPipe(this);
    if (pubsub_only_) trackPubsubRequest(req);
    forwardRaw(req);
    return true;
  }
  if (dedicated_ != nullptr) {
    worker_.stats().requests.add();
    handlePinned(cmd, what, req);
    return true;
  }
  switch (what) {
    case Local::kMulti:
    case Local::kWatch:
    case Local::kBlocking:
      // State that lives on the connection: move to a dedicated one, once the requests already
      // sent on the shared connection are answered (so that they run before this one).
      if (inflight_refs_ > 0) return false;
      worker_.stats().requests.add();
      if (!commands::arityOk(*cmd, req.args.size())) {
        replyArity(cmd);
        return true;
      }
      dedicated_ = worker_.acquireDedicated(db_, id_);
      if (dedicated_ == nullptr) {
        worker_.stats().upstream_errors.add();
        replyError("ERR corral: too many dedicated upstream connections (upstream.max_dedicated)");
        return true;
      }
      handlePinned(cmd, what, req);
      return true;
    case Local::kExecDiscard:
      worker_.stats().requests.add();
      replyError(cmd->name == "exec" ? "ERR EXEC without MULTI" : "ERR DISCARD without MULTI");
      return true;
    case Local::kUnwatch:
      worker_.stats().requests.add();
      replyLocal("+OK\r\n");
      return true;
    case Local::kSelect:
      if (req.args.size() == 2) {
        int64_t db = 0;
        // A switch waits for the old db's replies, so requests keep their order.
        if (parseInt(req.args[1], db) && db != db_ && inflight_refs_ > 0) return false;
      }
      break;
    case Local::kInfo:
    case Local::kConfigGet: {
      worker_.stats().requests.add();
      Rewrite rw = Rewrite::kConfigGet;
      if (what == Local::kInfo) {
        // The Proxy section joins what Redis shows by default, "all", "everything" or "proxy".
        rw = req.args.size() == 1 ? Rewrite::kInfo : Rewrite::kNone;
        for (size_t i = 1; i < req.args.size(); ++i) {
          for (std::string_view s : {"all", "everything", "default", "proxy"}) {
            if (commands::equalsIgnoreCase(req.args[i], s)) rw = Rewrite::kInfo;
          }
        }
      }
      forward(worker_.route(false, primary_slot_, db_), req, 0, rw);
      return true;
    }
    case Local::kKeyspace:
      worker_.stats().requests.add();
      forward(worker_.route(false, primary_slot_, db_), req, 0);
      return true;
    case Local::kForward: {
      worker_.stats().requests.add();
      const bool read_only =
          cmd != nullptr && (cmd->flags & commands::kRead) && !(cmd->flags & commands::kWrite);
      upstream::Connection* conn = nullptr;
      if (policy_route_ == kRouteDefault) [[likely]] {
        conn = worker_.route(read_only, primary_slot_, db_);
      } else if (policy_route_ == kRoutePrimary) {
        conn = worker_.route(false, primary_slot_, db_);
      } else {
        conn = worker_.route(read_only, primary_slot_, db_,
                             static_cast<config::ReadFrom>(policy_route_));
      }
      forward(conn, req, 0);
      return true;
    }
    default:
      break;
  }
  worker_.stats().requests.add();
  if (!handleLocal(cmd, what, req)) forward(worker_.route(false, primary_slot_, db_), req, 0);
  return true;
}

void Client::handlePinned(const CommandInfo* cmd, Local what, const codec::Request& req) {
  // On a dedicated connection everything goes upstream (inside MULTI, Redis queues it) but
  // what belongs to the client's session with corral: QUIT, HELLO, AUTH, RESET and CLIENT
  // SETNAME/GETNAME/ID/SETINFO, and what stays refused.
  switch (what) {
    case Local::kQuit:
    case Local::kHello:
    case Local::kAuth:
    case Local::kClient:
    case Local::kClientSetname:
    case Local::kClientGetname:
    case Local::kClientId:
    case Local::kRefuse:
      if (!handleLocal(cmd, what, req)) forward(dedicated_.get(), req, 0);
      return;
    case Local::kReset:
      leaveMulti();
      handleLocal(cmd, what, req);
      maybeUnpin();
      return;
    case Local::kSelect: {
      if (in_multi_) {
        worker_.stats().refused_commands.add();
        replyError("ERR corral: SELECT inside MULTI is not supported by this version yet");
        return;
      }
      int64_t db = 0;
      if (req.args.size() == 2 && parseInt(req.args[1], db) && db >= 0 &&
          (worker_.databases() < 0 || db < worker_.databases())) {
        db_ = static_cast<int>(db);  // Redis switches this connection; later shared use follows
      }
      forward(dedicated_.get(), req, 0);
      return;
    }
    case Local::kMulti:
      forward(dedicated_.get(), req, 0);
      in_multi_ = true;  // a nested MULTI is an error in Redis and leaves MULTI on
      return;
    case Local::kExecDiscard: {
      const bool exec = cmd->name == "exec";
      if (exec && in_multi_ && multi_dirty_) {
        // corral refused a command of this transaction (Redis would have refused it at queue
        // time): Redis discards, the client sees EXECABORT as it would from Redis.
        codec::Request discard;
        discard.args = {"DISCARD"};
        discard.is_inline = true;
        forward(dedicated_.get(), discard, 0, Rewrite::kExecAbort);
      } else {
        forward(dedicated_.get(), req, 0);
      }
      if (in_multi_) {  // without MULTI: an error, WATCH stays
        // The queued writes' hidden commands, after the transaction, unseen by the client.
        if (exec && !multi_dirty_)
          multi_hidden_.sendOn(dedicated_.get(), worker_.policies().followupSink());
        leaveMulti();
      }
      return;
    }
    case Local::kWatch:
      forward(dedicated_.get(), req, 0);
      if (!in_multi_) watching_ = true;  // inside MULTI it is an error
      return;
    case Local::kUnwatch:
      forward(dedicated_.get(), req, 0);
      if (!in_multi_) watching_ = false;
      return;
    case Local::kBlocking: {
      // Inside MULTI nothing blocks; otherwise the command's own time plus a margin, or none.
      int64_t timeout = 0;
      if (!in_multi_) {
        const int64_t block = blockMs(cmd->name, req.args);
        if (block < 0) {
          timeout = -1;
        } else if (block > 0) {
          // Redis times blocked clients out from its cron (hz 10 by default), so the reply
          // can trail the block time by 100 ms or more: allow at least a second on top.
          timeout =
              block + std::max<int64_t>(worker_.upstreamConfig().command_timeout.count(), 1000);
        }
      }
      forward(dedicated_.get(), req, timeout);
      return;
    }
    default:
      forward(dedicated_.get(), req, 0);
      return;
  }
}

void Client::forwardRaw(const codec::Request& req) {
  if (!dedicated_->accepting()) {
    closeNow("dedicated upstream connection lost");
    return;
  }
  worker_.stats().forwarded.add();
  if (req.args.size() > 3 && commands::equalsIgnoreCase(req.args[0], "client") &&
      commands::equalsIgnoreCase(req.args[1], "tracking")) {
    // REDIRECT <id>: corral's id of the target becomes its dedicated connection's upstream id.
    std::vector<std::string_view> args(req.args.begin(), req.args.end());
    std::string translated;
    for (size_t i = 2; i + 1 < args.size(); ++i) {
      if (!commands::equalsIgnoreCase(args[i], "REDIRECT")) continue;
      int64_t target = 0;
      uint64_t upstream_id = 0;
      if (parseInt(args[i + 1], target) && target > 0 &&
          worker_.shared().ids.get(static_cast<uint64_t>(target), upstream_id)) {
        translated = std::to_string(upstream_id);
        args[i + 1] = translated;
      }
    }
    dedicated_->enqueueRaw(encode(args));
  } else if (req.args.size() > 2 && commands::equalsIgnoreCase(req.args[0], "hello")) {
    // HELLO <ver> [AUTH u p] [SETNAME n]: the client's credentials stay with corral.
    std::vector<std::string_view> args{req.args[0], req.args[1]};
    for (size_t i = 2; i < req.args.size(); ++i) {
      if (commands::equalsIgnoreCase(req.args[i], "AUTH") && i + 2 < req.args.size()) {
        i += 2;
      } else {
        args.push_back(req.args[i]);
      }
    }
    dedicated_->enqueueRaw(encode(args));
  } else {
    dedicated_->enqueueRaw(wireBytes(req));
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

void Client::maybeUnpin() {
  if (dedicated_ == nullptr || pipe_ || in_multi_ || watching_ || dedicated_->inflight() != 0) {
    return;
  }
  worker_.releaseDedicated(std::move(dedicated_));
}

void Client::replyArity(const CommandInfo* cmd) {
  std::string msg = "ERR wrong number of arguments for '";
  msg.append(cmd->name);
  msg.append("' command");
  replyError(msg);
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

bool Client::applyPolicies(const CommandInfo* cmd, const codec::Request& req,
                           const codec::Request** use) {
  policies::Decision& d = worker_.policies().decision();
  policies::RequestContext ctx = worker_.policies().context(identity());
  ctx.replay = policy_replay_;
  worker_.policies().set().decide(cmd, req.args, ctx, worker_.shared().policy_registry, d);
  if (!d.audit.empty() && !policy_replay_) [[unlikely]] {
    worker_.policies().logAudit(worker_.nowMs(), id_, d.audit);
  }
  if (d.verdict == policies::Decision::Verdict::kReject) {
    worker_.stats().requests.add();
    log()->debug("refused by policy client={} err={}", id_, d.error);
    rejectByPolicy(d.error);
    return false;
  }
  if (d.verdict == policies::Decision::Verdict::kRewrite) {
    rewritten_.args.assign(d.args.begin(), d.args.end());
    if (d.append_from == req.args.size() && !req.is_inline) {
      // Only arguments appended (SET k v -> SET k v PX n): the request's own bytes with a new
      // count, then the new arguments; nothing re-encoded.
      std::string& b = rewrite_buf_;
      b.clear();
      codec::appendArrayHeader(b, d.args.size());
      const size_t first_line = req.frame.find('\n') + 1;
      b.append(req.frame.substr(first_line));
      for (size_t i = d.append_from; i < d.args.size(); ++i) codec::appendBulk(b, d.args[i]);
      rewritten_.frame = b;
      rewritten_.is_inline = false;
    } else {
      // Re-encoded from the new args by wireBytes() (an "inline" request goes as multibulk).
      rewritten_.is_inline = true;
      rewritten_.frame = {};
    }
    *use = &rewritten_;
  }
  if (!d.followups.empty()) {
    if (pipe_) {
      // A pipe has no reply slots to hide a follow-up's reply in (see README, policies).
      worker_.shared().policy_registry.followups_skipped.add(d.followups.size());
    } else {
      for (const auto& [key, ms] : d.followups) {
        char num[24];
        const auto r = std::to_chars(num, num + sizeof num, ms);
        hidden_.add(
            {"PEXPIRE", key, std::string_view(num, static_cast<size_t>(r.ptr - num)), "NX"});
      }
    }
  }
  next_hitmiss_ = d.hitmiss;
  for (const auto& [key, distributed] : d.revoke) {
    // A write of a key that may be being filled: the fill must not store its (older) value.
    worker_.policies().fillEngine().revoke(key);
    if (distributed) {
      // Other corrals' fills too: their commit needs the lease, which this DEL takes away.
      const std::string lease = policies::fillKeys(key).lease;
      if (in_multi_ || pipe_) {
        // The client's own connection cannot carry a hidden command right now (a pipe's
        // frames would show it; inside MULTI it would wait for EXEC): delete the lease now on a
        // shared connection too. forward() sends a transaction's again right after EXEC.
        upstream::Connection* shared = worker_.route(false, primary_slot_, db_);
        if (shared->accepting())
          shared->enqueue(worker_.policies().followupSink(), 0, encode({"DEL", lease}), 0);
      }
      if (!pipe_) hidden_.add({"DEL", lease});
    }
  }
  if (d.fill != nullptr && db_ == worker_.defaultDb() && !pipe_ && dedicated_ == nullptr)
      [[unlikely]] {
    auto f = std::make_unique<FillReq>();
    f->set = worker_.policies().setPtr();
    f->policy = d.fill;
    f->key.assign(d.fill_key);
    f->path = d.fill_path;
    f->fresh = d.fill_fresh;
    if (f->fresh) {
      // One atomic read of the value and its remaining TTL (freshness needs both).
      rewritten_.args = {"EVAL", kGetWithPttl, "1", f->key};
      rewritten_.is_inline = true;
      rewritten_.frame = {};
      *use = &rewritten_;
    }
    next_fill_ = std::move(f);
  } else if (d.mget_count > 0 && db_ == worker_.defaultDb() && !pipe_ && dedicated_ == nullptr)
      [[unlikely]] {
    auto f = std::make_unique<FillReq>();
    f->set = worker_.policies().setPtr();
    for (size_t i = 0; i < d.mget_count; ++i) {
      const auto& m = d.mget_fills[i];
      f->mget.push_back(FillReq::Item{m.pos, m.policy, std::string(m.key), m.path});
    }
    next_fill_ = std::move(f);
  }
  if (d.read_your_writes_ms > 0 && cmd != nullptr) {
    if (cmd->flags & commands::kWrite) {
      noteWrite(d.ryw_key, d.read_your_writes_ms);
    } else if (recentlyWritten(d.ryw_key)) {
      policy_route_ = kRoutePrimary;
    }
  }
  if (d.has_read_from && policy_route_ == kRouteDefault) {
    policy_route_ = static_cast<int8_t>(d.read_from);
  }
  return true;
}

void Client::onFillReply(uint64_t idx, uint64_t seq, std::string_view reply) {
  std::unique_ptr<FillReq> f = std::move(pending_[idx].fill);
  // The keyspace hit ratio is Redis's: a miss that a fill answers is still a miss. The final
  // answer must not count again.
  policies::PolicyCounters* hitmiss = pending_[idx].hitmiss;
  pending_[idx].hitmiss = nullptr;
  // Every answer below goes through onUpstreamReply again (now without a fill): one path for
  // ordering, stats and closed clients. It gives back the reference taken here.
  ++inflight_refs_;
  worker_.stats().pending.add();
  if (!f->mget.empty()) {
    onMgetFillReply(seq, std::move(f), reply);
    return;
  }
  if (!f->fresh) {
    if (hitmiss != nullptr) countHitMiss(*hitmiss, reply);
    if (reply == "$-1\r\n") {
      startFill(seq, std::move(f), nullptr);
    } else {
      onUpstreamReply(seq, reply);
    }
    return;
  }
  // {value, pttl}: "*2\r\n$<n>\r\n<value>\r\n:<pttl>\r\n" or "*2\r\n$-1\r\n:-2\r\n".
  codec::FrameReader rd(reply);
  int64_t n = 0;
  std::string_view value;
  std::string_view bulk;  // the value's whole encoding, what a GET would have answered
  bool nil = false;
  int64_t pttl = -1;
  if (!(rd.array(&n) && n == 2 && rd.bulk(&value, &nil, &bulk) && rd.integer(&pttl) &&
        rd.atEnd())) {
    // An error (e.g. WRONGTYPE): the client sees Redis's text without the script's suffix
    // (" script: <sha>, on @user_script:1."), as if it had sent GET itself.
    const size_t cut = reply.find(" script: ");
    if (!reply.empty() && reply[0] == '-' && cut != std::string_view::npos) {
      std::string plain(reply.substr(0, cut));
      plain += "\r\n";
      onUpstreamReply(seq, plain);
    } else {
      onUpstreamReply(seq, reply);
    }
    return;
  }
  if (hitmiss != nullptr) countHitMiss(*hitmiss, bulk);
  if (nil) {
    startFill(seq, std::move(f), nullptr);
    return;
  }
  const policies::FillPolicy& p = worker_.policies().localFillPolicy(*f->policy, *f->set);
  switch (worker_.policies().fillEngine().onHit(p, f->key, f->path, pttl)) {
    case policies::FillEngine::HitAction::kServe:
    case policies::FillEngine::HitAction::kServeStale:
      onUpstreamReply(seq, bulk);
      return;
    case policies::FillEngine::HitAction::kWaitRefresh: {
      const std::string stale(value);
      startFill(seq, std::move(f), &stale);
      return;
    }
  }
}

void Client::onMgetFillReply(uint64_t seq, std::unique_ptr<FillReq> f, std::string_view reply) {
  // Split "*<n>\r\n" + n bulk strings into elements; anything else goes back as it is.
  std::vector<std::string_view> elems;
  std::vector<bool> missing;
  codec::FrameReader rd(reply);
  int64_t n = 0;
  bool ok = rd.array(&n) && n >= 0;
  for (int64_t i = 0; ok && i < n; ++i) {
    std::string_view raw;
    bool nil = false;
    ok = rd.bulk(nullptr, &nil, &raw);
    elems.push_back(raw);
    missing.push_back(nil);
  }
  ok = ok && rd.atEnd();
  auto job = std::make_shared<MgetJob>();
  if (ok) {
    for (auto& item : f->mget) {
      if (item.pos < elems.size() && missing[item.pos]) job->todo.push_back(item);
    }
  }
  if (!ok || job->todo.empty()) {
    onUpstreamReply(seq, reply);
    return;
  }
  job->seq = seq;
  job->set = f->set;
  job->elems.assign(elems.begin(), elems.end());
  pumpMget(job);
}

void Client::pumpMget(const std::shared_ptr<MgetJob>& job) {
  // At most kParallel fills of one MGET at a time: a 1,000-key MGET must not take every origin
  // slot (max_in_flight) of the worker.
  constexpr size_t kParallel = 8;
  while (job->running < kParallel && job->next < job->todo.size()) {
    const FillReq::Item& item = job->todo[job->next++];
    ++job->running;
    const policies::FillPolicy& p = worker_.policies().localFillPolicy(*item.policy, *job->set);
    const uint32_t at = item.pos;
    worker_.policies().fillEngine().onMiss(p, item.key, item.path, nullptr,
                                           [this, job, at](const policies::FillOutcome& o) {
                                             // A failed fill leaves the element nil (on_error:
                                             // error is for GET: an error inside MGET's array would
                                             // surprise clients).
                                             if (o.kind == policies::FillOutcome::Kind::kValue) {
                                               job->elems[at].clear();
                                               codec::appendBulk(job->elems[at], o.value);
                                             }
                                             --job->running;
                                             pumpMget(job);
                                           });
  }
  if (job->running == 0 && job->next == job->todo.size() && !job->answered) {
    job->answered = true;
    std::string out;
    codec::appendArrayHeader(out, job->elems.size());
    for (const std::string& e : job->elems) out += e;
    onUpstreamReply(job->seq, out);
  }
}

void Client::startFill(uint64_t seq, std::unique_ptr<FillReq> f, const std::string* stale) {
  const policies::FillPolicy& p = worker_.policies().localFillPolicy(*f->policy, *f->set);
  worker_.policies().fillEngine().onMiss(
      p, f->key, f->path, stale,
      [this, seq](const policies::FillOutcome& o) { onFillDone(seq, o); });
}

void Client::onFillDone(uint64_t seq, const policies::FillOutcome& o) {
  std::string reply;
  switch (o.kind) {
    case policies::FillOutcome::Kind::kValue:
      codec::appendBulk(reply, o.value);
      break;
    case policies::FillOutcome::Kind::kNil:
      codec::appendNullBulk(reply);
      break;
    case policies::FillOutcome::Kind::kError:
      codec::appendError(reply, o.error);
      break;
  }
  onUpstreamReply(seq, reply);
}

void Client::rejectByPolicy(std::string_view error) {
  if (pipe_) {
    // In pipe mode replies come from Redis in arrival order: let Redis return the error in its
    // turn, so it cannot overtake the replies still due.
    if (!dedicated_->accepting()) {
      closeNow("dedicated upstream connection lost");
      return;
    }
    dedicated_->enqueueRaw(encode({"EVAL", "return redis.error_reply(ARGV[1])", "0", error}));
    return;
  }
  if (in_multi_) multi_dirty_ = true;  // Redis would abort the transaction at EXEC
  replyError(error);
}

std::string_view Client::identity() const {
  if (!user_.empty()) return user_;
  if (!name_.empty()) return name_;
  return peer_ip_;
}

void Client::noteWrite(std::string_view key, int64_t window_ms) {
  constexpr size_t kMaxRecentWrites = 1024;
  const int64_t now = worker_.nowMs();
  if (ryw_.size() >= kMaxRecentWrites) {
    int64_t latest = now + window_ms;
    std::erase_if(ryw_, [now, &latest](const auto& e) {
      latest = std::max(latest, e.second);
      return e.second <= now;
    });
    if (ryw_.size() >= kMaxRecentWrites) {
      // Too many live keys to follow one by one: every read goes to the primary for a while.
      ryw_.clear();
      ryw_all_until_ = std::max(ryw_all_until_, latest);
      return;
    }
  }
  auto [it, inserted] = ryw_.try_emplace(std::string(key), now + window_ms);
  if (!inserted) it->second = now + window_ms;
}

bool Client::recentlyWritten(std::string_view key) const {
  const int64_t now = worker_.nowMs();
  if (now < ryw_all_until_) return true;
  if (ryw_.empty()) return false;
  auto it = ryw_.find(std::string(key));
  return it != ryw_.end() && it->second > now;
}

bool Client::handleLocal(const CommandInfo* cmd, Local what, const codec::Request& req) {
  if (what == Local::kForward) return false;
  const auto& args = req.args;
  const size_t n = args.size();
  if (what != Local::kClient && what != Local::kRefuse && !commands::arityOk(*cmd, n)) {
    replyArity(cmd);
    return true;
  }
  worker_.stats().local_replies.add();
  std::string& out = worker_.scratch();
  out.clear();
  switch (what) {
    case Local::kPing:
      if (n > 2) {
        replyError("ERR wrong number of arguments for 'ping' command");
        return true;
      }
      if (n == 1) {
        replyLocal("+PONG\r\n");
      } else {
        codec::appendBulk(out, args[1]);
        replyLocal(out);
      }
      return true;
    case Local::kEcho:
      codec::appendBulk(out, args[1]);
      replyLocal(out);
      return true;
    case Local::kQuit:
      replyLocal("+OK\r\n");
      close_after_flush_ = true;
      setReadEnabled(false);
      return true;
    case Local::kAuth:
      if (n > 3) {
        replyError("ERR syntax error");
      } else if (worker_.shared().auth->enabled()) {
        if (authenticate(n == 2 ? kDefaultUser : args[1], args[n - 1])) replyLocal("+OK\r\n");
      } else if (n == 2) {
        replyError(kNoPasswordConfiguredError);
      } else if (commands::equalsIgnoreCase(args[1], kDefaultUser)) {
        replyLocal("+OK\r\n");  // like Redis's nopass default user: any password
      } else {
        replyError(kWrongPassError);
      }
      return true;
    case Local::kHello: {
      if (n >= 2) {
        int64_t ver = 0;
        if (!parseInt(args[1], ver)) {
          replyError("ERR Protocol version is not an integer or out of range");
          return true;
        }
        if (ver != 2) {
          // RESP3 needs per-client protocol state on a dedicated connection (next issue).
          // NOPROTO makes clients fall back to RESP2, as they do with Redis 5.
          replyError("NOPROTO unsupported protocol version");
          return true;
        }
      }
      if (!helloOptionsOk(req)) return true;
      for (size_t i = 2; i + 1 < n; ++i) {
        if (commands::equalsIgnoreCase(args[i], "AUTH")) {
          i += 2;
        } else if (commands::equalsIgnoreCase(args[i], "SETNAME")) {
          name_ = std::string(args[++i]);
        }
      }
      const std::string& version = worker_.redisVersion();
      codec::appendArrayHeader(out, 14);
      codec::appendBulk(out, "server");
      codec::appendBulk(out, "redis");
      codec::appendBulk(out, "version");
      codec::appendBulk(out, version.empty() ? std::string_view("7.0.0") : version);
      codec::appendBulk(out, "proto");
      codec::appendInteger(out, 2);
      codec::appendBulk(out, "id");
      codec::appendInteger(out, static_cast<int64_t>(id_));
      codec::appendBulk(out, "mode");
      codec::appendBulk(out, "standalone");
      codec::appendBulk(out, "role");
      codec::appendBulk(out, "master");
      codec::appendBulk(out, "modules");
      codec::appendArrayHeader(out, 0);
      replyLocal(out);
      return true;
    }
    case Local::kSelect: {
      // Each db has its own shared connections, so a client's db is corral's to track.
      int64_t db = 0;
      if (!parseInt(args[1], db)) {
        replyError("ERR value is not an integer or out of range");
      } else if (db < 0 || (worker_.databases() > 0 && db >= worker_.databases()) ||
                 db > INT32_MAX) {
        replyError("ERR DB index is out of range");
      } else {
        db_ = static_cast<int>(db);
        replyLocal("+OK\r\n");
      }
      return true;
    }
    case Local::kReset:
      name_.clear();
      user_.clear();
      ryw_.clear();
      ryw_all_until_ = 0;
      db_ = worker_.defaultDb();
      authenticated_ = !worker_.shared().auth->enabled();
      replyLocal("+RESET\r\n");
      return true;
    case Local::kClientSetname:
      for (char ch : args[2]) {
        if (ch < '!' || ch > '~') {
          replyError("ERR Client names cannot contain spaces, newlines or special characters.");
          return true;
        }
      }
      name_ = std::string(args[2]);
      replyLocal("+OK\r\n");
      return true;
    case Local::kClientGetname:
      if (name_.empty()) {
        replyLocal("$-1\r\n");
      } else {
        codec::appendBulk(out, name_);
        replyLocal(out);
      }
      return true;
    case Local::kClientId:
      codec::appendInteger(out, static_cast<int64_t>(id_));
      replyLocal(out);
      return true;
    case Local::kClient:
      // CLIENT SETINFO (Redis 7.2) is sent by current client libraries at connect time.
      if (n >= 2 && commands::equalsIgnoreCase(args[1], "setinfo")) {
        if (n != 4) {
          replyError("ERR wrong number of arguments for 'client|setinfo' command");
        } else if (!commands::equalsIgnoreCase(args[2], "lib-name") &&
                   !commands::equalsIgnoreCase(args[2], "lib-ver")) {
          std::string msg = "ERR Unrecognized option '";
          msg.append(args[2]);
          msg.push_back('\'');
          replyError(msg);
        } else {
          replyLocal("+OK\r\n");
        }
        return true;
      }
      worker_.stats().local_replies.sub();
      return false;
    case Local::kXread: {
      bool blocking = false;
      for (size_t i = 1; i < n; ++i) {
        if (commands::equalsIgnoreCase(args[i], "STREAMS")) break;
        if (commands::equalsIgnoreCase(args[i], "BLOCK")) blocking = true;
      }
      if (!blocking) {
        worker_.stats().local_replies.sub();
        return false;
      }
      [[fallthrough]];
    }
    case Local::kForward:
    case Local::kMulti:
    case Local::kExecDiscard:
    case Local::kWatch:
    case Local::kUnwatch:
    case Local::kBlocking:
    case Local::kInfo:
    case Local::kConfigGet:
    case Local::kKeyspace:
    case Local::kPipe:
      worker_.stats().local_replies.sub();
      return false;  // handled by handleRequest/handlePinned
    case Local::kRefuse: {
      worker_.stats().refused_commands.add();
      std::string msg = "ERR corral: ";
      msg.append(upperName(cmd, req));
      msg.append(
          " needs a dedicated upstream connection (connection state); not supported by this "
          "version of corral yet");
      replyError(msg);
      return true;
    }
  }
  return false;
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
    countHitMiss(*pending_[idx].hitmiss, reply);
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

void Client::onPipe(uint64_t seq, std::string_view frame) {
  if (closed()) return;
  if (seq == upstream::kPipeClosed) {
    // Redis closed the connection (QUIT, or it went away): so does corral, after the output.
    close_after_flush_ = true;
    setReadEnabled(false);
    worker_.markDirty(this);
    return;
  }
  deliver(frame);
  if (overSubscriberLimits()) return;
  if (pubsub_only_) trackPubsubReply(frame);
}

bool Client::overSubscriberLimits() {
  // A subscriber that does not read must not grow corral's memory: like Redis's
  // client-output-buffer-limit pubsub, a hard limit, and a soft one with a grace time
  // (checked as frames arrive and as the client's socket drains).
  const config::Limits& l = worker_.limits();
  const size_t queued = out_.readable();
  bool cut = queued > l.pubsub_hard_bytes;
  if (queued > l.pubsub_soft_bytes) {
    if (soft_since_ms_ < 0) soft_since_ms_ = worker_.nowMs();
    cut = cut || worker_.nowMs() - soft_since_ms_ >= l.pubsub_soft_time.count();
  } else {
    soft_since_ms_ = -1;
  }
  if (!cut) return false;
  worker_.stats().slow_consumers.add();
  log()->warn("slow subscriber disconnected client={} peer={} queued_bytes={}", id_, peer_, queued);
  closeNow("output buffer limit");
  return true;
}

namespace {

// The first element of an array/push frame ("message", "subscribe", ...) and, for the
// (un)subscribe confirmations, the count that ends them; false for other frames.
bool pubsubKind(std::string_view f, std::string_view& kind) {
  if (f.size() < 4 || (f[0] != '*' && f[0] != '>')) return false;
  size_t p = f.find("\r\n");
  if (p == std::string_view::npos || p + 1 >= f.size() || f[p + 2] != '$') return false;
  size_t q = f.find("\r\n", p + 2);
  if (q == std::string_view::npos) return false;
  int64_t len = 0;
  for (size_t i = p + 3; i < q; ++i) {
    if (f[i] < '0' || f[i] > '9') return false;
    len = len * 10 + (f[i] - '0');
  }
  if (q + 2 + static_cast<size_t>(len) > f.size()) return false;
  kind = f.substr(q + 2, static_cast<size_t>(len));
  return true;
}

}  // namespace

void Client::trackPubsubReply(std::string_view frame) {
  std::string_view kind;
  const bool typed = pubsubKind(frame, kind);
  if (typed && (kind == "message" || kind == "pmessage" || kind == "smessage")) return;
  if (pubsub_expected_ > 0) --pubsub_expected_;
  // Back to the shared connection once nothing is subscribed and every reply is in: the
  // issue's "until the last unsubscribe". The dedicated connection is closed.
  if (pubsub_expected_ == 0 && channels_.empty() && patterns_.empty() && shard_channels_.empty()) {
    pipe_ = false;
    pubsub_only_ = false;
    soft_since_ms_ = -1;
    dedicated_->setPipe(nullptr);
    worker_.releaseDedicated(std::move(dedicated_));
  }
}

void Client::trackPubsubRequest(const codec::Request& req) {
  const auto& a = req.args;
  auto sub = [&](std::set<std::string>& set) {
    for (size_t i = 1; i < a.size(); ++i) set.emplace(a[i]);
    pubsub_expected_ += a.size() - 1;
  };
  auto unsub = [&](std::set<std::string>& set) {
    if (a.size() == 1) {
      pubsub_expected_ += std::max<size_t>(set.size(), 1);  // one reply per channel, or one
      set.clear();
    } else {
      for (size_t i = 1; i < a.size(); ++i) set.erase(std::string(a[i]));
      pubsub_expected_ += a.size() - 1;
    }
  };
  const std::string_view n = a[0];
  if (commands::equalsIgnoreCase(n, "subscribe")) {
    sub(channels_);
  } else if (commands::equalsIgnoreCase(n, "psubscribe")) {
    sub(patterns_);
  } else if (commands::equalsIgnoreCase(n, "ssubscribe")) {
    sub(shard_channels_);
  } else if (commands::equalsIgnoreCase(n, "unsubscribe")) {
    unsub(channels_);
  } else if (commands::equalsIgnoreCase(n, "punsubscribe")) {
    unsub(patterns_);
  } else if (commands::equalsIgnoreCase(n, "sunsubscribe")) {
    unsub(shard_channels_);
  } else if (commands::equalsIgnoreCase(n, "reset")) {
    channels_.clear();
    patterns_.clear();
    shard_channels_.clear();
    pubsub_expected_ += 1;
  } else if (commands::equalsIgnoreCase(n, "quit")) {
    pubsub_expected_ += 1;
  } else if (commands::equalsIgnoreCase(n, "hello") || commands::equalsIgnoreCase(n, "monitor") ||
             commands::equalsIgnoreCase(n, "client")) {
    // RESP3, MONITOR, tracking or reply modes keep the pipe for the client's life.
    pubsub_only_ = false;
  } else {
    pubsub_expected_ += 1;  // PING, or a command Redis refuses in this context: one reply
  }
}

bool Client::authenticate(std::string_view user, std::string_view password) {
  const Authenticator& auth = *worker_.shared().auth;
  if (auth.check(user, password)) {
    authenticated_ = true;
    user_.assign(user);
    return true;
  }
  worker_.stats().auth_failures.add();
  log()->debug("auth failed client={} peer={}", id_, peer_);  // never the credentials
  replyError(kWrongPassError);
  return false;
}

bool Client::gateAuth(const CommandInfo* cmd, Local what, const codec::Request& req) {
  if (!worker_.shared().auth->enabled()) {
    authenticated_ = true;  // nothing to check: stop asking
    return false;
  }
  switch (what) {
    case Local::kAuth:
    case Local::kQuit:
    case Local::kReset:
    case Local::kPing:
      // PING too, unlike Redis with requirepass: health checks must not need the app's
      // password (the corral contract lists AUTH, HELLO, PING and QUIT).
      return false;  // handleLocal answers these
    case Local::kHello: {
      for (size_t i = 2; i + 2 < req.args.size(); ++i) {
        if (commands::equalsIgnoreCase(req.args[i], "AUTH")) return false;
      }
      worker_.stats().requests.add();
      replyError(kHelloNoAuthError);
      return true;
    }
    default:
      (void)cmd;
      worker_.stats().requests.add();
      replyError(kNoAuthError);
      return true;
  }
}

bool Client::helloOptionsOk(const codec::Request& req) {
  const auto& args = req.args;
  for (size_t i = 2; i < args.size(); ++i) {
    if (commands::equalsIgnoreCase(args[i], "AUTH") && i + 2 < args.size()) {
      if (worker_.shared().auth->enabled()) {
        if (!authenticate(args[i + 1], args[i + 2])) return false;
      } else if (!commands::equalsIgnoreCase(args[i + 1], kDefaultUser)) {
        replyError(kWrongPassError);
        return false;
      }
      i += 2;
    } else if (commands::equalsIgnoreCase(args[i], "SETNAME") && i + 1 < args.size()) {
      ++i;
    } else {
      std::string msg = "ERR Syntax error in HELLO option '";
      msg.append(args[i]);
      msg.push_back('\'');
      replyError(msg);
      return false;
    }
  }
  return true;
}

std::string Client::rewriteReply(Rewrite rewrite, std::string_view reply) {
  std::string out;
  if (rewrite == Rewrite::kExecAbort) {
    if (!reply.empty() && reply[0] == '-') return std::string(reply);  // DISCARD failed: say so
    return "-EXECABORT Transaction discarded because of previous errors.\r\n";
  }
  if (rewrite == Rewrite::kConfigGet) {
    if (!redactConfigGetReply(reply, out)) out.assign(reply);
    return out;
  }
  // INFO: a bulk string "$<len>\r\n<text>\r\n" (RESP3 may send a verbatim "=<len>\r\ntxt:").
  if (reply.empty() || (reply[0] != '$' && reply[0] != '=')) return std::string(reply);
  const size_t hdr = reply.find("\r\n");
  if (hdr == std::string_view::npos || reply.size() < hdr + 4) return std::string(reply);
  std::string text(reply.substr(hdr + 2, reply.size() - hdr - 4));
  if (!text.empty()) {
    if (text.back() != '\n') text.append("\r\n");
    text.append("\r\n");
  }
  appendProxyInfo(text);
  out.push_back(reply[0]);
  out.append(std::to_string(text.size()));
  out.append("\r\n");
  out.append(text);
  out.append("\r\n");
  return out;
}

void Client::appendProxyInfo(std::string& text) {
  const SharedState& sh = worker_.shared();
  uint64_t requests = 0, forwarded = 0, local = 0, upstream_errors = 0, refused = 0;
  uint64_t dedicated = 0, ready = 0, total = 0, primary_ready = 0;
  for (const auto& b : sh.stats.blocks) {
    requests += b->requests.get();
    forwarded += b->forwarded.get();
    local += b->local_replies.get();
    upstream_errors += b->upstream_errors.get();
    refused += b->refused_commands.get();
    dedicated += b->dedicated.get();
    ready += b->upstreams_ready.get();
    total += b->upstreams_total.get();
    primary_ready += b->primary_ready.get();
  }
  auto line = [&text](std::string_view k, const std::string& v) {
    text.append(k);
    text.push_back(':');
    text.append(v);
    text.append("\r\n");
  };
  text.append("# Proxy\r\n");
  line("corral_version", CORRAL_VERSION);
  line("corral_uptime_in_seconds", std::to_string((loop::monotonicMs() - sh.started_ms) / 1000));
  line("corral_connected_clients", std::to_string(sh.clients.load(std::memory_order_relaxed)));
  line("corral_dedicated_connections", std::to_string(dedicated));
  line("corral_upstream_primary", worker_.upstreamConfig().primary.text);
  // This worker's view, live (the counters are refreshed by the worker's tick only).
  line("corral_upstream_primary_status",
       worker_.primaryReady() || primary_ready > 0 ? "up" : "down");
  line("corral_upstream_replicas", std::to_string(worker_.upstreamConfig().replicas.size()));
  line("corral_upstream_connections_ready", std::to_string(ready) + "/" + std::to_string(total));
  line("corral_requests", std::to_string(requests));
  line("corral_requests_forwarded", std::to_string(forwarded));
  line("corral_local_replies", std::to_string(local));
  line("corral_upstream_errors", std::to_string(upstream_errors));
  line("corral_refused_commands", std::to_string(refused));
  // Per-command calls, like Redis's "# Commandstats" (top-level commands only).
  const auto all = commands::allCommands();
  for (size_t i = 0; i < all.size() && i < Stats::kCommandSlots; ++i) {
    uint64_t calls = 0;
    for (const auto& b : sh.stats.blocks) calls += b->per_command[i].get();
    if (calls == 0) continue;
    std::string k = "corral_cmdstat_";
    k.append(all[i].name);
    line(k, "calls=" + std::to_string(calls));
  }
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
