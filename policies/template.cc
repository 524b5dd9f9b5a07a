// Key templates and the matcher (contract in template.h).
//
//   compile("cart:{<uid:u64>}:items")
//     --> segments [lit "cart:{"][u64 {1,20}][lit "}:items"]      (+ per segment: deterministic?)
//   matches(key)
//     all segments deterministic --> one forward pass (the common case: a placeholder followed
//                                    by a byte outside its class ends where its class run ends)
//     otherwise                  --> reachability DP over (segment, position) bitsets, then a
//                                    greedy forward pass that reads the captures off the DP
//   overlaps(a, b) --> NFA per template (256-bit byte classes, bounded counters unrolled)
//                      --> product reachability
//   Matcher: radix tree of literal prefixes (one walk along the key) + globs in precedence order
//
// Capture policy (only visible when a template is ambiguous, e.g. `<a:seg>-<b:seg>` on "x-y-z"):
// leftmost-longest. Each placeholder, in template order, takes the longest value that still
// lets the rest of the template match (a = "x-y", b = "z"). Unambiguous templates have exactly
// one split, so the policy never changes their captures.
//
// Limits and deviations, on purpose:
// - Matching is O(segments * key) time. It allocates nothing, except that the general path
//   (ambiguous templates only) takes its bitmap from the heap once (segments + 1) * (key + 1)
//   bits exceed kStackWords words (about 4 KB keys for 3 segments).
// - overlaps() ignores typed value checks (u64 range, canonical digits) and widens counters
//   above kNfaCounterCap, so it may say "overlap" for templates that are in fact disjoint; for
//   globs it is exact (a glob is a small NFA too), not just a prefix comparison.
// - Globs follow Redis's stringmatchlen() (classes, backwards ranges compared as signed char,
//   an unterminated '[' running to the end), except that a pattern of only '*' matches the
//   empty key, as `KEYS *` and `SCAN MATCH *` do in Redis (stringmatchlen itself says no).

#include "policies/template.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <map>
#include <tuple>
#include <utility>

namespace corral::policies {
namespace {

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

ByteSet digits() {
  ByteSet s;
  s.addRange('0', '9');
  return s;
}
ByteSet hexDigits() {
  ByteSet s = digits();
  s.addRange('a', 'f');
  s.addRange('A', 'F');
  return s;
}
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

ByteSet maskSet(uint8_t mask) {
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
  uint8_t first_mask = 0;  // class bits (kByteClass) of first and tail; 0 for enum and uuid
  uint8_t tail_mask = 0;
  ByteSet first;                  // bytes allowed at the placeholder's first byte
  ByteSet tail;                   // bytes allowed after it
  ByteSet follow;                 // bytes the next segment may start with (empty for the last one)
  std::string lit;                // kLiteral
  std::vector<std::string> alts;  // kEnum, longest first
};

// The fast matcher's compact copy of a segment (48 bytes, so a template's ops share a cache
// line or two). lit and name point into the owning Template::Impl, which never moves.
struct Op {
  Kind kind = Kind::kLiteral;
  uint8_t first_mask = 0;
  uint8_t tail_mask = 0;
  bool last = false;
  uint32_t min_len = 0;
  uint32_t max_len = 0;
  uint32_t seg = 0;  // index into Impl::segs, for enum alternatives
  const char* lit = nullptr;
  size_t lit_len = 0;
  std::string_view name;  // capture name (placeholders)
};

bool isUuidAt(const uint8_t* p) {
  for (uint32_t i = 0; i < kUuidBytes; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (p[i] != '-') return false;
    } else if (!inClass(p[i], kHexBit)) {
      return false;
    }
  }
  return true;
}

// Digits-only text (already checked by the class) compared as a number against `limit`, which
// has the maximum digit count.
bool digitsFit(const uint8_t* p, size_t len, std::string_view limit) {
  if (len != limit.size()) return len < limit.size();
  return std::memcmp(p, limit.data(), len) <= 0;
}

// Typed value checks beyond the byte class: canonical form and range.
bool valueOk(Kind kind, const uint8_t* p, size_t len) {
  if (kind == Kind::kU64) {
    if (len > 1 && p[0] == '0') return false;
    return digitsFit(p, len, "18446744073709551615");
  }
  if (kind == Kind::kInt) {
    const bool neg = p[0] == '-';
    const uint8_t* d = p + (neg ? 1 : 0);
    const size_t n = len - (neg ? 1 : 0);
    if (n == 0) return false;
    if (d[0] == '0') return n == 1 && !neg;  // "0" only: no "00", "01", "-0"
    return digitsFit(d, n, neg ? "9223372036854775808" : "9223372036854775807");
  }
  return true;
}

bool hasValueCheck(Kind kind) { return kind == Kind::kU64 || kind == Kind::kInt; }

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

// Parses a Redis glob the way Redis's stringmatchlen() reads it, including its corner cases:
// an unterminated '[' class runs to the end of the pattern, `x-y` ranges compare bytes as
// (signed) char and may be written backwards, and a trailing '\' is a literal backslash.
GlobPattern parseGlob(std::string_view pat) {
  GlobPattern g;
  const size_t m = pat.size();
  auto byteTok = [&](char c) {
    GlobToken t;
    t.type = GlobToken::kByte;
    t.byte = static_cast<uint8_t>(c);
    g.toks.push_back(t);
  };
  size_t i = 0;
  while (i < m) {
    const char c = pat[i];
    if (c == '*') {
      if (g.toks.empty() || g.toks.back().type != GlobToken::kStar) {
        g.toks.push_back(GlobToken{GlobToken::kStar, 0, 0});
      }
      ++i;
    } else if (c == '?') {
      g.toks.push_back(GlobToken{GlobToken::kAny, 0, 0});
      ++i;
    } else if (c == '[') {
      ++i;
      const bool negate = i < m && pat[i] == '^';
      if (negate) ++i;
      ByteSet set;
      bool closed = false;
      while (i < m) {
        if (pat[i] == '\\' && m - i >= 2) {
          ++i;
          set.add(static_cast<uint8_t>(pat[i]));
        } else if (pat[i] == ']') {
          closed = true;
          break;
        } else if (m - i >= 3 && pat[i + 1] == '-') {
          int lo = static_cast<signed char>(pat[i]);
          int hi = static_cast<signed char>(pat[i + 2]);
          if (lo > hi) std::swap(lo, hi);
          for (int b = 0; b < 256; ++b) {
            const int sc = static_cast<signed char>(b);
            if (sc >= lo && sc <= hi) set.add(static_cast<uint8_t>(b));
          }
          i += 2;
        } else {
          set.add(static_cast<uint8_t>(pat[i]));
        }
        ++i;
      }
      i = closed ? i + 1 : m;
      if (negate) set.invert();
      g.toks.push_back(GlobToken{GlobToken::kClass, 0, static_cast<uint32_t>(g.classes.size())});
      g.classes.push_back(set);
    } else if (c == '\\' && m - i >= 2) {
      byteTok(pat[i + 1]);
      i += 2;
    } else {
      byteTok(c);
      ++i;
    }
  }
  g.all_stars = std::all_of(g.toks.begin(), g.toks.end(),
                            [](const GlobToken& t) { return t.type == GlobToken::kStar; });
  return g;
}

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
bool nfaIntersect(const Nfa& a, const Nfa& b) {
  const size_t nb = b.edges.size();
  std::vector<uint8_t> seen(a.edges.size() * nb, 0);
  std::vector<std::pair<uint32_t, uint32_t>> stack;
  auto push = [&](uint32_t s, uint32_t t) {
    uint8_t& v = seen[size_t{s} * nb + t];
    if (v == 0) {
      v = 1;
      stack.emplace_back(s, t);
    }
  };
  push(0, 0);
  while (!stack.empty()) {
    const auto [s, t] = stack.back();
    stack.pop_back();
    if (s == a.cur && t == b.cur) return true;
    for (uint32_t e : a.eps[s]) push(e, t);
    for (uint32_t e : b.eps[t]) push(s, e);
    for (const auto& ea : a.edges[s]) {
      for (const auto& eb : b.edges[t]) {
        if (a.classes[ea.cls].intersects(b.classes[eb.cls])) push(ea.to, eb.to);
      }
    }
  }
  return false;
}

inline bool bitGet(const uint64_t* row, size_t i) { return ((row[i >> 6] >> (i & 63)) & 1) != 0; }
inline void bitSet(uint64_t* row, size_t i) { row[i >> 6] |= uint64_t{1} << (i & 63); }

bool isNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isNameChar(char c) { return isNameStart(c) || (c >= '0' && c <= '9'); }

}  // namespace

