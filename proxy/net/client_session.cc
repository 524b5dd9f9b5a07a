// Client: the session's connection state: shared connections, a dedicated connection
// (MULTI/WATCH, blocking commands) and pipe mode (pub/sub, MONITOR, tracking, RESP3).
#include <algorithm>

#include "commands/command_table.h"
#include "proxy/net/client.h"
#include "proxy/net/command_kind.h"
#include "proxy/net/log.h"
#include "proxy/net/worker.h"

namespace corral::net {

using commands::CommandInfo;

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
  // Per command or subcommand (client|setname); once, also for a request that had to wait.
  cur_cmd_ = policy_replay_ ? Stats::Worker::commandSlot(cmd) : worker_.stats().countCommand(cmd);
  CommandKind what = classify(cmd, request.args);
  if (!authenticated_ && gateAuth(cmd, what, request)) return true;
  // Policies see every request but credentials (AUTH, and HELLO which may carry them).
  const codec::Request* use = &request;
  if (!worker_.policies().set().trivial() && what != CommandKind::kAuth &&
      what != CommandKind::kHello && !applyPolicies(cmd, request, &use)) {
    return true;
  }
  const codec::Request& req = *use;
  if (pipe_) {
    worker_.stats().requests.add();
    // Credentials are corral's business, never the upstream's, in pipe mode too.
    if (what == CommandKind::kAuth) {
      handleLocal(cmd, what, req);
      return true;
    }
    if (pubsub_only_) trackPubsubRequest(req);
    forwardRaw(req);
    return true;
  }
  // HELLO 3: the client speaks RESP3 from now on; its own connection carries that.
  if (what == CommandKind::kHello && req.args.size() >= 2 && req.args[1] == "3") {
    // Check HELLO's own options here; what goes upstream is HELLO 3 [SETNAME name].
    if (!helloOptionsOk(req)) return true;
    what = CommandKind::kPipe;
  }
  if (what == CommandKind::kPipe) {
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
    case CommandKind::kMulti:
    case CommandKind::kWatch:
    case CommandKind::kBlocking:
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
    case CommandKind::kExecDiscard:
      worker_.stats().requests.add();
      replyError(cmd->name == "exec" ? "ERR EXEC without MULTI" : "ERR DISCARD without MULTI");
      return true;
    case CommandKind::kUnwatch:
      worker_.stats().requests.add();
      replyLocal("+OK\r\n");
      return true;
    case CommandKind::kSelect:
      if (req.args.size() == 2) {
        int64_t db = 0;
        // A switch waits for the old db's replies, so requests keep their order.
        if (parseInt(req.args[1], db) && db != db_ && inflight_refs_ > 0) return false;
      }
      break;
    case CommandKind::kInfo:
    case CommandKind::kConfigGet: {
      worker_.stats().requests.add();
      Rewrite rw = Rewrite::kConfigGet;
      if (what == CommandKind::kInfo) {
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
    case CommandKind::kKeyspace:
      worker_.stats().requests.add();
      forward(worker_.route(false, primary_slot_, db_), req, 0);
      return true;
    case CommandKind::kForward: {
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

void Client::handlePinned(const CommandInfo* cmd, CommandKind what, const codec::Request& req) {
  // On a dedicated connection everything goes upstream (inside MULTI, Redis queues it) but
  // what belongs to the client's session with corral: QUIT, HELLO, AUTH, RESET and CLIENT
  // SETNAME/GETNAME/ID/SETINFO, and what stays refused.
  switch (what) {
    case CommandKind::kQuit:
    case CommandKind::kHello:
    case CommandKind::kAuth:
    case CommandKind::kClient:
    case CommandKind::kClientSetname:
    case CommandKind::kClientGetname:
    case CommandKind::kClientId:
    case CommandKind::kRefuse:
      if (!handleLocal(cmd, what, req)) forward(dedicated_.get(), req, 0);
      return;
    case CommandKind::kReset:
      leaveMulti();
      handleLocal(cmd, what, req);
      maybeUnpin();
      return;
    case CommandKind::kSelect: {
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
    case CommandKind::kMulti:
      forward(dedicated_.get(), req, 0);
      in_multi_ = true;  // a nested MULTI is an error in Redis and leaves MULTI on
      return;
    case CommandKind::kExecDiscard: {
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
    case CommandKind::kWatch:
      forward(dedicated_.get(), req, 0);
      if (!in_multi_) watching_ = true;  // inside MULTI it is an error
      return;
    case CommandKind::kUnwatch:
      forward(dedicated_.get(), req, 0);
      if (!in_multi_) watching_ = false;
      return;
    case CommandKind::kBlocking: {
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

void Client::maybeUnpin() {
  if (dedicated_ == nullptr || pipe_ || in_multi_ || watching_ || dedicated_->inflight() != 0) {
    return;
  }
  worker_.releaseDedicated(std::move(dedicated_));
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

}  // namespace corral::net
