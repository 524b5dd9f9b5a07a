// Client: dispatch. Each request is classified (command_kind.h), turned into a session event,
// and the session's step (session.h) says where it goes and what happens to the dedicated
// connection; this file carries the step out.
#include <algorithm>

#include "commands/command_table.h"
#include "proxy/net/client.h"
#include "proxy/net/log.h"
#include "proxy/net/worker.h"

namespace corral::net {

using commands::CommandInfo;

namespace {
// INFO's Proxy section joins what Redis shows by default, "all", "everything" or "proxy".
bool infoShowsProxy(std::span<const std::string_view> args) {
  if (args.size() == 1) return true;
  for (size_t i = 1; i < args.size(); ++i) {
    for (std::string_view s : {"all", "everything", "default", "proxy"}) {
      if (commands::equalsIgnoreCase(args[i], s)) return true;
    }
  }
  return false;
}

// A HELLO's protocol version argument: 0 when absent or not 2/3 (hello() answers the error).
int helloVersion(const std::vector<std::string_view>& args) {
  int64_t v = 0;
  if (args.size() < 2 || !parseInt(args[1], v) || (v != 2 && v != 3)) return 0;
  return static_cast<int>(v);
}

}  // namespace

bool Client::handleRequest(const codec::Request& request) {
  const bool done = dispatch(request);
  // Nothing armed for this request outlives it (only the policy engine arms anything).
  if (!worker_.policiesTrivial()) armed().reset();
  cur_cmd_ = kNoCommand;
  cur_flags_ = 0;
  return done;
}

Event Client::eventOf(const CommandInfo* cmd, CommandKind kind, const codec::Request& req) {
  using K = CommandKind;
  if (kind == K::kUnknown) {
    // Redis's own unknown-command error when refused, as Redis would answer it (in a
    // transaction too: EXEC then aborts, as Redis's would).
    return worker_.rejectUnknownCommands() ? Event::kRefused : Event::kCommand;
  }
  if (kind != K::kForward && kind != K::kInfo && kind != K::kConfigGet && kind != K::kKeyspace &&
      kind != K::kBusy && kind != K::kClientUnblock && kind != K::kClientTracking &&
      kind != K::kClientSetinfo && !commandError(cmd, req.args).empty()) {
    // A malformed command that would change the session: Redis refuses it before running it.
    return Event::kRefused;
  }
  switch (kind) {
    case K::kForward:
    case K::kUnknown:
    case K::kInfo:
    case K::kConfigGet:
    case K::kKeyspace:
    case K::kBusy:
    case K::kClientUnblock:
    case K::kClientTrackinginfo:
      return Event::kCommand;
    case K::kPing:
    case K::kEcho:
      return Event::kPing;
    case K::kQuit:
      return Event::kQuit;
    case K::kReset:
      return Event::kReset;
    case K::kSelect:
      return Event::kSelect;
    case K::kHello: {
      const int ver = helloVersion(req.args);
      if (inMulti() && worker_.passthrough() && helloLogsIn(req.args)) {
        return Event::kRefused;  // as AUTH above
      }
      if (ver == 0 || ver == proto_) return Event::kLocal;
      if (inMulti()) return Event::kRefused;  // would switch the protocol halfway through EXEC
      // With a cluster, the nodes' RESP3 connections serve RESP3 clients: no connection is held.
      return ver == 3 && worker_.cluster() == nullptr ? Event::kEnterPush : Event::kLocal;
    }
    case K::kAuth:
      // Passthrough: the user of the connection would change inside EXEC, which corral cannot
      // follow there (README "The app's own credentials").
      if (inMulti() && worker_.passthrough()) return Event::kRefused;
      return Event::kLocal;
    case K::kClientSetinfo:
    case K::kClientSetname:
    case K::kClientGetname:
    case K::kClientId:
    case K::kClientList:
    case K::kClientInfo:
    case K::kClientKill:
    case K::kClientGetredir:
      return Event::kLocal;
    case K::kClientReply:
      return Event::kReplyMode;
    case K::kClientTracking:
      if (req.args.size() >= 3 && commands::equalsIgnoreCase(req.args[2], "on")) {
        return Event::kEnterPush;
      }
      return Event::kCommand;  // OFF (harmless anywhere) or a syntax error Redis answers
    case K::kMulti:
      return Event::kMulti;
    case K::kExec:
      return Event::kExec;
    case K::kDiscard:
      return Event::kDiscard;
    case K::kWatch:
      return Event::kWatch;
    case K::kUnwatch:
      return Event::kUnwatch;
    case K::kBlocking:
      return Event::kBlocking;
    case K::kSubscribe:
      // RESP3 (on shared cluster connections till now): pushes, not the RESP2 subscribed context.
      if (proto_ == 3 && st_.link != Link::kPush) return Event::kEnterPush;
      return Event::kSubscribe;
    case K::kUnsubscribe:
      return Event::kUnsubscribe;
    case K::kMonitor:
      return Event::kEnterPush;
    case K::kRefuse:
      return Event::kRefused;
  }
  return Event::kCommand;
}

bool Client::dispatch(const codec::Request& req) {
  // Clients repeat commands: checking the previous one first skips the table's hashing.
  const CommandInfo* cmd = last_cmd_;
  if (cmd == nullptr || !commands::isCommandName(req.args[0], cmd->name)) {
    cmd = commands::lookup(req.args);
    last_cmd_ =
        (cmd != nullptr && cmd->nsubcommands == 0 && cmd->name.find('|') == std::string_view::npos)
            ? cmd
            : nullptr;
  }
  // A CLIENT LIST/KILL answered by other workers holds its slot until it is back; nothing
  // may be sent behind it meanwhile (a dedicated connection's frames pair with the head slot).
  if (fanout_pending_) return false;
  // A read of the near cache's is on its way on the tracking connection: what could change its
  // key waits for it, as Redis would run the read first (reads may go on meanwhile).
  if (near_fill_seq_ > head_seq_ && !commands::readsOnly(cmd)) [[unlikely]]
    return false;
  const CommandKind kind = classify(cmd, req.args);
  if (kind == CommandKind::kForward && st_.link == Link::kShared && authenticated_ && !reply_off_ &&
      !reply_skip_) [[likely]] {
    // The step almost every request takes, a plain command on shared connections (session.h:
    // kShared + kCommand -> kShared, route kShared), taken here without the general path.
    const bool policies = !worker_.policiesTrivial();
    if (policies && !decidePolicies(cmd, req)) return false;  // parsed again with the credits
    cur_cmd_ = worker_.stats().countCommand(cmd);
    worker_.stats().requests.add();
    last_full_ = cmd;
    const codec::Request* use = &req;
    if (policies && !applyPolicies(cmd, req, &use)) return true;
    forwardShared(cmd, *use);
    return true;
  }
  if (!authenticated_ && gateAuth(cmd, kind, req)) return true;
  const Event ev = eventOf(cmd, kind, req);
  const Step s = step(st_, ev, pending_.empty());
  if (s.wait) return false;  // parsed again once every earlier request is answered
  if (worker_.cluster() != nullptr && s.route == Route::kDedicated &&
      clusterWaits(cmd, kind, req)) {
    return false;  // likewise: its connection moves, or it goes elsewhere than those before
  }
  if (s.route == Route::kDedicated && nearWaits()) return false;  // likewise (client_near.cc)
  if (s.route == Route::kDedicated && fillHeldWaits(cmd)) return false;  // client_fill_hash.cc
  // Passthrough: credentials wait for Redis's verdict first; the verdicts are dropped once the
  // request has run, so a later AUTH asks again (or finds the cache).
  struct DropVerdicts {
    Client* c = nullptr;
    ~DropVerdicts() {
      if (c != nullptr && c->extras_ != nullptr) c->extras_->verdicts.clear();
    }
  } drop_verdicts;
  if ((kind == CommandKind::kAuth || kind == CommandKind::kHello) &&
      (s.route == Route::kLocal || s.route == Route::kDedicated) && worker_.passthrough()) {
    bool logs_in = false;
    if (!credentialsReady(kind, req.args, &logs_in)) return false;  // parsed again with it
    // What follows a login goes to the user's pool: what came before must be answered first,
    // on the connections it went to (as for SELECT), or Redis could run it later.
    if (logs_in && !pending_.empty()) return false;
    drop_verdicts.c = this;
  }
  // Passthrough: CLIENT LIST/KILL show and act on other clients; a user runs them only if
  // Redis's ACL lets it (UserPools::permitted).
  std::string denial;
  if (user_pool_ != nullptr &&
      (kind == CommandKind::kClientList || kind == CommandKind::kClientKill) &&
      (s.route == Route::kLocal || s.route == Route::kTxPlaceholder) &&
      !adminPermitted(kind, &denial)) {
    return false;  // parsed again with Redis's answer
  }

  const bool decided = s.route == Route::kShared || s.route == Route::kDedicated ||
                       s.route == Route::kLocal || s.route == Route::kTxPlaceholder;
  // Policies see every request but credentials (AUTH, and HELLO which may carry them), and
  // decide before anything of it is done: a global rate limit may make it wait.
  const bool policies = decided && kind != CommandKind::kAuth && kind != CommandKind::kHello &&
                        !worker_.policiesTrivial() && denial.empty();
  if (policies && !decidePolicies(cmd, req)) return false;  // parsed again with the credits

  // From here on the request is handled exactly once.
  cur_cmd_ = worker_.stats().countCommand(cmd);  // per command or subcommand (client|setname)
  worker_.stats().requests.add();
  last_active_ms_ = worker_.nowMs();
  if (reply_off_ || reply_skip_) {
    cur_flags_ |= kSilent;
    reply_skip_ = false;  // SKIP drops one reply
  }
  if (!denial.empty()) [[unlikely]] {
    if (inMulti()) st_.tx = Tx::kMultiDirty;  // refused while queueing: EXEC aborts, as in Redis
    if (denial.starts_with("-ERR corral: ")) worker_.stats().upstream_errors.add();
    if (cur_cmd_ != kNoCommand) worker_.stats().per_command_errors[cur_cmd_].add();
    replyLocal(denial);
    return true;
  }
  const codec::Request* use = &req;
  if (policies && !applyPolicies(cmd, req, &use)) {
    return true;  // refused; the error is queued (and a transaction is now dirty)
  }
  if (kind == CommandKind::kHello && (s.route == Route::kLocal || s.route == Route::kDedicated)) {
    // HELLO's options are checked (and AUTH/SETNAME applied) before anything changes.
    std::string out;
    bool ok = false;
    hello(req.args, &ok, out);
    if (!ok) {
      replyLocal(out);
      return true;
    }
    if (s.conn == Conn::kAcquire && !acquireDedicated(req, cmd)) return true;
    st_ = s.next;
    const int ver = helloVersion(req.args);
    if (ver != 0 && ver != proto_) {
      if (dedicated_ != nullptr) {
        // Redis must speak what the client speaks on the connection that carries its replies.
        const std::string_view v = ver == 3 ? "3" : "2";
        sendDedicatedRaw(encode({"HELLO", v}), kHidden | kOnDedicated, Rewrite::kProtocol, ver, 0,
                         1);
      }
      proto_ = static_cast<uint8_t>(ver);
    }
    out.clear();
    helloReply(out);
    replyLocal(out);
    return true;
  }
  if (s.conn == Conn::kAcquire && !acquireDedicated(req, cmd)) return true;  // refused, state kept
  const bool closing = s.next.link == Link::kClosing && st_.link != Link::kClosing;
  st_ = s.next;
  if (s.conn == Conn::kRelease) releaseDedicated();
  if (closing) {
    setReadEnabled(false);  // QUIT: nothing after it is read
    worker_.markDirty(this);
  }
  if (cmd != nullptr) last_full_ = cmd;
  route(s, cmd, kind, *use, ev);
  return true;
}

void Client::route(const Step& s, const CommandInfo* cmd, CommandKind kind,
                   const codec::Request& req, Event ev) {
  switch (s.route) {
    case Route::kNone:
      return;  // closing: nothing more is answered
    case Route::kLocal: {
      if (kind == CommandKind::kClientReply) {
        clientReply(req.args);
        return;
      }
      std::string out;
      if (runLocal(cmd, kind, req.args, out)) {
        if (!out.empty()) replyLocal(out);  // empty: answered later (a fan-out)
      } else {
        log()->error("no local answer client={} command={}", id_, fullName(cmd, req.args));
        replyError("ERR corral: internal error");
      }
      return;
    }
    case Route::kShared:
      routeShared(cmd, kind, req);
      return;
    case Route::kDedicated:
      if (armed().near != nullptr && forwardNear(req)) [[unlikely]] {
        return;  // a RESP3 client's read answered by the near cache (Client::nearHeld)
      }
      if (armed().fill != nullptr && forwardFillHeld(cmd, req)) [[unlikely]] {
        return;  // a RESP3 client's hash read that may fill (client_fill_hash.cc)
      }
      sendDedicated(req, cmd, kind);
      return;
    case Route::kTxPlaceholder: {
      // Queued by Redis as a PING; corral's own answer replaces its reply in EXEC's array.
      TxEntry e;
      e.index = tx_queued_;
      e.kind = TxEntry::Kind::kLocal;
      e.args.assign(req.args.begin(), req.args.end());
      extras().tx_plan.push_back(std::move(e));
      ++tx_queued_;
      sendDedicatedRaw(encode({"PING"}), cur_flags_ | kOnDedicated, Rewrite::kNone, 0, 0, 1);
      return;
    }
    case Route::kRefuse:
      refuse(cmd, kind, req, ev);
      return;
    case Route::kContextError:
      contextError(req);
      return;
    case Route::kExecAbort:
      // Redis must not run it: DISCARD, and the client gets the EXECABORT Redis would give.
      tx_queued_ = 0;
      if (extras_ != nullptr) {
        extras_->tx_plan.clear();
        extras_->tx_hidden.clear();
      }
      sendDedicatedRaw(encode({"DISCARD"}), cur_flags_ | kOnDedicated, Rewrite::kExecAbort, 0, 0,
                       1);
      return;
  }
}

void Client::routeShared(const CommandInfo* cmd, CommandKind kind, const codec::Request& req) {
  switch (kind) {
    case CommandKind::kInfo:
      forward(primaryConnection(), req, 0,
              infoShowsProxy(req.args) ? Rewrite::kInfo : Rewrite::kNone);
      return;
    case CommandKind::kConfigGet:
      forward(primaryConnection(), req, 0, Rewrite::kConfigGet);
      return;
    case CommandKind::kKeyspace:
      forward(primaryConnection(), req, 0);
      return;
    case CommandKind::kBusy:
      // Never behind a running script on a shared connection: a connection of its own.
      if (!worker_.sendBusy(this, next_seq_, wireBytes(req), user_pool_)) {
        replyError("ERR corral: too many connections for SCRIPT KILL / SHUTDOWN at once");
        return;
      }
      newSlot(cur_flags_);
      ++inflight_refs_;
      worker_.stats().forwarded.add();
      worker_.stats().pending.add();
      return;
    case CommandKind::kClientUnblock:
      if (!clientAdmin(cmd, req)) forward(primaryConnection(), req, 0);
      return;
    default:
      break;
  }
  forwardShared(cmd, req);
}

void Client::bindShared() {
  if (user_pool_ != nullptr) {
    primary_ = worker_.userPools().connection(*user_pool_, db_, primary_slot_);
    fixed_route_ = true;
  } else {
    primary_ = worker_.primaryFor(primary_slot_);
    fixed_route_ = db_ == worker_.defaultDb() && !worker_.hasReplicas();
  }
}

void Client::refuse(const CommandInfo* cmd, CommandKind kind, const codec::Request& req, Event ev) {
  if (st_.link == Link::kShared && (ev == Event::kExec || ev == Event::kDiscard)) {
    replyError(ev == Event::kExec ? "ERR EXEC without MULTI" : "ERR DISCARD without MULTI");
    return;
  }
  if (kind == CommandKind::kUnknown) worker_.stats().unknown_rejected.add();
  if (std::string e = commandError(cmd, req.args); !e.empty()) {
    replyError(e);
    return;
  }
  worker_.stats().refused_commands.add();
  std::string msg = "ERR corral: ";
  msg.append(upperName(cmd, req.args));
  if (kind == CommandKind::kRefuse) {
    msg.append(" is not supported through corral (it acts on the upstream connection itself)");
  } else if (worker_.passthrough() && (kind == CommandKind::kAuth ||
                                       (kind == CommandKind::kHello && helloLogsIn(req.args)))) {
    msg.append(
        " inside MULTI is not supported by corral with auth mode passthrough (it changes "
        "the connection's user)");
  } else {
    msg.append(" inside MULTI is not supported by corral (it changes the connection's mode)");
  }
  replyError(msg);
}

void Client::contextError(const codec::Request& req) {
  const CommandInfo* cmd = commands::lookup(req.args);
  if (std::string e = commandError(cmd, req.args); !e.empty()) {
    replyError(e);  // Redis checks the command itself first
    return;
  }
  std::string msg = "ERR Can't execute '";
  msg.append(fullName(cmd, req.args));
  msg.append(
      "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this "
      "context");
  replyError(msg);
}

void Client::sessionEvent(Event e, std::string_view error) {
  const Step s = step(st_, e, pending_.empty());
  const bool closing = s.next.link == Link::kClosing && st_.link != Link::kClosing;
  st_ = s.next;
  if (s.conn == Conn::kRelease || s.conn == Conn::kCloseClient) {
    releaseDedicated();
    // What still waited on it cannot be answered by Redis any more.
    failDedicatedSlots(error.empty() ? std::string_view("-ERR corral: connection closed\r\n")
                                     : error);
  }
  if (closing && !closed()) {
    setReadEnabled(false);
    worker_.markDirty(this);  // flush() closes once the replies still due are out
  }
  if ((e == Event::kSubscriptionsEnded || e == Event::kPushEnded) && pending_.empty() &&
      dedicated_ != nullptr) {
    sessionEvent(Event::kIdle);
  }
}

void Client::failDedicatedSlots(std::string_view error) {
  Stats::Worker& st = worker_.stats();
  while (!pending_.empty() && (pending_.front().flags & kOnDedicated)) {
    Slot& h = pending_.front();
    if (!(h.flags & kHidden)) {
      st.upstream_errors.add();
      if (h.cmd != kNoCommand) st.per_command_errors[h.cmd].add();
      if (!(h.flags & kSilent)) deliver(error);
    }
    st.pending.sub();
    pending_.pop_front();
    ++head_seq_;
    popAnswered();
  }
}

bool Client::acquireDedicated(const codec::Request& req, const CommandInfo* cmd) {
  std::string_view error;
  int slot = -1;
  if (worker_.cluster() != nullptr) slot = std::max(clusterSlotOf(cmd, req), -1);
  dedicated_ = worker_.acquireDedicated(user_pool_, db_, id_, this, &error, slot, proto_ == 3);
  dedicated_slot_ = slot;
  if (dedicated_ != nullptr) return true;
  worker_.stats().upstream_errors.add();
  if (cur_cmd_ != kNoCommand) worker_.stats().per_command_errors[cur_cmd_].add();
  replyLocal(error);
  return false;
}

void Client::releaseDedicated() {
  if (dedicated_ == nullptr) return;
  // Closing it is what ends a blocked command, a transaction or subscriptions upstream.
  dedicated_->setPipe(nullptr);
  worker_.releaseDedicated(this, std::move(dedicated_));
  channels_ = patterns_ = shard_channels_ = 0;
  monitoring_ = false;
  tx_queued_ = 0;
  dedicated_slot_ = -1;
  if (extras_ != nullptr) extras_->tx_prefix.clear();
}

void Client::sendDedicated(const codec::Request& req, const CommandInfo* cmd, CommandKind kind) {
  if (worker_.cluster() != nullptr) {
    if (kind == CommandKind::kMulti && extras_ != nullptr) extras_->tx_prefix.clear();
    if (!clusterRouteDedicated(cmd, kind, req)) return;
  }
  uint8_t flags = cur_flags_ | kOnDedicated;
  Rewrite rw = Rewrite::kNone;
  int64_t arg = 0;
  int64_t timeout = 0;
  uint32_t frames = 1;
  const size_t n = req.args.size();
  std::string_view bytes = wireBytes(req);
  const bool queued = inMulti() && kind != CommandKind::kMulti && kind != CommandKind::kWatch;
  bool untimed = false;  // a blocking command: counted apart, not in the latency histogram
  auto planned = [this](TxEntry::Kind k, int64_t db) {
    TxEntry e;
    e.index = tx_queued_;
    e.kind = k;
    e.db = db;
    extras().tx_plan.push_back(std::move(e));
  };
  switch (kind) {
    case CommandKind::kSubscribe:
      flags |= kSubscribing;
      frames = static_cast<uint32_t>(std::max<size_t>(n - 1, 1));
      break;
    case CommandKind::kUnsubscribe:
      flags |= kSubscribing;
      if (n == 1) flags |= kFramesUnknown;  // one frame per subscription Redis still has
      frames = static_cast<uint32_t>(std::max<size_t>(n - 1, 1));
      break;
    case CommandKind::kMonitor:
      flags |= kMonitorOk;
      break;
    case CommandKind::kBlocking:
      if (!inMulti()) {  // inside MULTI nothing blocks
        timeout = blockingTimeout(cmd, req);
        untimed = true;
      }
      break;
    case CommandKind::kBusy:
      timeout = Worker::kBusyTimeoutMs;
      break;
    case CommandKind::kInfo:
      if (!infoShowsProxy(req.args)) break;  // the sections asked for, as Redis gives them
      if (queued) {
        planned(TxEntry::Kind::kInfo, 0);
      } else {
        rw = Rewrite::kInfo;
      }
      break;
    case CommandKind::kConfigGet:
      if (queued) {
        planned(TxEntry::Kind::kConfigGet, 0);
      } else {
        rw = Rewrite::kConfigGet;
      }
      break;
    case CommandKind::kSelect: {
      int64_t db = -1;
      if (n == 2 && parseInt(req.args[1], db) && db >= 0 && db <= INT32_MAX) {
        if (queued) {
          planned(TxEntry::Kind::kSelect, db);
        } else {
          rw = Rewrite::kSelect;
          arg = db;
        }
      }
      break;
    }
    case CommandKind::kClientTracking:
    case CommandKind::kClientUnblock:
      // Ids in the arguments are corral's: translated to Redis's (see client_admin.cc).
      if (clientAdmin(cmd, req)) return;
      break;
    case CommandKind::kClientTrackinginfo:
      rw = Rewrite::kTrackingInfo;
      break;
    case CommandKind::kExec:
      if (extras_ != nullptr && !extras_->tx_plan.empty()) {
        rw = Rewrite::kExec;
        arg = tx_queued_;
      }
      break;
    default:
      break;
  }
  if (kind == CommandKind::kExec || kind == CommandKind::kDiscard || kind == CommandKind::kMulti) {
    tx_queued_ = 0;
  } else if (queued) {
    ++tx_queued_;
  }
  const size_t before = pending_.size();
  sendDedicatedRaw(bytes, flags, rw, arg, timeout, frames);
  if (untimed && pending_.size() > before) {  // sent (not answered at once with an error)
    pending_.back().start_us = kUntimed;
    worker_.stats().blocking_requests.add();
  }
  if (kind == CommandKind::kExec || kind == CommandKind::kDiscard) {
    if (extras_ != nullptr) {
      if (rw == Rewrite::kExec) {
        pending_.back().more().tx = std::make_unique<TxPlan>(std::move(extras_->tx_plan));
      }
      extras_->tx_plan.clear();
      // The queued writes' follow-ups, after the transaction, unseen by the client.
      policies::CommandBatch later;
      std::swap(later, extras_->tx_hidden);
      if (kind == CommandKind::kExec) {
        for (size_t i = 0; i < later.size(); ++i) {
          sendDedicatedRaw(later.command(i), kHidden | kOnDedicated, Rewrite::kNone, 0, 0, 1);
        }
      }
    }
  }
  if (!armed().hidden.empty()) [[unlikely]] {
    if (inMulti()) {
      extras().tx_hidden.append(armed().hidden);  // queued by Redis: sent after EXEC instead
    } else {
      for (size_t i = 0; i < armed().hidden.size(); ++i) {
        sendDedicatedRaw(armed().hidden.command(i), kHidden | kOnDedicated, Rewrite::kNone, 0, 0,
                         1);
      }
    }
    armed().hidden.clear();
  }
}

}  // namespace corral::net