struct Template::Impl {
  // Hot: what Matcher::match reads, first.
  std::vector<Op> ops;     // parallel to segs
  uint64_t min_total = 0;  // key length bounds over all segments
  uint64_t max_total = 0;  // kUnbounded-sized sums saturate to UINT64_MAX
  bool all_deterministic = true;
  bool glob = false;

  std::string text;
  std::string prefix;
  std::vector<std::string> names;
  std::vector<Segment> segs;
  GlobPattern glob_pattern;

  // The segment matching starts at after the literal prefix was already checked.
  size_t firstSegmentAfterPrefix() const { return prefix.empty() ? 0 : 1; }

  // Matches key[pos..] against segs[s0..]; key[0..pos) is known to be the literal prefix.
  bool matchFrom(std::string_view key, size_t s0, size_t pos, std::vector<Capture>* caps) const;
  bool matchFast(std::string_view key, size_t s0, size_t pos, std::vector<Capture>* caps) const;
  bool matchGeneral(std::string_view key, size_t s0, size_t pos, std::vector<Capture>* caps) const;
  size_t captureIndexBefore(size_t s0) const;
  Nfa buildNfa() const;
};

namespace {

// Parses template text (not globs) into Template::Impl segments.
class TemplateParser {
 public:
  TemplateParser(std::string_view text, Template::Impl& out) : t_(text), out_(out) {}

  bool run(std::string* error) {
    error_ = error;
    if (t_.empty()) return fail("empty template", 0);
    size_t i = 0;
    while (i < t_.size()) {
      const char c = t_[i];
      if (c == '\\') {
        if (i + 1 >= t_.size()) return fail("trailing '\\' (write \\\\ for a backslash)", i);
        const char e = t_[i + 1];
        if (e != '<' && e != '>' && e != '\\') {
          return fail(std::string("unknown escape '\\") + e + "' (only \\<, \\> and \\\\)", i);
        }
        lit_ += e;
        i += 2;
      } else if (c == '>') {
        return fail("unexpected '>' (write \\> for a literal '>')", i);
      } else if (c == '<') {
        if (!placeholder(i)) return false;
      } else {
        lit_ += c;
        ++i;
      }
    }
    flushLiteral();
    return true;
  }

 private:
  bool fail(const std::string& what, size_t offset) {
    if (error_ != nullptr) *error_ = what + " at offset " + std::to_string(offset);
    return false;
  }

