// The learnt overlay: commands a server knows and the built-in table (Redis 7.0.15) does not, as
// a newer Redis or Valkey, or a module, reports them in its COMMAND reply, laid over the table.
//
//   COMMAND reply --proxy/net/command_learn.cc--> [CommandDesc] --Overlay::build--> Overlay
//       --setOverlay--> lookup(): consulted only when the built-in table has no answer
//                       extractKeys(): follows the learnt key specs as Redis does
//
// Built-in commands never change: the overlay only adds names the table does not have (new
// commands, new subcommands of built-in containers). Every learnt entry has id kLearntId.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "commands/command_table.h"

namespace corral::commands {

// One Redis 7 key spec as COMMAND reports it (begin_search + find_keys + flags).
struct KeySpecDesc {
  enum class Begin : uint8_t { kUnknown, kIndex, kKeyword };
  enum class Find : uint8_t { kUnknown, kRange, kKeynum };
  Begin begin = Begin::kUnknown;
  int64_t index = 0;      // kIndex: "index"
  std::string keyword;    // kKeyword: "keyword"
  int64_t startfrom = 0;  // kKeyword: "startfrom"
  Find find = Find::kUnknown;
  int64_t lastkey = 0;      // kRange
  int64_t limit = 0;        // kRange
  int64_t keynumidx = 0;    // kKeynum
  int64_t firstkey = 0;     // kKeynum
  int64_t keystep = 1;      // both
  bool not_key = false;     // flag "not_key": a shard channel, not a key (dropped, as Redis does)
  bool incomplete = false;  // flag "incomplete": the spec may miss keys
};

// One command (or subcommand, "container|sub") as COMMAND reports it.
struct CommandDesc {
  std::string name;
  int64_t arity = 0;
  std::vector<std::string> flags;  // "write", "denyoom", ... (Redis's names)
  // The legacy range (first key, last key, step), used when the reply has no key specs
  // (servers before Redis 7).
  int64_t first_key = 0;
  int64_t last_key = 0;
  int64_t key_step = 0;
  bool has_key_specs = false;  // the reply had a key-specs element (even an empty one)
  std::vector<KeySpecDesc> key_specs;
  std::vector<CommandDesc> subcommands;
};

// Bounds on what is learnt: a reply beyond them is cut, never followed into unbounded memory.
inline constexpr size_t kMaxLearntCommands = 4096;  // entries, subcommands included
inline constexpr size_t kMaxLearntNameLen = 64;     // bytes of a name or of a sub name
inline constexpr size_t kMaxLearntKeySpecs = 16;    // per command
inline constexpr size_t kMaxLearntKeywordLen = 64;

// Commands laid over the built-in table. Immutable once built; entries keep their addresses
// for the overlay's life (lookup() hands out pointers to them).
class Overlay {
 public:
  // What build() did with each reported command the built-in table does not already know.
  struct Report {
    size_t learnt = 0;                 // entries added (commands and subcommands)
    std::vector<std::string> skipped;  // "name: why", for a command that was not learnt
  };

  // Learns from `cmds` every command and subcommand the built-in table does not know and whose
  // keys can be found from what the server reported. A command whose keys cannot be (a key spec
  // of unknown type or flagged incomplete, movablekeys without key specs, values out of range)
  // is not learnt, and stays unknown. CLIENT subcommands are never learnt: corral answers or
  // refuses CLIENT itself (proxy/net/command_kind.cc).
  static std::unique_ptr<Overlay> build(std::span<const CommandDesc> cmds, Report* report);

  // Learnt entries, in the order they were added (tests, logs).
  const std::vector<const CommandInfo*>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

  // The entry named `name` (any case), hashed to `h` by the table's hash; nullptr if none.
  const CommandInfo* find(uint32_t h, std::string_view name) const;
  // The entry "<container>|<sub>" (sub in any case), where hc is the hash of container's name.
  const CommandInfo* findSub(uint32_t hc, std::string_view container, std::string_view sub) const;
  // The key specs of entry e when it has more than two (they do not fit CommandInfo), else
  // nullptr.
  const KeySpec* moreKeySpecs(const CommandInfo* e) const;

  Overlay(const Overlay&) = delete;
  Overlay& operator=(const Overlay&) = delete;
  ~Overlay();

 private:
  Overlay() = default;
  struct Builder;
  void index(const CommandInfo* e);

  std::deque<std::string> strings_;  // names and keywords the entries point into
  // Key specs of the entries that have more than two (rare: no command of Redis 7.0-8 has
  // more than three, and those are built in).
  std::unordered_map<const CommandInfo*, std::vector<KeySpec>> more_specs_;
  std::deque<std::vector<CommandInfo>> sub_arrays_;  // subcommands of learnt containers
  std::deque<CommandInfo> singles_;  // learnt top-level commands and subs of built-in containers
  std::vector<const CommandInfo*> entries_;
  std::vector<uint32_t> slots_;  // open addressing over entries_ (index + 1; 0 = empty)
};

// Lays `overlay` over the built-in table for lookup() on every thread; nullptr removes it. The
// caller keeps it alive as long as anything may hold an entry lookup() returned: the proxy
// learns once and keeps its overlay for the process's life (proxy/net/command_learn.h); tests
// install theirs around a test.
void setOverlay(const Overlay* overlay);
const Overlay* currentOverlay();

}  // namespace corral::commands
