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
// Files: this one parses (templates and globs) and compiles; template_match.cc matches,
// template_overlap.cc builds the automata of overlaps(), matcher.cc is the Matcher; what they
// share is in template_internal.h.
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
#include <string>
#include <utility>

#include "policies/template_internal.h"

namespace corral::policies {
using namespace tmpl;  // NOLINT(google-build-using-namespace): the template files' own helpers

namespace {

bool isNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isNameChar(char c) { return isNameStart(c) || (c >= '0' && c <= '9'); }

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
    switch (s.kind) {
      case Kind::kLiteral:
        op.mode = OpMode::kLiteral;
        break;
      case Kind::kUuid:
      case Kind::kEnum:
      case Kind::kRest:
        op.mode = OpMode::kOther;
        break;
      default:
        op.mode = s.min_len == s.max_len ? OpMode::kFixed : OpMode::kScan;
        break;
    }
    op.check_value = hasValueCheck(s.kind);
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
  // The most common shape, a literal prefix and then one class placeholder to the end of the
  // key (user:<id:u64>, sess:<sid:hex{32,64}>): Matcher::match checks it without matchFast.
  const size_t s0 = im.firstSegmentAfterPrefix();
  if (im.ops.size() == s0 + 1 &&
      (im.ops[s0].mode == OpMode::kFixed || im.ops[s0].mode == OpMode::kScan)) {
    im.tail_class = static_cast<int32_t>(s0);
  }
}

}  // namespace

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

}  // namespace corral::policies