  void flushLiteral() {
    if (lit_.empty()) return;
    Segment s;
    s.kind = Kind::kLiteral;
    s.lit = std::move(lit_);
    lit_.clear();
    out_.segs.push_back(std::move(s));
  }

  // Reads digits at i into *v (at most kMaxLength).
  bool number(size_t& i, uint32_t* v, size_t brace) {
    const size_t start = i;
    uint64_t x = 0;
    while (i < t_.size() && t_[i] >= '0' && t_[i] <= '9') {
      x = x * 10 + static_cast<uint64_t>(t_[i] - '0');
      if (x > kMaxLength) return fail("bad length: number too large", start);
      ++i;
    }
    if (i == start) {
      if (i >= t_.size()) return fail("unterminated '{'", brace);
      return fail("bad length: expected a number", i);
    }
    *v = static_cast<uint32_t>(x);
    return true;
  }

  // `{n}`, `{min,}` or `{min,max}` at i.
  bool length(size_t& i, uint32_t* lo, uint32_t* hi) {
    const size_t brace = i++;
    if (!number(i, lo, brace)) return false;
    if (i >= t_.size()) return fail("unterminated '{'", brace);
    if (t_[i] == '}') {
      *hi = *lo;
    } else if (t_[i] == ',') {
      ++i;
      if (i < t_.size() && t_[i] == '}') {
        *hi = kUnbounded;
      } else if (!number(i, hi, brace)) {
        return false;
      }
      if (i >= t_.size()) return fail("unterminated '{'", brace);
      if (t_[i] != '}') return fail("bad length: expected '}'", i);
    } else {
      return fail("bad length: expected ',' or '}'", i);
    }
    ++i;
    if (*lo == 0) return fail("bad length: a placeholder has at least 1 byte", brace);
    if (*lo > *hi) return fail("bad length: min is greater than max", brace);
    return true;
  }

  // `(a|b|c)` at i.
  bool enumAlternatives(size_t& i, std::vector<std::string>* alts) {
    const size_t paren = i++;
    std::string cur;
    size_t start = i;
    while (true) {
      if (i >= t_.size()) return fail("unterminated enum '('", paren);
      const char c = t_[i];
      if (c == '|' || c == ')') {
        if (cur.empty()) return fail("empty enum alternative", start);
        alts->push_back(std::move(cur));
        cur.clear();
        ++i;
        start = i;
        if (c == ')') break;
      } else if (c == '<' || c == '>' || c == '\\') {
        if (c == '>') return fail("unterminated enum '(' (expected ')')", paren);
        return fail(std::string("character '") + c + "' not allowed in an enum alternative", i);
      } else {
        cur += c;
        ++i;
      }
    }
    std::sort(alts->begin(), alts->end());
    alts->erase(std::unique(alts->begin(), alts->end()), alts->end());
    std::stable_sort(alts->begin(), alts->end(), [](const std::string& a, const std::string& b) {
      return a.size() > b.size();
    });
    return true;
  }

  // `<name>`, `<name:type>`, `<name:type{...}>` starting at the '<' at i.
  bool placeholder(size_t& i) {
    const size_t open = i++;
    const size_t name_start = i;
    if (i < t_.size() && isNameStart(t_[i])) {
      while (i < t_.size() && isNameChar(t_[i])) ++i;
    }
    if (i >= t_.size()) return fail("unterminated '<'", open);
    if (i == name_start) {
      const char c = t_[i];
      if (c == ':' || c == '>' || c == '{') return fail("empty placeholder name", i);
      return fail(std::string("bad placeholder name: unexpected '") + c + "'", i);
    }
    std::string name(t_.substr(name_start, i - name_start));
    for (const auto& n : out_.names) {
      if (n == name) return fail("duplicate placeholder name '" + name + "'", name_start);
    }

    Segment s;
    s.kind = Kind::kSeg;
    std::string_view type_name = "seg";
    size_t type_at = i;
    if (t_[i] == ':') {
      type_at = ++i;
      while (i < t_.size() && isNameChar(t_[i])) ++i;
      type_name = t_.substr(type_at, i - type_at);
      if (i >= t_.size()) return fail("unterminated '<'", open);
      if (type_name.empty()) return fail("missing placeholder type", type_at);
      if (type_name == "enum") {
        if (t_[i] != '(') return fail("enum needs alternatives: enum(a|b)", i);
        s.kind = Kind::kEnum;
        if (!enumAlternatives(i, &s.alts)) return false;
      } else if (type_name == "int") {
        s.kind = Kind::kInt;
      } else if (type_name == "u64") {
        s.kind = Kind::kU64;
      } else if (type_name == "uuid") {
        s.kind = Kind::kUuid;
      } else if (type_name == "hex") {
        s.kind = Kind::kHex;
      } else if (type_name == "alnum") {
        s.kind = Kind::kAlnum;
      } else if (type_name == "slug") {
        s.kind = Kind::kSlug;
      } else if (type_name == "seg") {
        s.kind = Kind::kSeg;
      } else if (type_name == "rest") {
        s.kind = Kind::kRest;
      } else {
        return fail("unknown placeholder type '" + std::string(type_name) + "'", type_at);
      }
    }

    uint32_t lo = 1;
    uint32_t hi = kUnbounded;
    bool has_length = false;
    size_t brace = i;
    if (i < t_.size() && t_[i] == '{') {
      has_length = true;
      if (!length(i, &lo, &hi)) return false;
    }
    if (i >= t_.size()) return fail("unterminated '<'", open);
    if (t_[i] != '>') {
      return fail(std::string("unexpected '") + t_[i] + "' in placeholder (expected '>')", i);
    }
    ++i;
    if (s.kind == Kind::kRest && i != t_.size()) {
      return fail("placeholder type 'rest' must end the template", open);
    }
    if (!applyType(s, lo, hi, has_length, brace)) return false;

    flushLiteral();
    out_.names.push_back(std::move(name));
    out_.segs.push_back(std::move(s));
    return true;
  }

