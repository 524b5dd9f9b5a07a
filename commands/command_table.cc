// Command lookup and key extraction over the generated table (commands.inc).
//
//   args[0] --lowercase + FNV-1a--> kTopIndex (open addressing, built at compile time)
//                                       |
//                                       v
//                             const CommandInfo* --container and args[1]?--> kSubIndex
//                                       |                 (hash continues over "|" + args[1])
//                                       v
//   extractKeys: each KeySpec in turn (range / numkeys / keyword), or the hand-written
//                extractors below for the kSpecial commands (SORT, SORT_RO, MIGRATE, GEORADIUS*)
//
// Nothing here allocates except extractKeys' push_back into the caller's vector, which stops
// once that vector has grown to the largest key count it has seen.
#include "commands/command_table.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "commands/overlay.h"
#include "commands/table_internal.h"

namespace corral::commands {
namespace {

#define CORRAL_COMMANDS_TABLE
#include "commands/commands.inc"
#undef CORRAL_COMMANDS_TABLE

using detail::equalsLower;
using detail::hashByte;
using detail::hashLower;
using detail::kFnvBasis;
using detail::lower;

// An open-addressing table with linear probing over small entry numbers (slot value = entry
// number + 1, 0 = empty), so the whole table is a few cache lines. Bits keeps the load factor
// at or below 1/4: probes stay short (checked below) and an empty slot always ends a miss.
template <unsigned Bits>
struct Index {
  static constexpr size_t kSize = size_t{1} << Bits;
  static constexpr size_t kMask = kSize - 1;
  std::array<uint16_t, kSize> slots{};
  size_t entries = 0;
  size_t max_probe = 0;  // longest probe sequence of any entry (1 = found in its home slot)

  // Fibonacci hashing: the multiply spreads FNV's weak low bits into the top bits we keep.
  static constexpr size_t slotOf(uint32_t h) {
    return static_cast<size_t>((h * 0x9E3779B1u) >> (32 - Bits));
  }

