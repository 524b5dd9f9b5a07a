// Client: the commands corral answers itself (PING, ECHO, QUIT, HELLO, AUTH, SELECT, RESET,
// CLIENT SETNAME/GETNAME/ID/SETINFO) and the authentication gate.
#include "commands/command_table.h"
#include "proxy/net/client.h"
#include "proxy/net/command_kind.h"
#include "proxy/net/log.h"
#include "proxy/net/worker.h"

namespace corral::net {

using commands::CommandInfo;

bool Client::handleLocal(const CommandInfo* cmd, CommandKind what, const codec::Request& req) {
  if (what == CommandKind::kForward) return false;
  const auto& args = req.args;
  const size_t n = args.size();
  if (what != CommandKind::kClient && what != CommandKind::kRefuse && !commands::arityOk(*cmd, n)) {
    replyArity(cmd);
    return true;
  }
  worker_.stats().local_replies.add();
  std::string& out = worker_.scratch();
  out.clear();
  switch (what) {
    case CommandKind::kPing:
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
    case CommandKind::kEcho:
      codec::appendBulk(out, args[1]);
      replyLocal(out);
      return true;
    case CommandKind::kQuit:
      replyLocal("+OK\r\n");
      close_after_flush_ = true;
      setReadEnabled(false);
      return true;
    case CommandKind::kAuth:
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
    case CommandKind::kHello: {
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
    case CommandKind::kSelect: {
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
    case CommandKind::kReset:
      name_.clear();
      user_.clear();
      ryw_.clear();
      ryw_all_until_ = 0;
      db_ = worker_.defaultDb();
      authenticated_ = !worker_.shared().auth->enabled();
      replyLocal("+RESET\r\n");
      return true;
    case CommandKind::kClientSetname:
      for (char ch : args[2]) {
        if (ch < '!' || ch > '~') {
          replyError("ERR Client names cannot contain spaces, newlines or special characters.");
          return true;
        }
      }
      name_ = std::string(args[2]);
      replyLocal("+OK\r\n");
      return true;
    case CommandKind::kClientGetname:
      if (name_.empty()) {
        replyLocal("$-1\r\n");
      } else {
        codec::appendBulk(out, name_);
        replyLocal(out);
      }
      return true;
    case CommandKind::kClientId:
      codec::appendInteger(out, static_cast<int64_t>(id_));
      replyLocal(out);
      return true;
    case CommandKind::kClient:
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
    case CommandKind::kForward:
    case CommandKind::kMulti:
    case CommandKind::kExecDiscard:
    case CommandKind::kWatch:
    case CommandKind::kUnwatch:
    case CommandKind::kBlocking:
    case CommandKind::kInfo:
    case CommandKind::kConfigGet:
    case CommandKind::kKeyspace:
    case CommandKind::kPipe:
      worker_.stats().local_replies.sub();
      return false;  // handled by handleRequest/handlePinned
    case CommandKind::kRefuse: {
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

bool Client::gateAuth(const CommandInfo* cmd, CommandKind what, const codec::Request& req) {
  if (!worker_.shared().auth->enabled()) {
    authenticated_ = true;  // nothing to check: stop asking
    return false;
  }
  switch (what) {
    case CommandKind::kAuth:
    case CommandKind::kQuit:
    case CommandKind::kReset:
    case CommandKind::kPing:
      // PING too, unlike Redis with requirepass: health checks must not need the app's
      // password (the corral contract lists AUTH, HELLO, PING and QUIT).
      return false;  // handleLocal answers these
    case CommandKind::kHello: {
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

}  // namespace corral::net