  bool applyType(Segment& s, uint32_t lo, uint32_t hi, bool has_length, size_t brace) {
    switch (s.kind) {
      case Kind::kInt:
      case Kind::kU64:
        hi = std::min(hi, kMaxNumberBytes);
        if (lo > hi) {
          return fail(std::string("bad length: ") + (s.kind == Kind::kInt ? "int" : "u64") +
                          " values have at most 20 bytes",
                      brace);
        }
        s.first_mask = s.kind == Kind::kInt ? kDigitBit | kDashBit : kDigitBit;
        s.tail_mask = kDigitBit;
        break;
      case Kind::kUuid:
        if (has_length && (lo > kUuidBytes || hi < kUuidBytes)) {
          return fail("bad length: a uuid has 36 bytes", brace);
        }
        lo = hi = kUuidBytes;
        s.first = s.tail = hexDigits();
        s.tail.add('-');
        break;
      case Kind::kHex:
        s.first_mask = s.tail_mask = kHexBit;
        break;
      case Kind::kAlnum:
        s.first_mask = s.tail_mask = kAlnumBit;
        break;
      case Kind::kSlug:
        s.first_mask = s.tail_mask = kSlugBit;
        break;
      case Kind::kSeg:
        s.first_mask = s.tail_mask = kSegBit;
        break;
      case Kind::kRest:
        s.first_mask = s.tail_mask = kAnyBit;
        break;
      case Kind::kEnum: {
        std::erase_if(s.alts, [&](const std::string& a) { return a.size() < lo || a.size() > hi; });
        if (s.alts.empty()) return fail("bad length: no enum alternative has that length", brace);
        lo = static_cast<uint32_t>(s.alts.back().size());
        hi = static_cast<uint32_t>(s.alts.front().size());
        for (const auto& a : s.alts) {
          s.first.add(static_cast<uint8_t>(a[0]));
          s.tail.addAll(ByteSet::of(std::string_view(a).substr(1)));
        }
        break;
      }
      case Kind::kLiteral:
        break;
    }
    if (s.first_mask != 0) {
      s.first = maskSet(s.first_mask);
      s.tail = maskSet(s.tail_mask);
    }
    s.min_len = lo;
    s.max_len = hi;
    return true;
  }

  std::string_view t_;
  Template::Impl& out_;
  std::string* error_ = nullptr;
  std::string lit_;
};

// Bytes segment s may start with.
ByteSet firstBytes(const Segment& s) {
  if (s.kind == Kind::kLiteral) {
    ByteSet b;
    b.add(static_cast<uint8_t>(s.lit[0]));
    return b;
  }
  return s.first;
}

// Whether a placeholder's length follows from the key alone, scanning forward. True when:
// it is last (it takes the rest), its length is fixed (uuid, {n}), or, for class runs, no byte
// after its first can start the next segment (so it must end exactly where its run ends); for
// enums, no alternative that is a proper prefix of another can be followed by the byte that
// extends it.
bool computeDeterminism(const Segment& s, bool last) {
  if (s.kind == Kind::kLiteral || last || s.min_len == s.max_len) return true;
  if (s.kind == Kind::kEnum) {
    for (const auto& x : s.alts) {
      for (const auto& y : s.alts) {
        if (x.size() < y.size() && y.compare(0, x.size(), x) == 0 &&
            s.follow.has(static_cast<uint8_t>(y[x.size()]))) {
          return false;
        }
      }
    }
    return true;
  }
  return !s.tail.intersects(s.follow);
}

void finishCompile(Template::Impl& im) {
  const size_t n = im.segs.size();
  im.all_deterministic = true;
  im.min_total = 0;
  im.max_total = 0;
  for (size_t i = 0; i < n; ++i) {
    Segment& s = im.segs[i];
    const bool last = i + 1 == n;
    if (!last) s.follow = firstBytes(im.segs[i + 1]);
    s.deterministic = computeDeterminism(s, last);
    im.all_deterministic = im.all_deterministic && s.deterministic;
    const uint64_t lo = s.kind == Kind::kLiteral ? s.lit.size() : s.min_len;
    const uint64_t hi = s.kind == Kind::kLiteral ? s.lit.size() : s.max_len;
    im.min_total += lo;
    if (hi == kUnbounded || im.max_total == UINT64_MAX) {
      im.max_total = UINT64_MAX;
    } else {
      im.max_total += hi;
    }
  }
  if (n > 0 && im.segs[0].kind == Kind::kLiteral) im.prefix = im.segs[0].lit;
  // segs and names are final now, so the ops may point into them.
  size_t cap = 0;
  for (size_t i = 0; i < n; ++i) {
    const Segment& s = im.segs[i];
    Op op;
    op.kind = s.kind;
    op.first_mask = s.first_mask;
    op.tail_mask = s.tail_mask;
    op.last = i + 1 == n;
    op.min_len = s.min_len;
    op.max_len = s.max_len;
    op.seg = static_cast<uint32_t>(i);
    op.lit = s.lit.data();
    op.lit_len = s.lit.size();
    if (s.kind != Kind::kLiteral) op.name = im.names[cap++];
    im.ops.push_back(op);
  }
}

}  // namespace

