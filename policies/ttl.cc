// TTL governance of writes (the rewrite forms are drawn in ttl.h).
//
//   decideTtl(command, args, keys, rules)
//     set, getex ............ options parsed; a TTL given -> bounds (+ jitter_client);
//                             SET without one -> append PX <default>; GETEX PERSIST -> require
//     setex, psetex, expire, pexpire, expireat, pexpireat -> bounds (+ jitter_client)
//     persist ............... refused on `require`
//     setnx, getset, mset, msetnx (string writes that drop the TTL) -> PEXPIRE NX follow-ups
//                             whenever ttl.default is set
//     any other write + denyoom command (HSET, LPUSH, INCR, APPEND, ...) -> PEXPIRE NX
//                             follow-ups for the keys it writes, on `require` only
//   --> verdict: reject (the first error) > rewrite (whole argv) > forward; follow-ups; events
//
// Each key is decided on its own rules; a key without rules is never touched. A key whose
// policy is in audit mode is decided the same way but only reports kAudited. When any key is
// rejected the whole command is: its follow-ups and rewrite are dropped, and so are the kFixed
// events of the other keys (nothing was fixed); kRejected and kAudited events stay.
#include "policies/ttl.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <optional>

#include "commands/command_table.h"

namespace corral::policies {

int64_t jitterMs(int64_t ttl_ms, double jitter, Random& rnd) {
  const double v = std::floor(static_cast<double>(ttl_ms) * (1.0 - rnd.uniform() * jitter));
  if (!(v >= 1.0)) return 1;  // also catches NaN from a broken Random
  // ttl_ms above 2^53 is not exact in a double; never return more than asked for.
  if (v >= static_cast<double>(ttl_ms)) return std::max<int64_t>(ttl_ms, 1);
  return static_cast<int64_t>(v);
}

void TtlDecision::clear() {
  verdict = Verdict::kForward;
  error.clear();
  nargs = 0;  // the strings stay, with their capacity, for the next rewrite
  append_from = 0;
  followups.clear();
  events.clear();
}

namespace {

using commands::equalsIgnoreCase;
using config::TtlOnViolation;
using Kind = TtlEvent::Kind;

constexpr size_t kMaxKeyInError = 64;

// Redis' string2ll: an optional '-', digits without a leading zero (except "0" itself), nothing
// else, within int64. Anything Redis would refuse is left for Redis to refuse.
bool parseInt(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  const size_t first_digit = s[0] == '-' ? 1 : 0;
  if (first_digit == s.size()) return false;
  if (s[first_digit] == '0' && s.size() != 1) return false;  // "00", "01", "-0"
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

enum class Unit : uint8_t { kSeconds, kMillis };

// Milliseconds left before the TTL argument `v` expires the key, or nullopt where Redis refuses
// the value ("invalid expire time": overflow in the unit conversion or when adding the clock).
std::optional<int64_t> remainingMs(int64_t v, Unit unit, bool absolute, int64_t now_ms) {
  int64_t ms = v;
  if (unit == Unit::kSeconds && __builtin_mul_overflow(v, int64_t{1000}, &ms)) return {};
  int64_t out = 0;
  if (absolute) {
    if (__builtin_sub_overflow(ms, now_ms, &out)) return {};
    return out;
  }
  if (__builtin_add_overflow(ms, now_ms, &out)) return {};
  return ms;
}

// SET / GETEX TTL options: EX, PX, EXAT, PXAT. Returns -1 for anything else.
int ttlOption(std::string_view tok) {
  if (equalsIgnoreCase(tok, "ex")) return 0;
  if (equalsIgnoreCase(tok, "px")) return 1;
  if (equalsIgnoreCase(tok, "exat")) return 2;
  if (equalsIgnoreCase(tok, "pxat")) return 3;
  return -1;
}

// The options of SET k v [...] (from index 3) or GETEX k [...] (from index 2), checked the way
// Redis' parseExtendedStringArgumentsOrReply does. Redis lets the same TTL option repeat and
// uses the last value; two different ones are a syntax error.
struct StringOptions {
  bool ok = true;
  int ttl_kind = -1;     // ttlOption() of the TTL given, -1 = none
  size_t ttl_value = 0;  // arg index of the (last) TTL value
  bool keepttl = false;  // SET only
  bool persist = false;  // GETEX only
};

StringOptions parseStringOptions(std::span<const std::string_view> args, size_t first,
                                 bool is_set) {
  StringOptions o;
  bool nx = false;
  bool xx = false;
  for (size_t i = first; i < args.size() && o.ok; ++i) {
    const std::string_view tok = args[i];
    if (is_set && equalsIgnoreCase(tok, "nx")) {
      nx = true;
    } else if (is_set && equalsIgnoreCase(tok, "xx")) {
      xx = true;
    } else if (is_set && equalsIgnoreCase(tok, "get")) {
      // replies with the old value; no effect on the TTL
    } else if (is_set && equalsIgnoreCase(tok, "keepttl")) {
      o.keepttl = true;
    } else if (!is_set && equalsIgnoreCase(tok, "persist")) {
      o.persist = true;
    } else if (const int kind = ttlOption(tok); kind >= 0 && i + 1 < args.size()) {
      if (o.ttl_kind >= 0 && o.ttl_kind != kind) o.ok = false;
      o.ttl_kind = kind;
      o.ttl_value = ++i;
    } else {
      o.ok = false;
    }
  }
  if (nx && xx) o.ok = false;
  if (o.ttl_kind >= 0 && (o.keepttl || o.persist)) o.ok = false;
  return o;
}

// Commands that read some keys and write one: only the written key gets a follow-up, since a
// PEXPIRE on a key the command merely read would be a write the client never asked for.
enum class Written : uint8_t { kAll, kFirst, kLast };

Written writtenKeys(std::string_view cmd) {
  // Source(s) first, destination last (SORT and GEORADIUS only with STORE, i.e. two keys).
  for (std::string_view c : {"lmove", "blmove", "rpoplpush", "brpoplpush", "smove", "copy", "sort",
                             "georadius", "georadiusbymember"}) {
    if (cmd == c) return Written::kLast;
  }
  // Destination first.
  for (std::string_view c :
       {"bitop", "sdiffstore", "sinterstore", "sunionstore", "zdiffstore", "zinterstore",
        "zunionstore", "zrangestore", "geosearchstore", "pfmerge"}) {
    if (cmd == c) return Written::kFirst;
  }
  return Written::kAll;
}

void appendInt(std::string& s, int64_t v) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  s.append(buf, res.ptr);
}

// A key in an error reply: at most kMaxKeyInError bytes, and only printable ASCII other than
// the quote and backslash verbatim (the rest as \xNN), so the reply stays one safe line.
void appendKey(std::string& s, std::string_view key) {
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t n = std::min(key.size(), kMaxKeyInError);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      s.push_back(static_cast<char>(c));
    } else {
      s.append("\\x");
      s.push_back(kHex[c >> 4]);
      s.push_back(kHex[c & 0xf]);
    }
  }
  if (key.size() > n) s.append("...");
}

