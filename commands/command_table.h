// The command table: every Redis 7.0 command with its arity, key positions and flags, and the
// commands a newer server reports on top of it (the learnt overlay, commands/overlay.h).
//
//   request args --> lookup(args) --> const CommandInfo* --> extractKeys(args) / flags for routing
//                        \--built-in miss--> overlay (learnt at connect)
//
// The data (commands.inc) is generated from a real redis-server's COMMAND / COMMAND DOCS output
// by tools/gen_commands.py and checked in; this file only reads it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace corral::commands {

// kRedisVersion, kRedisCommandCount (COMMAND COUNT) and kRedisSubcommandCount, generated.
#include "commands/commands.inc"

// How many CommandInfo::id values there are: every command and every subcommand.
inline constexpr size_t kCommandIds = kRedisCommandCount + kRedisSubcommandCount;

// Flags, as a bit set. Mirrors the Redis flags that matter to a proxy.
enum CommandFlag : uint32_t {
  kRead = 1u << 0,          // "readonly": may be served by a replica
  kWrite = 1u << 1,         // "write"
  kAdmin = 1u << 2,         // "admin"
  kBlocking = 1u << 3,      // "blocking" (may block: BLPOP, XREAD, WAIT, ...)
  kPubSub = 1u << 4,        // "pubsub" (SUBSCRIBE, PUBLISH, ...)
  kTransaction = 1u << 5,   // MULTI, EXEC, DISCARD, WATCH, UNWATCH
  kNoKey = 1u << 6,         // takes no key arguments
  kConnState = 1u << 7,     // creates or changes state on the connection (corral's own flag:
                            // SELECT, HELLO, AUTH, CLIENT TRACKING/REPLY, MONITOR, RESET, ...)
  kNoScript = 1u << 8,      // "noscript"
  kLoading = 1u << 9,       // "loading"
  kStale = 1u << 10,        // "stale"
  kFast = 1u << 11,         // "fast"
  kMovableKeys = 1u << 12,  // key positions depend on arguments (numkeys, keyword search)
  kScript = 1u << 13,       // EVAL/EVALSHA/FCALL and their _RO forms (for routing later)
  kDenyOom = 1u << 14,      // "denyoom": may grow memory (creates or extends a key)
};

// How to find the keys of a command (Redis 7 key specs reduced to what Redis 7.0 uses).
enum class KeySearch : uint8_t {
  kNone,     // no keys
  kRange,    // first..last step (last < 0 counts from the end; -1 = last arg)
  kKeynum,   // numkeys at arg index `first`, keys start at `first + key_offset`, step
  kKeyword,  // keys follow a keyword (e.g. STREAMS for XREAD/XREADGROUP, to the end, half);
             // the keyword is searched from `keyword_start_from` on, first match wins, and
             // a missing keyword makes the arguments malformed. `last`, `step` and `limit`
             // then apply as in Redis' range find_keys, counted from the arg after the keyword.
  kSpecial,  // hand-written extractor (MIGRATE, SORT STORE, GEORADIUS STORE, ...)
  // Learnt from a server's COMMAND reply (commands/overlay.h) and read as Redis reads its key
  // specs, GET_KEYSPEC_RETURN_PARTIAL: the search begins at `first`, or, when `keyword` is set,
  // after the keyword searched from `keyword_start_from` (negative: backwards from the end; the
  // last arg and arg 0 are never a match); a missing keyword or keys out of bounds add no keys.
  kLearntRange,   // keys from the begin to `last` (>= 0: relative to the begin; < 0: counted
                  // from the end, or with `limit` > 0 the first 1/limit of the rest), every `step`
  kLearntKeynum,  // numkeys at begin + `numkeys_at`, keys from begin + `key_offset`, every `step`
};

struct KeySpec {
  KeySearch search = KeySearch::kNone;
  int16_t first = 0;  // kRange: first key index; kKeynum: index of numkeys argument
  int16_t last = 0;   // kRange: last key index (negative: from the end)
  int16_t step = 1;
  int16_t key_offset = 1;          // kKeynum: keys start at numkeys index + key_offset
  std::string_view keyword{};      // kKeyword: e.g. "STREAMS" (matched case-insensitively)
  int16_t keyword_start_from = 1;  // kKeyword: index where to start looking
  // Added by the commands module: kKeyword with last < 0 only; 0 = keys run to `last` from the
  // end, N = keys are the first 1/N of the args after the keyword (XREAD: 2, keys then IDs).
  int16_t limit = 0;
  int16_t numkeys_at = 0;  // kLearntKeynum: the numkeys argument, relative to the begin
};

