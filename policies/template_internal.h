// What the template files share: compiled segments, byte classes, globs and the automata of
// overlaps() (not for use outside policies/template*.cc and matcher.cc).
//
//   template.cc          the parser: text --> Template::Impl (segments, ops, globs)
//   template_match.cc    Template::matches: the one-pass fast matcher and the general DP
//   template_overlap.cc  Template::overlaps: NFAs and their product
//   matcher.cc           Matcher: the radix tree over literal prefixes
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "policies/template.h"

namespace corral::policies::tmpl {

constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();
// u64 and int values have at most 20 bytes ("18446744073709551615", "-9223372036854775808").
constexpr uint32_t kMaxNumberBytes = 20;
constexpr uint32_t kUuidBytes = 36;
// Lengths in `{min,max}` above this are rejected: no key is that long in practice and it keeps
// every sum of lengths far from overflow.
constexpr uint32_t kMaxLength = 1'000'000'000;
// Counters above this are approximated (widened) when building NFAs for overlaps(): the answer
// stays conservative and the product stays small.
constexpr uint32_t kNfaCounterCap = 128;
// Bitset words the general matcher keeps on the stack; (segments + 1) * ceil((key + 1) / 64)
// words are needed, so this covers e.g. 3 segments on keys up to ~4 KB without allocating.
constexpr size_t kStackWords = 256;

// A set of bytes.
struct ByteSet {
  std::array<uint64_t, 4> w{};

  bool has(uint8_t b) const { return ((w[b >> 6] >> (b & 63)) & 1) != 0; }
  void add(uint8_t b) { w[b >> 6] |= uint64_t{1} << (b & 63); }
  void addRange(char lo, char hi) {
    for (int c = static_cast<uint8_t>(lo); c <= static_cast<uint8_t>(hi); ++c) {
      add(static_cast<uint8_t>(c));
    }
  }
  void addAll(const ByteSet& o) {
    for (size_t i = 0; i < 4; ++i) w[i] |= o.w[i];
  }
  void invert() {
    for (auto& x : w) x = ~x;
  }
  bool intersects(const ByteSet& o) const {
    return ((w[0] & o.w[0]) | (w[1] & o.w[1]) | (w[2] & o.w[2]) | (w[3] & o.w[3])) != 0;
  }
  bool operator==(const ByteSet&) const = default;

