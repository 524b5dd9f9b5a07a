// libFuzzer target for codec::ReplyParser.
//
//   input bytes ──> drive(whole) ───────┐
//               ──> drive(split at k) ──┼──> same frames? ──> invariants on every call
//               ──> drive(1 byte/call) ─┘     (short inputs only)
//
// drive() plays an upstream connection: bytes arrive in pieces into a buffer that is re-copied
// to a new address before every call, the parser runs until it wants more, and each framed reply
// is dropped. Every frame must also parse alone to the same length and type. Each input runs
// under the default limits and under max_reply_bytes = 48, which reaches the discard path.
//
// The frames are also compared with reference(): a plain framer that sees the whole input at
// once (no resume hints, no fast paths) and keeps an explicit stack of open aggregates, where
// the parser only counts the elements it still expects, written from the RESP3 rules.
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
  size_t dropped = 0;
  bool discarding = false;
  for (;;) {
    for (;;) {
      std::unique_ptr<char[]> copy(new char[buf.size() + 1]);
      std::memcpy(copy.get(), buf.data(), buf.size());
      const char* data = copy.get();
      const size_t len = buf.size();
      const ReplyResult r = parser.parse(data, len);
      FUZZ_CHECK(r.consumed <= len);
      if (r.status == ParseStatus::kIncomplete) {
        // Only a reply being discarded drops bytes without a frame.
        FUZZ_CHECK(r.error == ParseError::kNone && (discarding || r.consumed == 0));
        FUZZ_CHECK(len == 0 || parser.midFrame());
        dropped += r.consumed;
        buf.erase(0, r.consumed);
        break;
      }
      if (r.status == ParseStatus::kError) {
        FUZZ_CHECK(!parser.midFrame());
        FUZZ_CHECK(r.consumed == 0 && r.error != ParseError::kNone);
        events.push_back({r.status, r.error, 0, ReplyType::kSimpleString});
        return events;
      }
      Event e{r.status, r.error, r.consumed, r.type};
      if (r.status == ParseStatus::kOversize) {
        FUZZ_CHECK(!discarding && r.error == ParseError::kReplyTooLarge && parser.midFrame());
        FUZZ_CHECK(r.consumed <= limits.max_reply_bytes);
        discarding = true;
        dropped = 0;
      } else if (r.status == ParseStatus::kDiscarded) {
        FUZZ_CHECK(discarding && r.error == ParseError::kNone && !parser.midFrame());
        FUZZ_CHECK(r.consumed >= 1 && data[r.consumed - 1] == '\n');
        discarding = false;
        e.consumed = dropped + r.consumed;
      } else {
        FUZZ_CHECK(r.status == ParseStatus::kComplete && r.error == ParseError::kNone);
        FUZZ_CHECK(!discarding && !parser.midFrame());
        FUZZ_CHECK(r.consumed >= 3 && data[r.consumed - 2] == '\r' && data[r.consumed - 1] == '\n');
        FUZZ_CHECK(r.consumed <= limits.max_reply_bytes);
        FUZZ_CHECK(r.type != ReplyType::kAttribute);
        if (data[0] != '|') FUZZ_CHECK(typeMatchesByte(r.type, data[0]));
        // The frame alone (exactly its bytes) is one complete reply of the same type.
        ReplyParser alone(limits);
        std::unique_ptr<char[]> frame(new char[r.consumed]);
        std::memcpy(frame.get(), data, r.consumed);
        const ReplyResult r2 = alone.parse(frame.get(), r.consumed);
        FUZZ_CHECK(r2.status == ParseStatus::kComplete && r2.consumed == r.consumed);
        FUZZ_CHECK(r2.type == r.type);
      }
      events.push_back(e);
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

ReplyType typeOf(char c) {
  static const char kBytes[] = "+-:$*_#,(!=%~|>";
  return static_cast<ReplyType>(std::strchr(kBytes, c) - kBytes);
}

// How reference() stopped on one reply.
struct RefReply {
  Ref status;        // kOk: framed; kMore: needs more input; kBad: framing error
  ParseError error;  // kBad
  size_t end;        // kOk: just past the reply
  ReplyType type;    // the reply's type (kSimpleString until known)
  size_t over_at;    // the start of the element that ends past max_reply_bytes, or npos
  ReplyType type_at_over;
  size_t resume;  // kMore while discarding: where the parser keeps bytes from (s.size() if none)
};

// Frames the reply that starts at s[f], with an explicit stack of open aggregates.
RefReply refReply(std::string_view s, size_t f, const Limits& limits) {
  constexpr size_t npos = std::string_view::npos;
  struct Level {
    uint64_t left;  // elements this aggregate still holds (saturating, like the parser)
    bool attr;      // an attribute: when done, the value it annotates follows at the same level
  };
  std::vector<Level> stack;
  RefReply out{Ref::kMore, ParseError::kNone,        0,       ReplyType::kSimpleString,
               npos,       ReplyType::kSimpleString, s.size()};
  bool typed = false;
  // An element [at, end) ending past the limit makes the reply too large, from `at` on.
  auto check = [&](size_t at, uint64_t end) {
    if (out.over_at == npos && end - f > limits.max_reply_bytes) {
      out.over_at = at;
      out.type_at_over = out.type;
    }
  };
  auto bad = [&](ParseError e) {
    out.status = Ref::kBad;
    out.error = e;
    return out;
  };
  // Incomplete: a discard keeps a partial header, drops a partial line or payload.
  auto more = [&](size_t at, bool header) {
    out.status = Ref::kMore;
    out.resume = header ? at : s.size();
    return out;
  };
  size_t p = f;
  for (;;) {
    if (p == s.size()) return more(p, true);
    const char t = s[p];
    if (std::strchr("+-:$*_#,(!=%~|>", t) == nullptr || t == '\0') {
      return bad(ParseError::kBadReplyType);
    }
    if (!typed && stack.empty() && t != '|') {
      out.type = typeOf(t);
      typed = true;
    }
    bool complete = true;  // this element ends here (aggregates with elements do not)
    if (t == '+' || t == '-' || t == ',' || t == '(') {
      const size_t crlf = s.find("\r\n", p + 1);
      if (crlf == npos) {
        // Without its CRLF the line ends at s.size() + 1 at the earliest.
        check(p, s.size() + 1);
        return more(p, out.over_at == npos);
      }
      check(p, crlf + 2);
      p = crlf + 2;
    } else if (t == '_' || t == '#') {
      const std::string_view tok =
          t == '_' ? "_\r\n" : (s.substr(p, 2) == "#f" ? "#f\r\n" : "#t\r\n");
      const std::string_view have = s.substr(p, tok.size());
      if (have != tok.substr(0, have.size())) return bad(ParseError::kBadReplyLength);
      if (have.size() < tok.size()) return more(p, true);
      check(p, p + tok.size());
      p += tok.size();
    } else {
      int64_t n = 0;
      size_t next = 0;
      switch (refNumber(s, p + 1, true, n, next)) {
        case Ref::kMore:
          return more(p, true);
        case Ref::kBad:
          return bad(ParseError::kBadReplyLength);
        case Ref::kOk:
          break;
      }
      // Only the RESP2 nulls "$-1" and "*-1" have a negative length.
      if (t != ':' && n < 0 && !(n == -1 && (t == '$' || t == '*'))) {
        return bad(ParseError::kBadReplyLength);
      }
      if (t == ':' || n < 0) {
        check(p, next);
        p = next;
      } else if (t == '$' || t == '!' || t == '=') {
        const uint64_t end = next + static_cast<uint64_t>(n) + 2;
        check(p, end);
        if (end > s.size()) return more(p, out.over_at == npos);
        if (s.substr(end - 2, 2) != "\r\n") return bad(ParseError::kBadReplyLength);
        p = end;
      } else {
        const bool pairs = t == '%' || t == '|';
        if (pairs && n > INT64_MAX / 2) return bad(ParseError::kBadReplyLength);
        check(p, next);
        p = next;
        const uint64_t count = pairs ? 2 * static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
        if (count > 0) {
          stack.push_back({count, t == '|'});
          complete = false;
        } else if (t == '|') {
          complete = false;  // "|0" annotates nothing
        }
      }
    }
    if (!complete) continue;
    // One element is complete: count it in its aggregate, closing those that are now full.
    bool done = true;
    while (!stack.empty()) {
      Level& top = stack.back();
      if (--top.left > 0) {
        done = false;
        break;
      }
      const bool attr = top.attr;
      stack.pop_back();
      if (attr) {
        done = false;  // the annotated value still follows at this level
        break;
      }
    }
    if (done) {
      out.status = Ref::kOk;
      out.end = p;
      return out;
    }
  }
}

std::vector<Event> reference(std::string_view s, const Limits& limits) {
  std::vector<Event> events;
  size_t pos = 0;
  for (;;) {
    const RefReply r = refReply(s, pos, limits);
    const bool over = r.over_at != std::string_view::npos;
    if (over) {
      events.push_back(
          {ParseStatus::kOversize, ParseError::kReplyTooLarge, r.over_at - pos, r.type_at_over});
    }
    if (r.status == Ref::kBad) {
      events.push_back({ParseStatus::kError, r.error, 0, ReplyType::kSimpleString});
      return events;
    }
    if (r.status == Ref::kMore) {
      const size_t left = s.size() - (over ? r.resume : pos);
      events.push_back(
          {ParseStatus::kIncomplete, ParseError::kNone, left, ReplyType::kSimpleString});
      return events;
    }
    if (over) {
      events.push_back({ParseStatus::kDiscarded, ParseError::kNone, r.end - r.over_at, r.type});
    } else {
      events.push_back({ParseStatus::kComplete, ParseError::kNone, r.end - pos, r.type});
    }
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
  Limits small;
  small.max_reply_bytes = 48;
  runWith(data, size, small);
  return 0;
}
