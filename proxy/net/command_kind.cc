#include "proxy/net/command_kind.h"

#include <cctype>
#include <charconv>
#include <unordered_map>

namespace corral::net {
namespace {

using commands::CommandInfo;

constexpr uint32_t kMaybeLocal = commands::kConnState | commands::kTransaction |
                                 commands::kBlocking | commands::kPubSub | commands::kNoKey;

const std::unordered_map<const CommandInfo*, CommandKind>& localTable() {
  static const std::unordered_map<const CommandInfo*, CommandKind> table = [] {
    std::unordered_map<const CommandInfo*, CommandKind> t;
    auto add = [&t](std::initializer_list<std::string_view> args, CommandKind what) {
      std::vector<std::string_view> v(args);
      const CommandInfo* c = commands::lookup(v);
      if (c != nullptr) t.emplace(c, what);
    };
    add({"ping"}, CommandKind::kPing);
    add({"echo"}, CommandKind::kEcho);
    add({"quit"}, CommandKind::kQuit);
    add({"hello"}, CommandKind::kHello);
    add({"auth"}, CommandKind::kAuth);
    add({"select"}, CommandKind::kSelect);
    add({"reset"}, CommandKind::kReset);
    add({"client"}, CommandKind::kClient);
    add({"info"}, CommandKind::kInfo);
    add({"config", "get"}, CommandKind::kConfigGet);
    for (std::string_view name : {"scan", "keys", "dbsize", "randomkey"}) {
      add({name}, CommandKind::kKeyspace);
    }
    add({"client", "setname"}, CommandKind::kClientSetname);
    add({"client", "getname"}, CommandKind::kClientGetname);
    add({"client", "id"}, CommandKind::kClientId);
    add({"xread"}, CommandKind::kBlocking);
    add({"xreadgroup"}, CommandKind::kBlocking);
    add({"multi"}, CommandKind::kMulti);
    add({"exec"}, CommandKind::kExecDiscard);
    add({"discard"}, CommandKind::kExecDiscard);
    add({"watch"}, CommandKind::kWatch);
    add({"unwatch"}, CommandKind::kUnwatch);
    for (std::string_view name : {"blpop", "brpop", "blmove", "blmpop", "bzpopmin", "bzpopmax",
                                  "bzmpop", "brpoplpush", "wait", "waitaof"}) {
      add({name}, CommandKind::kBlocking);
    }
    for (std::string_view name : {"subscribe", "psubscribe", "ssubscribe", "monitor"}) {
      add({name}, CommandKind::kPipe);
    }
    // Unsubscribing while not subscribed: Redis answers on the connection itself, which is
    // what a pipe gives too (the reply says "0 subscriptions").
    for (std::string_view name : {"unsubscribe", "punsubscribe", "sunsubscribe"}) {
      add({name}, CommandKind::kPipe);
    }
    for (std::string_view name : {"readonly", "readwrite", "asking", "sync", "psync", "replconf"}) {
      add({name}, CommandKind::kRefuse);
    }
    for (std::string_view sub : {"tracking", "reply", "caching"}) {
      add({"client", sub}, CommandKind::kPipe);
    }
    for (std::string_view sub :
         {"no-evict", "no-touch", "trackinginfo", "getredir", "pause", "unpause"}) {
      // PAUSE/UNPAUSE would stop every client of the shared connection's server: refused too.
      add({"client", sub}, CommandKind::kRefuse);
    }
    // Any other blocking command would hold a shared connection: refuse it as well.
    for (const CommandInfo& c : commands::allCommands()) {
      if ((c.flags & commands::kBlocking) && !t.contains(&c)) t.emplace(&c, CommandKind::kRefuse);
    }
    return t;
  }();
  return table;
}

}  // namespace

CommandKind classify(const CommandInfo* cmd, const std::vector<std::string_view>& args) {
  if (cmd == nullptr || (cmd->flags & kMaybeLocal) == 0) return CommandKind::kForward;
  const auto& table = localTable();
  auto it = table.find(cmd);
  if (it == table.end()) return CommandKind::kForward;
  if (it->second == CommandKind::kBlocking && cmd->name.starts_with("xread")) {
    // XREAD/XREADGROUP block only with BLOCK.
    return blockMs(cmd->name, args) != 0 ? CommandKind::kBlocking : CommandKind::kForward;
  }
  return it->second;
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

}  // namespace corral::net
