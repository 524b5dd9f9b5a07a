// Client: the commands corral answers itself (PING, ECHO, QUIT, HELLO, AUTH, SELECT, RESET,
// CLIENT SETNAME/GETNAME/ID/SETINFO/REPLY, and the admin ones in client_admin.cc), and the
// authentication gate. Each answer is written into `out` so that the same code answers at once
// or, inside MULTI, when EXEC runs (a PING held its place in the transaction).
#include "commands/command_table.h"
#include "proxy/net/auth.h"
#include "proxy/net/client.h"
#include "proxy/net/log.h"
#include "proxy/net/worker.h"

namespace corral::net {

using commands::CommandInfo;

namespace {

bool validName(std::string_view name) {
  for (char ch : name) {
    if (ch < '!' || ch > '~') return false;
  }
  return true;
}

constexpr std::string_view kBadNameError =
    "ERR Client names cannot contain spaces, newlines or special characters.";

}  // namespace

bool Client::runLocal(const CommandInfo* cmd, CommandKind kind,
                      const std::vector<std::string_view>& args, std::string& out) {
  const size_t n = args.size();
  worker_.stats().local_replies.add();
  switch (kind) {
    case CommandKind::kPing:
      if (n > 2) {
        codec::appendError(out, "ERR wrong number of arguments for 'ping' command");
      } else if (n == 1) {
        codec::appendSimple(out, "PONG");
      } else {
        codec::appendBulk(out, args[1]);
      }
      return true;
    case CommandKind::kEcho:
      codec::appendBulk(out, args[1]);
      return true;
    case CommandKind::kQuit:
      codec::appendSimple(out, "OK");
      return true;
    case CommandKind::kAuth:
      if (n > 3) {
        codec::appendError(out, "ERR syntax error");
      } else if (worker_.passthrough()) {
        if (authenticatePassthrough(n == 2, n == 2 ? std::string_view() : args[1], args[n - 1],
                                    out)) {
          codec::appendSimple(out, "OK");
        }
      } else if (worker_.shared().auth->enabled()) {
        if (authenticate(n == 2 ? kDefaultUser : args[1], args[n - 1], out)) {
          codec::appendSimple(out, "OK");
        }
      } else if (n == 2) {
        codec::appendError(out, kNoPasswordConfiguredError);
      } else if (commands::equalsIgnoreCase(args[1], kDefaultUser)) {
        codec::appendSimple(out, "OK");  // like Redis's nopass default user: any password
      } else {
        codec::appendError(out, kWrongPassError);
      }
      return true;
    case CommandKind::kHello: {
      bool ok = false;
      hello(args, &ok, out);
      if (ok) helloReply(out);
      return true;
    }
    case CommandKind::kSelect: {
      // Each db has its own shared connections, so a client's db is corral's to track.
      int64_t db = 0;
      if (!parseInt(args[1], db)) {
        codec::appendError(out, "ERR value is not an integer or out of range");
      } else if (worker_.cluster() != nullptr && db != 0) {
        codec::appendError(out, "ERR SELECT is not allowed in cluster mode");  // as a node says
      } else if (db < 0 || (worker_.databases() > 0 && db >= worker_.databases()) ||
                 db > INT32_MAX) {
        codec::appendError(out, "ERR DB index is out of range");
      } else {
        setDb(static_cast<int>(db));
        codec::appendSimple(out, "OK");
      }
      return true;
    }
    case CommandKind::kReset:
      reset();
      codec::appendSimple(out, "RESET");
      return true;
    case CommandKind::kUnwatch:
      codec::appendSimple(out, "OK");  // nothing is watched on shared connections
      return true;
    case CommandKind::kUnsubscribe: {
      // Not subscribed: one confirmation per name given (or one with a nil name), count 0.
      std::string_view what = args[0];
      std::string lower(what);
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const size_t names = n > 1 ? n - 1 : 1;
      for (size_t i = 0; i < names; ++i) {
        out.append(proto_ == 3 ? ">3\r\n" : "*3\r\n");  // RESP3: a push, as Redis sends
        codec::appendBulk(out, lower);
        if (n > 1) {
          codec::appendBulk(out, args[i + 1]);
        } else {
          out.append(proto_ == 3 ? "_\r\n" : "$-1\r\n");
        }
        codec::appendInteger(out, 0);
      }
      return true;
    }
    case CommandKind::kClientSetname:
      if (!validName(args[2])) {
        codec::appendError(out, kBadNameError);
      } else {
        extras().name.assign(args[2]);
        codec::appendSimple(out, "OK");
      }
      return true;
    case CommandKind::kClientGetname:
      if (extras_ == nullptr || extras_->name.empty()) {
        out.append(proto_ == 3 ? "_\r\n" : "$-1\r\n");
      } else {
        codec::appendBulk(out, extras_->name);
      }
      return true;
    case CommandKind::kClientId:
      codec::appendInteger(out, static_cast<int64_t>(id_));
      return true;
    case CommandKind::kClientSetinfo:
      // CLIENT SETINFO (Redis 7.2) is sent by current client libraries at connect time.
      if (n != 4) {
        codec::appendError(out, "ERR wrong number of arguments for 'client|setinfo' command");
      } else if (commands::equalsIgnoreCase(args[2], "lib-name")) {
        if (!validName(args[3])) {
          codec::appendError(out,
                             "ERR lib-name cannot contain spaces, newlines or special "
                             "characters.");
        } else {
          extras().lib_name.assign(args[3]);
          codec::appendSimple(out, "OK");
        }
      } else if (commands::equalsIgnoreCase(args[2], "lib-ver")) {
        if (!validName(args[3])) {
          codec::appendError(out,
                             "ERR lib-ver cannot contain spaces, newlines or special "
                             "characters.");
        } else {
          extras().lib_ver.assign(args[3]);
          codec::appendSimple(out, "OK");
        }
      } else {
        std::string msg = "ERR Unrecognized option '";
        msg.append(args[2]);
        msg.push_back('\'');
        codec::appendError(out, msg);
      }
      return true;
    default:
      worker_.stats().local_replies.sub();
      return clientAdminLocal(cmd, kind, args, out);
  }
}

bool Client::authenticate(std::string_view user, std::string_view password, std::string& out) {
  const Authenticator& auth = *worker_.shared().auth;
  if (auth.check(user, password)) {
    authenticated_ = true;
    parser_.setAuthRequired(false);
    extras().user.assign(user);
    return true;
  }
  worker_.stats().auth_failures.add();
  log()->debug("auth failed client={} peer={}", id_, peer_);  // never the credentials
  codec::appendError(out, kWrongPassError);
  return false;
}

bool Client::gateAuth(const CommandInfo* cmd, CommandKind kind, const codec::Request& req) {
  if (!worker_.shared().auth->gate()) {
    authenticated_ = true;  // nothing to check: stop asking
    return false;
  }
  switch (kind) {
    case CommandKind::kAuth:
    case CommandKind::kHello:  // its options run first, then it needs to be authenticated
    case CommandKind::kQuit:
    case CommandKind::kReset:
    case CommandKind::kPing:
      // PING too, unlike Redis with requirepass: health checks must not need the app's
      // password (the corral contract lists AUTH, HELLO, PING and QUIT).
      return false;
    default:
      break;
  }
  worker_.stats().requests.add();
  // Like Redis: an unknown or malformed command is told so before it is told to authenticate.
  std::string e = commandError(cmd, req.args);
  replyError(e.empty() ? kNoAuthError : std::string_view(e));
  return true;
}

void Client::hello(const std::vector<std::string_view>& args, bool* ok, std::string& out) {
  *ok = false;
  if (args.size() >= 2) {
    int64_t ver = 0;
    if (!parseInt(args[1], ver)) {
      codec::appendError(out, "ERR Protocol version is not an integer or out of range");
      return;
    }
    if (ver < 2 || ver > 3) {
      codec::appendError(out, "NOPROTO unsupported protocol version");
      return;
    }
  }
  // Options in order, each applied at once, as Redis does; credentials stay with corral.
  const Authenticator& auth = *worker_.shared().auth;
  for (size_t j = 2; j < args.size(); ++j) {
    const HelloOption opt = helloOption(args, j);
    if (opt == HelloOption::kAuth) {
      if (worker_.passthrough()) {
        if (!authenticatePassthrough(false, args[j + 1], args[j + 2], out)) return;
      } else if (auth.enabled()) {
        if (!authenticate(args[j + 1], args[j + 2], out)) return;
      } else if (!commands::equalsIgnoreCase(args[j + 1], kDefaultUser)) {
        codec::appendError(out, kWrongPassError);
        return;
      }
      j += 2;
    } else if (opt == HelloOption::kSetname) {
      if (!validName(args[j + 1])) {
        codec::appendError(out, kBadNameError);
        return;
      }
      extras().name.assign(args[j + 1]);
      ++j;
    } else {
      std::string msg = "ERR Syntax error in HELLO option '";
      msg.append(args[j]);
      msg.push_back('\'');
      codec::appendError(out, msg);
      return;
    }
  }
  if (auth.gate() && !authenticated_) {
    codec::appendError(out, kHelloNoAuthError);
    return;
  }
  *ok = true;
}

void Client::helloReply(std::string& out) const {
  const std::string& version = worker_.redisVersion();
  if (proto_ == 3) {
    out.append("%7\r\n");
  } else {
    codec::appendArrayHeader(out, 14);
  }
  codec::appendBulk(out, "server");
  codec::appendBulk(out, "redis");
  codec::appendBulk(out, "version");
  codec::appendBulk(out, version.empty() ? std::string_view("7.0.0") : version);
  codec::appendBulk(out, "proto");
  codec::appendInteger(out, proto_);
  codec::appendBulk(out, "id");
  codec::appendInteger(out, static_cast<int64_t>(id_));
  codec::appendBulk(out, "mode");
  codec::appendBulk(out, "standalone");
  codec::appendBulk(out, "role");
  codec::appendBulk(out, "master");
  codec::appendBulk(out, "modules");
  codec::appendArrayHeader(out, 0);
}

void Client::reset() {
  // The dedicated connection (and with it MULTI, WATCH, subscriptions, MONITOR, tracking and
  // RESP3 upstream) is gone already (session.h: RESET releases it).
  authenticated_ = !worker_.shared().auth->gate();
  parser_.setAuthRequired(!authenticated_);
  // Passthrough: logged out, as Redis's RESET logs out (back to corral's credentials, or to
  // the gate with unauthenticated: refuse).
  dropUserPool();
  setDb(worker_.defaultDb());
  proto_ = 2;
  reply_off_ = reply_skip_ = false;
  cur_flags_ &= static_cast<uint8_t>(~kSilent);
  extras_.reset();  // name, user, library, tracking, read-your-writes
}

void Client::clientReply(const std::vector<std::string_view>& args) {
  const std::string_view mode = args[2];
  if (commands::equalsIgnoreCase(mode, "on")) {
    reply_off_ = reply_skip_ = false;
    cur_flags_ &= static_cast<uint8_t>(~kSilent);
    replyLocal("+OK\r\n");
  } else if (commands::equalsIgnoreCase(mode, "off")) {
    reply_off_ = true;
  } else if (commands::equalsIgnoreCase(mode, "skip")) {
    if (!reply_off_) reply_skip_ = true;  // the next command's reply, not this one's
  } else {
    replyError("ERR syntax error");
  }
}

}  // namespace corral::net