size_t Template::Impl::captureIndexBefore(size_t s0) const {
  size_t k = 0;
  for (size_t i = 0; i < s0; ++i) k += segs[i].kind == Kind::kLiteral ? 0 : 1;
  return k;
}

bool Template::Impl::matchFrom(std::string_view key, size_t s0, size_t pos,
                               std::vector<Capture>* caps) const {
  if (caps != nullptr) caps->clear();
  if (key.size() < min_total || key.size() > max_total) return false;
  const bool ok =
      all_deterministic ? matchFast(key, s0, pos, caps) : matchGeneral(key, s0, pos, caps);
  if (!ok && caps != nullptr) caps->clear();  // the fast path may have captured a few
  return ok;
}

bool Template::Impl::matchFast(std::string_view key, size_t s0, size_t pos,
                               std::vector<Capture>* caps) const {
  const auto* k = reinterpret_cast<const uint8_t*>(key.data());
  const size_t n = key.size();
  size_t p = pos;
  for (const Op *op = ops.data() + s0, *end = ops.data() + ops.size(); op != end; ++op) {
    size_t len = 0;
    switch (op->kind) {
      case Kind::kLiteral:
        if (n - p < op->lit_len || !bytesEqual(k + p, op->lit, op->lit_len)) return false;
        p += op->lit_len;
        continue;
      case Kind::kUuid:
        if (n - p < kUuidBytes || !isUuidAt(k + p)) return false;
        len = kUuidBytes;
        break;
      case Kind::kEnum: {
        // Deterministic: at most one alternative is followed by a byte that can start the
        // next segment (or by the end of the key, when last).
        const Segment& s = segs[op->seg];
        bool found = false;
        for (const auto& a : s.alts) {
          if (n - p < a.size() || !bytesEqual(k + p, a.data(), a.size())) continue;
          const size_t e = p + a.size();
          if (op->last ? e == n : (e < n && s.follow.has(k[e]))) {
            len = a.size();
            found = true;
            break;
          }
        }
        if (!found) return false;
        break;
      }
      case Kind::kRest:
        len = n - p;
        if (len < op->min_len || len > op->max_len) return false;
        break;
      default:
        if (op->min_len == op->max_len && !op->last) {
          len = op->min_len;
          if (n - p < len || !inClass(k[p], op->first_mask)) return false;
          for (size_t j = 1; j < len; ++j) {
            if (!inClass(k[p + j], op->tail_mask)) return false;
          }
        } else {
          // Deterministic: the byte after the class run cannot belong to this placeholder, so
          // the run is the value. Scan one byte past max so an overlong run fails, not cuts.
          const size_t limit =
              op->max_len == kUnbounded ? n - p : std::min<size_t>(n - p, size_t{op->max_len} + 1);
          len = (limit > 0 && inClass(k[p], op->first_mask)) ? 1 : 0;
          if (len == 1) {
            while (len < limit && inClass(k[p + len], op->tail_mask)) ++len;
          }
          if (len < op->min_len || len > op->max_len) return false;
          if (op->last && p + len != n) return false;
        }
        break;
    }
    if (hasValueCheck(op->kind) && !valueOk(op->kind, k + p, len)) return false;
    if (caps != nullptr) caps->push_back({op->name, key.substr(p, len)});
    p += len;
  }
  return p == n;
}

