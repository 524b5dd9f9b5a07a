#include "proxy/net/command_kind.h"

#include <cctype>
#include <charconv>
#include <unordered_map>

namespace corral::net {
namespace {

using commands::CommandInfo;

const std::unordered_map<const CommandInfo*, CommandKind>& kindTable() {
  static const std::unordered_map<const CommandInfo*, CommandKind> table = [] {
    std::unordered_map<const CommandInfo*, CommandKind> t;
    // Built-in entries only: the table is built once, maybe before the overlay is laid, so
    // learnt commands are classified apart (classifyLearnt) whatever the timing.
    auto add = [&t](std::initializer_list<std::string_view> args, CommandKind what) {
      std::vector<std::string_view> v(args);
      const CommandInfo* c = commands::lookup(v);
      if (c != nullptr && c->id != commands::kLearntId) t.emplace(c, what);
    };
    using K = CommandKind;
    add({"ping"}, K::kPing);
    add({"echo"}, K::kEcho);
    add({"quit"}, K::kQuit);
    add({"hello"}, K::kHello);
    add({"auth"}, K::kAuth);
    add({"select"}, K::kSelect);
    add({"reset"}, K::kReset);
    add({"client"}, K::kClientSetinfo);  // the container: an unknown subcommand (SETINFO)
    add({"client", "setname"}, K::kClientSetname);
    add({"client", "getname"}, K::kClientGetname);
    add({"client", "id"}, K::kClientId);
    add({"client", "list"}, K::kClientList);
    add({"client", "info"}, K::kClientInfo);
    add({"client", "kill"}, K::kClientKill);
    add({"client", "getredir"}, K::kClientGetredir);
    add({"client", "reply"}, K::kClientReply);
    add({"client", "unblock"}, K::kClientUnblock);
    add({"client", "tracking"}, K::kClientTracking);
    add({"client", "trackinginfo"}, K::kClientTrackinginfo);
    add({"info"}, K::kInfo);
    add({"config", "get"}, K::kConfigGet);
    for (std::string_view name : {"scan", "keys", "dbsize", "randomkey"}) add({name}, K::kKeyspace);
    add({"multi"}, K::kMulti);
    add({"exec"}, K::kExec);
    add({"discard"}, K::kDiscard);
    add({"watch"}, K::kWatch);
    add({"unwatch"}, K::kUnwatch);
    for (std::string_view name :
         {"blpop", "brpop", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop", "brpoplpush",
          "wait", "waitaof", "xread", "xreadgroup"}) {
      add({name}, K::kBlocking);
    }
    for (std::string_view name : {"subscribe", "psubscribe", "ssubscribe"}) {
      add({name}, K::kSubscribe);
    }
    for (std::string_view name : {"unsubscribe", "punsubscribe", "sunsubscribe"}) {
      add({name}, K::kUnsubscribe);
    }
    add({"monitor"}, K::kMonitor);
    add({"script", "kill"}, K::kBusy);
    add({"function", "kill"}, K::kBusy);
    add({"function", "stats"}, K::kBusy);
    add({"shutdown"}, K::kBusy);
    for (std::string_view name : {"readonly", "readwrite", "asking", "sync", "psync", "replconf"}) {
      add({name}, K::kRefuse);
    }
    // NO-EVICT is a flag of one Redis connection, and PAUSE/UNPAUSE would also stop corral's
    // own traffic (fills, other clients' requests on shared connections). NO-TOUCH (7.2) is not
    // in the table: classifySpecial refuses it by name.
    for (std::string_view sub : {"no-evict", "pause", "unpause"}) {
      add({"client", sub}, K::kRefuse);
    }
    // Any other blocking command would hold a shared connection: refused as well.
    for (const CommandInfo& c : commands::allCommands()) {
      if ((c.flags & commands::kBlocking) && !t.contains(&c)) t.emplace(&c, K::kRefuse);
    }
    return t;
  }();
  return table;
}

// A command learnt from the server (commands/overlay.h). Its flags are the server's own; the
// ones that make a command hold or change its connection cannot go on a shared connection.
CommandKind classifyLearnt(const CommandInfo* cmd) {
  if (cmd->name == "waitaof") return CommandKind::kBlocking;  // Redis 7.2; blockMs knows it
  if (cmd->flags & (commands::kBlocking | commands::kPubSub)) return CommandKind::kRefuse;
  return CommandKind::kForward;
}

// lookup() answers the container itself for a subcommand nobody knows.
bool unknownSubcommand(const CommandInfo* cmd, const std::vector<std::string_view>& args) {
  return cmd->nsubcommands > 0 && args.size() >= 2;
}

}  // namespace

CommandKind classifySpecial(const CommandInfo* cmd, const std::vector<std::string_view>& args) {
  if (unknownSubcommand(cmd, args) && !commands::isCommandName(args[0], "client")) {
    return CommandKind::kUnknown;  // CLIENT SETINFO is corral's own, below
  }
  if (cmd->id == commands::kLearntId) return classifyLearnt(cmd);
  const auto& table = kindTable();
  auto it = table.find(cmd);
  if (it == table.end()) return CommandKind::kForward;
  if (it->second == CommandKind::kBlocking && cmd->name.starts_with("xread")) {
    // XREAD/XREADGROUP block only with BLOCK.
    return blockMs(cmd->name, args) != 0 ? CommandKind::kBlocking : CommandKind::kForward;
  }
  if (it->second == CommandKind::kClientSetinfo &&
      !(args.size() >= 2 && commands::equalsIgnoreCase(args[1], "setinfo"))) {
    if (args.size() < 2) return CommandKind::kForward;  // CLIENT alone: Redis's arity error
    // CLIENT's subcommands newer than the table are never learnt (commands/overlay.h). NO-TOUCH
    // (Redis 7.2) would flag a shared connection: refused in any unknown_commands mode.
    if (commands::equalsIgnoreCase(args[1], "no-touch")) return CommandKind::kRefuse;
    return CommandKind::kUnknown;
  }
  return it->second;
}

std::string commandError(const CommandInfo* cmd, const std::vector<std::string_view>& args) {
  // Redis 7.0's processCommand: existence, then arity; newlines in what the client sent are
  // replaced by spaces so the error stays one line.
  std::string e;
  auto clean = [](std::string s) {
    for (char& c : s) {
      if (c == '\r' || c == '\n') c = ' ';
    }
    return s;
  };
  if (cmd == nullptr) {
    std::string list;
    for (size_t i = 1; i < args.size() && list.size() < 128; ++i) {
      const size_t room = 128 - list.size();
      list += '\'';
      list.append(args[i].substr(0, room));
      list += "' ";
    }
    e = "ERR unknown command '";
    e.append(args[0].substr(0, 128));
    e += "', with args beginning with: ";
    e += list;
    return clean(std::move(e));
  }
  if (cmd->nsubcommands > 0 && args.size() >= 2) {
    // The container itself came back: the subcommand is unknown.
    std::string upper(cmd->name);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    e = "ERR unknown subcommand '";
    e.append(args[1].substr(0, 128));
    e += "'. Try " + upper + " HELP.";
    return clean(std::move(e));
  }
  if (!commands::arityOk(*cmd, args.size())) {
    e = "ERR wrong number of arguments for '";
    e.append(cmd->name);
    e += "' command";
  }
  return e;
}

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

std::string_view fullName(const CommandInfo* cmd, const std::vector<std::string_view>& args) {
  return cmd != nullptr ? cmd->name : args[0];
}

std::string upperName(const CommandInfo* cmd, const std::vector<std::string_view>& args) {
  std::string s(args[0]);
  if (cmd != nullptr && cmd->name.find('|') != std::string_view::npos && args.size() > 1) {
    s.push_back(' ');
    s.append(args[1]);
  }
  for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

HelloOption helloOption(const std::vector<std::string_view>& args, size_t j) {
  const size_t more = args.size() - 1 - j;
  if (commands::equalsIgnoreCase(args[j], "AUTH") && more >= 2) return HelloOption::kAuth;
  if (commands::equalsIgnoreCase(args[j], "SETNAME") && more >= 1) return HelloOption::kSetname;
  return HelloOption::kBad;
}

std::vector<std::pair<std::string_view, std::string_view>> helloCredentials(
    const std::vector<std::string_view>& args) {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  int64_t ver = 0;
  if (args.size() < 2 || !parseInt(args[1], ver) || ver < 2 || ver > 3) return out;
  for (size_t j = 2; j < args.size();) {
    const HelloOption o = helloOption(args, j);
    if (o == HelloOption::kBad) break;
    if (o == HelloOption::kAuth) {
      out.emplace_back(args[j + 1], args[j + 2]);
      j += 3;
    } else {
      j += 2;
    }
  }
  return out;
}

}  // namespace corral::net