enum class Act : uint8_t { kNone, kFix, kReject, kAudit };

// How a client-given TTL is written back after clamping or jitter.
enum class Form : uint8_t {
  kStringOption,  // SET / GETEX ... EX|PX|EXAT|PXAT v: every such option becomes PX <ms>
  kSetex,         // SETEX k s v: whole seconds if they fit, else PSETEX k ms v
  kPsetex,        // PSETEX k ms v
  kExpire,        // EXPIRE k s [flag]: whole seconds if they fit, else PEXPIRE k ms [flag]
  kPexpire,       // PEXPIRE k ms [flag]
  kExpireAt,      // EXPIREAT / PEXPIREAT k ts [flag]: PEXPIRE k <ms remaining> [flag]
};

class Decider {
 public:
  Decider(const TtlInput& in, Random& rnd, TtlDecision& out) : in_(in), rnd_(rnd), out_(out) {}

  void run();

 private:
  const KeyTtlRules* rulesAt(size_t slot) const {
    if (slot >= in_.rules.size() || slot >= in_.keys.size()) return nullptr;
    if (in_.keys[slot] >= in_.args.size()) return nullptr;  // a caller bug; ignore the key
    return in_.rules[slot].ttl != nullptr ? &in_.rules[slot] : nullptr;
  }
  // The slot (position in keys) of the key at argument index 1, the only key of the TTL
  // commands; nullopt if the caller gave none.
  std::optional<uint32_t> firstKeySlot() const {
    for (size_t i = 0; i < in_.keys.size(); ++i) {
      if (in_.keys[i] == 1) return static_cast<uint32_t>(i);
    }
    return std::nullopt;
  }
  std::string_view keyAt(uint32_t slot) const { return in_.args[in_.keys[slot]]; }