  static ByteSet all() {
    ByteSet s;
    s.invert();
    return s;
  }
  static ByteSet of(std::string_view bytes) {
    ByteSet s;
    for (char c : bytes) s.add(static_cast<uint8_t>(c));
    return s;
  }
};

enum : uint8_t {
  kDigitBit = 1,
  kHexBit = 2,
  kAlnumBit = 4,
  kSlugBit = 8,
  kSegBit = 16,
  kDashBit = 32,
  kAnyBit = 64,
};

constexpr std::array<uint8_t, 256> makeByteClass() {
  std::array<uint8_t, 256> t{};
  for (int b = 0; b < 256; ++b) {
    const bool digit = b >= '0' && b <= '9';
    const bool lower = b >= 'a' && b <= 'z';
    const bool upper = b >= 'A' && b <= 'Z';
    int m = kAnyBit;
    if (digit) m |= kDigitBit;
    if (digit || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F')) m |= kHexBit;
    if (digit || lower || upper) m |= kAlnumBit;
    if (digit || lower || b == '_' || b == '.' || b == '-') m |= kSlugBit;
    if (b != ':') m |= kSegBit;
    if (b == '-') m |= kDashBit;
    t[static_cast<size_t>(b)] = static_cast<uint8_t>(m);
  }
  return t;
}
constexpr std::array<uint8_t, 256> kByteClass = makeByteClass();

inline bool inClass(uint8_t b, uint8_t mask) { return (kByteClass[b] & mask) != 0; }

inline ByteSet digits() {
  ByteSet s;
  s.addRange('0', '9');
  return s;
}
inline ByteSet hexDigits() {
  ByteSet s = digits();
  s.addRange('a', 'f');
  s.addRange('A', 'F');
  return s;
}

inline ByteSet maskSet(uint8_t mask) {
  ByteSet s;
  for (int b = 0; b < 256; ++b) {
    if (inClass(static_cast<uint8_t>(b), mask)) s.add(static_cast<uint8_t>(b));
  }
  return s;
}

// Equality of short byte strings without a call: two overlapping word compares for 4..16
// bytes (literals and radix labels are mostly that short), memcmp beyond.
inline bool bytesEqual(const void* a, const void* b, size_t n) {
  const auto* x = static_cast<const unsigned char*>(a);
  const auto* y = static_cast<const unsigned char*>(b);
  if (n >= 8) {
    if (n > 16) return std::memcmp(x, y, n) == 0;
    uint64_t x0, x1, y0, y1;
    std::memcpy(&x0, x, 8);
    std::memcpy(&y0, y, 8);
    std::memcpy(&x1, x + n - 8, 8);
    std::memcpy(&y1, y + n - 8, 8);
    return ((x0 ^ y0) | (x1 ^ y1)) == 0;
  }
  if (n >= 4) {
    uint32_t x0, x1, y0, y1;
    std::memcpy(&x0, x, 4);
    std::memcpy(&y0, y, 4);
    std::memcpy(&x1, x + n - 4, 4);
    std::memcpy(&y1, y + n - 4, 4);
    return ((x0 ^ y0) | (x1 ^ y1)) == 0;
  }
  if (n == 0) return true;
  return ((x[0] ^ y[0]) | (x[n / 2] ^ y[n / 2]) | (x[n - 1] ^ y[n - 1])) == 0;
}

enum class Kind : uint8_t { kLiteral, kInt, kU64, kUuid, kHex, kAlnum, kSlug, kSeg, kRest, kEnum };

// One piece of a compiled template: literal bytes or a placeholder.
struct Segment {
  Kind kind = Kind::kLiteral;
  // The segment's length is fixed by the key alone (see computeDeterminism()).
  bool deterministic = true;
  uint32_t min_len = 0;  // placeholders: byte length bounds (max may be kUnbounded)
  uint32_t max_len = 0;
  uint8_t first_mask = 0;         // class bits (kByteClass) of first and tail; 0 for enum and uuid
  uint8_t tail_mask = 0;          // one bit (the matcher relies on it: classRun)
  ByteSet first;                  // bytes allowed at the placeholder's first byte
  ByteSet tail;                   // bytes allowed after it
  ByteSet follow;                 // bytes the next segment may start with (empty for the last one)
  std::string lit;                // kLiteral
  std::vector<std::string> alts;  // kEnum, longest first
};

// The fast matcher's compact copy of a segment (48 bytes, so a template's ops share a cache
// line or two). lit and name point into the owning Template::Impl, which never moves.
// How the fast matcher takes an op (decided once, at compile time).
enum class OpMode : uint8_t {
  kLiteral,  // compare bytes
  kFixed,    // a class placeholder of one length (hex{32}, ...): that many bytes of the class
  kScan,     // a class placeholder of a range of lengths: the run of class bytes
  kOther,    // uuid, enum, rest
};

struct Op {
  Kind kind = Kind::kLiteral;
  OpMode mode = OpMode::kLiteral;
  uint8_t first_mask = 0;
  uint8_t tail_mask = 0;
  bool last = false;
  bool check_value = false;  // u64, int: canonical form and range (valueOk)
  uint32_t min_len = 0;
  uint32_t max_len = 0;
  uint32_t seg = 0;  // index into Impl::segs, for enum alternatives
  const char* lit = nullptr;
  size_t lit_len = 0;
  std::string_view name;  // capture name (placeholders)
};

inline bool hasValueCheck(Kind kind) { return kind == Kind::kU64 || kind == Kind::kInt; }

// Typed value checks beyond the byte class (u64, int): canonical form and range.
bool valueOk(Kind kind, const uint8_t* p, size_t len);

inline uint8_t classesOf4(const uint8_t* p) {
  return static_cast<uint8_t>(kByteClass[p[0]] & kByteClass[p[1]] & kByteClass[p[2]] &
                              kByteClass[p[3]]);
}

// Whether all of p[0, len) is in a placeholder's class: p[0] under first_mask, the rest under
// tail_mask. tail_mask is one bit, so AND-ing four bytes' class bits keeps it exactly when each
// of them has it: four table loads per branch instead of one. The last group may overlap the
// one before (a byte checked twice changes nothing). The early exit in the loop also keeps the
// compiler from vectorizing it, which for keys' short runs costs more than it saves.
inline bool classRun(const uint8_t* p, size_t len, uint8_t first_mask, uint8_t tail_mask) {
  if (len == 0) return true;
  if (first_mask == tail_mask && len >= 4) {
    // One class for every byte: groups of four from the first byte on.
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
      if ((classesOf4(p + i) & tail_mask) == 0) return false;
    }
    return i == len || (classesOf4(p + len - 4) & tail_mask) != 0;
  }
  if (!inClass(p[0], first_mask)) return false;
  const uint8_t* t = p + 1;
  const size_t n = len - 1;
  if (n < 4) {
    for (size_t i = 0; i < n; ++i) {
      if (!inClass(t[i], tail_mask)) return false;
    }
    return true;
  }
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    if ((classesOf4(t + i) & tail_mask) == 0) return false;
  }
  return i == n || (classesOf4(t + n - 4) & tail_mask) != 0;
}

