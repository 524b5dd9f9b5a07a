// What command_table.cc and overlay.cc share, and nothing outside commands/ includes: the name
// hashing both tables use (so a name hashed once for the built-in table is looked up in the
// learnt overlay without hashing it again), and the learnt key-spec extractor.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "commands/command_table.h"

namespace corral::commands::detail {

// ASCII lower-casing table. Command names are ASCII; other bytes map to themselves, so a
// non-ASCII argument simply matches nothing.
inline constexpr std::array<uint8_t, 256> kLower = [] {
  std::array<uint8_t, 256> t{};
  for (size_t i = 0; i < t.size(); ++i) {
    t[i] = static_cast<uint8_t>(i >= 'A' && i <= 'Z' ? i + ('a' - 'A') : i);
  }
  return t;
}();

constexpr uint8_t lower(char c) { return kLower[static_cast<uint8_t>(c)]; }

// 32-bit FNV-1a over lower-cased bytes. Names are short (at most 20 bytes in Redis 7.0), so a
// plain byte loop is enough.
inline constexpr uint32_t kFnvBasis = 2166136261u;
inline constexpr uint32_t kFnvPrime = 16777619u;

constexpr uint32_t hashByte(uint32_t h, uint8_t c) { return (h ^ c) * kFnvPrime; }

constexpr uint32_t hashLower(uint32_t h, std::string_view s) {
  for (char c : s) h = hashByte(h, lower(c));
  return h;
}

// `name` is a table name (already lower case); `arg` is client input in any case.
constexpr bool equalsLower(std::string_view name, std::string_view arg) {
  if (name.size() != arg.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (static_cast<uint8_t>(name[i]) != lower(arg[i])) return false;
  }
  return true;
}

// True when the table name `full` is "<container>|<sub>" for client input `sub` (any case).
constexpr bool isSubName(std::string_view full, std::string_view container, std::string_view sub) {
  const size_t prefix = container.size() + 1;
  return full.size() == prefix + sub.size() && full.starts_with(container) &&
         full[prefix - 1] == '|' && equalsLower(full.substr(prefix), sub);
}

// The overlay's part of lookup(), called only when the built-in table has no answer: args[0]
// unknown (h = its hash), or `container` (a built-in container whose hash is h) without the
// subcommand args[1]. nullptr / `container` when the overlay has none either.
const CommandInfo* lookupLearnt(uint32_t h, std::span<const std::string_view> args);
const CommandInfo* lookupLearntSub(const CommandInfo& container, uint32_t h, std::string_view sub);

// The key specs of a learnt command with more than two (CommandInfo::nkeyspecs > 2), kept by
// the overlay set now; nullptr if it has none for cmd.
const KeySpec* learntKeySpecs(const CommandInfo& cmd);

// A numkeys argument, parsed strictly: decimal digits, no sign, no leading zeros (what Redis
// accepts when it runs the command). Anything above `limit` is refused before it can overflow.
bool parseCount(std::string_view s, size_t limit, size_t& value);

// Appends the keys one learnt spec (KeySearch::kLearntRange / kLearntKeynum) finds, as Redis'
// getKeysUsingKeySpecs finds them with GET_KEYSPEC_RETURN_PARTIAL.
void extractLearnt(const KeySpec& spec, std::span<const std::string_view> args,
                   std::vector<uint32_t>& out);

}  // namespace corral::commands::detail
