// The learnt overlay (overlay.h): building it from what a server reported, finding its entries,
// and extracting keys with learnt key specs.
//
//   [CommandDesc] --build: skip what the table knows, check every value, translate key specs-->
//       entries (CommandInfo, id kLearntId) + one hash index over their full names
//   lookup() miss --lookupLearnt / lookupLearntSub--> currentOverlay()->find / findSub
//
// The index uses the built-in table's hash (table_internal.h), continued over '|' and the
// subcommand as lookup() does, so nothing is hashed twice and no joined name is ever built.
#include "commands/overlay.h"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "commands/command_table.h"
#include "commands/table_internal.h"

namespace corral::commands {
namespace {

std::atomic<const Overlay*> g_overlay{nullptr};

// Redis flags kept by corral (as tools/gen_commands.py keeps them for the built-in table).
constexpr std::pair<std::string_view, uint32_t> kFlags[] = {
    {"readonly", kRead},           {"write", kWrite},     {"admin", kAdmin},
    {"blocking", kBlocking},       {"pubsub", kPubSub},   {"noscript", kNoScript},
    {"loading", kLoading},         {"stale", kStale},     {"fast", kFast},
    {"movablekeys", kMovableKeys}, {"denyoom", kDenyOom},
};

// Key positions are KeySpec's int16_t; anything larger is not a real command's.
constexpr int64_t kMaxPos = std::numeric_limits<int16_t>::max();

bool inRange(int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; }

// A name as the table spells it: lower case, printable ASCII without spaces.
bool lowerName(std::string_view in, std::string& out) {
  if (in.empty()) return false;
  out.clear();
  for (char c : in) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
    out.push_back(static_cast<char>(detail::lower(c)));
  }
  return true;
}

// The built-in entry named `full` ("get", "config|get"), or nullptr. lookup() may answer from an
// overlay already set, or the container for an unknown subcommand: both count as "not built in".
const CommandInfo* builtin(std::string_view full) {
  const size_t bar = full.find('|');
  const std::string_view parts[] = {full.substr(0, bar),
                                    bar == std::string_view::npos ? "" : full.substr(bar + 1)};
  const CommandInfo* c = lookup(std::span(parts, bar == std::string_view::npos ? 1 : 2));
  return c != nullptr && c->id != kLearntId && c->name == full ? c : nullptr;
}

}  // namespace

struct Overlay::Builder {
  Overlay& o;
  Report& report;

  void skip(std::string_view name, std::string_view why) {
    // The server's bytes end up in logs: printable ASCII only.
    std::string s(name.substr(0, kMaxLearntNameLen));
    for (char& c : s) {
      if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    }
    s += ": ";
    s += why;
    report.skipped.push_back(std::move(s));
  }

  std::string_view keep(std::string s) { return o.strings_.emplace_back(std::move(s)); }

  // One reported key spec as a KeySpec; false (why set) when its keys cannot be found.
  static bool translate(const KeySpecDesc& d, KeySpec& k, std::string_view& keyword,
                        const char*& why) {
    why = "a key spec corral cannot follow (unknown type, incomplete, or out of range)";
    if (d.incomplete) return false;
    switch (d.begin) {
      case KeySpecDesc::Begin::kIndex:
        if (!inRange(d.index, 1, kMaxPos)) return false;
        k.first = static_cast<int16_t>(d.index);
        break;
      case KeySpecDesc::Begin::kKeyword:
        if (d.startfrom == 0 || !inRange(d.startfrom, -kMaxPos, kMaxPos)) return false;
        if (d.keyword.empty() || d.keyword.size() > kMaxLearntKeywordLen) return false;
        keyword = d.keyword;
        k.keyword_start_from = static_cast<int16_t>(d.startfrom);
        break;
      case KeySpecDesc::Begin::kUnknown:
        return false;
    }
    if (!inRange(d.keystep, 1, kMaxPos)) return false;
    k.step = static_cast<int16_t>(d.keystep);
    switch (d.find) {
      case KeySpecDesc::Find::kRange:
        // Redis asserts lastkey == -1 whenever limit is set.
        if (!inRange(d.lastkey, -kMaxPos, kMaxPos) || !inRange(d.limit, 0, kMaxPos) ||
            (d.limit > 0 && d.lastkey != -1)) {
          return false;
        }
        k.search = KeySearch::kLearntRange;
        k.last = static_cast<int16_t>(d.lastkey);
        k.limit = static_cast<int16_t>(d.limit);
        break;
      case KeySpecDesc::Find::kKeynum:
        // The keys come after their count (else the count would be a key).
        if (!inRange(d.keynumidx, 0, kMaxPos - 1) ||
            !inRange(d.firstkey, d.keynumidx + 1, kMaxPos)) {
          return false;
        }
        k.search = KeySearch::kLearntKeynum;
        k.numkeys_at = static_cast<int16_t>(d.keynumidx);
        k.key_offset = static_cast<int16_t>(d.firstkey);
        break;
      case KeySpecDesc::Find::kUnknown:
        return false;
    }
    return true;
  }

