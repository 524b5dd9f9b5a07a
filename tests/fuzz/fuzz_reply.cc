// libFuzzer target for codec::ReplyParser.
//
//   input bytes ──> drive(whole) ───────┐
//               ──> drive(split at k) ──┼──> same frames? ──> invariants on every call
//               ──> drive(1 byte/call) ─┘     (short inputs only)
//
// drive() plays an upstream connection: bytes arrive in pieces into a buffer that is re-copied
// to a new address before every call, the parser runs until it wants more, and each framed reply
// is dropped. Every frame must also parse alone to the same length and type. Each input runs
// under the default limits and under max_depth = 4.
//
// The frames are also compared with reference(): a plain recursive framer that sees the whole
// input at once (no resume hints, no fast paths), written from the RESP3 rules.
#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/codec/resp.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using corral::codec::Limits;
using corral::codec::ParseError;
using corral::codec::ParseStatus;
using corral::codec::ReplyParser;
using corral::codec::ReplyResult;
using corral::codec::ReplyType;
using corral::fuzz::Ref;
using corral::fuzz::refNumber;

struct Event {
  ParseStatus status;
  ParseError error;
  size_t consumed;
  ReplyType type;
  bool operator==(const Event&) const = default;
};

// Expected top-level type for the first byte of a non-attribute value.
bool typeMatchesByte(ReplyType t, char c) {
  static const char kBytes[] = "+-:$*_#,(!=%~|>";
  const auto i = static_cast<size_t>(t);
  return i < sizeof(kBytes) - 1 && kBytes[i] == c;
}

std::vector<Event> drive(const uint8_t* input, size_t size, size_t first, size_t step,
                         const Limits& limits) {
  ReplyParser parser(limits);
  std::string buf;
  std::vector<Event> events;
  size_t fed = 0;
  size_t pieces = 0;
  for (;;) {
    for (;;) {
      std::unique_ptr<char[]> copy(new char[buf.size() + 1]);
      std::memcpy(copy.get(), buf.data(), buf.size());
      const char* data = copy.get();
      const size_t len = buf.size();
      const ReplyResult r = parser.parse(data, len);
      FUZZ_CHECK(r.consumed <= len);
      if (r.status == ParseStatus::kIncomplete) {
        FUZZ_CHECK(r.consumed == 0 && r.error == ParseError::kNone);
        FUZZ_CHECK(len == 0 || parser.midFrame());
        break;
      }
      FUZZ_CHECK(!parser.midFrame());
      if (r.status == ParseStatus::kError) {
        FUZZ_CHECK(r.consumed == 0 && r.error != ParseError::kNone);
        events.push_back({r.status, r.error, 0, ReplyType::kSimpleString});
        return events;
      }
      FUZZ_CHECK(r.status == ParseStatus::kComplete && r.error == ParseError::kNone);
      FUZZ_CHECK(r.consumed >= 3 && data[r.consumed - 2] == '\r' && data[r.consumed - 1] == '\n');
      FUZZ_CHECK(r.type != ReplyType::kAttribute);
      if (data[0] != '|') FUZZ_CHECK(typeMatchesByte(r.type, data[0]));
      // The frame alone (exactly its bytes) is one complete reply of the same type.
      ReplyParser alone(limits);
      std::unique_ptr<char[]> frame(new char[r.consumed]);
      std::memcpy(frame.get(), data, r.consumed);
      const ReplyResult r2 = alone.parse(frame.get(), r.consumed);
      FUZZ_CHECK(r2.status == ParseStatus::kComplete && r2.consumed == r.consumed);
      FUZZ_CHECK(r2.type == r.type);
      events.push_back({r.status, r.error, r.consumed, r.type});
      buf.erase(0, r.consumed);
    }
    if (fed == size) break;
    // The first piece may be empty (a call on no bytes); later ones never are.
    const size_t n = std::min(pieces++ == 0 ? first : std::max<size_t>(step, 1), size - fed);
    buf.append(reinterpret_cast<const char*>(input) + fed, n);
    fed += n;
  }
  events.push_back(
      {ParseStatus::kIncomplete, ParseError::kNone, buf.size(), ReplyType::kSimpleString});
  return events;
}

// --- reference model ----------------------------------------------------------------------

struct RefResult {
  Ref status;
  ParseError error;
  size_t end;
  ReplyType type;
};

ReplyType typeOf(char c) {
  static const char kBytes[] = "+-:$*_#,(!=%~|>";
  return static_cast<ReplyType>(std::strchr(kBytes, c) - kBytes);
}