  void event(uint32_t slot, Kind kind) { out_.events.push_back(TtlEvent{slot, kind}); }
  // Records a rejection; returns true when this is the first, whose message the caller writes.
  bool reject(uint32_t slot, const KeyTtlRules& r) {
    event(slot, Kind::kRejected);
    if (rejected_) return false;
    rejected_ = true;
    out_.error.assign("TTL ");
    out_.error.append(r.policy);
    out_.error.append(": ");
    return true;
  }
  std::string& arg(size_t i) {
    if (!rewritten_) {
      rewritten_ = true;
      out_.nargs = 0;
      for (std::string_view a : in_.args) out_.pushArg(a);
    }
    return out_.args[i];
  }
  void setArg(size_t i, std::string_view v) {
    changed_in_place_ = true;
    arg(i).assign(v);
  }
  void setArg(size_t i, int64_t v) {
    changed_in_place_ = true;
    std::string& s = arg(i);
    s.clear();
    appendInt(s, v);
  }

  void decideSet();
  void decideGetex();
  void decideSetex(bool millis);
  void decideExpire(Unit unit, bool absolute);
  void decidePersist(uint32_t slot);
  void decideStringWrites();
  void decideTypeWrite();
  void missingTtl(uint32_t slot, bool string_write, bool append_px);
  void clientTtl(uint32_t slot, int64_t ms, Form form, size_t value_index, size_t first_option);
  void writeTtl(Form form, size_t value_index, size_t first_option, int64_t ms, bool ms_form,
                bool round_up, const config::TtlSpec& t);
  void finish();

  const TtlInput& in_;
  Random& rnd_;
  TtlDecision& out_;
  bool rejected_ = false;
  bool rewritten_ = false;
  bool changed_in_place_ = false;  // an original argument was changed (not only appended to)
};

void Decider::run() {
  const std::string_view cmd = in_.command;
  if (cmd == "set") {
    decideSet();
  } else if (cmd == "getex") {
    decideGetex();
  } else if (cmd == "setex" || cmd == "psetex") {
    decideSetex(cmd == "psetex");
  } else if (cmd == "expire") {
    decideExpire(Unit::kSeconds, false);
  } else if (cmd == "pexpire") {
    decideExpire(Unit::kMillis, false);
  } else if (cmd == "expireat") {
    decideExpire(Unit::kSeconds, true);
  } else if (cmd == "pexpireat") {
    decideExpire(Unit::kMillis, true);
  } else if (cmd == "persist") {
    if (in_.args.size() == 2) {
      if (const auto slot = firstKeySlot()) decidePersist(*slot);
    }
  } else if (cmd == "setnx" || cmd == "getset" || cmd == "mset" || cmd == "msetnx") {
    decideStringWrites();
  } else {
    decideTypeWrite();
  }
  finish();
}