  // The key specs of d into e, or into *more when there are more than two (they go to the
  // overlay once e has its final address); false (why set) when not learnable.
  bool keys(const CommandDesc& d, uint32_t flags, CommandInfo& e, std::vector<KeySpec>& more,
            const char*& why) {
    std::vector<KeySpec> specs;
    if (d.has_key_specs) {
      if (d.key_specs.size() > kMaxLearntKeySpecs) {
        why = "too many key specs";
        return false;
      }
      for (const KeySpecDesc& ks : d.key_specs) {
        if (ks.not_key) continue;  // a channel (SPUBLISH & co): COMMAND GETKEYS skips it too
        KeySpec k;
        std::string_view keyword;
        if (!translate(ks, k, keyword, why)) return false;
        if (!keyword.empty()) k.keyword = keep(std::string(keyword));
        specs.push_back(k);
      }
    } else if (d.first_key != 0) {
      // Before Redis 7: first, last (negative: from the end) and step, with the same meaning
      // as a range spec that begins at `first`.
      KeySpecDesc legacy;
      legacy.begin = KeySpecDesc::Begin::kIndex;
      legacy.index = d.first_key;
      legacy.find = KeySpecDesc::Find::kRange;
      legacy.lastkey = d.last_key >= 0 ? d.last_key - d.first_key : d.last_key;
      legacy.keystep = d.key_step;
      if (d.last_key >= 0 && d.last_key < d.first_key) {
        why = "a key range that ends before it begins";
        return false;
      }
      KeySpec k;
      std::string_view unused;
      if (!translate(legacy, k, unused, why)) return false;
      specs.push_back(k);
    }
    if (specs.empty() && (flags & kMovableKeys)) {
      // Keys chosen by the server's own code, which corral does not have.
      why = "movable keys without key specs";
      return false;
    }
    if (specs.size() == 1 && specs[0].search == KeySearch::kLearntRange &&
        specs[0].keyword.empty() && specs[0].last == 0) {
      // One key at a fixed position (HEXPIRE, HGETEX, JSON.GET ...): the built-in form, which
      // takes extractKeys' fast path and the policy engine's single-key path. A position past
      // the arguments finds no key either way (the server then refuses the arity).
      specs[0] = KeySpec{
          .search = KeySearch::kRange, .first = specs[0].first, .last = specs[0].first, .step = 1};
    }
    e.nkeyspecs = static_cast<uint8_t>(specs.size());
    if (specs.size() <= 2) {
      std::copy(specs.begin(), specs.end(), e.keys);
    } else {
      more = std::move(specs);
    }
    return true;
  }

  // d as an entry named `name` (already lower case); false when it is not learnable.
  bool entry(const CommandDesc& d, std::string_view name, CommandInfo& e,
             std::vector<KeySpec>& more) {
    const char* why = "";
    if (d.arity == 0 || !inRange(d.arity, -kMaxPos, kMaxPos)) {
      skip(name, "arity out of range");
      return false;
    }
    uint32_t flags = 0;
    for (const std::string& f : d.flags) {
      for (const auto& [text, bit] : kFlags) {
        if (equalsIgnoreCase(f, text)) flags |= bit;
      }
    }
    if (!keys(d, flags, e, more, why)) {
      skip(name, why);
      return false;
    }
    if (e.nkeyspecs == 0) flags |= kNoKey;
    e.name = name;
    e.arity = static_cast<int32_t>(d.arity);
    e.flags = flags;
    e.id = kLearntId;
    return true;
  }

  bool room() {
    if (o.entries_.size() < kMaxLearntCommands) return true;
    report.skipped.emplace_back("(more): over the overlay's limit of commands");
    return false;
  }