  constexpr void insert(std::string_view name, size_t entry) {
    size_t i = slotOf(hashLower(kFnvBasis, name));
    size_t probes = 1;
    while (slots[i] != 0) {
      i = (i + 1) & kMask;
      ++probes;
    }
    slots[i] = static_cast<uint16_t>(entry + 1);
    ++entries;
    if (probes > max_probe) max_probe = probes;
  }
};

constexpr size_t maxLen(std::span<const CommandInfo> cmds, bool subcommands) {
  size_t m = 0;
  for (const CommandInfo& c : cmds) {
    if (!subcommands && c.name.size() > m) m = c.name.size();
    for (const CommandInfo& s : std::span(c.subcommands, c.nsubcommands)) {
      // Only the part after "container|" is compared against args[1].
      const size_t n = s.name.size() - c.name.size() - 1;
      if (subcommands && n > m) m = n;
    }
  }
  return m;
}

constexpr std::span<const CommandInfo> kAll(kCommands);
constexpr size_t kMaxNameLen = maxLen(kAll, false);
constexpr size_t kMaxSubNameLen = maxLen(kAll, true);

// Every subcommand, in table order, so kSubIndex can store small numbers instead of pointers.
constexpr auto kSubList = [] {
  std::array<const CommandInfo*, kRedisSubcommandCount> list{};
  size_t n = 0;
  for (const CommandInfo& c : kAll) {
    for (const CommandInfo& s : std::span(c.subcommands, c.nsubcommands)) list[n++] = &s;
  }
  return list;
}();

constexpr auto kTopIndex = [] {
  Index<10> idx;
  for (size_t i = 0; i < kAll.size(); ++i) idx.insert(kAll[i].name, i);
  return idx;
}();

// Subcommands are keyed by their full name ("client|setname"); lookup() continues the hash of
// args[0] over '|' and args[1], so no joined string is ever built.
constexpr auto kSubIndex = [] {
  Index<9> idx;
  for (size_t i = 0; i < kSubList.size(); ++i) idx.insert(kSubList[i]->name, i);
  return idx;
}();

// CommandInfo::id, as the generator numbers it: top-level commands first, then kSubList's order.
constexpr bool idsDense() {
  for (size_t i = 0; i < kAll.size(); ++i) {
    if (kAll[i].id != i) return false;
  }
  for (size_t i = 0; i < kSubList.size(); ++i) {
    if (kSubList[i]->id != kAll.size() + i) return false;
  }
  return true;
}

static_assert(idsDense(), "CommandInfo ids are not dense: regenerate commands.inc");
// lookup() indexes kAll with a shift; a CommandInfo that grows past 128 bytes costs a multiply.
static_assert(sizeof(CommandInfo) == 128);
static_assert(kCommandIds == kAll.size() + kSubList.size() && kCommandIds < 0xFFFF);
static_assert(kTopIndex.entries == kRedisCommandCount, "table differs from COMMAND COUNT");
static_assert(kSubIndex.entries == kRedisSubcommandCount);
static_assert(kAll.size() < 0xFFFF && kSubList.size() < 0xFFFF);
static_assert(kTopIndex.entries * 4 <= decltype(kTopIndex)::kSize, "grow kTopIndex");
static_assert(kSubIndex.entries * 4 <= decltype(kSubIndex)::kSize, "grow kSubIndex");
// Probe lengths are fixed by the data; this bound catches a bad hash after regeneration.
static_assert(kTopIndex.max_probe <= 8 && kSubIndex.max_probe <= 8, "hash clusters badly");

// ---------------------------------------------------------------------------------------------
// Key extraction.

using detail::parseCount;

// Appends first, first+step, ... up to last (inclusive); an empty range appends nothing.
void appendRange(size_t first, int64_t last, size_t step, std::vector<uint32_t>& out) {
  for (auto i = static_cast<int64_t>(first); i <= last; i += static_cast<int64_t>(step)) {
    out.push_back(static_cast<uint32_t>(i));
  }
}

bool extractRange(const KeySpec& spec, size_t nargs, std::vector<uint32_t>& out) {
  const auto n = static_cast<int64_t>(nargs);
  const int64_t last = spec.last >= 0 ? spec.last : n + spec.last;
  // A fixed key position must exist; a tail counted from the end may be empty (PFMERGE dest).
  if (spec.last >= 0 && last >= n) return false;
  appendRange(static_cast<size_t>(spec.first), last, static_cast<size_t>(spec.step), out);
  return true;
}

bool extractKeynum(const KeySpec& spec, std::span<const std::string_view> args,
                   std::vector<uint32_t>& out) {
  const auto at = static_cast<size_t>(spec.first);
  if (at >= args.size()) return false;
  size_t numkeys = 0;
  if (!parseCount(args[at], args.size(), numkeys)) return false;
  if (numkeys == 0) return true;  // EVAL script 0: valid, no keys
  const size_t first = at + static_cast<size_t>(spec.key_offset);
  const auto step = static_cast<size_t>(spec.step);
  const size_t last = first + (numkeys - 1) * step;
  if (last >= args.size()) return false;  // numkeys larger than the arguments
  appendRange(first, static_cast<int64_t>(last), step, out);
  return true;
}

bool extractKeyword(const KeySpec& spec, std::span<const std::string_view> args,
                    std::vector<uint32_t>& out) {
  const size_t n = args.size();
  size_t first = 0;
  // The keyword cannot be the last argument: at least one key must follow it.
  for (auto i = static_cast<size_t>(spec.keyword_start_from); i + 1 < n; ++i) {
    if (equalsIgnoreCase(args[i], spec.keyword)) {
      first = i + 1;
      break;
    }
  }
  if (first == 0) return false;
  const size_t rest = n - first;
  int64_t last = 0;
  if (spec.last >= 0) {
    last = static_cast<int64_t>(first) + spec.last;
  } else if (spec.limit > 0) {
    // XREAD ... STREAMS k1 k2 id1 id2: keys are the first half. Unbalanced lists are an error
    // in Redis, so they are malformed here rather than guessed at.
    const auto limit = static_cast<size_t>(spec.limit);
    if (rest % limit != 0) return false;
    last = static_cast<int64_t>(first + rest / limit) + spec.last;
  } else {
    last = static_cast<int64_t>(n) + spec.last;
  }
  if (last >= static_cast<int64_t>(n)) return false;
  appendRange(first, last, static_cast<size_t>(spec.step), out);
  return true;
}

// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE dest]
// BY and GET take patterns, which are not keys. As in Redis, options are skipped by their
// argument counts and the last STORE wins. SORT_RO has no STORE: its only key is arg 1.
bool extractSort(std::span<const std::string_view> args, bool read_only,
                 std::vector<uint32_t>& out) {
  if (args.size() < 2) return false;
  out.push_back(1);
  if (read_only) return true;
  size_t store = 0;
  for (size_t i = 2; i < args.size(); ++i) {
    if (equalsIgnoreCase(args[i], "limit")) {
      i += 2;
    } else if (equalsIgnoreCase(args[i], "get") || equalsIgnoreCase(args[i], "by")) {
      i += 1;
    } else if (equalsIgnoreCase(args[i], "store") && i + 1 < args.size()) {
      store = i + 1;  // the destination is not skipped, as in Redis 7.0.15's COMMAND GETKEYS
    }
  }
  if (store != 0) out.push_back(static_cast<uint32_t>(store));
  return true;
}

// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw]
//         [KEYS key ...]
// The key is arg 3, unless arg 3 is "" and KEYS follows: then the keys are everything after
// KEYS (none at all is valid: Redis replies NOKEY). KEYS with a non-empty arg 3 is malformed.
bool extractMigrate(std::span<const std::string_view> args, std::vector<uint32_t>& out) {
  const size_t n = args.size();
  if (n < 4) return false;
  for (size_t i = 6; i < n; ++i) {
    if (equalsIgnoreCase(args[i], "keys")) {
      if (!args[3].empty()) return false;  // Redis: "the key argument must be ... empty"
      appendRange(i + 1, static_cast<int64_t>(n) - 1, 1, out);
      return true;
    }
    if (equalsIgnoreCase(args[i], "auth")) {
      i += 1;  // password
    } else if (equalsIgnoreCase(args[i], "auth2")) {
      i += 2;  // username password
    }
  }
  out.push_back(3);
  return true;
}

// GEORADIUS key lon lat radius unit [...] [STORE key] [STOREDIST key]
// GEORADIUSBYMEMBER key member radius unit [...] [STORE key] [STOREDIST key]
// Redis 7.0 describes these with three key specs (more than KeySpec[2] holds): arg 1, the arg
// after the first STORE and the arg after the first STOREDIST, each keyword searched from
// `options` (6, resp. 5) and never as the last arg. COMMAND GETKEYS of Redis 7.0.15 reports
// exactly that, so it is mirrored here, quirks included: both destinations are reported when
// both options are given, and in "STORE a STORE b" only `a` is (execution would write `b`).
size_t argAfterKeyword(std::span<const std::string_view> args, size_t from,
                       std::string_view keyword) {
  for (size_t i = from; i + 1 < args.size(); ++i) {
    if (equalsIgnoreCase(args[i], keyword)) return i + 1;
  }
  return 0;
}

bool extractGeoradius(std::span<const std::string_view> args, size_t options,
                      std::vector<uint32_t>& out) {
  if (args.size() < 2) return false;
  out.push_back(1);
  if (const size_t store = argAfterKeyword(args, options, "store"); store != 0) {
    out.push_back(static_cast<uint32_t>(store));
  }
  if (const size_t dist = argAfterKeyword(args, options, "storedist"); dist != 0) {
    out.push_back(static_cast<uint32_t>(dist));
  }
  return true;
}

// The kSpecial commands are few and not on the GET/SET path, so dispatch is by name.
bool extractSpecial(const CommandInfo& cmd, std::span<const std::string_view> args,
                    std::vector<uint32_t>& out) {
  if (cmd.name == "sort") return extractSort(args, false, out);
  if (cmd.name == "sort_ro") return extractSort(args, true, out);
  if (cmd.name == "migrate") return extractMigrate(args, out);
  if (cmd.name == "georadius") return extractGeoradius(args, 6, out);
  if (cmd.name == "georadiusbymember") return extractGeoradius(args, 5, out);
  return false;  // a kSpecial command without an extractor: the table test catches this
}

// Container `cmd` (whose name hashed to `h`): returns the subcommand named by `sub`, or `cmd`
// itself when there is none. Kept out of line so the common, non-container path through
// lookup() stays small (fewer saved registers).
[[gnu::noinline]] const CommandInfo* lookupSubcommand(const CommandInfo& cmd, uint32_t h,
                                                      std::string_view sub) {
  if (sub.empty()) return &cmd;
  if (sub.size() > kMaxSubNameLen) return detail::lookupLearntSub(cmd, h, sub);
  const uint32_t hs = hashLower(hashByte(h, '|'), sub);
  for (size_t i = kSubIndex.slotOf(hs);; i = (i + 1) & kSubIndex.kMask) {
    const uint16_t slot = kSubIndex.slots[i];
    if (slot == 0) return detail::lookupLearntSub(cmd, h, sub);
    const CommandInfo* e = kSubList[slot - 1];
    if (detail::isSubName(e->name, cmd.name, sub)) return e;
  }
}

// args[0] is not a built-in command: maybe a learnt one. Out of line, as lookupSubcommand.
[[gnu::noinline]] const CommandInfo* lookupMiss(std::span<const std::string_view> args) {
  if (args[0].size() > kMaxLearntNameLen) return nullptr;  // never hash a huge argument
  return detail::lookupLearnt(hashLower(kFnvBasis, args[0]), args);
}

}  // namespace

const CommandInfo* lookup(std::span<const std::string_view> args) {
  if (args.empty()) return nullptr;
  const std::string_view name = args[0];
  // One compare for both ends: an empty name wraps around to the largest size.
  if (name.size() - 1 >= kMaxNameLen) [[unlikely]] {
    return name.empty() ? nullptr : lookupMiss(args);
  }

  uint32_t h = hashLower(kFnvBasis, name);
  const CommandInfo* cmd = nullptr;
  for (size_t i = kTopIndex.slotOf(h);; i = (i + 1) & kTopIndex.kMask) {
    const uint16_t slot = kTopIndex.slots[i];
    if (slot == 0) return detail::lookupLearnt(h, args);
    const CommandInfo& e = kAll[slot - 1];
    if (equalsLower(e.name, name)) {
      cmd = &e;
      break;
    }
  }
  if (cmd->nsubcommands == 0 || args.size() < 2) return cmd;

  return lookupSubcommand(*cmd, h, args[1]);
}

bool arityOk(const CommandInfo& cmd, size_t nargs) {
  if (cmd.arity >= 0) return nargs == static_cast<size_t>(cmd.arity);
  return nargs >= static_cast<size_t>(-static_cast<int64_t>(cmd.arity));
}

namespace {

// extractKeys past its fast path; out of line, so the fast path saves no registers for it.
[[gnu::noinline]] bool extractKeysSpecs(const CommandInfo& cmd,
                                        std::span<const std::string_view> args,
                                        std::vector<uint32_t>& out) {
  const KeySpec* specs = cmd.nkeyspecs <= 2 ? cmd.keys : detail::learntKeySpecs(cmd);
  if (specs == nullptr) return true;  // its overlay is gone: nothing left to read
  for (size_t s = 0; s < cmd.nkeyspecs; ++s) {
    const KeySpec& spec = specs[s];
    bool ok = true;
    switch (spec.search) {
      case KeySearch::kNone:
        break;
      case KeySearch::kRange:
        ok = extractRange(spec, args.size(), out);
        break;
      case KeySearch::kKeynum:
        ok = extractKeynum(spec, args, out);
        break;
      case KeySearch::kKeyword:
        ok = extractKeyword(spec, args, out);
        break;
      case KeySearch::kSpecial:
        ok = extractSpecial(cmd, args, out);
        break;
      case KeySearch::kLearntRange:
      case KeySearch::kLearntKeynum:
        detail::extractLearnt(spec, args, out);  // as Redis: a spec that finds nothing adds nothing
        break;
    }
    if (!ok) {
      out.clear();
      return false;
    }
  }
  return true;
}

}  // namespace

bool extractKeys(const CommandInfo& cmd, std::span<const std::string_view> args,
                 std::vector<uint32_t>& out) {
  out.clear();
  // Fast path for one key at a fixed position (GET, SET, HGET, INCR, ...: most traffic).
  if (cmd.nkeyspecs == 1 && cmd.keys[0].search == KeySearch::kRange &&
      cmd.keys[0].first == cmd.keys[0].last) {
    const auto at = static_cast<size_t>(cmd.keys[0].first);
    if (at >= args.size()) return false;
    out.push_back(static_cast<uint32_t>(at));
    return true;
  }
  return extractKeysSpecs(cmd, args, out);
}

std::span<const CommandInfo> allCommands() { return kAll; }

const CommandInfo* byId(size_t id) {
  if (id < kAll.size()) return &kAll[id];
  if (id < kCommandIds) return kSubList[id - kAll.size()];
  return nullptr;
}

int64_t topLevelIndex(const CommandInfo* cmd) {
  // Compared as addresses: subtracting pointers into different arrays is undefined.
  const auto all = allCommands();
  const auto at = reinterpret_cast<uintptr_t>(cmd);
  const auto base = reinterpret_cast<uintptr_t>(all.data());
  if (at < base || at >= base + all.size() * sizeof(CommandInfo)) return -1;
  return static_cast<int64_t>((at - base) / sizeof(CommandInfo));
}

// Negative counts are errors in Redis too; anything above `limit` cannot fit in the arguments,
// so it is refused early and the value never overflows.
bool detail::parseCount(std::string_view s, size_t limit, size_t& value) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;
  size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<size_t>(c - '0');
    if (v > limit) return false;
  }
  value = v;
  return true;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace corral::commands