struct CommandInfo {
  std::string_view name;  // lower case, e.g. "get" or for a subcommand "client|setname"
  int32_t arity = 0;      // Redis arity: >0 exact, <0 at least -arity (includes the name)
  uint32_t flags = 0;     // CommandFlag bits
  KeySpec keys[2] = {};   // most commands need one; a few need two (e.g. SORT ... STORE)
  uint8_t nkeyspecs = 0;
  const CommandInfo* subcommands = nullptr;  // container commands (CLIENT, CONFIG, XGROUP, ...)
  uint16_t nsubcommands = 0;
  // Dense, < kCommandIds: top-level commands in allCommands() order, then the subcommands in
  // table order, so "client|setname" has a slot of its own in tables indexed by command (the
  // per-command counters). Fixed by the generator for one Redis version; a regeneration may
  // renumber, so never store it outside the process.
  uint16_t id = 0;
  // nkeyspecs > 2 only for a learnt command (commands/overlay.h): its specs are then kept by the
  // overlay, keys[] unused. (A pointer here would take CommandInfo past 128 bytes, and lookup()
  // would pay a multiply instead of a shift to index the table.)
};

// CommandInfo::id of every learnt command (commands/overlay.h): one slot past the built-in ids,
// shared, so tables indexed by id need one extra row for all of them.
inline constexpr uint16_t kLearntId = static_cast<uint16_t>(kCommandIds);

// Looks up args[0] (case-insensitively, no allocation); for container commands also args[1].
// What the built-in table does not know is looked up in the learnt overlay, if one is set
// (commands/overlay.h). Returns nullptr for a command neither knows (global.unknown_commands
// decides what happens to it); the container itself for an unknown subcommand.
const CommandInfo* lookup(std::span<const std::string_view> args);

// True when args.size() satisfies the command's arity.
bool arityOk(const CommandInfo& cmd, size_t nargs);

// True for a known command that only reads ("readonly" and not "write"): a replica may serve
// it, and it changes nothing another request could see. False for nullptr (unknown: it may write).
inline bool readsOnly(const CommandInfo* cmd) {
  return cmd != nullptr && (cmd->flags & kRead) && !(cmd->flags & kWrite);
}

// Appends the indexes (into args) of every key argument to `out` (cleared first). Returns false
// when the arguments are malformed for key extraction (e.g. numkeys larger than the args).
// Expects arityOk() to hold. Keys come in Redis' key-spec order, as COMMAND GETKEYS of Redis
// 7.0.15 reports them; the few deliberate differences are listed in commands/README.md.
bool extractKeys(const CommandInfo& cmd, std::span<const std::string_view> args,
                 std::vector<uint32_t>& out);

// All top-level commands, for tests and for INFO/COMMAND COUNT checks.
std::span<const CommandInfo> allCommands();

// The command or subcommand whose CommandInfo::id is `id`, or nullptr when id >= kCommandIds.
// For naming the rows of tables indexed by id; not for the request path (use lookup()).
const CommandInfo* byId(size_t id);

// cmd's index in allCommands(), or -1 for a subcommand (they live in other arrays). For tables
// indexed by command (per-command counters, command lists).
int64_t topLevelIndex(const CommandInfo* cmd);

// Case-insensitive ASCII comparison helper used by the proxy for argument keywords.
bool equalsIgnoreCase(std::string_view a, std::string_view b);

// True when `arg` spells the command name `name` (lower case, as CommandInfo::name), in any
// case. Inline: the proxy checks it for every request against the previous command.
inline bool isCommandName(std::string_view arg, std::string_view name) {
  if (arg.size() != name.size()) return false;
  for (size_t i = 0; i < arg.size(); ++i) {
    char c = arg[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
    if (c != name[i]) return false;
  }
  return true;
}

}  // namespace corral::commands