void Decider::decideSet() {
  if (in_.args.size() < 3) return;
  const auto slot = firstKeySlot();
  if (!slot || rulesAt(*slot) == nullptr) return;
  const StringOptions o = parseStringOptions(in_.args, 3, true);
  if (!o.ok || o.keepttl) return;  // a syntax error is Redis' to report; KEEPTTL is left alone
  if (o.ttl_kind < 0) {
    missingTtl(*slot, true, true);
    return;
  }
  int64_t v = 0;
  if (!parseInt(in_.args[o.ttl_value], v) || v <= 0) return;  // Redis: invalid expire time
  const bool seconds = o.ttl_kind == 0 || o.ttl_kind == 2;
  const bool absolute = o.ttl_kind >= 2;
  const auto ms =
      remainingMs(v, seconds ? Unit::kSeconds : Unit::kMillis, absolute, in_.now_unix_ms);
  if (ms) clientTtl(*slot, *ms, Form::kStringOption, o.ttl_value, 3);
}

void Decider::decideGetex() {
  if (in_.args.size() < 2) return;
  const auto slot = firstKeySlot();
  if (!slot || rulesAt(*slot) == nullptr) return;
  const StringOptions o = parseStringOptions(in_.args, 2, false);
  if (!o.ok) return;
  if (o.persist) {
    decidePersist(*slot);
    return;
  }
  if (o.ttl_kind < 0) return;  // plain GETEX: the TTL is unchanged
  int64_t v = 0;
  if (!parseInt(in_.args[o.ttl_value], v) || v <= 0) return;
  const bool seconds = o.ttl_kind == 0 || o.ttl_kind == 2;
  const bool absolute = o.ttl_kind >= 2;
  const auto ms =
      remainingMs(v, seconds ? Unit::kSeconds : Unit::kMillis, absolute, in_.now_unix_ms);
  if (ms) clientTtl(*slot, *ms, Form::kStringOption, o.ttl_value, 2);
}

void Decider::decideSetex(bool millis) {
  if (in_.args.size() != 4) return;
  const auto slot = firstKeySlot();
  if (!slot || rulesAt(*slot) == nullptr) return;
  int64_t v = 0;
  if (!parseInt(in_.args[2], v) || v <= 0) return;
  const auto ms = remainingMs(v, millis ? Unit::kMillis : Unit::kSeconds, false, in_.now_unix_ms);
  if (ms) clientTtl(*slot, *ms, millis ? Form::kPsetex : Form::kSetex, 2, 0);
}

void Decider::decideExpire(Unit unit, bool absolute) {
  if (in_.args.size() < 3) return;
  const auto slot = firstKeySlot();
  if (!slot || rulesAt(*slot) == nullptr) return;
  for (size_t i = 3; i < in_.args.size(); ++i) {
    const std::string_view f = in_.args[i];
    if (!equalsIgnoreCase(f, "nx") && !equalsIgnoreCase(f, "xx") && !equalsIgnoreCase(f, "gt") &&
        !equalsIgnoreCase(f, "lt")) {
      return;  // Redis: unsupported option
    }
  }
  int64_t v = 0;
  if (!parseInt(in_.args[2], v)) return;
  const auto ms = remainingMs(v, unit, absolute, in_.now_unix_ms);
  if (!ms) return;
  Form form = Form::kExpireAt;
  if (!absolute) form = unit == Unit::kSeconds ? Form::kExpire : Form::kPexpire;
  clientTtl(*slot, *ms, form, 2, 0);
}

void Decider::decidePersist(uint32_t slot) {
  const KeyTtlRules* r = rulesAt(slot);
  if (r == nullptr || !r->ttl->require) return;
  // Nothing to fix: dropping the PERSIST would answer the client with a lie.
  if (r->audit || r->ttl->on_violation == TtlOnViolation::kAudit) {
    event(slot, Kind::kAudited);
    return;
  }
  if (reject(slot, *r)) {
    out_.error.append("PERSIST would leave key '");
    appendKey(out_.error, keyAt(slot));
    out_.error.append("' without a TTL (ttl.require)");
  }
}

void Decider::decideStringWrites() {
  const bool multi = in_.command == "mset" || in_.command == "msetnx";
  if (multi ? in_.args.size() < 3 || in_.args.size() % 2 == 0 : in_.args.size() != 3) return;
  for (size_t slot = 0; slot < in_.keys.size(); ++slot) {
    if (rulesAt(slot) != nullptr) missingTtl(static_cast<uint32_t>(slot), true, false);
  }
}

