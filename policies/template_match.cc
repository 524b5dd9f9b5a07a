// Template::matches: one forward pass when every segment is deterministic, else the
// reachability DP (see template.cc for the capture policy and the limits).
#include <algorithm>
#include <cstring>
#include <string_view>
#include <vector>

#include "policies/template.h"
#include "policies/template_internal.h"

namespace corral::policies {
using namespace tmpl;  // NOLINT(google-build-using-namespace): the template files' own helpers

namespace {

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

}  // namespace

bool tmpl::valueOk(Kind kind, const uint8_t* p, size_t len) {
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

namespace {

inline bool bitGet(const uint64_t* row, size_t i) { return ((row[i >> 6] >> (i & 63)) & 1) != 0; }
inline void bitSet(uint64_t* row, size_t i) { row[i >> 6] |= uint64_t{1} << (i & 63); }

}  // namespace

size_t Template::Impl::captureIndexBefore(size_t s0) const {
  size_t k = 0;
  for (size_t i = 0; i < s0; ++i) k += segs[i].kind == Kind::kLiteral ? 0 : 1;
  return k;
}

size_t Template::Impl::otherValue(const Op& op, const uint8_t* k, size_t n, size_t p) const {
  switch (op.kind) {
    case Kind::kUuid:
      return n - p >= kUuidBytes && isUuidAt(k + p) ? kUuidBytes : kNoValue;
    case Kind::kEnum: {
      // Deterministic: at most one alternative is followed by a byte that can start the next
      // segment (or by the end of the key, when last).
      const Segment& s = segs[op.seg];
      for (const auto& a : s.alts) {
        if (n - p < a.size() || !bytesEqual(k + p, a.data(), a.size())) continue;
        const size_t e = p + a.size();
        if (op.last ? e == n : (e < n && s.follow.has(k[e]))) return a.size();
      }
      return kNoValue;
    }
    case Kind::kRest: {
      const size_t len = n - p;
      return len < op.min_len || len > op.max_len ? kNoValue : len;
    }
    default:
      return kNoValue;  // not an OpMode::kOther kind
  }
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

}  // namespace corral::policies