// The general case: R[i][p] = "segments i.. match key[p..]" computed backwards, one bitset row
// per segment, O(segments * key) time; then a forward pass picks, for each placeholder, the
// longest value whose end is a position in R[i + 1] (leftmost-longest captures).
bool Template::Impl::matchGeneral(std::string_view key, size_t s0, size_t pos,
                                  std::vector<Capture>* caps) const {
  const std::string_view sub = key.substr(pos);
  const auto* k = reinterpret_cast<const uint8_t*>(sub.data());
  const size_t n = sub.size();
  const size_t nseg = segs.size();
  const size_t words = (n + 1 + 63) / 64;
  const size_t rows = nseg - s0 + 1;

  uint64_t stack_bits[kStackWords];
  std::vector<uint64_t> heap_bits;  // only for long keys on ambiguous templates
  uint64_t* bits = stack_bits;
  if (rows * words > kStackWords) {
    heap_bits.resize(rows * words);
    bits = heap_bits.data();
  }
  std::memset(bits, 0, rows * words * sizeof(uint64_t));
  auto row = [&](size_t seg) { return bits + (seg - s0) * words; };
  bitSet(row(nseg), n);

  for (size_t i = nseg; i-- > s0;) {
    const Segment& s = segs[i];
    const uint64_t* next = row(i + 1);
    uint64_t* cur = row(i);
    switch (s.kind) {
      case Kind::kLiteral: {
        const size_t l = s.lit.size();
        for (size_t p = 0; p + l <= n; ++p) {
          if (bitGet(next, p + l) && std::memcmp(k + p, s.lit.data(), l) == 0) bitSet(cur, p);
        }
        break;
      }
      case Kind::kUuid:
        for (size_t p = 0; p + kUuidBytes <= n; ++p) {
          if (bitGet(next, p + kUuidBytes) && isUuidAt(k + p)) bitSet(cur, p);
        }
        break;
      case Kind::kEnum:
        for (size_t p = 0; p < n; ++p) {
          for (const auto& a : s.alts) {
            if (a.size() <= n - p && bitGet(next, p + a.size()) &&
                std::memcmp(k + p, a.data(), a.size()) == 0) {
              bitSet(cur, p);
              break;
            }
          }
        }
        break;
      default: {
        // run(p): length of the longest prefix of key[p..] in the placeholder's classes.
        size_t tail_run = 0;                                  // tail-class run starting at p + 1
        size_t x = n + 1;                                     // window start, moves down with p
        size_t nearest = std::numeric_limits<size_t>::max();  // least set bit of next >= x
        for (size_t p = n; p-- > 0;) {
          const size_t run = s.first.has(k[p]) ? 1 + tail_run : 0;
          tail_run = s.tail.has(k[p]) ? tail_run + 1 : 0;
          if (run < s.min_len) continue;
          const size_t hi = std::min<size_t>(s.max_len, run);
          if (hasValueCheck(s.kind)) {
            for (size_t len = s.min_len; len <= hi; ++len) {
              if (bitGet(next, p + len) && valueOk(s.kind, k + p, len)) {
                bitSet(cur, p);
                break;
              }
            }
            continue;
          }
          const size_t target = p + s.min_len;
          while (x > target) {
            --x;
            if (bitGet(next, x)) nearest = x;
          }
          if (nearest <= p + hi) bitSet(cur, p);
        }
        break;
      }
    }
  }
  if (!bitGet(row(s0), 0)) return false;
  if (caps == nullptr) return true;

  size_t p = 0;
  size_t cap = captureIndexBefore(s0);
  for (size_t i = s0; i < nseg; ++i) {
    const Segment& s = segs[i];
    const uint64_t* next = row(i + 1);
    size_t len = 0;
    switch (s.kind) {
      case Kind::kLiteral:
        p += s.lit.size();
        continue;
      case Kind::kUuid:
        len = kUuidBytes;
        break;
      case Kind::kEnum:
        for (const auto& a : s.alts) {  // longest first
          if (a.size() <= n - p && bitGet(next, p + a.size()) &&
              std::memcmp(k + p, a.data(), a.size()) == 0) {
            len = a.size();
            break;
          }
        }
        break;
      default: {
        const size_t limit = std::min<size_t>(s.max_len, n - p);
        size_t run = s.first.has(k[p]) ? 1 : 0;
        if (run == 1) {
          while (run < limit && s.tail.has(k[p + run])) ++run;
        }
        for (len = run; len >= s.min_len; --len) {
          if (bitGet(next, p + len) && (!hasValueCheck(s.kind) || valueOk(s.kind, k + p, len))) {
            break;
          }
        }
        break;
      }
    }
    caps->push_back({names[cap], sub.substr(p, len)});
    ++cap;
    p += len;
  }
  return true;
}

Nfa Template::Impl::buildNfa() const {
  Nfa nfa;
  if (glob) {
    for (const auto& t : glob_pattern.toks) {
      switch (t.type) {
        case GlobToken::kByte: {
          ByteSet b;
          b.add(t.byte);
          nfa.appendRun(b, 1, 1);
          break;
        }
        case GlobToken::kAny:
          nfa.appendRun(ByteSet::all(), 1, 1);
          break;
        case GlobToken::kClass:
          nfa.appendRun(glob_pattern.classes[t.cls], 1, 1);
          break;
        case GlobToken::kStar:
          nfa.appendRun(ByteSet::all(), 0, kUnbounded);
          break;
      }
    }
    return nfa;
  }
  for (const auto& s : segs) {
    switch (s.kind) {
      case Kind::kLiteral:
        nfa.appendBytes(s.lit);
        break;
      case Kind::kEnum:
        nfa.appendAlternatives(s.alts);
        break;
      case Kind::kUuid: {
        ByteSet dash;
        dash.add('-');
        const ByteSet hex = hexDigits();
        nfa.appendRun(hex, 8, 8);
        for (int g = 0; g < 3; ++g) {
          nfa.appendRun(dash, 1, 1);
          nfa.appendRun(hex, 4, 4);
        }
        nfa.appendRun(dash, 1, 1);
        nfa.appendRun(hex, 12, 12);
        break;
      }
      default:
        if (s.first == s.tail) {
          nfa.appendRun(s.tail, s.min_len, s.max_len);
        } else {
          nfa.appendRun(s.first, 1, 1);
          nfa.appendRun(s.tail, s.min_len - 1,
                        s.max_len == kUnbounded ? kUnbounded : s.max_len - 1);
        }
        break;
    }
  }
  return nfa;
}

Template::Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;
Template::~Template() = default;

std::optional<Template> Template::compile(std::string_view text, std::string* error) {
  Template t;
  t.impl_ = std::make_unique<Impl>();
  Impl& im = *t.impl_;
  im.text = std::string(text);
  constexpr std::string_view kGlob = "glob:";
  if (text.substr(0, kGlob.size()) == kGlob) {
    const std::string_view pat = text.substr(kGlob.size());
    if (pat.empty()) {
      if (error != nullptr) *error = "empty glob pattern at offset " + std::to_string(kGlob.size());
      return std::nullopt;
    }
    im.glob = true;
    im.glob_pattern = parseGlob(pat);
    im.prefix = std::string(pat.substr(0, pat.find_first_of("*?[\\")));
    return t;
  }
  TemplateParser parser(text, im);
  if (!parser.run(error)) return std::nullopt;
  finishCompile(im);
  return t;
}

bool Template::isGlob() const { return impl_->glob; }
std::string_view Template::literalPrefix() const { return impl_->prefix; }
const std::vector<std::string>& Template::captureNames() const { return impl_->names; }
const std::string& Template::text() const { return impl_->text; }