struct GlobToken {
  enum Type : uint8_t { kByte, kAny, kClass, kStar };
  Type type = kByte;
  uint8_t byte = 0;
  uint32_t cls = 0;  // index into GlobPattern::classes
};

struct GlobPattern {
  std::vector<GlobToken> toks;
  std::vector<ByteSet> classes;
  bool all_stars = false;

  bool tokenMatches(const GlobToken& t, uint8_t b) const {
    switch (t.type) {
      case GlobToken::kByte:
        return t.byte == b;
      case GlobToken::kAny:
        return true;
      case GlobToken::kClass:
        return classes[t.cls].has(b);
      case GlobToken::kStar:
        break;
    }
    return false;
  }

  // Iterative glob matching with single star backtracking: on a mismatch only the most recent
  // star grows, which is enough for globs (an earlier star can always absorb what a later one
  // would) and bounds the work by O(key * pattern) instead of exponential.
  bool matches(std::string_view key) const {
    if (key.empty()) return all_stars;
    const auto* k = reinterpret_cast<const uint8_t*>(key.data());
    const size_t n = key.size();
    const size_t m = toks.size();
    size_t s = 0;
    size_t t = 0;
    size_t star_t = m;  // m: no star seen yet
    size_t star_s = 0;
    while (s < n) {
      if (t < m && toks[t].type == GlobToken::kStar) {
        star_t = t++;
        star_s = s;
      } else if (t < m && tokenMatches(toks[t], k[s])) {
        ++t;
        ++s;
      } else if (star_t != m) {
        t = star_t + 1;
        s = ++star_s;
      } else {
        return false;
      }
    }
    while (t < m && toks[t].type == GlobToken::kStar) ++t;
    return t == m;
  }
};

// A nondeterministic automaton over bytes, for overlaps() only (built on demand, not on the
// match path). State 0 is the start.
struct Nfa {
  struct Edge {
    uint32_t cls;
    uint32_t to;
  };
  std::vector<ByteSet> classes;
  std::vector<std::vector<Edge>> edges;
  std::vector<std::vector<uint32_t>> eps;
  uint32_t cur = 0;  // end of what was appended so far; the accept state once built

  Nfa() { addState(); }

  uint32_t addState() {
    edges.emplace_back();
    eps.emplace_back();
    return static_cast<uint32_t>(edges.size() - 1);
  }
  uint32_t addClass(const ByteSet& s) {
    classes.push_back(s);
    return static_cast<uint32_t>(classes.size() - 1);
  }
  // Appends cls{lo,hi}. Counters above kNfaCounterCap widen (lo shrinks, hi becomes unbounded):
  // the automaton then accepts more keys, which keeps overlaps() conservative.
  void appendRun(const ByteSet& set, uint32_t lo, uint32_t hi) {
    if (hi != kUnbounded && hi > kNfaCounterCap) hi = kUnbounded;
    lo = std::min(lo, kNfaCounterCap);
    const uint32_t cls = addClass(set);
    for (uint32_t k = 0; k < lo; ++k) {
      const uint32_t s = addState();
      edges[cur].push_back({cls, s});
      cur = s;
    }
    if (hi == kUnbounded) {
      const uint32_t s = addState();
      eps[cur].push_back(s);
      edges[s].push_back({cls, s});
      cur = s;
    } else if (hi > lo) {
      const uint32_t end = addState();
      eps[cur].push_back(end);
      for (uint32_t k = lo; k < hi; ++k) {
        const uint32_t s = addState();
        edges[cur].push_back({cls, s});
        eps[s].push_back(end);
        cur = s;
      }
      cur = end;
    }
  }
  void appendBytes(std::string_view bytes) {
    for (char c : bytes) {
      ByteSet s;
      s.add(static_cast<uint8_t>(c));
      appendRun(s, 1, 1);
    }
  }
  void appendAlternatives(const std::vector<std::string>& alts) {
    const uint32_t start = cur;
    const uint32_t end = addState();
    for (const auto& alt : alts) {
      cur = start;
      appendBytes(alt);
      eps[cur].push_back(end);
    }
    cur = end;
  }
};