// Frames the value at s[p], `depth` aggregates deep.
RefResult refValue(std::string_view s, size_t p, uint32_t depth, const Limits& limits) {
  const RefResult more{Ref::kMore, ParseError::kNone, 0, ReplyType::kSimpleString};
  auto bad = [](ParseError e) { return RefResult{Ref::kBad, e, 0, ReplyType::kSimpleString}; };
  auto ok = [](size_t end, ReplyType t) { return RefResult{Ref::kOk, ParseError::kNone, end, t}; };
  // A fixed token: complete, a prefix of it so far, or wrong.
  auto token = [&](std::string_view tok) -> Ref {
    const std::string_view have = s.substr(p, tok.size());
    if (have != tok.substr(0, have.size())) return Ref::kBad;
    return have.size() < tok.size() ? Ref::kMore : Ref::kOk;
  };
top:  // an attribute loops back here for the value it annotates
  if (p == s.size()) return more;
  const char t = s[p];
  int64_t n = 0;
  size_t next = 0;
  switch (t) {
    case '+':
    case '-':
    case ',':
    case '(': {
      const size_t crlf = s.find("\r\n", p + 1);
      if (crlf == std::string_view::npos) return more;
      return ok(crlf + 2, typeOf(t));
    }
    case ':':
    case '$':
    case '!':
    case '=':
    case '*':
    case '%':
    case '~':
    case '>':
    case '|':
      switch (refNumber(s, p + 1, true, n, next)) {
        case Ref::kMore:
          return more;
        case Ref::kBad:
          return bad(ParseError::kBadReplyLength);
        case Ref::kOk:
          break;
      }
      break;
    case '_': {
      const Ref r = token("_\r\n");
      if (r != Ref::kOk) return r == Ref::kMore ? more : bad(ParseError::kBadReplyLength);
      return ok(p + 3, ReplyType::kNull);
    }
    case '#': {
      const Ref r = s.substr(p, 2) == "#f" ? token("#f\r\n") : token("#t\r\n");
      if (r != Ref::kOk) return r == Ref::kMore ? more : bad(ParseError::kBadReplyLength);
      return ok(p + 4, ReplyType::kBoolean);
    }
    default:
      return bad(ParseError::kBadReplyType);
  }
  if (t == ':') return ok(next, ReplyType::kInteger);
  if (n < 0) {
    if (n == -1 && (t == '$' || t == '*')) return ok(next, typeOf(t));
    return bad(ParseError::kBadReplyLength);
  }
  if (t == '$' || t == '!' || t == '=') {
    const uint64_t end = next + static_cast<uint64_t>(n) + 2;
    if (end > s.size()) return more;
    if (s.substr(end - 2, 2) != "\r\n") return bad(ParseError::kBadReplyLength);
    return ok(end, typeOf(t));
  }
  const bool pairs = t == '%' || t == '|';
  if (pairs && n > INT64_MAX / 2) return bad(ParseError::kBadReplyLength);
  const int64_t count = pairs ? 2 * n : n;
  if (count > 0 && depth >= limits.max_depth) return bad(ParseError::kTooDeep);
  size_t q = next;
  for (int64_t i = 0; i < count; ++i) {
    const RefResult r = refValue(s, q, depth + 1, limits);
    if (r.status != Ref::kOk) return r;
    q = r.end;
  }
  // An attribute is followed by the value it annotates, at the same depth; they are one frame.
  if (t == '|') {
    p = q;
    goto top;  // a loop, not recursion: attributes may be chained many times
  }
  return ok(q, typeOf(t));
}

std::vector<Event> reference(std::string_view s, const Limits& limits) {
  std::vector<Event> events;
  size_t pos = 0;
  for (;;) {
    const RefResult r = refValue(s, pos, 0, limits);
    if (r.status == Ref::kMore) {
      events.push_back(
          {ParseStatus::kIncomplete, ParseError::kNone, s.size() - pos, ReplyType::kSimpleString});
      return events;
    }
    if (r.status == Ref::kBad) {
      events.push_back({ParseStatus::kError, r.error, 0, ReplyType::kSimpleString});
      return events;
    }
    events.push_back({ParseStatus::kComplete, ParseError::kNone, r.end - pos, r.type});
    pos = r.end;
  }
}

void runWith(const uint8_t* data, size_t size, const Limits& limits) {
  corral::fuzz::checkSplits(data, size, limits, drive, reference);
}

}  // namespace

// The entry point libFuzzer calls; its name is fixed.
extern "C" int LLVMFuzzerTestOneInput(  // NOLINT(readability-identifier-naming)
    const uint8_t* data, size_t size) {
  if (size > 1 << 16) return -1;
  runWith(data, size, Limits{});
  Limits shallow;
  shallow.max_depth = 4;
  runWith(data, size, shallow);
  return 0;
}
