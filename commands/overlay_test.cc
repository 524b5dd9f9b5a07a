// Tests for the learnt overlay: what build() learns and refuses, lookups through it, and key
// extraction with learnt key specs (Redis's getKeysUsingKeySpecs, partial results).
#include "commands/overlay.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "commands/command_table.h"

namespace corral::commands {
namespace {

using Begin = KeySpecDesc::Begin;
using Find = KeySpecDesc::Find;

// The overlay is process-wide: each test lays its own and removes it at the end.
struct Laid {
  std::unique_ptr<Overlay> overlay;
  Overlay::Report report;
  explicit Laid(const std::vector<CommandDesc>& cmds) {
    overlay = Overlay::build(cmds, &report);
    setOverlay(overlay.get());
  }
  ~Laid() { setOverlay(nullptr); }
  Laid(const Laid&) = delete;
  Laid& operator=(const Laid&) = delete;
};

KeySpecDesc indexRange(int64_t index, int64_t lastkey = 0, int64_t step = 1, int64_t limit = 0) {
  KeySpecDesc k;
  k.begin = Begin::kIndex;
  k.index = index;
  k.find = Find::kRange;
  k.lastkey = lastkey;
  k.keystep = step;
  k.limit = limit;
  return k;
}

KeySpecDesc keywordRange(std::string keyword, int64_t startfrom, int64_t lastkey, int64_t step,
                         int64_t limit) {
  KeySpecDesc k = indexRange(0, lastkey, step, limit);
  k.begin = Begin::kKeyword;
  k.keyword = std::move(keyword);
  k.startfrom = startfrom;
  return k;
}

KeySpecDesc keynum(Begin begin, int64_t index_or_from, int64_t keynumidx, int64_t firstkey,
                   int64_t step = 1, std::string keyword = {}) {
  KeySpecDesc k;
  k.begin = begin;
  if (begin == Begin::kIndex) {
    k.index = index_or_from;
  } else {
    k.startfrom = index_or_from;
    k.keyword = std::move(keyword);
  }
  k.find = Find::kKeynum;
  k.keynumidx = keynumidx;
  k.firstkey = firstkey;
  k.keystep = step;
  return k;
}

CommandDesc cmd(std::string name, int64_t arity, std::vector<std::string> flags,
                std::vector<KeySpecDesc> specs) {
  CommandDesc d;
  d.name = std::move(name);
  d.arity = arity;
  d.flags = std::move(flags);
  d.has_key_specs = true;
  d.key_specs = std::move(specs);
  return d;
}

std::vector<std::string> split(std::string_view line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= line.size()) {
    const size_t end = line.find(' ', start);
    out.emplace_back(line.substr(start, end == std::string_view::npos ? line.npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

// The command `line` looks up to (its name, or "(null)").
std::string nameOf(std::string_view line) {
  const std::vector<std::string> w = split(line);
  const std::vector<std::string_view> args(w.begin(), w.end());
  const CommandInfo* c = lookup(args);
  return c == nullptr ? "(null)" : std::string(c->name);
}

// The key indexes of `line` as "1 3"; "?" unknown, "!" malformed.
std::string keys(std::string_view line) {
  const std::vector<std::string> w = split(line);
  const std::vector<std::string_view> args(w.begin(), w.end());
  const CommandInfo* c = lookup(args);
  if (c == nullptr) return "?";
  std::vector<uint32_t> out{99};
  if (!extractKeys(*c, args, out)) return "!";
  std::string s;
  for (uint32_t k : out) s += (s.empty() ? "" : " ") + std::to_string(k);
  return s;
}

bool skipped(const Overlay::Report& r, std::string_view name) {
  for (const std::string& s : r.skipped) {
    if (s.starts_with(std::string(name) + ":")) return true;
  }
  return false;
}

TEST_CASE("without an overlay, commands the table does not know stay unknown") {
  REQUIRE(currentOverlay() == nullptr);
  CHECK(nameOf("HEXPIRE k 10 FIELDS 1 f") == "(null)");
  CHECK(nameOf("OBJECT NEWTHING k") == "object");
}

TEST_CASE("a learnt single-key command is found in any case and gets the built-in key form") {
  Laid laid({cmd("hexpire", -6, {"write", "denyoom", "fast"}, {indexRange(1)}),
             cmd("httl", -5, {"readonly", "fast"}, {indexRange(1)})});
  CHECK(laid.report.learnt == 2);
  CHECK(laid.report.skipped.empty());
  const std::string_view args[] = {"HExpire", "other:1", "100", "FIELDS", "1", "f"};
  const CommandInfo* c = lookup(args);
  REQUIRE(c != nullptr);
  CHECK(c->name == "hexpire");
  CHECK(c->id == kLearntId);
  CHECK(c->arity == -6);
  CHECK(c->flags == (kWrite | kDenyOom | kFast));
  CHECK(arityOk(*c, 6));
  CHECK_FALSE(arityOk(*c, 5));
  // The fixed-position form of built-in single-key commands (fast path, engine key_at).
  REQUIRE(c->nkeyspecs == 1);
  CHECK(c->keys[0].search == KeySearch::kRange);
  CHECK(c->keys[0].first == 1);
  CHECK(c->keys[0].last == 1);
  CHECK(keys("HEXPIRE other:1 100 FIELDS 1 f") == "1");
  CHECK(keys("httl k FIELDS 1 f") == "1");
  CHECK((lookup(std::vector<std::string_view>{"httl"})->flags & kRead) != 0);
  CHECK(topLevelIndex(c) == -1);
  CHECK(byId(kLearntId) == nullptr);
}

TEST_CASE("built-in commands are never replaced, whatever the server reports") {
  const std::string_view get[] = {"get", "k"};
  const CommandInfo* before = lookup(get);
  Laid laid({cmd("get", -5, {"write"}, {indexRange(2)}), cmd("config|get", 3, {}, {}),
             cmd("GET", 2, {}, {})});
  CHECK(laid.report.learnt == 0);
  CHECK(lookup(get) == before);
  CHECK(before->arity == 2);
  CHECK(nameOf("CONFIG GET maxmemory") == "config|get");
}

TEST_CASE("new subcommands of built-in containers are learnt, CLIENT's never") {
  CommandDesc object = cmd("object", -2, {}, {});
  object.subcommands = {cmd("object|freq", 3, {"readonly"}, {indexRange(2)}),  // built in
                        cmd("object|newthing", 3, {"readonly"}, {indexRange(2)})};
  CommandDesc client = cmd("client", -2, {}, {});
  client.subcommands = {cmd("client|no-touch", 3, {"noscript"}, {}),
                        cmd("client|setinfo", -4, {"noscript"}, {})};
  Laid laid({object, client});
  CHECK(laid.report.learnt == 1);
  CHECK(nameOf("OBJECT NEWTHING k") == "object|newthing");
  CHECK(nameOf("object NewThing k") == "object|newthing");
  CHECK(keys("OBJECT NEWTHING k") == "2");
  CHECK(nameOf("OBJECT FREQ k") == "object|freq");
  CHECK(lookup(std::vector<std::string_view>{"object", "freq", "k"})->id != kLearntId);
  CHECK(nameOf("CLIENT NO-TOUCH on") == "client");
  CHECK(nameOf("CLIENT SETINFO lib-name x") == "client");
  CHECK(nameOf("OBJECT NOSUCH k") == "object");
}

TEST_CASE("a learnt container resolves its subcommands; an unknown one stays the container") {
  CommandDesc vset = cmd("vset", -2, {}, {});
  vset.subcommands = {cmd("vset|add", -4, {"write", "denyoom"}, {indexRange(2)}),
                      cmd("vset|card", 3, {"readonly", "fast"}, {indexRange(2)}),
                      cmd("other|sub", 3, {}, {}),  // not this container's: refused
                      cmd("vset|a|b", 3, {}, {})};
  Laid laid({vset});
  CHECK(laid.report.learnt == 3);
  CHECK(skipped(laid.report, "other|sub"));
  CHECK(skipped(laid.report, "vset|a|b"));
  CHECK(nameOf("VSET ADD k 1 2") == "vset|add");
  CHECK(nameOf("vset CARD k") == "vset|card");
  CHECK(nameOf("vset nosuch k") == "vset");
  CHECK(nameOf("vset") == "vset");
  const CommandInfo* c = lookup(std::vector<std::string_view>{"vset"});
  REQUIRE(c != nullptr);
  CHECK(c->nsubcommands == 2);
  CHECK((c->flags & kNoKey) != 0);
  CHECK(keys("VSET ADD k 1 2") == "2");
}

TEST_CASE("keyword key specs search forwards, or backwards from a negative start") {
  // STREAMS-like: keys are the first half of what follows the keyword.
  Laid laid({cmd("xreadx", -4, {"readonly"}, {keywordRange("STREAMS", 1, -1, 1, 2)}),
             // MIGRATE's KEYS: searched backwards from the last arg but one.
             cmd("migratex", -6, {"write"}, {indexRange(3), keywordRange("KEYS", -2, -1, 1, 0)}),
             // A keyword that only begins a fixed range: FIELDS-like with two keys after it.
             cmd("pairx", -3, {"write"}, {keywordRange("KEYS", 1, 1, 1, 0)})});
  CHECK(laid.report.learnt == 3);
  CHECK(keys("XREADX COUNT 2 STREAMS a b 0 0") == "4 5");
  CHECK(keys("xreadx streams a 0") == "2");
  CHECK(keys("xreadx count 1 x") == "");             // no keyword: no keys, not malformed
  CHECK(keys("xreadx count 1 STREAMS") == "");       // the keyword is never the last arg
  CHECK(keys("XREADX STREAMS a b c 0 0") == "2 3");  // an odd rest rounds down, as Redis
  CHECK(keys("MIGRATEX h p \"\" 0 5000 KEYS a b") == "3 7 8");
  CHECK(keys("MIGRATEX h p k 0 5000") == "3");
  // Backwards from argc-2 down to arg 2: "keys" in arg 1 is never a match.
  CHECK(keys("MIGRATEX keys p k 0 5000 x") == "3");
  CHECK(keys("pairx KEYS a b c") == "2 3");
  CHECK(keys("pairx KEYS a") == "");  // the range runs past the args: no keys from it
  CHECK(keys("pairx x y KEYS a b") == "4 5");
}

TEST_CASE("keynum key specs, with index and keyword begins; a bad count drops only its spec") {
  Laid laid({// ZUNIONSTORE-like: dest, then numkeys and the keys.
             cmd("zunionx", -4, {"write"}, {indexRange(1), keynum(Begin::kIndex, 2, 0, 1)}),
             // Keyword + keynum: ... KEYS 2 a b, keys every other arg.
             cmd("kwnum", -3, {"readonly"}, {keynum(Begin::kKeyword, 1, 0, 1, 2, "KEYS")})});
  CHECK(laid.report.learnt == 2);
  CHECK(keys("ZUNIONX d 2 a b WEIGHTS 1 2") == "1 3 4");
  CHECK(keys("ZUNIONX d 0 a") == "1");     // zero keys: an invalid spec in Redis, no keys from it
  CHECK(keys("ZUNIONX d 3 a b") == "1");   // more keys than args
  CHECK(keys("ZUNIONX d -1 a b") == "1");  // negative
  CHECK(keys("ZUNIONX d 01 a b") == "1");  // not Redis's integer syntax
  CHECK(keys("ZUNIONX d +1 a b") == "1");
  CHECK(keys("ZUNIONX d x a b") == "1");
  CHECK(keys("ZUNIONX d 99999999999999999999999 a b") == "1");
  CHECK(keys("kwnum opt KEYS 2 a x b y") == "4 6");
  CHECK(keys("kwnum opt KEYS 2 a x") == "");  // the last key would be past the args
  CHECK(keys("kwnum opt nokeyword 1 a") == "");
}

TEST_CASE("more than two key specs are kept by the overlay") {
  Laid laid({cmd("three", -4, {"write"}, {indexRange(1), indexRange(2), indexRange(3)})});
  CHECK(laid.report.learnt == 1);
  const CommandInfo* c = lookup(std::vector<std::string_view>{"three"});
  REQUIRE(c != nullptr);
  CHECK(c->nkeyspecs == 3);
  CHECK(laid.overlay->moreKeySpecs(c) != nullptr);
  CHECK(keys("three a b c d") == "1 2 3");
  CHECK(keys("three a b") == "1 2");  // the third key is past the args: that spec adds nothing
}

TEST_CASE("commands whose keys cannot be found are not learnt") {
  KeySpecDesc unknown_begin = indexRange(1);
  unknown_begin.begin = Begin::kUnknown;
  KeySpecDesc unknown_find = indexRange(1);
  unknown_find.find = Find::kUnknown;
  KeySpecDesc incomplete = indexRange(1);
  incomplete.incomplete = true;
  KeySpecDesc channel = indexRange(1);
  channel.not_key = true;
  CommandDesc no_specs_movable = cmd("movable", -2, {"movablekeys"}, {});
  Laid laid({cmd("ub", -2, {}, {unknown_begin}), cmd("uf", -2, {}, {unknown_find}),
             cmd("inc", -2, {}, {indexRange(1), incomplete}), no_specs_movable,
             cmd("spublishx", 3, {"pubsub"}, {channel})});
  CHECK(laid.report.learnt == 1);
  for (std::string_view n : {"ub", "uf", "inc", "movable"}) {
    CAPTURE(n);
    CHECK(skipped(laid.report, n));
    CHECK(nameOf(n) == "(null)");
  }
  // A channel is not a key: the command is learnt without keys.
  CHECK(nameOf("spublishx ch msg") == "spublishx");
  CHECK(keys("spublishx ch msg") == "");
  CHECK((lookup(std::vector<std::string_view>{"spublishx"})->flags & (kNoKey | kPubSub)) ==
        (kNoKey | kPubSub));
}

TEST_CASE("values out of range are refused, never followed") {
  std::vector<CommandDesc> bad = {
      cmd("idx0", -2, {}, {indexRange(0)}),
      cmd("idxbig", -2, {}, {indexRange(40000)}),
      cmd("step0", -2, {}, {indexRange(1, -1, 0)}),
      cmd("stepneg", -2, {}, {indexRange(1, -1, -1)}),
      cmd("limitlast", -2, {}, {indexRange(1, -2, 1, 2)}),
      cmd("limitneg", -2, {}, {indexRange(1, -1, 1, -1)}),
      cmd("lastbig", -2, {}, {indexRange(1, 1 << 20)}),
      cmd("from0", -2, {}, {keywordRange("K", 0, 0, 1, 0)}),
      cmd("kwempty", -2, {}, {keywordRange("", 1, 0, 1, 0)}),
      cmd("kwlong", -2, {}, {keywordRange(std::string(65, 'k'), 1, 0, 1, 0)}),
      cmd("numkeyfirst", -2, {}, {keynum(Begin::kIndex, 1, 1, 1)}),  // count inside the keys
      cmd("numneg", -2, {}, {keynum(Begin::kIndex, 1, -1, 1)}),
      cmd("arity0", 0, {}, {}),
      cmd("aritybig", int64_t{1} << 40, {}, {}),
      cmd("has space", 1, {}, {}),
      cmd("ctl\x01", 1, {}, {}),
      cmd("", 1, {}, {}),
      cmd("a|b", 1, {}, {}),
      cmd(std::string(65, 'n'), 1, {}, {}),
  };
  bad.push_back(cmd("many", -2, {}, std::vector<KeySpecDesc>(17, indexRange(1))));
  Laid laid(bad);
  CHECK(laid.report.learnt == 0);
  CHECK(laid.report.skipped.size() == bad.size());
  for (std::string_view n :
       {"idx0", "idxbig", "step0", "limitlast", "from0", "numkeyfirst", "arity0", "many"}) {
    CAPTURE(n);
    CHECK(skipped(laid.report, n));
    CHECK(nameOf(n) == "(null)");
  }
}

TEST_CASE("names are learnt in lower case, the first report of a name stands") {
  Laid laid(
      {cmd("JSON.GET", -2, {"readonly"}, {indexRange(1)}),
       cmd("json.get", -3, {"write"}, {indexRange(2)}),
       cmd("a.module.command.with.a.name.longer.than.any.builtin", 2, {"write"}, {indexRange(1)})});
  CHECK(laid.report.learnt == 2);
  const CommandInfo* c = lookup(std::vector<std::string_view>{"Json.Get", "k"});
  REQUIRE(c != nullptr);
  CHECK(c->name == "json.get");
  CHECK(c->arity == -2);
  CHECK(keys("JSON.GET doc $.a") == "1");
  CHECK(keys("A.MODULE.COMMAND.WITH.A.NAME.LONGER.THAN.ANY.BUILTIN k") == "1");
  CHECK(nameOf(std::string(200, 'a')) == "(null)");
}

TEST_CASE("servers before Redis 7: the legacy first/last/step range") {
  CommandDesc range;
  range.name = "mgetx";
  range.arity = -2;
  range.flags = {"readonly"};
  range.first_key = 1;
  range.last_key = -1;
  range.key_step = 1;
  CommandDesc pairs = range;
  pairs.name = "msetx";
  pairs.key_step = 2;
  CommandDesc none = range;
  none.name = "nokeys";
  none.first_key = 0;
  CommandDesc movable = range;
  movable.name = "movx";
  movable.flags = {"movablekeys"};
  movable.first_key = 0;
  CommandDesc backwards = range;
  backwards.name = "backx";
  backwards.first_key = 3;
  backwards.last_key = 2;
  Laid laid({range, pairs, none, movable, backwards});
  CHECK(laid.report.learnt == 3);
  CHECK(keys("mgetx a b c") == "1 2 3");
  CHECK(keys("msetx a 1 b 2") == "1 3");
  CHECK(keys("nokeys a") == "");
  CHECK(skipped(laid.report, "movx"));
  CHECK(skipped(laid.report, "backx"));
}

TEST_CASE("the overlay stops at its limit of commands") {
  std::vector<CommandDesc> many;
  for (size_t i = 0; i < kMaxLearntCommands + 10; ++i) {
    many.push_back(cmd("c" + std::to_string(i), 2, {}, {indexRange(1)}));
  }
  Laid laid(many);
  CHECK(laid.report.learnt == kMaxLearntCommands);
  CHECK(nameOf("c0 k") == "c0");
  CHECK(nameOf("c" + std::to_string(kMaxLearntCommands - 1) + " k") != "(null)");
  CHECK(nameOf("c" + std::to_string(kMaxLearntCommands) + " k") == "(null)");
  // Every learnt name is found (the index holds them all).
  for (const CommandInfo* e : laid.overlay->entries()) {
    const std::string_view args[] = {e->name};
    CHECK(lookup(args) == e);
  }
}

}  // namespace
}  // namespace corral::commands