bool Template::matches(std::string_view key, std::vector<Capture>* caps) const {
  const Impl& im = *impl_;
  if (caps != nullptr) caps->clear();
  if (im.glob) return im.glob_pattern.matches(key);
  if (key.size() < im.prefix.size() ||
      std::memcmp(key.data(), im.prefix.data(), im.prefix.size()) != 0) {
    return false;
  }
  return im.matchFrom(key, im.firstSegmentAfterPrefix(), im.prefix.size(), caps);
}

bool Template::overlaps(const Template& other) const {
  // Every key of each starts with its literal prefix, so one prefix must extend the other.
  const std::string_view a = literalPrefix();
  const std::string_view b = other.literalPrefix();
  const size_t common = std::min(a.size(), b.size());
  if (a.substr(0, common) != b.substr(0, common)) return false;
  return nfaIntersect(impl_->buildNfa(), other.impl_->buildNfa());
}

// ---------------------------------------------------------------------------------------------
// Matcher

struct Matcher::Impl {
  // A radix-tree node. The edge into a node is one selecting byte (a bit in the parent's
  // `kids`) followed by `label`. A node's children are consecutive in `nodes`, so the child for
  // byte b is child_base + (number of kids bits below b): no search, no branch on position.
  // A node is terminal when some templates have exactly the path's bytes as literal prefix; it
  // keeps only its highest-priority group, since a lower group at one node can never win.
  struct Node {
    std::array<uint64_t, 4> kids{};
    std::array<uint16_t, 4> rank{};  // kids bits in the words before each word
    uint32_t child_base = 0;
    uint32_t label_off = 0;
    uint32_t label_len = 0;
    uint32_t group_off = 0;
    uint32_t group_len = 0;  // 0: not terminal
    int top_priority = 0;
  };
  struct GroupEntry {
    const Template::Impl* tmpl = nullptr;
    uint32_t entry = 0;
  };
  struct GlobRef {
    int priority = 0;
    uint32_t entry = 0;
    std::string_view prefix;
    const Template::Impl* tmpl = nullptr;
  };

  std::vector<Entry> entries;
  std::vector<Node> nodes;
  std::string labels;
  std::vector<GroupEntry> group_entries;  // ascending entry index within a group
  std::vector<GlobRef> globs;             // by priority desc, prefix length desc, index asc
};

namespace {

// Build-time trie (one node per prefix byte) that flattens into the radix tree.
struct BuildTrie {
  struct TNode {
    std::map<uint8_t, uint32_t> kids;
    std::vector<Matcher::Impl::GroupEntry> entries;  // ascending
  };
  std::vector<TNode> t{TNode{}};

  void insert(std::string_view prefix, Matcher::Impl::GroupEntry entry) {
    uint32_t cur = 0;
    for (char c : prefix) {
      const auto b = static_cast<uint8_t>(c);
      auto it = t[cur].kids.find(b);
      if (it == t[cur].kids.end()) {
        t.emplace_back();
        const auto id = static_cast<uint32_t>(t.size() - 1);
        t[cur].kids.emplace(b, id);
        cur = id;
      } else {
        cur = it->second;
      }
    }
    t[cur].entries.push_back(entry);
  }

  // Fills m.nodes[at] from trie node `id` (reached through `label`), then its subtree.
  void fill(Matcher::Impl& m, uint32_t at, uint32_t id, const std::string& label) {
    {
      Matcher::Impl::Node& nd = m.nodes[at];
      nd.label_off = static_cast<uint32_t>(m.labels.size());
      nd.label_len = static_cast<uint32_t>(label.size());
      m.labels += label;
      const auto& es = t[id].entries;
      if (!es.empty()) {
        int top = std::numeric_limits<int>::min();
        for (const auto& e : es) top = std::max(top, m.entries[e.entry].priority);
        nd.top_priority = top;
        nd.group_off = static_cast<uint32_t>(m.group_entries.size());
        for (const auto& e : es) {
          if (m.entries[e.entry].priority == top) m.group_entries.push_back(e);
        }
        nd.group_len = static_cast<uint32_t>(m.group_entries.size()) - nd.group_off;
      }
    }
    // Children, path-compressed: single-child, non-terminal chains become one label.
    std::vector<std::pair<uint32_t, std::string>> kids;
    uint16_t count = 0;
    Matcher::Impl::Node& nd = m.nodes[at];
    for (const auto& [b, kid] : t[id].kids) {
      nd.kids[b >> 6] |= uint64_t{1} << (b & 63);
      std::string sub;
      uint32_t cur = kid;
      while (t[cur].entries.empty() && t[cur].kids.size() == 1) {
        sub.push_back(static_cast<char>(t[cur].kids.begin()->first));
        cur = t[cur].kids.begin()->second;
      }
      kids.emplace_back(cur, std::move(sub));
    }
    for (size_t w = 0; w < 4; ++w) {
      nd.rank[w] = count;
      count = static_cast<uint16_t>(count + std::popcount(nd.kids[w]));
    }
    const auto base = static_cast<uint32_t>(m.nodes.size());
    nd.child_base = base;
    m.nodes.resize(m.nodes.size() + kids.size());  // invalidates nd
    for (size_t j = 0; j < kids.size(); ++j) {
      fill(m, base + static_cast<uint32_t>(j), kids[j].first, kids[j].second);
    }
  }
};

}  // namespace

Matcher::Matcher() = default;
Matcher::Matcher(Matcher&&) noexcept = default;
Matcher& Matcher::operator=(Matcher&&) noexcept = default;
Matcher::~Matcher() = default;

