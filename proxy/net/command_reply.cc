// COMMAND replies read into commands::CommandDesc (command_reply.h). Pure: no I/O, no logging.
//
//   reply --FrameReader--> entries, each read from its own bytes (skip(&raw) first, so a bad
//   entry cannot take the reader past its end) --> name, arity, flags, first/last/step,
//   key specs (maps: RESP3 "%" or RESP2 flat arrays), subcommands (one level)
#include "proxy/net/command_reply.h"

#include <string>
#include <string_view>
#include <utility>

#include "commands/command_table.h"
#include "proxy/codec/resp.h"

namespace corral::net {
namespace {

using codec::FrameReader;
using codec::ReplyType;
using commands::CommandDesc;
using commands::KeySpecDesc;

constexpr size_t kMaxFlags = 64;          // Redis 7.4 has about 20 command flags
constexpr size_t kMaxSubcommands = 1024;  // CLIENT, the largest container, has about 25
// Names are cut one byte past the overlay's limit, so the overlay still sees them as too long.
constexpr size_t kMaxText = commands::kMaxLearntNameLen + 1;

std::string capped(std::string_view s) { return std::string(s.substr(0, kMaxText)); }

bool integerOf(std::string_view raw, int64_t* v) {
  FrameReader rd(raw);
  return rd.integer(v) && rd.atEnd();
}

bool stringOf(std::string_view raw, std::string_view* s) {
  FrameReader rd(raw);
  return rd.string(s) && rd.atEnd();
}

// An aggregate of `n` elements (array, set or push); a nil one counts as empty.
bool list(FrameReader& rd, int64_t* n) {
  ReplyType t = ReplyType::kArray;
  if (!rd.aggregate(&t, n) || t == ReplyType::kMap) return false;
  if (*n < 0) *n = 0;
  return true;
}

// A map at rd: a RESP3 map, or the RESP2 form, a flat array of key, value, key, value ...
// Calls each(key, raw value) for every pair; false when it is not such a map.
template <typename Each>
bool forEachPair(FrameReader& rd, Each&& each) {
  ReplyType t = ReplyType::kArray;
  int64_t n = 0;
  if (!rd.aggregate(&t, &n)) return false;
  int64_t pairs = 0;
  if (t == ReplyType::kMap && n >= 0) {
    pairs = n;
  } else if (t == ReplyType::kArray && n >= 0 && n % 2 == 0) {
    pairs = n / 2;
  } else {
    return false;
  }
  for (int64_t i = 0; i < pairs; ++i) {
    std::string_view key;
    std::string_view raw;
    if (!rd.string(&key) || !rd.skip(&raw)) return false;
    each(key, raw);
  }
  return true;
}

template <typename Each>
bool forEachPairOf(std::string_view raw, Each&& each) {
  FrameReader rd(raw);
  return forEachPair(rd, each) && rd.atEnd();
}

// {"type": ..., "spec": {...}} as the type and the spec's raw bytes.
bool typed(std::string_view raw, std::string_view* type, std::string_view* spec) {
  return forEachPairOf(raw, [&](std::string_view key, std::string_view value) {
    if (key == "type") {
      if (!stringOf(value, type)) *type = {};
    } else if (key == "spec") {
      *spec = value;
    }
  });
}

// begin_search. Anything unexpected leaves the spec's begin kUnknown: the overlay then refuses
// the command rather than guess its keys.
void beginSearch(std::string_view raw, KeySpecDesc& k) {
  std::string_view type;
  std::string_view spec;
  if (!typed(raw, &type, &spec)) return;
  bool has_index = false;
  bool has_keyword = false;
  bool has_from = false;
  std::string keyword;
  const bool ok = forEachPairOf(spec, [&](std::string_view key, std::string_view value) {
    std::string_view s;
    if (key == "index") has_index = integerOf(value, &k.index);
    if (key == "startfrom") has_from = integerOf(value, &k.startfrom);
    if (key == "keyword" && stringOf(value, &s)) {
      has_keyword = true;
      keyword = capped(s);
    }
  });
  if (!ok) return;
  if (type == "index" && has_index) {
    k.begin = KeySpecDesc::Begin::kIndex;
  } else if (type == "keyword" && has_keyword && has_from) {
    k.begin = KeySpecDesc::Begin::kKeyword;
    k.keyword = std::move(keyword);
  }
}

void findKeys(std::string_view raw, KeySpecDesc& k) {
  std::string_view type;
  std::string_view spec;
  if (!typed(raw, &type, &spec)) return;
  int seen_range = 0;
  int seen_keynum = 0;
  bool has_step = false;
  const bool ok = forEachPairOf(spec, [&](std::string_view key, std::string_view value) {
    if (key == "lastkey" && integerOf(value, &k.lastkey)) ++seen_range;
    if (key == "limit" && integerOf(value, &k.limit)) ++seen_range;
    if (key == "keynumidx" && integerOf(value, &k.keynumidx)) ++seen_keynum;
    if (key == "firstkey" && integerOf(value, &k.firstkey)) ++seen_keynum;
    if (key == "keystep") has_step = integerOf(value, &k.keystep);
  });
  if (!ok || !has_step) return;
  if (type == "range" && seen_range == 2) {
    k.find = KeySpecDesc::Find::kRange;
  } else if (type == "keynum" && seen_keynum == 2) {
    k.find = KeySpecDesc::Find::kKeynum;
  }
}

void specFlags(std::string_view raw, KeySpecDesc& k) {
  FrameReader rd(raw);
  int64_t n = 0;
  if (!list(rd, &n)) return;
  for (int64_t i = 0; i < n && i < static_cast<int64_t>(kMaxFlags); ++i) {
    std::string_view f;
    if (!rd.string(&f)) return;
    if (commands::equalsIgnoreCase(f, "not_key")) k.not_key = true;
    if (commands::equalsIgnoreCase(f, "incomplete")) k.incomplete = true;
  }
}

KeySpecDesc keySpec(std::string_view raw) {
  KeySpecDesc k;  // kUnknown begin and find until read
  KeySpecDesc read;
  const bool ok = forEachPairOf(raw, [&](std::string_view key, std::string_view value) {
    if (key == "flags") specFlags(value, read);
    if (key == "begin_search") beginSearch(value, read);
    if (key == "find_keys") findKeys(value, read);
  });
  return ok ? read : k;
}

void keySpecs(std::string_view raw, CommandDesc& d) {
  FrameReader rd(raw);
  int64_t n = 0;
  if (!list(rd, &n)) {
    d.key_specs.emplace_back();  // unreadable: one unknown spec, so the command is refused
    return;
  }
  // One past the overlay's limit is enough to make it refuse the command.
  for (int64_t i = 0; i < n && d.key_specs.size() <= commands::kMaxLearntKeySpecs; ++i) {
    std::string_view spec;
    if (!rd.skip(&spec)) {
      d.key_specs.emplace_back();
      return;
    }
    d.key_specs.push_back(keySpec(spec));
  }
}

bool entry(std::string_view raw, CommandDesc& d, bool subcommands, size_t* malformed);

void subcommandList(std::string_view raw, CommandDesc& d, size_t* malformed) {
  FrameReader rd(raw);
  int64_t n = 0;
  if (!list(rd, &n)) return;
  for (int64_t i = 0; i < n && d.subcommands.size() < kMaxSubcommands; ++i) {
    std::string_view sub;
    if (!rd.skip(&sub)) return;
    CommandDesc s;
    if (entry(sub, s, false, malformed)) d.subcommands.push_back(std::move(s));
  }
}

// One command's description: [name, arity, flags, first, last, step, acl categories, tips,
// key specs, subcommands] in Redis 7 (six or seven elements before it). False when malformed.
bool entry(std::string_view raw, CommandDesc& d, bool subcommands, size_t* malformed) {
  FrameReader rd(raw);
  ReplyType t = ReplyType::kArray;
  int64_t n = 0;
  std::string_view name;
  if (!rd.aggregate(&t, &n) || t != ReplyType::kArray || n < 6 || !rd.string(&name) ||
      !rd.integer(&d.arity)) {
    ++*malformed;
    return false;
  }
  d.name = capped(name);
  int64_t nflags = 0;
  if (!list(rd, &nflags)) {
    ++*malformed;
    return false;
  }
  for (int64_t i = 0; i < nflags; ++i) {
    std::string_view f;
    if (!rd.string(&f)) {
      ++*malformed;
      return false;
    }
    if (d.flags.size() < kMaxFlags) d.flags.push_back(capped(f));
  }
  if (!rd.integer(&d.first_key) || !rd.integer(&d.last_key) || !rd.integer(&d.key_step)) {
    ++*malformed;
    return false;
  }
  for (int64_t i = 6; i < n; ++i) {
    std::string_view element;
    if (!rd.skip(&element)) {
      ++*malformed;
      return false;
    }
    if (i == 8) {
      d.has_key_specs = true;
      keySpecs(element, d);
    } else if (i == 9 && subcommands) {
      subcommandList(element, d, malformed);
    }
  }
  if (!rd.atEnd()) {
    ++*malformed;
    return false;
  }
  return true;
}

}  // namespace

bool parseCommandReply(std::string_view reply, ParsedCommands* out) {
  *out = ParsedCommands{};
  FrameReader rd(reply);
  int64_t n = 0;
  ReplyType t = ReplyType::kArray;
  if (!rd.aggregate(&t, &n) || t != ReplyType::kArray || n < 0) return false;
  for (int64_t i = 0; i < n; ++i) {
    std::string_view raw;
    if (!rd.skip(&raw)) {
      *out = ParsedCommands{};
      return false;  // framing is broken: trust nothing of it
    }
    if (out->commands.size() >= kMaxReplyEntries) {
      out->truncated = true;
      continue;
    }
    ReplyType et = ReplyType::kArray;
    if (FrameReader peek(raw); peek.peek(&et) && et == ReplyType::kNull) continue;
    if (raw == "*-1\r\n") continue;  // COMMAND INFO of a name the server does not know
    CommandDesc d;
    if (entry(raw, d, true, &out->malformed)) out->commands.push_back(std::move(d));
  }
  if (!rd.atEnd()) {
    *out = ParsedCommands{};
    return false;
  }
  return true;
}

}  // namespace corral::net
