// Names and paths of fills (contracts in fill.h): the internal keys' names, keyed digests of the
// data key under the deployment's secret; origin paths with the key's captures encoded so that
// no key changes the path's structure.
#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policies/fill.h"
#include "policies/siphash.h"

namespace corral::policies {

namespace {

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

void percentEncode(std::string_view v, std::string& out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if (unreserved(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
}

// Walks a path template: literal runs go to lit(text), "<name>" to ph(name), which returns
// false to stop. A '<' without a closing '>' is literal text. Returns false when ph did.
template <class Lit, class Ph>
bool walkPath(std::string_view t, Lit&& lit, Ph&& ph) {
  size_t i = 0;
  while (i < t.size()) {
    const size_t open = t.find('<', i);
    const size_t close = open == std::string_view::npos ? open : t.find('>', open + 1);
    if (close == std::string_view::npos) {
      lit(t.substr(i));
      return true;
    }
    lit(t.substr(i, open - i));
    if (!ph(t.substr(open + 1, close - open - 1))) return false;
    i = close + 1;
  }
  return true;
}

}  // namespace

namespace {

// "<prefix><kind>:{tag}:<digest>" (see fill.h for the slot rule).
void appendFillKey(std::string& out, std::string_view kind, const SipKey& names,
                   std::string_view key) {
  out.append(kInternalPrefix).append(kind).append(":{");
  const size_t open = key.find('{');
  const size_t close = open == std::string_view::npos ? open : key.find('}', open + 1);
  if (close != std::string_view::npos && close > open + 1) {
    // The Redis rule: the tag is between the first '{' and the first '}' after it. Repeating
    // it in front keeps the slot; the digest of the whole key keeps the fill keys distinct.
    out.append(key.substr(open + 1, close - open - 1));
  } else {
    // No tag: Redis hashes the whole key, so the whole key becomes the tag. Exact only when the
    // key has no brace at all (see fill.h for the keys that lose their slot).
    out.append(key);
  }
  out.append("}:");
  static constexpr char kHex[] = "0123456789abcdef";
  const uint64_t d = sipHash24(names, key);
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHex[(d >> shift) & 0xf]);
}

// Fixed keys that derive a deployment's digest keys (lease, negative entry, validator; two halves
// each) from its secret. Any fixed values do: the secret is what must be unpredictable. Changing
// them renames every internal key (a deployment's corrals must all run the same scheme).
constexpr SipKey kDeriveLease0{0x6c6c69663a6c6172ULL, 0x0000657361656c3aULL};
constexpr SipKey kDeriveLease1{0x6c6c69663a6c6172ULL, 0x0001657361656c3aULL};
constexpr SipKey kDeriveNeg0{0x6c6c69663a6c6172ULL, 0x000000000067656eULL};
constexpr SipKey kDeriveNeg1{0x6c6c69663a6c6172ULL, 0x000100000067656eULL};
constexpr SipKey kDeriveMeta0{0x6c6c69663a6c6172ULL, 0x000000006c61763aULL};
constexpr SipKey kDeriveMeta1{0x6c6c69663a6c6172ULL, 0x000100006c61763aULL};

}  // namespace

FillKeyNames::FillKeyNames(std::string_view secret)
    : lease_{sipHash24(kDeriveLease0, secret), sipHash24(kDeriveLease1, secret)},
      negative_{sipHash24(kDeriveNeg0, secret), sipHash24(kDeriveNeg1, secret)},
      meta_{sipHash24(kDeriveMeta0, secret), sipHash24(kDeriveMeta1, secret)} {}

const FillKeyNames& FillKeyNames::processDefault() {
  static const FillKeyNames kNames = [] {
    FillKeyNames n;
    n.lease_ = randomSipKey();
    n.negative_ = randomSipKey();
    n.meta_ = randomSipKey();
    return n;
  }();
  return kNames;
}

FillKeys FillKeyNames::keys(std::string_view key) const {
  FillKeys k;
  k.data = std::string(key);
  appendLease(k.lease, key);
  appendNegative(k.negative, key);
  appendMeta(k.meta, key);
  return k;
}

void FillKeyNames::appendLease(std::string& out, std::string_view key) const {
  appendFillKey(out, "lease", lease_, key);
}

void FillKeyNames::appendNegative(std::string& out, std::string_view key) const {
  appendFillKey(out, "neg", negative_, key);
}

std::string newLeaseToken(Random& random) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string t;
  t.reserve(32);
  for (int i = 0; i < 4; ++i) {
    double u = random.uniform();
    if (!(u >= 0.0 && u < 1.0)) u = 0.0;  // a broken Random must not overflow the cast
    auto v = static_cast<uint32_t>(u * 4294967296.0);
    for (int s = 28; s >= 0; s -= 4) t.push_back(kHex[(v >> s) & 0xF]);
  }
  return t;
}

void FillKeyNames::appendMeta(std::string& out, std::string_view key) const {
  appendFillKey(out, "val", meta_, key);
}

namespace {

// Whether out[s, e) is a dot-segment ("." or ".."): "this" or "parent" directory to every URL
// resolver and to most servers.
bool isDotSegment(std::string_view out, size_t s, size_t e) {
  return (e - s == 1 && out[s] == '.') || (e - s == 2 && out[s] == '.' && out[s + 1] == '.');
}

}  // namespace

std::optional<std::string> buildFillPath(std::string_view path_template,
                                         std::span<const Capture> caps) {
  std::string out;
  out.reserve(path_template.size() + 16);
  // Where captures landed in out, to tell a dot the key brought from one the operator wrote.
  std::vector<std::pair<size_t, size_t>> from_key;
  const bool ok = walkPath(
      path_template, [&](std::string_view lit) { out.append(lit); },
      [&](std::string_view name) {
        for (const Capture& c : caps) {
          if (c.name != name) continue;
          // An empty value would change the path's shape ("/v1/users/" is the collection).
          if (c.value.empty()) return false;
          const size_t start = out.size();
          percentEncode(c.value, out);
          from_key.emplace_back(start, out.size());
          return true;
        }
        return false;
      });
  if (!ok) return std::nullopt;
  // Every byte of a capture that could change the path's structure ('/', '?', '#', '%', ...) is
  // percent-encoded already; the dots of a dot-segment are not (they are unreserved), so a key
  // "user:.." would fetch the parent of its resource. A path segment that is "." or ".." and
  // holds a dot from the key has its dots encoded (%2E): to the origin it is a name, not a move.
  const size_t path_end = std::min(out.find('?'), out.find('#'));
  const size_t end = path_end == std::string::npos ? out.size() : path_end;
  std::string fixed;
  size_t copied = 0;
  for (size_t s = 0; s <= end;) {
    size_t e = out.find('/', s);
    if (e == std::string::npos || e > end) e = end;
    bool keyed = false;
    for (const auto& [ks, ke] : from_key) keyed |= ks < e && s < ke;
    if (keyed && isDotSegment(out, s, e)) {
      fixed.append(out, copied, s - copied);
      for (size_t i = s; i < e; ++i) fixed.append("%2E");
      copied = e;
    }
    s = e + 1;
  }
  if (copied == 0) return out;
  fixed.append(out, copied, std::string::npos);
  return fixed;
}

bool fillPathValid(std::string_view path_template, const std::vector<std::string>& capture_names,
                   std::string* missing) {
  return walkPath(
      path_template, [](std::string_view) {},
      [&](std::string_view name) {
        if (std::find(capture_names.begin(), capture_names.end(), name) != capture_names.end()) {
          return true;
        }
        if (missing != nullptr) *missing = std::string(name);
        return false;
      });
}

}  // namespace corral::policies