std::optional<Matcher> Matcher::build(std::vector<Entry> entries, std::vector<Clash>* clashes) {
  // Clashes: a group is (priority, literal prefix bytes); only entries of one group can ever
  // compete for one key (equal prefix lengths of prefixes of one key are equal prefixes).
  std::map<std::pair<int, std::string_view>, std::vector<size_t>> groups;
  for (size_t i = 0; i < entries.size(); ++i) {
    groups[{entries[i].priority, entries[i].tmpl.literalPrefix()}].push_back(i);
  }
  std::vector<std::optional<Nfa>> nfas(entries.size());
  auto nfaOf = [&](size_t i) -> const Nfa& {
    if (!nfas[i]) nfas[i] = entries[i].tmpl.impl_->buildNfa();
    return *nfas[i];
  };
  std::vector<Clash> found;
  for (const auto& [key, members] : groups) {
    for (size_t x = 0; x < members.size(); ++x) {
      for (size_t y = x + 1; y < members.size(); ++y) {
        if (nfaIntersect(nfaOf(members[x]), nfaOf(members[y]))) {
          found.push_back({members[x], members[y]});
        }
      }
    }
  }
  if (!found.empty()) {
    std::sort(found.begin(), found.end(), [](const Clash& l, const Clash& r) {
      return std::tie(l.a, l.b) < std::tie(r.a, r.b);
    });
    if (clashes != nullptr) clashes->insert(clashes->end(), found.begin(), found.end());
    return std::nullopt;
  }

  Matcher m;
  m.impl_ = std::make_unique<Impl>();
  Impl& im = *m.impl_;
  im.entries = std::move(entries);
  BuildTrie trie;
  for (size_t i = 0; i < im.entries.size(); ++i) {
    const Template& t = im.entries[i].tmpl;
    if (t.isGlob()) {
      im.globs.push_back(
          {im.entries[i].priority, static_cast<uint32_t>(i), t.literalPrefix(), t.impl_.get()});
    } else {
      trie.insert(t.literalPrefix(), {t.impl_.get(), static_cast<uint32_t>(i)});
    }
  }
  im.nodes.resize(1);
  trie.fill(im, 0, 0, "");
  std::sort(im.globs.begin(), im.globs.end(), [](const Impl::GlobRef& l, const Impl::GlobRef& r) {
    if (l.priority != r.priority) return l.priority > r.priority;
    if (l.prefix.size() != r.prefix.size()) return l.prefix.size() > r.prefix.size();
    return l.entry < r.entry;
  });
  return m;
}

MatchResult Matcher::match(std::string_view key, std::vector<Capture>* caps) const {
  if (caps != nullptr) caps->clear();
  const Impl& m = *impl_;
  const auto* k = reinterpret_cast<const uint8_t*>(key.data());
  const size_t n = key.size();

  // 1. Walk the radix tree: the best template group is the highest priority, then the deepest.
  const Impl::Node* best = nullptr;
  size_t best_len = 0;
  const Impl::Node* nd = m.nodes.data();
  size_t pos = 0;
  while (true) {
    if (nd->group_len != 0 && (best == nullptr || nd->top_priority >= best->top_priority)) {
      best = nd;
      best_len = pos;
    }
    if (pos == n) break;
    const uint8_t b = k[pos];
    const uint64_t word = nd->kids[b >> 6];
    const uint64_t bit = uint64_t{1} << (b & 63);
    if ((word & bit) == 0) break;
    nd = &m.nodes[nd->child_base + nd->rank[b >> 6] +
                  static_cast<uint32_t>(std::popcount(word & (bit - 1)))];
    ++pos;
    if (n - pos < nd->label_len ||
        !bytesEqual(k + pos, m.labels.data() + nd->label_off, nd->label_len)) {
      break;
    }
    pos += nd->label_len;
  }

  // 2. Globs in precedence order, down to the template group's precedence: the first one that
  // matches is the best glob candidate (and the lowest index of its group).
  const Impl::GlobRef* glob = nullptr;
  for (const auto& g : m.globs) {
    if (best != nullptr && (g.priority < best->top_priority ||
                            (g.priority == best->top_priority && g.prefix.size() < best_len))) {
      break;
    }
    if (g.prefix.size() <= n && bytesEqual(k, g.prefix.data(), g.prefix.size()) &&
        g.tmpl->glob_pattern.matches(key)) {
      glob = &g;
      break;
    }
  }
  if (glob != nullptr &&
      (best == nullptr || glob->priority > best->top_priority || glob->prefix.size() > best_len)) {
    return {static_cast<int32_t>(glob->entry), false};
  }
  if (best == nullptr) return {};

  // 3. The template group (plus the glob when it has the same precedence).
  const Impl::GroupEntry* group = m.group_entries.data() + best->group_off;
  for (uint32_t i = 0; i < best->group_len; ++i) {
    const Impl::GroupEntry& ge = group[i];
    if (glob != nullptr && glob->entry < ge.entry) break;
    const Template::Impl& t = *ge.tmpl;
    if (t.matchFrom(key, t.firstSegmentAfterPrefix(), best_len, caps)) {
      return {static_cast<int32_t>(ge.entry), false};
    }
  }
  if (caps != nullptr) caps->clear();
  if (glob != nullptr) return {static_cast<int32_t>(glob->entry), false};
  return {static_cast<int32_t>(group[0].entry), true};
}

size_t Matcher::size() const { return impl_->entries.size(); }
const Template& Matcher::tmpl(size_t entry) const { return impl_->entries[entry].tmpl; }

}  // namespace corral::policies