  // A subcommand d of the container named `container`: its full name, lower case, or "".
  std::string subName(const CommandDesc& d, std::string_view container) {
    std::string full;
    if (!lowerName(d.name, full) || full.size() <= container.size() + 1 ||
        !full.starts_with(container) || full[container.size()] != '|' ||
        full.size() - container.size() - 1 > kMaxLearntNameLen ||
        full.find('|', container.size() + 1) != std::string::npos) {
      skip(d.name, "not a subcommand name of its container");
      return {};
    }
    return full;
  }

  void command(const CommandDesc& d, std::set<std::string>& seen) {
    std::string name;
    if (!lowerName(d.name, name) || name.size() > kMaxLearntNameLen ||
        name.find('|') != std::string::npos) {
      skip(d.name, "not a command name");
      return;
    }
    if (!seen.insert(name).second) return;  // reported twice: the first one stands
    if (const CommandInfo* known = builtin(name)) {
      // Built in: only subcommands it lacks are learnt (never CLIENT's: corral's own).
      if (known->nsubcommands == 0 || name == "client") return;
      for (const CommandDesc& s : d.subcommands) {
        const std::string full = subName(s, name);
        if (full.empty() || builtin(full) != nullptr || !seen.insert(full).second) continue;
        if (!room()) return;
        CommandInfo e;
        std::vector<KeySpec> more;
        if (!entry(s, keep(full), e, more)) continue;
        place(&o.singles_.emplace_back(e), std::move(more));
      }
      return;
    }
    if (!room()) return;
    CommandInfo top;
    std::vector<KeySpec> top_more;
    if (!entry(d, keep(name), top, top_more)) return;
    std::vector<CommandInfo> subs;
    std::vector<std::vector<KeySpec>> subs_more;
    for (const CommandDesc& s : d.subcommands) {
      const std::string full = subName(s, name);
      if (full.empty() || !seen.insert(full).second) continue;
      if (o.entries_.size() + 1 + subs.size() >= kMaxLearntCommands) break;
      CommandInfo e;
      std::vector<KeySpec> more;
      if (!entry(s, keep(full), e, more)) continue;
      subs.push_back(e);
      subs_more.push_back(std::move(more));
    }
    if (!subs.empty()) {
      const std::vector<CommandInfo>& arr = o.sub_arrays_.emplace_back(std::move(subs));
      top.subcommands = arr.data();
      top.nsubcommands = static_cast<uint16_t>(arr.size());
    }
    place(&o.singles_.emplace_back(top), std::move(top_more));
    for (size_t i = 0; i < top.nsubcommands; ++i) {
      place(&top.subcommands[i], std::move(subs_more[i]));
    }
  }

  // An entry at its final address: indexed, and its key specs kept if there are more than two.
  void place(const CommandInfo* e, std::vector<KeySpec> more) {
    if (!more.empty()) o.more_specs_.emplace(e, std::move(more));
    o.index(e);
  }
};

std::unique_ptr<Overlay> Overlay::build(std::span<const CommandDesc> cmds, Report* report) {
  std::unique_ptr<Overlay> o(new Overlay());
  Report local;
  Report& r = report != nullptr ? *report : local;
  Builder b{*o, r};
  std::set<std::string> seen;
  for (const CommandDesc& d : cmds) b.command(d, seen);
  // The index: a power of two at least four times the entries, so probes stay short and an
  // empty slot always ends a miss.
  size_t size = 16;
  while (size < o->entries_.size() * 4) size *= 2;
  o->slots_.assign(size, 0);
  for (size_t i = 0; i < o->entries_.size(); ++i) {
    size_t at = detail::hashLower(detail::kFnvBasis, o->entries_[i]->name) & (size - 1);
    while (o->slots_[at] != 0) at = (at + 1) & (size - 1);
    o->slots_[at] = static_cast<uint32_t>(i + 1);
  }
  r.learnt = o->entries_.size();
  return o;
}

Overlay::~Overlay() = default;

void Overlay::index(const CommandInfo* e) { entries_.push_back(e); }

const CommandInfo* Overlay::find(uint32_t h, std::string_view name) const {
  const size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const uint32_t slot = slots_[i];
    if (slot == 0) return nullptr;
    const CommandInfo* e = entries_[slot - 1];
    if (detail::equalsLower(e->name, name)) return e;
  }
}

