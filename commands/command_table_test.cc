// Tests for the command table: lookup, arity, flags and key extraction, plus a replay of the
// COMMAND GETKEYS answers that tools/gen_commands.py recorded from a real redis-server.
#include "commands/command_table.h"

#include <doctest/doctest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace corral::commands {
namespace {
#define CORRAL_COMMANDS_GETKEYS_VECTORS
#include "commands/commands.inc"
#undef CORRAL_COMMANDS_GETKEYS_VECTORS
}  // namespace
}  // namespace corral::commands

// Counts heap allocations while `g_count_allocs` is set, to prove the hot path allocates nothing.
namespace {
std::atomic<bool> g_count_allocs{false};
std::atomic<size_t> g_allocs{0};
}  // namespace

void* operator new(size_t n) {
  if (g_count_allocs.load(std::memory_order_relaxed)) g_allocs.fetch_add(1);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace corral::commands {
namespace {

// Splits on `sep`, keeping empty fields (MIGRATE's "" key).
std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t end = s.find(sep, start);
    out.emplace_back(s.substr(start, end == std::string_view::npos ? s.npos : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

std::vector<std::string_view> views(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

// Space-separated command line; the token "" stands for an empty argument.
std::vector<std::string> words(std::string_view line) {
  std::vector<std::string> out = split(line, ' ');
  for (std::string& w : out) {
    if (w == "\"\"") w.clear();
  }
  return out;
}

std::string joinKeys(const std::vector<uint32_t>& keys) {
  std::string s;
  for (uint32_t k : keys) {
    if (!s.empty()) s += ' ';
    s += std::to_string(k);
  }
  return s;
}

// Key indexes of `line` as "1 3 4"; "" = no keys, "!" = malformed, "?" = unknown command.
std::string keys(std::string_view line) {
  const std::vector<std::string> w = words(line);
  const std::vector<std::string_view> args = views(w);
  const CommandInfo* cmd = lookup(args);
  if (cmd == nullptr) return "?";
  std::vector<uint32_t> out{99};  // must be cleared by extractKeys
  if (!extractKeys(*cmd, args, out)) return "!";
  return joinKeys(out);
}

const CommandInfo* find(std::string_view line) {
  const std::vector<std::string> w = words(line);
  const std::vector<std::string_view> args = views(w);
  return lookup(args);
}

std::string_view nameOf(std::string_view line) {
  const CommandInfo* cmd = find(line);
  return cmd == nullptr ? std::string_view("(null)") : cmd->name;
}

bool has(std::string_view line, uint32_t flags) {
  const CommandInfo* cmd = find(line);
  REQUIRE(cmd != nullptr);
  return (cmd->flags & flags) == flags;
}

bool arity(std::string_view line) {
  const std::vector<std::string> w = words(line);
  const CommandInfo* cmd = lookup(views(w));
  REQUIRE(cmd != nullptr);
  return arityOk(*cmd, w.size());
}

TEST_CASE("the table holds every Redis 7.0.15 command and subcommand, sorted and unique") {
  CHECK(kRedisVersion == "7.0.15");
  // COMMAND COUNT of redis-server 7.0.15 is 240 (checked against the server by the generator).
  CHECK(allCommands().size() == 240);
  CHECK(allCommands().size() == kRedisCommandCount);

  size_t subs = 0;
  std::string_view prev;
  std::set<std::string_view> seen;
  for (const CommandInfo& c : allCommands()) {
    CAPTURE(c.name);
    CHECK(c.name > prev);
    prev = c.name;
    CHECK(c.name.find('|') == std::string_view::npos);
    CHECK(c.arity != 0);
    CHECK(seen.insert(c.name).second);
    // kNoKey exactly when there is nothing to extract.
    CHECK(((c.flags & kNoKey) != 0) == (c.nkeyspecs == 0));
    CHECK(c.nkeyspecs <= 2);
    std::string_view prev_sub;
    for (const CommandInfo& s : std::span(c.subcommands, c.nsubcommands)) {
      CAPTURE(s.name);
      ++subs;
      CHECK(s.name.starts_with(std::string(c.name) + "|"));
      CHECK(s.name > prev_sub);
      prev_sub = s.name;
      CHECK(s.nsubcommands == 0);
      CHECK(((s.flags & kNoKey) != 0) == (s.nkeyspecs == 0));
    }
  }
  CHECK(subs == 126);
  CHECK(subs == kRedisSubcommandCount);
}

TEST_CASE("every name is found in any case, and every subcommand through its container") {
  for (const CommandInfo& c : allCommands()) {
    CAPTURE(c.name);
    std::string upper(c.name);
    for (char& ch : upper) ch = static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
    const std::string_view lower_args[] = {c.name};
    const std::string_view upper_args[] = {upper};
    CHECK(lookup(lower_args) == &c);
    CHECK(lookup(upper_args) == &c);
    for (const CommandInfo& s : std::span(c.subcommands, c.nsubcommands)) {
      CAPTURE(s.name);
      const std::string_view sub = s.name.substr(c.name.size() + 1);
      std::string sub_upper(sub);
      for (char& ch : sub_upper) ch = static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
      const std::string_view args[] = {upper, sub_upper, "x"};
      CHECK(lookup(args) == &s);
    }
  }
}

TEST_CASE("lookup is case-insensitive and rejects unknown names") {
  CHECK(nameOf("get k") == "get");
  CHECK(nameOf("GET k") == "get");
  CHECK(nameOf("gEt k") == "get");
  CHECK(find("GET") == find("get"));
  CHECK(nameOf("restore-asking k 0 v") == "restore-asking");
  CHECK(nameOf("GEORADIUSBYMEMBER_RO k m 1 km") == "georadiusbymember_ro");

  CHECK(find("nosuchcommand") == nullptr);
  CHECK(find("ge") == nullptr);
  CHECK(find("gett") == nullptr);
  CHECK(find("get\xc3\xa9") == nullptr);
  CHECK(find("georadiusbymember_ro_and_more_than_any_name") == nullptr);  // longer than all
  CHECK(find("client|setname x") == nullptr);  // subcommand names are not top-level names
  CHECK(lookup({}) == nullptr);
  const std::string_view empty[] = {""};
  CHECK(lookup(empty) == nullptr);
}

TEST_CASE("containers resolve args[1] to the subcommand, else stay the container") {
  CHECK(nameOf("CLIENT SETNAME x") == "client|setname");
  CHECK(nameOf("client setname x") == "client|setname");
  CHECK(nameOf("Client SetName x") == "client|setname");
  CHECK(nameOf("CLIENT NO-EVICT on") == "client|no-evict");
  CHECK(nameOf("CONFIG GET maxmemory") == "config|get");
  CHECK(nameOf("object encoding k") == "object|encoding");
  CHECK(nameOf("XINFO STREAM k") == "xinfo|stream");
  CHECK(nameOf("command") == "command");
  CHECK(nameOf("CLIENT") == "client");
  CHECK(nameOf("CLIENT nosuchsub") == "client");
  CHECK(nameOf("CLIENT \"\"") == "client");
  CHECK(nameOf("CLIENT setnamex x") == "client");
  CHECK(nameOf("CLIENT set x") == "client");
  CHECK(nameOf("CLIENT a-subcommand-name-longer-than-all x") == "client");
  // A subcommand of another container is not a match.
  CHECK(nameOf("CLIENT ENCODING k") == "client");
  CHECK(nameOf("OBJECT SETNAME k") == "object");
  // Non-containers ignore args[1].
  CHECK(nameOf("GET setname") == "get");
}

TEST_CASE("arity: exact and at-least") {
  CHECK(arity("GET k"));
  CHECK_FALSE(arity("GET"));
  CHECK_FALSE(arity("GET k extra"));
  CHECK(arity("PING"));
  CHECK(arity("PING hello"));
  CHECK(arity("DEL a"));
  CHECK(arity("DEL a b c d"));
  CHECK_FALSE(arity("DEL"));
  CHECK(arity("SET k v"));
  CHECK(arity("SET k v EX 10 NX"));
  CHECK_FALSE(arity("SET k"));
  CHECK(arity("MULTI"));
  CHECK_FALSE(arity("MULTI x"));
  CHECK(arity("CLIENT SETNAME n"));
  CHECK_FALSE(arity("CLIENT SETNAME"));
  CHECK_FALSE(arity("CLIENT SETNAME a b"));
  CHECK_FALSE(arity("CLIENT"));  // container arity is -2
  CHECK(arity("CLIENT nosuchsub"));
  CHECK(arity("XREAD STREAMS s 0"));
  CHECK_FALSE(arity("XREAD STREAMS s"));
  const CommandInfo* get = find("get");
  REQUIRE(get != nullptr);
  CHECK_FALSE(arityOk(*get, 0));
}

TEST_CASE("flags match redis-server 7.0.15 plus corral's own") {
  CHECK(has("GET k", kRead | kFast));
  CHECK_FALSE(has("GET k", kWrite));
  CHECK_FALSE(has("GET k", kNoKey));
  CHECK(has("SET k v", kWrite));
  CHECK_FALSE(has("SET k v", kRead));
  CHECK_FALSE(has("SET k v", kFast));  // SET is not "fast" in Redis 7.0
  CHECK(has("BLPOP a 0", kBlocking | kWrite));
  CHECK(has("XREAD STREAMS s 0", kBlocking | kRead | kMovableKeys));
  CHECK(has("WAIT 1 0", kBlocking | kNoKey));  // corral adds kBlocking; Redis 7.0 does not
  CHECK(has("SUBSCRIBE ch", kPubSub | kConnState | kNoKey));
  CHECK(has("SSUBSCRIBE ch", kPubSub | kConnState | kNoKey));  // shard channels are not keys
  CHECK(has("PUBLISH ch m", kPubSub | kNoKey));
  CHECK_FALSE(has("PUBLISH ch m", kConnState));
  CHECK(has("MULTI", kTransaction));
  CHECK(has("EXEC", kTransaction));
  CHECK(has("DISCARD", kTransaction));
  CHECK(has("WATCH k", kTransaction));
  CHECK_FALSE(has("WATCH k", kNoKey));
  CHECK(has("UNWATCH", kTransaction));
  // FLUSHALL is "write" but not "admin" in Redis 7.0.15.
  CHECK(has("FLUSHALL", kWrite | kNoKey));
  CHECK_FALSE(has("FLUSHALL", kAdmin));
  CHECK(has("CONFIG SET a b", kAdmin | kNoScript));
  CHECK(has("EVAL s 0", kScript | kMovableKeys | kNoScript));
  CHECK(has("FCALL_RO f 0", kScript | kRead));
  CHECK(has("SELECT 1", kConnState));
  CHECK(has("HELLO 3", kConnState));
  CHECK(has("AUTH pw", kConnState));
  CHECK(has("CLIENT SETNAME n", kConnState));
  CHECK(has("CLIENT TRACKING on", kConnState));
  CHECK(has("CLIENT REPLY off", kConnState));
  CHECK_FALSE(has("CLIENT LIST", kConnState));
  CHECK(has("CLIENT LIST", kAdmin));
  CHECK_FALSE(has("CLIENT", kConnState));
  CHECK(has("MONITOR", kConnState | kAdmin));
  CHECK(has("PING", kFast | kNoKey));
  CHECK(has("SORT k", kMovableKeys | kWrite));
  CHECK(has("KEYS *", kRead | kNoKey));

  // Every corral flag is where the generator was told to put it, and nowhere else.
  std::set<std::string_view> transaction, script, connstate;
  for (const CommandInfo& c : allCommands()) {
    if (c.flags & kTransaction) transaction.insert(c.name);
    if (c.flags & kScript) script.insert(c.name);
    if (c.flags & kConnState) connstate.insert(c.name);
    for (const CommandInfo& s : std::span(c.subcommands, c.nsubcommands)) {
      if (s.flags & kConnState) connstate.insert(s.name);
      CHECK((s.flags & (kTransaction | kScript)) == 0);
    }
  }
  CHECK(transaction == std::set<std::string_view>{"discard", "exec", "multi", "unwatch", "watch"});
  CHECK(script == std::set<std::string_view>{"eval", "eval_ro", "evalsha", "evalsha_ro", "fcall",
                                             "fcall_ro"});
  CHECK(connstate == std::set<std::string_view>{
                         "asking",       "auth",           "client|caching",  "client|no-evict",
                         "client|reply", "client|setname", "client|tracking", "hello",
                         "monitor",      "psubscribe",     "psync",           "punsubscribe",
                         "quit",         "readonly",       "readwrite",       "replconf",
                         "reset",        "select",         "ssubscribe",      "subscribe",
                         "sunsubscribe", "sync",           "unsubscribe"});
}

TEST_CASE("keys: fixed positions and ranges") {
  CHECK(keys("GET k") == "1");
  CHECK(keys("get k") == "1");
  CHECK(keys("SET k v EX 10") == "1");
  CHECK(keys("DEL a") == "1");
  CHECK(keys("DEL a b c d e f g h i j") == "1 2 3 4 5 6 7 8 9 10");
  CHECK(keys("MSET a 1 b 2 c 3") == "1 3 5");
  CHECK(keys("MSETNX a 1") == "1");
  CHECK(keys("MGET a b c") == "1 2 3");
  CHECK(keys("RENAME old new") == "1 2");
  CHECK(keys("COPY src dst DB 1 REPLACE") == "1 2");
  CHECK(keys("LMOVE src dst LEFT RIGHT") == "1 2");
  CHECK(keys("BRPOPLPUSH src dst 5") == "1 2");
  CHECK(keys("BLPOP a b c 0") == "1 2 3");  // keys, then the timeout
  CHECK(keys("BLPOP a 0") == "1");
  CHECK(keys("BZPOPMIN a b 1.5") == "1 2");
  CHECK(keys("BITOP AND dest a b c") == "2 3 4 5");
  CHECK(keys("BITOP NOT dest a") == "2 3");
  CHECK(keys("LCS a b") == "1 2");
  CHECK(keys("LCS a b LEN") == "1 2");
  CHECK(keys("SDIFFSTORE dest a b") == "1 2 3");
  CHECK(keys("PFMERGE dest a b") == "1 2 3");
  CHECK(keys("PFMERGE dest") == "1");  // sources are optional; Redis' GETKEYS says invalid
  CHECK(keys("GEOSEARCHSTORE dst src FROMMEMBER m BYRADIUS 1 km") == "1 2");
  CHECK(keys("WATCH a b") == "1 2");
  // A fixed key position past the end is malformed (arity would reject these first).
  CHECK(keys("GET") == "!");
  CHECK(keys("RENAME a") == "!");
  CHECK(keys("LCS a") == "!");
}

TEST_CASE("keys: subcommands") {
  CHECK(keys("OBJECT ENCODING k") == "2");
  CHECK(keys("object freq k") == "2");
  CHECK(keys("OBJECT") == "");  // the container has no keys
  CHECK(keys("OBJECT HELP") == "");
  CHECK(keys("XINFO STREAM k FULL COUNT 10") == "2");
  CHECK(keys("XINFO GROUPS k") == "2");
  CHECK(keys("XINFO CONSUMERS k g") == "2");
  CHECK(keys("MEMORY USAGE k SAMPLES 5") == "2");
  CHECK(keys("MEMORY STATS") == "");
  CHECK(keys("XGROUP CREATE s g $ MKSTREAM") == "2");
  CHECK(keys("CLIENT SETNAME n") == "");
  CHECK(keys("CONFIG GET *") == "");
}

TEST_CASE("keys: commands without keys") {
  CHECK(keys("PUBLISH ch msg") == "");
  CHECK(keys("SPUBLISH ch msg") == "");
  CHECK(keys("SUBSCRIBE a b") == "");
  CHECK(keys("SCAN 0 MATCH k* COUNT 10") == "");
  CHECK(keys("KEYS *") == "");
  CHECK(keys("PING") == "");
  CHECK(keys("FLUSHALL ASYNC") == "");
  CHECK(keys("nosuchcommand k") == "?");
}

TEST_CASE("keys: numkeys commands") {
  CHECK(keys("EVAL script 2 k1 k2 a1 a2") == "3 4");
  CHECK(keys("EVAL script 0") == "");
  CHECK(keys("EVAL script 0 a1 a2") == "");
  CHECK(keys("EVALSHA sha 1 k1 a1") == "3");
  CHECK(keys("EVAL_RO script 1 k1") == "3");
  CHECK(keys("FCALL f 3 k1 k2 k3 a1") == "3 4 5");
  CHECK(keys("FCALL_RO f 0 a1") == "");
  CHECK(keys("EVAL script 3 k1 k2") == "!");  // numkeys larger than the arguments
  CHECK(keys("EVAL script 1") == "!");
  CHECK(keys("EVAL script 99999999999999999999999 k") == "!");  // no overflow
  CHECK(keys("EVAL script -1 k") == "!");
  CHECK(keys("EVAL script +1 k") == "!");
  CHECK(keys("EVAL script 01 k") == "!");
  CHECK(keys("EVAL script x k") == "!");
  CHECK(keys("EVAL script \"\" k") == "!");
  CHECK(keys("EVAL script") == "!");

  CHECK(keys("ZUNIONSTORE dest 2 a b WEIGHTS 1 2") == "1 3 4");
  CHECK(keys("ZINTERSTORE dest 1 a") == "1 3");
  CHECK(keys("ZUNIONSTORE dest 3 a b") == "!");
  CHECK(keys("ZUNION 2 a b WITHSCORES") == "2 3");
  CHECK(keys("ZINTER 3 a b c AGGREGATE MAX") == "2 3 4");
  CHECK(keys("ZDIFF 1 a") == "2");
  CHECK(keys("ZDIFFSTORE dest 2 a b") == "1 3 4");
  CHECK(keys("ZINTERCARD 2 a b LIMIT 5") == "2 3");
  CHECK(keys("SINTERCARD 2 a b LIMIT 3") == "2 3");
  CHECK(keys("SINTERCARD 3 a b") == "!");

  CHECK(keys("LMPOP 2 a b LEFT COUNT 3") == "2 3");
  CHECK(keys("BLMPOP 0.5 2 a b RIGHT") == "3 4");
  CHECK(keys("ZMPOP 1 z MIN") == "2");
  CHECK(keys("BZMPOP 1 3 a b c MAX COUNT 2") == "3 4 5");
  CHECK(keys("BLMPOP 0 9 a b LEFT") == "!");
}

TEST_CASE("keys: XREAD and XREADGROUP take the first half after STREAMS") {
  CHECK(keys("XREAD STREAMS a 0") == "2");
  CHECK(keys("XREAD COUNT 10 BLOCK 0 STREAMS a b c 0 0 0") == "6 7 8");
  CHECK(keys("xread count 10 streams a b 1-0 2-0") == "4 5");
  CHECK(keys("XREAD StReAmS a 0") == "2");
  CHECK(keys("XREADGROUP GROUP g c COUNT 1 STREAMS a b > >") == "7 8");
  CHECK(keys("XREADGROUP GROUP g c NOACK streams a >") == "6");
  // A group or consumer called "streams" is skipped: the search starts after GROUP g c.
  CHECK(keys("XREADGROUP GROUP streams streams STREAMS a >") == "5");
  // A stream called "streams": the first STREAMS keyword wins.
  CHECK(keys("XREAD STREAMS streams 0") == "2");
  CHECK(keys("XREAD STREAMS a b 0") == "!");    // unbalanced: Redis rejects it too
  CHECK(keys("XREAD COUNT 1 BLOCK 0") == "!");  // no STREAMS
  CHECK(keys("XREAD COUNT 1 STREAMS") == "!");
}

TEST_CASE("keys: hand-written extractors (SORT, SORT_RO, MIGRATE, GEORADIUS)") {
  CHECK(keys("SORT k") == "1");
  CHECK(keys("SORT k STORE dst") == "1 3");
  CHECK(keys("SORT k BY w_* LIMIT 0 10 GET o_* GET # DESC ALPHA STORE dst") == "1 14");
  CHECK(keys("sort k store a store b") == "1 5");  // the last STORE wins, as in Redis
  CHECK(keys("sort k store store dst") == "1 4");  // STORE's argument is not skipped either
  CHECK(keys("SORT k BY store") == "1");           // BY's pattern is skipped, not a keyword
  CHECK(keys("SORT k LIMIT store x") == "1");
  CHECK(keys("SORT k STORE") == "1");  // STORE without a destination
  CHECK(keys("SORT_RO k BY w_* GET o_*") == "1");
  CHECK(keys("SORT_RO k STORE dst") == "1");  // SORT_RO has no destination key

  CHECK(keys("MIGRATE host 6379 k 0 5000") == "3");
  CHECK(keys("MIGRATE host 6379 k 0 5000 COPY REPLACE") == "3");
  CHECK(keys("MIGRATE host 6379 \"\" 0 5000 KEYS a b c") == "7 8 9");
  CHECK(keys("MIGRATE host 6379 \"\" 0 5000 COPY AUTH keys KEYS a") == "10");
  CHECK(keys("MIGRATE host 6379 \"\" 0 5000 AUTH2 keys keys keys a b") == "10 11");
  CHECK(keys("migrate host 6379 \"\" 0 5000 replace keys a") == "8");
  CHECK(keys("MIGRATE host 6379 k 0 5000 KEYS a") == "!");  // KEYS needs the empty key
  CHECK(keys("MIGRATE host 6379 \"\" 0 5000 KEYS") == "");  // valid: Redis replies NOKEY

  CHECK(keys("GEORADIUS k 15 37 200 km") == "1");
  CHECK(keys("GEORADIUS k 15 37 200 km WITHDIST STORE dst") == "1 8");
  CHECK(keys("GEORADIUS k 15 37 200 km STOREDIST dst") == "1 7");
  // Mirrors Redis 7.0's three key specs (as COMMAND GETKEYS reports them): the first STORE,
  // then the first STOREDIST, each searched from the first option on.
  CHECK(keys("GEORADIUS k 15 37 200 km STORE a STOREDIST b") == "1 7 9");
  CHECK(keys("GEORADIUS k 15 37 200 km STOREDIST a STORE b") == "1 9 7");
  CHECK(keys("GEORADIUS k 15 37 200 km STORE a STORE b") == "1 7");
  CHECK(keys("GEORADIUS k 15 37 200 km STORE storedist x") == "1 7 8");
  CHECK(keys("GEORADIUS k 15 37 200 km WITHDIST STORE") == "1");  // no destination
  CHECK(keys("GEORADIUSBYMEMBER k m 100 km STORE dst") == "1 6");
  CHECK(keys("georadiusbymember k m 100 km count 5 storedist dst") == "1 8");
  CHECK(keys("GEORADIUSBYMEMBER k m 100 STORE dst x") == "1");  // options start at arg 5
  CHECK(keys("GEORADIUS k 15 37 200 STORE dst") == "1");        // ... and at arg 6 for GEORADIUS
  CHECK(keys("GEORADIUS_RO k 15 37 200 km") == "1");

  // Every kSpecial command in the table has an extractor.
  for (const CommandInfo& c : allCommands()) {
    if (c.nkeyspecs == 0 || c.keys[0].search != KeySearch::kSpecial) continue;
    CAPTURE(c.name);
    const std::string_view args[] = {c.name, "k", "a", "b", "c", "d", "e"};
    std::vector<uint32_t> out;
    CHECK(extractKeys(c, args, out));
    CHECK_FALSE(out.empty());
  }
}

TEST_CASE("extractKeys agrees with COMMAND GETKEYS of redis-server 7.0.15") {
  // Argument lists generated from COMMAND DOCS and the server's answers, recorded by
  // tools/gen_commands.py. "#" = wrong arity, "!" = invalid arguments.
  CHECK(std::size(kGetKeysVectors) >= 700);
  size_t with_keys = 0;
  std::set<std::string_view> covered;
  for (const GetKeysVector& v : kGetKeysVectors) {
    CAPTURE(v.args);
    const std::vector<std::string> w = split(v.args, '|');
    const std::vector<std::string_view> args = views(w);
    const CommandInfo* cmd = lookup(args);
    REQUIRE(cmd != nullptr);
    covered.insert(cmd->name);
    if (v.keys == "#") {
      CHECK_FALSE(arityOk(*cmd, args.size()));
      continue;
    }
    // The server checks arity only for commands with keys (a keyless command gets "no key
    // arguments" first), so only answers with keys or "!" vouch for the argument count.
    if (!v.keys.empty()) CHECK(arityOk(*cmd, args.size()));
    std::vector<uint32_t> out;
    const std::string got = extractKeys(*cmd, args, out) ? joinKeys(out) : "!";
    CHECK(got == v.keys);
    if (!out.empty()) ++with_keys;
  }
  CHECK(with_keys >= 400);
  CHECK(covered.count("xreadgroup") == 1);
  CHECK(covered.count("object|encoding") == 1);
}

TEST_CASE("equalsIgnoreCase") {
  CHECK(equalsIgnoreCase("STREAMS", "streams"));
  CHECK(equalsIgnoreCase("StReAmS", "sTrEaMs"));
  CHECK(equalsIgnoreCase("", ""));
  CHECK_FALSE(equalsIgnoreCase("streams", "stream"));
  CHECK_FALSE(equalsIgnoreCase("a", "b"));
  CHECK_FALSE(equalsIgnoreCase("[", "{"));  // '[' + 32 is '{': only letters fold
  CHECK_FALSE(equalsIgnoreCase("@", "`"));
}

TEST_CASE("lookup and extractKeys do not allocate once the output vector is warm") {
  const std::vector<std::string> w = words("DEL a b c d e f g h i j k l m n o p");
  const std::vector<std::string_view> del = views(w);
  const std::vector<std::string> w2 = words("CLIENT SETNAME n");
  const std::vector<std::string_view> client = views(w2);
  const std::string_view get[] = {"GET", "k"};
  std::vector<uint32_t> out;
  const CommandInfo* del_cmd = lookup(del);
  REQUIRE(del_cmd != nullptr);
  REQUIRE(extractKeys(*del_cmd, del, out));  // warms `out` up to 16 keys

  g_allocs = 0;
  g_count_allocs = true;
  size_t found = 0;
  for (int i = 0; i < 100; ++i) {
    const CommandInfo* g = lookup(get);
    const CommandInfo* d = lookup(del);
    const CommandInfo* c = lookup(client);
    found += (g != nullptr) + (d != nullptr) + (c != nullptr);
    if (g != nullptr) found += extractKeys(*g, get, out) ? out.size() : 0;
    if (d != nullptr) found += extractKeys(*d, del, out) ? out.size() : 0;
  }
  g_count_allocs = false;
  CHECK(g_allocs == 0);
  CHECK(found == 100 * (3 + 1 + 16));
}

TEST_CASE("ids are dense over commands and subcommands, and byId inverts them") {
  CHECK(kCommandIds == 240 + 126);
  std::set<uint16_t> seen;
  for (const CommandInfo& c : allCommands()) {
    CAPTURE(c.name);
    CHECK(byId(c.id) == &c);
    CHECK(seen.insert(c.id).second);
    for (const CommandInfo& s : std::span(c.subcommands, c.nsubcommands)) {
      CAPTURE(s.name);
      CHECK(s.id >= allCommands().size());
      CHECK(byId(s.id) == &s);
      CHECK(seen.insert(s.id).second);
    }
  }
  CHECK(seen.size() == kCommandIds);
  CHECK(*seen.rbegin() == kCommandIds - 1);
  const std::string_view client_setname[] = {"client", "SETNAME", "x"};
  const CommandInfo* setname = lookup(client_setname);
  REQUIRE(setname != nullptr);
  CHECK(byId(setname->id)->name == "client|setname");
  CHECK(byId(kCommandIds) == nullptr);
}

TEST_CASE("topLevelIndex is the index in allCommands, -1 for subcommands") {
  const auto all = allCommands();
  for (size_t i = 0; i < all.size(); ++i) CHECK(topLevelIndex(&all[i]) == static_cast<int64_t>(i));
  const std::string_view config_set[] = {"CONFIG", "SET"};
  const CommandInfo* sub = lookup(config_set);
  REQUIRE(sub != nullptr);
  CHECK(sub->name == "config|set");
  CHECK(topLevelIndex(sub) == -1);
  CHECK(topLevelIndex(nullptr) == -1);
}

}  // namespace
}  // namespace corral::commands
