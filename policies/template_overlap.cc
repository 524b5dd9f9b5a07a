// Template::overlaps: each template (or glob) as a small NFA over bytes, and the product of two
// automata searched for a common accepted string. Build-time only: Matcher::build uses it to
// refuse ambiguous policies; no request ever gets here.
#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

#include "policies/template.h"
#include "policies/template_internal.h"

namespace corral::policies {

namespace tmpl {

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

}  // namespace tmpl

using namespace tmpl;  // NOLINT(google-build-using-namespace): the template files' own helpers

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

bool Template::overlaps(const Template& other) const {
  // Every key of each starts with its literal prefix, so one prefix must extend the other.
  const std::string_view a = literalPrefix();
  const std::string_view b = other.literalPrefix();
  const size_t common = std::min(a.size(), b.size());
  if (a.substr(0, common) != b.substr(0, common)) return false;
  return nfaIntersect(impl_->buildNfa(), other.impl_->buildNfa());
}

}  // namespace corral::policies
