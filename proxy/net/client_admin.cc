// Client: the app's view of its connections. corral's clients are what CLIENT LIST, CLIENT
// INFO and CLIENT KILL show and act on (with the ids CLIENT ID gave them and the names they set);
// commands that name a client by id to Redis (CLIENT UNBLOCK, CLIENT TRACKING ... REDIRECT) have
// corral's ids translated into the ids of the clients' dedicated connections, and CLIENT
// GETREDIR / TRACKINGINFO answer with corral's ids again.
//
//   CLIENT LIST / KILL --> Worker::fanOut: every worker lists or kills its own clients on its
//   own thread --> the answer comes back to this client's slot (answerFanOut)
#include <sys/socket.h>

#include <algorithm>
#include <cctype>

#include "commands/command_table.h"
#include "proxy/net/client.h"
#include "proxy/net/log.h"
#include "proxy/net/worker.h"

namespace corral::net {

using commands::CommandInfo;

// CLIENT KILL's filters (Redis 7.0): the old form "CLIENT KILL addr:port", or pairs of ID,
// TYPE, USER, ADDR, LADDR and SKIPME.
struct KillFilter {
  bool old_form = false;
  std::vector<uint64_t> ids;
  std::string type;  // normal | pubsub | master | replica | slave
  std::string user;
  std::string addr;
  std::string laddr;
  bool skipme = true;
  uint64_t me = 0;
};

namespace {

std::string sockName(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (fd < 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  return Worker::addressText(ss);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// CLIENT LIST's TYPE: Redis accepts "slave" and "replica"; corral's clients are all normal or
// pubsub ones.
bool typeOk(std::string_view t) {
  return t == "normal" || t == "pubsub" || t == "master" || t == "replica" || t == "slave";
}

}  // namespace

void Client::describe(std::string& out, std::string_view cmd_name) const {
  const int64_t now = worker_.nowMs();
  std::string flags;
  if (monitoring_) flags += 'O';
  if (st_.link == Link::kSubscribed || channels_ + patterns_ + shard_channels_ > 0) flags += 'P';
  if (st_.tx == Tx::kMulti || st_.tx == Tx::kMultiDirty) flags += 'x';
  if (extras_ != nullptr && extras_->tracking_redirect >= 0) flags += 't';
  if (st_.link == Link::kClosing) flags += 'c';
  if (peer_ == "unix") flags += 'U';
  if (flags.empty()) flags = "N";
  const std::string_view name = extras_ != nullptr ? std::string_view(extras_->name) : "";
  const std::string_view user =
      extras_ != nullptr && !extras_->user.empty() ? std::string_view(extras_->user) : "default";
  const std::string_view last =
      !cmd_name.empty() ? cmd_name : (last_full_ != nullptr ? last_full_->name : "NULL");
  out += "id=" + std::to_string(id_);
  out += " addr=" + peer_;
  out += " laddr=" + sockName(fd_);
  out += " fd=" + std::to_string(fd_);
  out += " name=";
  out += name;
  out += " age=" + std::to_string((now - created_ms_) / 1000);
  out += " idle=" + std::to_string((now - last_active_ms_) / 1000);
  out += " flags=" + flags;
  out += " db=" + std::to_string(db_);
  out += " sub=" + std::to_string(channels_);
  out += " psub=" + std::to_string(patterns_);
  out += " ssub=" + std::to_string(shard_channels_);
  out += " multi=" + std::to_string(inMulti() ? static_cast<int64_t>(tx_queued_) : -1);
  out += " qbuf=" + std::to_string(in_.readable());
  out += " qbuf-free=" + std::to_string(in_.capacity() - in_.readable());
  out += " argv-mem=0 multi-mem=0";
  out += " rbs=" + std::to_string(in_.capacity());
  out += " rbp=0";
  out += " obl=" + std::to_string(out_.readable());
  out += " oll=0";
  out += " omem=" + std::to_string(out_.capacity());
  out += " tot-mem=" + std::to_string(sizeof(Client) + in_.capacity() + out_.capacity());
  out += " events=r";
  if (write_enabled_) out += 'w';
  out += " cmd=";
  out += last;
  out += " user=";
  out += user;
  out += " redir=" + std::to_string(extras_ != nullptr ? extras_->tracking_redirect : -1);
  out += " resp=" + std::to_string(proto_);
  out += '\n';
}

bool Client::matches(const KillFilter& f) const {
  if (f.old_form) return peer_ == f.addr;
  if (f.skipme && id_ == f.me) return false;
  if (!f.ids.empty() && std::find(f.ids.begin(), f.ids.end(), id_) == f.ids.end()) return false;
  if (!f.type.empty()) {
    const bool pubsub = st_.link == Link::kSubscribed;
    if (f.type == "pubsub" ? !pubsub : (f.type != "normal" || pubsub)) return false;
  }
  if (!f.user.empty()) {
    const std::string_view user =
        extras_ != nullptr && !extras_->user.empty() ? std::string_view(extras_->user) : "default";
    if (user != f.user) return false;
  }
  if (!f.addr.empty() && peer_ != f.addr) return false;
  if (!f.laddr.empty() && sockName(fd_) != f.laddr) return false;
  return true;
}

bool Client::clientAdminLocal(const CommandInfo* cmd, CommandKind kind,
                              const std::vector<std::string_view>& args, std::string& out) {
  const size_t n = args.size();
  worker_.stats().local_replies.add();
  auto text = [this, &out](std::string_view s) {
    // Redis answers CLIENT LIST/INFO with a verbatim string in RESP3.
    if (proto_ == 3) {
      out += '=' + std::to_string(s.size() + 4) + "\r\ntxt:";
      out.append(s);
      out += "\r\n";
    } else {
      codec::appendBulk(out, s);
    }
  };
  switch (kind) {
    case CommandKind::kClientInfo: {
      std::string line;
      describe(line, cmd->name);
      text(line);
      return true;
    }
    case CommandKind::kClientGetredir:
      codec::appendInteger(out, extras_ != nullptr ? extras_->tracking_redirect : -1);
      return true;
    case CommandKind::kClientTrackinginfo:
      // Not tracking (tracking lives on the dedicated connection, and goes through it).
      if (proto_ == 3) {
        out += "%3\r\n";
      } else {
        codec::appendArrayHeader(out, 6);
      }
      codec::appendBulk(out, "flags");
      codec::appendArrayHeader(out, 1);
      codec::appendBulk(out, "off");
      codec::appendBulk(out, "redirect");
      codec::appendInteger(out, -1);
      codec::appendBulk(out, "prefixes");
      codec::appendArrayHeader(out, 0);
      return true;
    case CommandKind::kClientList: {
      // CLIENT LIST [TYPE type] [ID id ...]
      std::string type;
      std::vector<uint64_t> ids;
      for (size_t i = 2; i < n; ++i) {
        if (commands::equalsIgnoreCase(args[i], "type") && i + 1 < n) {
          type = lower(args[++i]);
          if (!typeOk(type)) {
            codec::appendError(out, "ERR Unknown client type '" + std::string(args[i]) + "'");
            return true;
          }
        } else if (commands::equalsIgnoreCase(args[i], "id") && i + 1 < n) {
          for (++i; i < n; ++i) {
            int64_t id = 0;
            if (!parseInt(args[i], id) || id <= 0) {
              codec::appendError(out, "ERR Invalid client ID");
              return true;
            }
            ids.push_back(static_cast<uint64_t>(id));
          }
        } else {
          codec::appendError(out, "ERR syntax error");
          return true;
        }
      }
      KillFilter f;
      f.type = type;
      f.ids = std::move(ids);
      f.skipme = false;
      const uint64_t self = id_;
      auto answer = std::make_shared<std::string>();
      std::string cmdname(cmd->name);
      fanOut(
          [f, self, cmdname](Worker& w, std::string& acc, int64_t&) {
            for (Client* c : w.clients()) {
              if (c->closed() || !c->matches(f)) continue;
              // The asking client's own line names the command it is running.
              c->describe(acc, c->id() == self ? std::string_view(cmdname) : std::string_view());
            }
          },
          [this](const std::string& acc, int64_t) {
            std::string reply;
            if (proto_ == 3) {
              reply += '=' + std::to_string(acc.size() + 4) + "\r\ntxt:" + acc + "\r\n";
            } else {
              codec::appendBulk(reply, acc);
            }
            return reply;
          },
          out);
      return true;
    }
    case CommandKind::kClientKill: {
      KillFilter f;
      f.me = id_;
      if (n == 3) {
        f.old_form = true;
        f.addr.assign(args[2]);
      } else if (n % 2 != 0 || n < 4) {
        codec::appendError(out, "ERR syntax error");
        return true;
      } else {
        for (size_t i = 2; i + 1 < n; i += 2) {
          const std::string opt = lower(args[i]);
          const std::string_view v = args[i + 1];
          if (opt == "id") {
            int64_t id = 0;
            if (!parseInt(v, id) || id <= 0) {
              codec::appendError(out, "ERR client-id should be greater than 0");
              return true;
            }
            f.ids.push_back(static_cast<uint64_t>(id));
          } else if (opt == "type") {
            f.type = lower(v);
            if (!typeOk(f.type)) {
              codec::appendError(out, "ERR Unknown client type '" + std::string(v) + "'");
              return true;
            }
          } else if (opt == "user") {
            f.user.assign(v);
          } else if (opt == "addr") {
            f.addr.assign(v);
          } else if (opt == "laddr") {
            f.laddr.assign(v);
          } else if (opt == "skipme") {
            if (commands::equalsIgnoreCase(v, "yes")) {
              f.skipme = true;
            } else if (commands::equalsIgnoreCase(v, "no")) {
              f.skipme = false;
            } else {
              codec::appendError(out, "ERR syntax error");
              return true;
            }
          } else {
            codec::appendError(out, "ERR syntax error");
            return true;
          }
        }
      }
      const uint64_t self = id_;
      const bool old_form = f.old_form;
      fanOut(
          [f, self](Worker& w, std::string&, int64_t& count) {
            for (Client* c : w.clients()) {
              if (c->closed() || !c->matches(f)) continue;
              ++count;
              if (c->id() == self) {
                c->sessionEvent(Event::kQuit);  // closes after this reply, like Redis
              } else {
                c->kill();
              }
            }
          },
          [old_form](const std::string&, int64_t count) {
            std::string reply;
            if (old_form) {
              reply = count > 0 ? "+OK\r\n" : "-ERR No such client\r\n";
            } else {
              codec::appendInteger(reply, count);
            }
            return reply;
          },
          out);
      return true;
    }
    default:
      worker_.stats().local_replies.sub();
      return false;
  }
}

void Client::fanOut(std::function<void(Worker&, std::string&, int64_t&)> each,
                    std::function<std::string(const std::string&, int64_t)> finish,
                    std::string& out) {
  if (worker_.workerCount() == 1 || inMulti()) {
    // One worker (the usual sidecar), or an answer needed now (EXEC): this worker alone.
    std::string acc;
    int64_t count = 0;
    each(worker_, acc, count);
    out = finish(acc, count);
    return;
  }
  // The answer comes later: a slot waits for it, and the client stays alive meanwhile.
  newSlot(cur_flags_);
  const uint64_t seq = next_seq_ - 1;
  ++inflight_refs_;
  fanout_pending_ = true;
  worker_.stats().pending.add();
  Client* self = this;
  worker_.fanOut(std::move(each),
                 [self, seq, finish = std::move(finish)](const std::string& acc, int64_t count) {
                   self->answerFanOut(seq, finish(acc, count));
                 });
}

bool Client::clientAdmin(const CommandInfo* cmd, const codec::Request& req) {
  (void)cmd;
  const auto& a = req.args;
  std::vector<std::string_view> args(a.begin(), a.end());
  std::string translated;
  const upstream::IdRegistry& ids = worker_.shared().ids;
  if (commands::equalsIgnoreCase(a[1], "unblock")) {
    // CLIENT UNBLOCK <id> [TIMEOUT|ERROR]: the client blocks on its dedicated connection.
    int64_t target = 0;
    uint64_t upstream_id = 0;
    if (a.size() < 3 || !parseInt(a[2], target)) return false;  // Redis's own error
    if (target <= 0 || !ids.get(static_cast<uint64_t>(target), upstream_id)) {
      // Not one of corral's clients blocked on a dedicated connection: nothing to unblock.
      if (a.size() > 4 || (a.size() == 4 && !commands::equalsIgnoreCase(a[3], "timeout") &&
                           !commands::equalsIgnoreCase(a[3], "error"))) {
        return false;  // Redis answers the syntax error
      }
      replyLocal(":0\r\n");
      return true;
    }
    translated = std::to_string(upstream_id);
    args[2] = translated;
    const codec::Request& use = [&]() -> const codec::Request& {
      armed().rewritten.args = args;
      armed().rewritten.is_inline = true;  // re-encoded from args
      armed().rewritten.frame = {};
      return armed().rewritten;
    }();
    if (worker_.cluster() != nullptr) {
      // Upstream ids are per node: only the node the target blocks on may be asked.
      const std::string node = ids.server(static_cast<uint64_t>(target));
      if (dedicated_ == nullptr || dedicated_->addrText() != node) {
        upstream::Connection* conn = worker_.cluster()->connectionAt(node, primary_slot_);
        if (dedicated_ != nullptr || conn == nullptr || !conn->accepting()) {
          replyError("ERR corral: CLIENT UNBLOCK cannot reach cluster node " + node +
                     " from this connection");
          return true;
        }
        const std::string_view bytes = encode(use.args);
        conn->enqueue(this, openSlot(Rewrite::kNone, 0, bytes.size()), bytes, 0);
        return true;
      }
    }
    if (dedicated_ != nullptr) {
      sendDedicatedRaw(encode(use.args), cur_flags_ | kOnDedicated, Rewrite::kNone, 0, 0, 1);
    } else {
      forward(primaryConnection(), use, 0);
    }
    return true;
  }
  // CLIENT TRACKING on|off [REDIRECT id] ...: only on the dedicated connection.
  if (dedicated_ == nullptr) return false;
  int64_t redirect = 0;  // corral's id, 0: none
  for (size_t i = 3; i + 1 < a.size(); ++i) {
    if (!commands::equalsIgnoreCase(a[i], "redirect")) continue;
    int64_t target = 0;
    uint64_t upstream_id = 0;
    if (parseInt(a[i + 1], target) && target > 0 &&
        ids.get(static_cast<uint64_t>(target), upstream_id)) {
      redirect = target;
      translated = std::to_string(upstream_id);
      args[i + 1] = translated;
    }
  }
  const bool on = a.size() >= 3 && commands::equalsIgnoreCase(a[2], "on");
  sendDedicatedRaw(encode(args), cur_flags_ | kOnDedicated, Rewrite::kTracking, on ? redirect : -1,
                   0, 1);
  return true;
}

}  // namespace corral::net
