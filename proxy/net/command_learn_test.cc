// Tests for reading COMMAND replies (RESP2 and RESP3) into command descriptions, for the
// bounds a hostile or broken reply meets, and for the process-wide learning state.
#include "proxy/net/command_learn.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "commands/command_table.h"
#include "commands/overlay.h"

namespace corral::net {
namespace {

using commands::CommandDesc;
using commands::KeySpecDesc;

// RESP builders. `resp3` picks maps ("%") and sets ("~") over RESP2's flat arrays.
std::string bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}
std::string simple(std::string_view s) { return "+" + std::string(s) + "\r\n"; }
std::string num(int64_t v) { return ":" + std::to_string(v) + "\r\n"; }
std::string agg(char type, size_t n, const std::vector<std::string>& items) {
  std::string out = type + std::to_string(n) + "\r\n";
  for (const std::string& i : items) out += i;
  return out;
}
std::string arr(const std::vector<std::string>& items) { return agg('*', items.size(), items); }
std::string set(bool resp3, const std::vector<std::string>& items) {
  return agg(resp3 ? '~' : '*', items.size(), items);
}
// key, value, key, value ...
std::string map(bool resp3, const std::vector<std::string>& kv) {
  return resp3 ? agg('%', kv.size() / 2, kv) : arr(kv);
}

std::string beginIndex(bool r3, int64_t index) {
  return map(r3, {bulk("type"), bulk("index"), bulk("spec"), map(r3, {bulk("index"), num(index)})});
}
std::string beginKeyword(bool r3, std::string_view kw, int64_t from) {
  return map(r3, {bulk("type"), bulk("keyword"), bulk("spec"),
                  map(r3, {bulk("keyword"), bulk(kw), bulk("startfrom"), num(from)})});
}
std::string findRange(bool r3, int64_t last, int64_t step, int64_t limit) {
  return map(r3, {bulk("type"), bulk("range"), bulk("spec"),
                  map(r3, {bulk("lastkey"), num(last), bulk("keystep"), num(step), bulk("limit"),
                           num(limit)})});
}
std::string findKeynum(bool r3, int64_t idx, int64_t first, int64_t step) {
  return map(r3, {bulk("type"), bulk("keynum"), bulk("spec"),
                  map(r3, {bulk("keynumidx"), num(idx), bulk("firstkey"), num(first),
                           bulk("keystep"), num(step)})});
}
std::string keySpec(bool r3, std::vector<std::string> flags, std::string begin, std::string find) {
  std::vector<std::string> f;
  for (const std::string& s : flags) f.push_back(simple(s));
  return map(r3, {bulk("notes"), bulk("a note Redis may add"), bulk("flags"), set(r3, f),
                  bulk("begin_search"), begin, bulk("find_keys"), find});
}
std::string command(bool r3, std::string_view name, int64_t arity,
                    std::vector<std::string_view> flags, int64_t first, int64_t last, int64_t step,
                    std::vector<std::string> specs, std::vector<std::string> subs = {}) {
  std::vector<std::string> f;
  for (std::string_view s : flags) f.push_back(simple(s));
  return arr({bulk(name), num(arity), set(r3, f), num(first), num(last), num(step),
              set(r3, {simple("@hash"), simple("@fast")}), set(r3, {}), set(r3, specs),
              set(r3, subs)});
}

// A newer server's reply (Redis 7.4 hash-field expiry, a 7.2 subcommand, a module): what the
// integration test's fake upstream answers too, in miniature.
std::string newerReply(bool r3) {
  const std::string one_key =
      keySpec(r3, {"RW", "update"}, beginIndex(r3, 1), findRange(r3, 0, 1, 0));
  return arr({
      command(r3, "hexpire", -6, {"write", "denyoom", "fast"}, 1, 1, 1, {one_key}),
      command(r3, "httl", -5, {"readonly", "fast"}, 1, 1, 1,
              {keySpec(r3, {"RO", "access"}, beginIndex(r3, 1), findRange(r3, 0, 1, 0))}),
      command(r3, "get", 2, {"readonly", "fast"}, 1, 1, 1,
              {keySpec(r3, {"RO", "access"}, beginIndex(r3, 1), findRange(r3, 0, 1, 0))}),
      command(
          r3, "xreadx", -4, {"readonly", "movablekeys"}, 0, 0, 0,
          {keySpec(r3, {"RO", "access"}, beginKeyword(r3, "STREAMS", 1), findRange(r3, -1, 1, 2))}),
      command(r3, "zunionx", -4, {"write", "movablekeys"}, 0, 0, 0,
              {keySpec(r3, {"OW", "update"}, beginIndex(r3, 1), findRange(r3, 0, 1, 0)),
               keySpec(r3, {"RO", "access"}, beginIndex(r3, 2), findKeynum(r3, 0, 1, 1))}),
      command(r3, "spublishx", 3, {"pubsub", "loading"}, 1, 1, 1,
              {keySpec(r3, {"not_key"}, beginIndex(r3, 1), findRange(r3, 0, 1, 0))}),
      command(r3, "object", -2, {}, 0, 0, 0, {},
              {command(r3, "object|newthing", 3, {"readonly"}, 2, 2, 1,
                       {keySpec(r3, {"RO"}, beginIndex(r3, 2), findRange(r3, 0, 1, 0))})}),
      "*-1\r\n",  // COMMAND INFO of a name the server does not know
  });
}

const CommandDesc* byName(const ParsedCommands& p, std::string_view name) {
  for (const CommandDesc& d : p.commands) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

TEST_CASE("a newer server's COMMAND reply, RESP2 and RESP3 alike") {
  for (bool r3 : {false, true}) {
    CAPTURE(r3);
    ParsedCommands p;
    REQUIRE(parseCommandReply(newerReply(r3), &p));
    CHECK(p.commands.size() == 7);
    CHECK(p.malformed == 0);
    CHECK_FALSE(p.truncated);
    const CommandDesc* h = byName(p, "hexpire");
    REQUIRE(h != nullptr);
    CHECK(h->arity == -6);
    CHECK(h->flags == std::vector<std::string>{"write", "denyoom", "fast"});
    CHECK(h->first_key == 1);
    CHECK(h->has_key_specs);
    REQUIRE(h->key_specs.size() == 1);
    const KeySpecDesc& k = h->key_specs[0];
    CHECK(k.begin == KeySpecDesc::Begin::kIndex);
    CHECK(k.index == 1);
    CHECK(k.find == KeySpecDesc::Find::kRange);
    CHECK(k.lastkey == 0);
    CHECK(k.keystep == 1);
    CHECK(k.limit == 0);
    CHECK_FALSE(k.not_key);

    const CommandDesc* x = byName(p, "xreadx");
    REQUIRE(x != nullptr);
    REQUIRE(x->key_specs.size() == 1);
    CHECK(x->key_specs[0].begin == KeySpecDesc::Begin::kKeyword);
    CHECK(x->key_specs[0].keyword == "STREAMS");
    CHECK(x->key_specs[0].startfrom == 1);
    CHECK(x->key_specs[0].lastkey == -1);
    CHECK(x->key_specs[0].limit == 2);

    const CommandDesc* z = byName(p, "zunionx");
    REQUIRE(z != nullptr);
    REQUIRE(z->key_specs.size() == 2);
    CHECK(z->key_specs[1].find == KeySpecDesc::Find::kKeynum);
    CHECK(z->key_specs[1].keynumidx == 0);
    CHECK(z->key_specs[1].firstkey == 1);

    CHECK(byName(p, "spublishx")->key_specs[0].not_key);
    const CommandDesc* o = byName(p, "object");
    REQUIRE(o != nullptr);
    REQUIRE(o->subcommands.size() == 1);
    CHECK(o->subcommands[0].name == "object|newthing");
    CHECK(o->subcommands[0].key_specs[0].index == 2);
  }
}

TEST_CASE("parsed and laid over the table, learnt commands have their keys") {
  ParsedCommands p;
  REQUIRE(parseCommandReply(newerReply(false), &p));
  commands::Overlay::Report report;
  auto overlay = commands::Overlay::build(p.commands, &report);
  // get and object are built in; the rest, and object|newthing, are learnt.
  CHECK(report.learnt == 6);
  commands::setOverlay(overlay.get());
  auto keysOf = [](std::vector<std::string_view> args) {
    const commands::CommandInfo* c = commands::lookup(args);
    std::vector<uint32_t> out;
    if (c == nullptr || !commands::extractKeys(*c, args, out)) return std::string("?");
    std::string s;
    for (uint32_t i : out) s += std::to_string(i);
    return s;
  };
  CHECK(keysOf({"HEXPIRE", "other:1", "100", "FIELDS", "1", "f"}) == "1");
  CHECK(keysOf({"xreadx", "COUNT", "1", "STREAMS", "a", "b", "0", "0"}) == "45");
  CHECK(keysOf({"zunionx", "d", "2", "a", "b"}) == "134");
  CHECK(keysOf({"object", "newthing", "k"}) == "2");
  CHECK(keysOf({"spublishx", "ch", "m"}).empty());
  commands::setOverlay(nullptr);
}

TEST_CASE("what is not an array of commands is refused whole") {
  ParsedCommands p;
  for (std::string_view bad :
       {"-NOPERM this user has no permissions to run the 'command' command\r\n",
        "-ERR corral: upstream 127.0.0.1:6379 unavailable\r\n", ":1\r\n", "+OK\r\n", "*-1\r\n",
        "%1\r\n$1\r\na\r\n:1\r\n", "", "*1\r\n", "*2\r\n*-1\r\n", "*1\r\n*-1\r\nextra",
        "*99999999999\r\n*-1\r\n", "*1\r\n$5\r\nab\r\n"}) {
    CAPTURE(bad);
    p.commands.emplace_back();  // must be cleared
    CHECK_FALSE(parseCommandReply(bad, &p));
    CHECK(p.commands.empty());
  }
  CHECK(parseCommandReply("*0\r\n", &p));
  CHECK(p.commands.empty());
}

TEST_CASE("every truncation of a reply is refused, never read past its end") {
  const std::string full = newerReply(true);
  ParsedCommands p;
  for (size_t n = 0; n < full.size(); ++n) {
    CAPTURE(n);
    CHECK_FALSE(parseCommandReply(std::string_view(full).substr(0, n), &p));
    CHECK(p.commands.empty());
  }
  CHECK(parseCommandReply(full, &p));
}

TEST_CASE("a malformed entry is left out, the others stay") {
  const bool r3 = false;
  const std::string good =
      command(r3, "hexpire", -6, {"write"}, 1, 1, 1,
              {keySpec(r3, {"RW"}, beginIndex(r3, 1), findRange(r3, 0, 1, 0))});
  const std::vector<std::string> bad_entries = {
      num(7),                                                           // not an array
      arr({bulk("x"), num(1), arr({}), num(0), num(0)}),                // five elements
      arr({num(1), num(1), arr({}), num(0), num(0), num(0)}),           // name not a string
      arr({bulk("x"), bulk("1"), arr({}), num(0), num(0), num(0)}),     // arity not an integer
      arr({bulk("x"), num(1), num(3), num(0), num(0), num(0)}),         // flags not a list
      arr({bulk("x"), num(1), arr({num(1)}), num(0), num(0), num(0)}),  // a flag not a string
      arr({bulk("x"), num(1), arr({}), bulk("a"), num(0), num(0)}),     // first not an integer
  };
  for (const std::string& bad : bad_entries) {
    CAPTURE(bad);
    ParsedCommands p;
    REQUIRE(parseCommandReply(arr({good, bad, good}), &p));
    CHECK(p.malformed == 1);
    CHECK(p.commands.size() == 2);
  }
}

TEST_CASE("key specs the reader cannot make sense of become unknown, so the command is refused") {
  const bool r3 = false;
  const std::vector<std::string> specs = {
      num(1),                                                                           // not a map
      arr({bulk("flags")}),                                                             // odd map
      keySpec(r3, {}, map(r3, {bulk("type"), bulk("index")}), findRange(r3, 0, 1, 0)),  // no spec
      keySpec(r3, {}, map(r3, {bulk("type"), bulk("index"), bulk("spec"), map(r3, {})}),
              findRange(r3, 0, 1, 0)),  // no index
      keySpec(r3, {}, beginIndex(r3, 1),
              map(r3, {bulk("type"), bulk("range"), bulk("spec"),
                       map(r3, {bulk("lastkey"), num(0)})})),  // no keystep
      keySpec(r3, {}, beginIndex(r3, 1),
              map(r3, {bulk("type"), bulk("unknown"), bulk("spec"), map(r3, {})})),
      keySpec(r3, {}, map(r3, {bulk("type"), bulk("unknown"), bulk("spec"), map(r3, {})}),
              findRange(r3, 0, 1, 0)),
      keySpec(r3, {}, beginIndex(r3, 1),
              map(r3, {bulk("type"), bulk("range"), bulk("spec"),
                       map(r3, {bulk("lastkey"), bulk("0"), bulk("keystep"), num(1), bulk("limit"),
                                num(0)})})),  // a value of the wrong type
      keySpec(r3, {"incomplete"}, beginIndex(r3, 1), findRange(r3, 0, 1, 0)),
  };
  for (const std::string& spec : specs) {
    CAPTURE(spec);
    ParsedCommands p;
    REQUIRE(parseCommandReply(arr({command(r3, "newcmd", -2, {"write"}, 1, 1, 1, {spec})}), &p));
    REQUIRE(p.commands.size() == 1);
    commands::Overlay::Report report;
    auto overlay = commands::Overlay::build(p.commands, &report);
    CHECK(report.learnt == 0);
    REQUIRE(report.skipped.size() == 1);
    CHECK(report.skipped[0].starts_with("newcmd:"));
  }
}

TEST_CASE("bounds: entries, flags, names and specs are capped") {
  const bool r3 = false;
  std::vector<std::string> many;
  for (size_t i = 0; i < kMaxReplyEntries + 3; ++i) {
    many.push_back(command(r3, "c" + std::to_string(i), 1, {}, 0, 0, 0, {}));
  }
  ParsedCommands p;
  REQUIRE(parseCommandReply(arr(many), &p));
  CHECK(p.commands.size() == kMaxReplyEntries);
  CHECK(p.truncated);

  std::vector<std::string_view> flags(500, "fast");
  const std::string long_name(100000, 'n');
  std::vector<std::string> specs(100, keySpec(r3, {}, beginIndex(r3, 1), findRange(r3, 0, 1, 0)));
  REQUIRE(parseCommandReply(arr({command(r3, long_name, 1, flags, 0, 0, 0, specs)}), &p));
  REQUIRE(p.commands.size() == 1);
  CHECK(p.commands[0].flags.size() == 64);
  CHECK(p.commands[0].name.size() == commands::kMaxLearntNameLen + 1);
  CHECK(p.commands[0].key_specs.size() == commands::kMaxLearntKeySpecs + 1);
  commands::Overlay::Report report;
  auto overlay = commands::Overlay::build(p.commands, &report);
  CHECK(report.learnt == 0);  // too long a name (and too many specs)
}

TEST_CASE("byte flips anywhere in a reply never crash the reader or the overlay") {
  const std::string full = newerReply(false) + "";
  size_t accepted = 0;
  for (size_t i = 0; i < full.size(); ++i) {
    for (char c : {'\0', '*', '%', '$', ':', '-', '9', '\r'}) {
      std::string m = full;
      m[i] = c;
      ParsedCommands p;
      if (!parseCommandReply(m, &p)) continue;
      ++accepted;
      commands::Overlay::Report report;
      auto overlay = commands::Overlay::build(p.commands, &report);
      CHECK(report.learnt <= 7);
    }
  }
  CHECK(accepted > 0);  // most flips inside values still frame
}

TEST_CASE("learning: one claim at a time; retried after an upstream failure, settled otherwise") {
  {
    CommandLearning l;
    REQUIRE(l.claim());
    CHECK_FALSE(l.claim());  // another worker is asking
    CHECK(l.onReply("-ERR corral: upstream 127.0.0.1:1 unavailable\r\n", "a") == 0);
    CHECK_FALSE(l.settled());
    REQUIRE(l.claim());  // asked again later
    CHECK(l.onReply("-NOPERM this user has no permissions to run the 'command' command\r\n", "a") ==
          0);
    CHECK(l.settled());
    CHECK_FALSE(l.claim());
    CHECK(commands::currentOverlay() == nullptr);
  }
  {
    CommandLearning l;
    REQUIRE(l.claim());
    CHECK(l.onReply("*1\r\n:1\r\ntrailing", "a") == 0);  // unusable: settled, nothing laid
    CHECK(l.settled());
    CHECK(commands::currentOverlay() == nullptr);
  }
  {
    CommandLearning l;
    REQUIRE(l.claim());
    CHECK(l.onReply(newerReply(false), "a") == 6);
    CHECK(l.settled());
    CHECK_FALSE(l.claim());
    REQUIRE(commands::currentOverlay() != nullptr);
    CHECK(commands::lookup(std::vector<std::string_view>{"hexpire"}) != nullptr);
  }
  // Gone with its owner: nothing points at freed entries.
  CHECK(commands::currentOverlay() == nullptr);
  CHECK(commands::lookup(std::vector<std::string_view>{"hexpire"}) == nullptr);
}

}  // namespace
}  // namespace corral::net