// True when some byte string takes both automata from their start to their accept state.
bool nfaIntersect(const Nfa& a, const Nfa& b);

}  // namespace corral::policies::tmpl

namespace corral::policies {

struct Template::Impl {
  // Hot: what Matcher::match reads, first.
  std::vector<tmpl::Op> ops;  // parallel to segs
  uint64_t min_total = 0;     // key length bounds over all segments
  uint64_t max_total = 0;     // kUnbounded-sized sums saturate to UINT64_MAX
  bool all_deterministic = true;
  bool glob = false;
  // >= 0: the template is its literal prefix and then ops[tail_class], a class placeholder that
  // takes the rest of the key (finishCompile); -1 otherwise.
  int32_t tail_class = -1;

  std::string text;
  std::string prefix;
  std::vector<std::string> names;
  std::vector<tmpl::Segment> segs;
  tmpl::GlobPattern glob_pattern;

  // The segment matching starts at after the literal prefix was already checked.
  size_t firstSegmentAfterPrefix() const { return prefix.empty() ? 0 : 1; }

  // Matches key[pos..] against segs[s0..]; key[0..pos) is known to be the literal prefix.
  [[gnu::always_inline]] bool matchFrom(std::string_view key, size_t s0, size_t pos,
                                        std::vector<Capture>* caps) const {
    if (caps != nullptr) caps->clear();
    if (key.size() < min_total || key.size() > max_total) return false;
    const bool ok =
        all_deterministic ? matchFast(key, s0, pos, caps) : matchGeneral(key, s0, pos, caps);
    if (!ok && caps != nullptr) caps->clear();  // the fast path may have captured a few
    return ok;
  }
  bool matchFast(std::string_view key, size_t s0, size_t pos, std::vector<Capture>* caps) const;
  bool matchGeneral(std::string_view key, size_t s0, size_t pos, std::vector<Capture>* caps) const;
  // matchFast's rare ops (OpMode::kOther) at key[p..]: the value's length, or kNoValue.
  static constexpr size_t kNoValue = SIZE_MAX;
  size_t otherValue(const tmpl::Op& op, const uint8_t* k, size_t n, size_t p) const;
  size_t captureIndexBefore(size_t s0) const;
  tmpl::Nfa buildNfa() const;
};

// The fast matcher, inline so that Matcher::match runs it without a call (the common case).
[[gnu::always_inline]] inline bool Template::Impl::matchFast(std::string_view key, size_t s0,
                                                             size_t pos,
                                                             std::vector<Capture>* caps) const {
  const auto* k = reinterpret_cast<const uint8_t*>(key.data());
  const size_t n = key.size();
  size_t p = pos;
  for (const tmpl::Op *op = ops.data() + s0, *end = ops.data() + ops.size(); op != end; ++op) {
    size_t len = 0;
    switch (op->mode) {
      case tmpl::OpMode::kLiteral:
        if (n - p < op->lit_len || !tmpl::bytesEqual(k + p, op->lit, op->lit_len)) return false;
        p += op->lit_len;
        continue;
      case tmpl::OpMode::kFixed:
        // Exactly that many bytes of the class; a last one must end the key.
        len = op->min_len;
        if (op->last ? n - p != len : n - p < len) return false;
        if (!tmpl::classRun(k + p, len, op->first_mask, op->tail_mask)) return false;
        break;
      case tmpl::OpMode::kScan: {
        // Deterministic: the byte after the class run cannot belong to this placeholder, so the
        // run is the value. Scan one byte past max so an overlong run fails, not cuts.
        const size_t limit = op->max_len == tmpl::kUnbounded
                                 ? n - p
                                 : std::min<size_t>(n - p, size_t{op->max_len} + 1);
        len = (limit > 0 && tmpl::inClass(k[p], op->first_mask)) ? 1 : 0;
        if (len == 1) {
          while (len < limit && tmpl::inClass(k[p + len], op->tail_mask)) ++len;
        }
        if (len < op->min_len || len > op->max_len) return false;
        if (op->last && p + len != n) return false;
        break;
      }
      case tmpl::OpMode::kOther:
        len = otherValue(*op, k, n, p);
        if (len == kNoValue) return false;
        break;
    }
    if (op->check_value && !tmpl::valueOk(op->kind, k + p, len)) return false;
    if (caps != nullptr) caps->push_back({op->name, key.substr(p, len)});
    p += len;
  }
  return p == n;
}

}  // namespace corral::policies