void Decider::decideTypeWrite() {
  const commands::CommandInfo* info = commands::lookup(in_.args);
  if (info == nullptr) return;
  // write + denyoom: the command may create the key, and a created key has no TTL. SMOVE is
  // flagged only "write fast" in Redis 7.0 but creates its destination set all the same.
  const bool creates =
      (info->flags & commands::kWrite) != 0 && (info->flags & commands::kDenyOom) != 0;
  if (!creates && in_.command != "smove") return;
  const size_t n = std::min(in_.keys.size(), in_.rules.size());
  if (n == 0) return;
  size_t first = 0;
  size_t last = n;
  switch (writtenKeys(in_.command)) {
    case Written::kAll:
      break;
    case Written::kFirst:
      last = 1;
      break;
    case Written::kLast:
      if (n < 2) return;  // SORT / GEORADIUS without STORE only read
      first = n - 1;
      break;
  }
  for (size_t slot = first; slot < last; ++slot) {
    if (rulesAt(slot) != nullptr) missingTtl(static_cast<uint32_t>(slot), false, false);
  }
}

// A write that leaves the key without a TTL. string_write: the command replaces a string and
// drops any TTL (SET, SETNX, GETSET, MSET, MSETNX), governed whenever ttl.default is set; other
// writes only create keys without one, governed on `require`. append_px: SET, fixed in place.
void Decider::missingTtl(uint32_t slot, bool string_write, bool append_px) {
  const KeyTtlRules& r = *rulesAt(slot);
  const config::TtlSpec& t = *r.ttl;
  const bool has_default = t.default_ttl.has_value();
  if (string_write ? !(has_default || t.require) : !t.require) return;
  Act act = Act::kNone;
  switch (t.on_violation) {
    case TtlOnViolation::kFix:
      act = has_default ? Act::kFix : Act::kReject;  // `require` without a default: no fix
      break;
    case TtlOnViolation::kReject:
      act = t.require ? Act::kReject : Act::kNone;  // without `require` a TTL is optional
      break;
    case TtlOnViolation::kAudit:
      act = Act::kAudit;
      break;
  }
  if (act != Act::kNone && r.audit) act = Act::kAudit;
  switch (act) {
    case Act::kNone:
      return;
    case Act::kAudit:
      event(slot, Kind::kAudited);
      return;
    case Act::kReject:
      if (reject(slot, r)) {
        out_.error.append("key '");
        appendKey(out_.error, keyAt(slot));
        out_.error.append("' needs a TTL (ttl.require)");
      }
      return;
    case Act::kFix:
      break;
  }
  const int64_t ttl = jitterMs(t.default_ttl->count(), t.jitter, rnd_) + t.default_extra_ms;
  if (append_px) {
    arg(0);  // starts the rewrite
    out_.pushArg("PX");
    appendInt(out_.pushArg({}), ttl);
  } else {
    out_.followups.push_back(TtlFollowup{slot, ttl});
  }
  event(slot, Kind::kFixed);
}