const CommandInfo* Overlay::findSub(uint32_t hc, std::string_view container,
                                    std::string_view sub) const {
  if (sub.empty() || sub.size() > kMaxLearntNameLen) return nullptr;
  const size_t mask = slots_.size() - 1;
  const uint32_t h = detail::hashLower(detail::hashByte(hc, '|'), sub);
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const uint32_t slot = slots_[i];
    if (slot == 0) return nullptr;
    const CommandInfo* e = entries_[slot - 1];
    if (detail::isSubName(e->name, container, sub)) return e;
  }
}

const KeySpec* Overlay::moreKeySpecs(const CommandInfo* e) const {
  const auto it = more_specs_.find(e);
  return it != more_specs_.end() ? it->second.data() : nullptr;
}

void setOverlay(const Overlay* overlay) { g_overlay.store(overlay, std::memory_order_release); }

const Overlay* currentOverlay() { return g_overlay.load(std::memory_order_acquire); }

namespace detail {

const CommandInfo* lookupLearnt(uint32_t h, std::span<const std::string_view> args) {
  const Overlay* o = currentOverlay();
  if (o == nullptr || args[0].size() > kMaxLearntNameLen) return nullptr;
  const CommandInfo* cmd = o->find(h, args[0]);
  if (cmd == nullptr || cmd->nsubcommands == 0 || args.size() < 2) return cmd;
  const CommandInfo* sub = o->findSub(h, cmd->name, args[1]);
  return sub != nullptr ? sub : cmd;
}

const CommandInfo* lookupLearntSub(const CommandInfo& container, uint32_t h, std::string_view sub) {
  const Overlay* o = currentOverlay();
  const CommandInfo* e = o != nullptr ? o->findSub(h, container.name, sub) : nullptr;
  return e != nullptr ? e : &container;
}

const KeySpec* learntKeySpecs(const CommandInfo& cmd) {
  const Overlay* o = currentOverlay();
  return o != nullptr ? o->moreKeySpecs(&cmd) : nullptr;
}

void extractLearnt(const KeySpec& spec, std::span<const std::string_view> args,
                   std::vector<uint32_t>& out) {
  // Redis's getKeysUsingKeySpecs, spec by spec, with GET_KEYSPEC_RETURN_PARTIAL: what this spec
  // cannot find adds nothing, and the keys of the other specs stay.
  const auto argc = static_cast<int64_t>(args.size());
  int64_t first = 0;
  if (spec.keyword.empty()) {
    first = spec.first;
  } else {
    // Forwards from startfrom to the last arg but one, or backwards from argc + startfrom down
    // to arg 2: the keyword is never the last arg, nor arg 1 when searching backwards.
    const int64_t from = spec.keyword_start_from;
    int64_t i = from > 0 ? from : argc + from;
    const int64_t end = from > 0 ? argc - 1 : 1;
    const int64_t dir = i <= end ? 1 : -1;
    for (; i != end; i += dir) {
      if (i >= argc || i < 1) break;
      if (equalsIgnoreCase(args[static_cast<size_t>(i)], spec.keyword)) {
        first = i + 1;
        break;
      }
    }
    if (first == 0) return;  // no keyword: no keys from this spec
  }
  int64_t last = 0;
  if (spec.search == KeySearch::kLearntRange) {
    if (spec.last >= 0) {
      last = first + spec.last;
    } else if (spec.limit == 0) {
      last = argc + spec.last;
    } else {
      last = first + ((argc - first) / spec.limit + spec.last);
    }
  } else {
    const int64_t at = first + spec.numkeys_at;
    size_t numkeys = 0;
    // Redis's string2ll: no sign, no leading zeros; negative counts are invalid. A count larger
    // than the args cannot fit, so parseCount stops there (no overflow).
    if (at >= argc || !parseCount(args[static_cast<size_t>(at)], args.size(), numkeys)) return;
    // numkeys keys, `step` apart, as the key-specs documentation says (and as the built-in
    // kKeynum does). Redis 7's own code ends at first + numkeys - 1 whatever the step, which
    // finds fewer keys when step > 1; no command uses such a spec, and finding every key is
    // the side a policy gate must err on.
    first += spec.key_offset;
    last = first + (static_cast<int64_t>(numkeys) - 1) * spec.step;
  }
  if (last >= argc || last < first || first >= argc) return;  // out of bounds: a syntax error
  for (int64_t i = first; i <= last; i += spec.step) out.push_back(static_cast<uint32_t>(i));
}

}  // namespace detail
}  // namespace corral::commands