// A TTL the client gave, `ms` from now. value_index: the TTL argument; first_option: where
// SET / GETEX options start (kStringOption only).
void Decider::clientTtl(uint32_t slot, int64_t ms, Form form, size_t value_index,
                        size_t first_option) {
  if (ms <= 0) return;  // an expiry in the past deletes the key: nothing left to govern
  const KeyTtlRules& r = *rulesAt(slot);
  const config::TtlSpec& t = *r.ttl;
  const int64_t min = t.min ? t.min->count() : 0;
  const int64_t max = t.max ? t.max->count() : 0;
  const bool low = t.min && ms < min;
  const bool high = !low && t.max && ms > max;
  const int64_t given = ms;
  bool clamped = false;
  if (low || high) {
    Act act = Act::kFix;
    if (t.on_violation == TtlOnViolation::kReject) act = Act::kReject;
    if (t.on_violation == TtlOnViolation::kAudit || r.audit) act = Act::kAudit;
    if (act == Act::kAudit) {
      event(slot, Kind::kAudited);
      return;
    }
    if (act == Act::kReject) {
      if (reject(slot, r)) {
        out_.error.append("ttl ");
        appendInt(out_.error, ms);
        out_.error.append("ms of key '");
        appendKey(out_.error, keyAt(slot));
        out_.error.append("' is outside [");
        if (t.min) {
          appendInt(out_.error, min);
          out_.error.append("ms");
        } else {
          out_.error.push_back('-');
        }
        out_.error.append(", ");
        if (t.max) {
          appendInt(out_.error, max);
          out_.error.append("ms");
        } else {
          out_.error.push_back('-');
        }
        out_.error.push_back(']');
      }
      return;
    }
    ms = low ? min : max;
    clamped = true;
    event(slot, Kind::kFixed);
  }
  bool jittered = false;
  // A TTL clamped down to max is one corral chose, and many clients asking for "a long time"
  // would all land on exactly max and expire together: jitter it like a default. Client TTLs
  // inside the bounds only with jitter_client.
  if ((t.jitter_client || high) && !r.audit) {
    // Jitter only shortens a TTL, so max still holds; keep min too.
    ms = std::max(jitterMs(ms, t.jitter, rnd_), t.min ? min : int64_t{1});
    jittered = ms != (high ? max : given);  // jitter 0 (or U = 0) changes nothing
  }
  if (!clamped && !jittered) return;
  writeTtl(form, value_index, first_option, ms, jittered, low, t);
}

// Writes `ms` back into the command. Without jitter, SETEX and EXPIRE keep whole seconds when
// some fit inside [min, max] (rounded up from a raised TTL, down from a lowered one); otherwise,
// and whenever jitter made the value, the millisecond form is used.
void Decider::writeTtl(Form form, size_t value_index, size_t first_option, int64_t ms, bool ms_form,
                       bool round_up, const config::TtlSpec& t) {
  switch (form) {
    case Form::kStringOption:
      // Rewrite every TTL option (Redis accepts a repeated one and uses the last value), so the
      // result never mixes PX with EX.
      for (size_t i = first_option; i < in_.args.size(); ++i) {
        if (ttlOption(in_.args[i]) >= 0 && i + 1 < in_.args.size()) {
          setArg(i, "PX");
          setArg(++i, ms);
        }
      }
      return;
    case Form::kPsetex:
    case Form::kPexpire:
      setArg(value_index, ms);
      return;
    case Form::kExpireAt:
      setArg(0, "PEXPIRE");
      setArg(value_index, ms);
      return;
    case Form::kSetex:
    case Form::kExpire:
      break;
  }
  if (!ms_form) {
    const int64_t s = round_up ? ms / 1000 + (ms % 1000 != 0 ? 1 : 0) : ms / 1000;
    const bool fits =
        s >= 1 && (!t.min || s * 1000 >= t.min->count()) && (!t.max || s * 1000 <= t.max->count());
    if (fits) {
      setArg(value_index, s);
      return;
    }
  }
  setArg(0, form == Form::kSetex ? "PSETEX" : "PEXPIRE");
  setArg(value_index, ms);
}

void Decider::finish() {
  if (rejected_) {
    out_.verdict = TtlDecision::Verdict::kReject;
    out_.nargs = 0;
    out_.followups.clear();
    std::erase_if(out_.events, [](const TtlEvent& e) { return e.kind == Kind::kFixed; });
  } else if (rewritten_) {
    out_.verdict = TtlDecision::Verdict::kRewrite;
    if (!changed_in_place_) out_.append_from = in_.args.size();
  } else {
    out_.verdict = TtlDecision::Verdict::kForward;
  }
}

}  // namespace

void decideTtl(const TtlInput& in, Random& rnd, TtlDecision& out) {
  out.clear();
  // The common case, a command none of whose keys has TTL rules, costs one scan.
  if (std::none_of(in.rules.begin(), in.rules.end(),
                   [](const KeyTtlRules& r) { return r.ttl != nullptr; })) {
    return;
  }
  if (in.args.empty()) return;
  Decider(in, rnd, out).run();
}

}  // namespace corral::policies
