// libFuzzer target for codec::RequestParser.
//
//   input bytes ──> drive(whole) ───────┐
//               ──> drive(split at k) ──┼──> same events? ──> invariants on every call
//               ──> drive(1 byte/call) ─┘     (short inputs only)
//
// drive() plays a client connection: bytes arrive in pieces into a buffer that is re-copied to
// a new address before every call (the parser must keep offsets, not pointers), the parser runs
// until it wants more, and consumed bytes are dropped. Each input is run under the default
// limits and under tiny ones, so the limit and oversize-discard paths are reached.
//
// The events are also compared with reference(): a second, deliberately plain framer that sees
// the whole input at once (no resume hints, no fast paths), written from Redis 7.0.15's
// networking.c (processMultibulkBuffer, processInlineBuffer) and util.c (string2ll). It catches
// bugs that the parser would make consistently however the input is split. The tiny-limits run
// also sets setAuthRequired(true), so Redis's unauthenticated limits are reached.
#include <algorithm>
#include <cctype>
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

using corral::codec::appendCommand;
using corral::codec::Limits;
using corral::codec::ParseError;
using corral::codec::ParseResult;
using corral::codec::ParseStatus;
using corral::codec::Request;
using corral::codec::RequestParser;

struct Event {
  ParseStatus status;
  ParseError error;
  size_t consumed;  // for kDiscarded: every byte dropped since the kOversize
  std::vector<std::string> args;
  bool is_inline;
  char got = 0;  // kExpectedDollar
  bool operator==(const Event&) const = default;
};

// Limits plus the one parser setting that is not a limit.
struct Setup {
  Limits limits;
  bool auth_required = false;
};

// Checks what a kComplete result must satisfy, given the bytes it was parsed from.
void checkComplete(const char* data, size_t len, const ParseResult& r, const Request& req,
                   const Limits& limits) {
  FUZZ_CHECK(r.consumed > 0 && r.consumed <= len);
  FUZZ_CHECK(req.frame.data() == data && req.frame.size() == r.consumed);
  if (req.is_inline) {
    FUZZ_CHECK(data[0] != '*');
    FUZZ_CHECK(data[r.consumed - 1] == '\n');
    FUZZ_CHECK(r.consumed <= static_cast<size_t>(limits.max_inline_bytes) + 1);
    // Re-encoded as a multibulk, the same args come back.
    if (!req.args.empty()) {
      std::vector<std::string> copies(req.args.begin(), req.args.end());
      std::string wire;
      appendCommand(wire, std::vector<std::string_view>(copies.begin(), copies.end()));
      Limits roomy;
      RequestParser again(roomy);
      Request req2;
      const ParseResult r2 = again.parse(wire.data(), wire.size(), req2);
      FUZZ_CHECK(r2.status == ParseStatus::kComplete && r2.consumed == wire.size());
      FUZZ_CHECK(req2.args.size() == copies.size());
      for (size_t i = 0; i < copies.size(); ++i) FUZZ_CHECK(req2.args[i] == copies[i]);
    }
    return;
  }
  FUZZ_CHECK(data[0] == '*');
  FUZZ_CHECK(r.consumed <= limits.max_request_bytes);
  FUZZ_CHECK(req.args.size() <= limits.max_args);
  const char* prev_end = data;
  for (std::string_view a : req.args) {
    // Args are views into the frame, in order, each followed by two more bytes of it (Redis
    // skips those two unchecked, and so do we).
    FUZZ_CHECK(a.data() > prev_end && a.data() + a.size() + 2 <= data + r.consumed);
    FUZZ_CHECK(a.size() <= limits.max_bulk_bytes);
    FUZZ_CHECK(a.data()[-2] == '\r');
    prev_end = a.data() + a.size();
  }
  if (!req.args.empty()) {
    FUZZ_CHECK(prev_end + 2 == data + r.consumed);
    // Re-encoded (the spelling corral would use), the same args come back.
    std::string wire;
    appendCommand(wire, req.args);
    RequestParser again;
    Request req2;
    const ParseResult r2 = again.parse(wire.data(), wire.size(), req2);
    FUZZ_CHECK(r2.status == ParseStatus::kComplete && r2.consumed == wire.size());
    FUZZ_CHECK(req2.args == req.args);
  } else {
    FUZZ_CHECK(req.frame[req.frame.size() - 2] == '\r');  // only the count line
  }
}

// Feeds data[0, size) in pieces: first `first` bytes, then `step` bytes at a time.
std::vector<Event> drive(const uint8_t* input, size_t size, size_t first, size_t step,
                         const Setup& setup) {
  const Limits& limits = setup.limits;
  RequestParser parser(limits);
  parser.setAuthRequired(setup.auth_required);
  Request req;
  std::string buf;
  std::vector<Event> events;
  size_t fed = 0;
  size_t pieces = 0;
  size_t dropped = 0;
  bool discarding = false;
  for (;;) {
    for (;;) {
      // A fresh allocation per call: stale pointers kept by the parser would be caught by ASan.
      std::unique_ptr<char[]> copy(new char[buf.size() + 1]);
      std::memcpy(copy.get(), buf.data(), buf.size());
      const char* data = copy.get();
      const size_t len = buf.size();
      const ParseResult r = parser.parse(data, len, req);
      FUZZ_CHECK(r.consumed <= len);
      if (r.status == ParseStatus::kIncomplete) {
        // Only a request being discarded drops bytes without a frame.
        FUZZ_CHECK(discarding || r.consumed == 0);
        FUZZ_CHECK(r.error == ParseError::kNone);
        dropped += r.consumed;
        buf.erase(0, r.consumed);
        break;
      }
      Event e{r.status, r.error, r.consumed, {}, false};
      switch (r.status) {
        case ParseStatus::kComplete:
          FUZZ_CHECK(!discarding && r.error == ParseError::kNone);
          checkComplete(data, len, r, req, limits);
          FUZZ_CHECK(!parser.midFrame());
          e.args.assign(req.args.begin(), req.args.end());
          e.is_inline = req.is_inline;
          break;
        case ParseStatus::kOversize:
          FUZZ_CHECK(!discarding && (r.error == ParseError::kRequestTooLarge ||
                                     r.error == ParseError::kTooManyArgs));
          FUZZ_CHECK(r.consumed > 0 && parser.midFrame());
          discarding = true;
          dropped = 0;
          break;
        case ParseStatus::kDiscarded:
          FUZZ_CHECK(discarding && r.error == ParseError::kNone);
          FUZZ_CHECK(!parser.midFrame());
          discarding = false;
          e.consumed = dropped + r.consumed;
          break;
        case ParseStatus::kError:
          FUZZ_CHECK(r.consumed == 0 && r.error != ParseError::kNone);
          FUZZ_CHECK(!corral::codec::errorText(r).empty());
          FUZZ_CHECK((r.got != 0) == (r.error == ParseError::kExpectedDollar));
          FUZZ_CHECK(!parser.midFrame());
          e.got = r.got;
          events.push_back(e);
          return events;
        case ParseStatus::kIncomplete:
          break;
      }
      events.push_back(std::move(e));
      buf.erase(0, r.consumed);
    }
    if (fed == size) break;
    // The first piece may be empty (a call on no bytes); later ones never are.
    const size_t n = std::min(pieces++ == 0 ? first : std::max<size_t>(step, 1), size - fed);
    buf.append(reinterpret_cast<const char*>(input) + fed, n);
    fed += n;
  }
  events.push_back({ParseStatus::kIncomplete, ParseError::kNone, buf.size(), {}, false});
  return events;
}

// --- reference model ----------------------------------------------------------------------

bool isCSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Redis's sdssplitargs, walked over a NUL-terminated copy of the line as Redis does.
bool refSplit(const std::string& line, std::vector<std::string>& out) {
  const char* p = line.c_str();
  for (;;) {
    while (*p != '\0' && isCSpace(*p)) ++p;
    if (*p == '\0') return true;
    bool in_dq = false;
    bool in_sq = false;
    bool done = false;
    std::string word;
    while (!done) {
      if (in_dq) {
        if (p[0] == '\\' && p[1] == 'x' && std::isxdigit(static_cast<unsigned char>(p[2])) &&
            std::isxdigit(static_cast<unsigned char>(p[3]))) {
          word += static_cast<char>(std::stoi(std::string(p + 2, 2), nullptr, 16));
          p += 3;
        } else if (p[0] == '\\' && p[1] != '\0') {
          ++p;
          const char* from = "nrtba";
          const char* to = "\n\r\t\b\a";
          const char* hit = std::strchr(from, *p);
          word += hit != nullptr ? to[hit - from] : *p;
        } else if (*p == '"') {
          if (p[1] != '\0' && !isCSpace(p[1])) return false;
          done = true;
        } else if (*p == '\0') {
          return false;
        } else {
          word += *p;
        }
      } else if (in_sq) {
        if (p[0] == '\\' && p[1] == '\'') {
          ++p;
          word += '\'';
        } else if (*p == '\'') {
          if (p[1] != '\0' && !isCSpace(p[1])) return false;
          done = true;
        } else if (*p == '\0') {
          return false;
        } else {
          word += *p;
        }
      } else if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == '\0') {
        done = true;
      } else if (*p == '"') {
        in_dq = true;
      } else if (*p == '\'') {
        in_sq = true;
      } else {
        word += *p;
      }
      if (*p != '\0') ++p;
    }
    out.push_back(word);
  }
}

// util.c's string2ll, written differently: the shape first, then from_chars for the range.
bool refString2ll(std::string_view t, int64_t& v) {
  if (t.empty() || t.size() >= 21) return false;
  if (t == "0") {
    v = 0;
    return true;
  }
  const std::string_view digits = t[0] == '-' ? t.substr(1) : t;
  if (digits.empty() || digits[0] < '1' || digits[0] > '9') return false;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
  }
  const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
  return r.ec == std::errc() && r.ptr == t.data() + t.size();
}

enum class RefLine : uint8_t { kOk, kMore, kTooLong };

// A request length line at s[h] (its type byte): it ends at the first '\r' with a byte after it;
// strchr stops at a NUL, so a NUL before the '\r' means never; the '\r' must come within the
// first max_inline_bytes + 1 bytes, and without it more than max_inline_bytes bytes fail.
RefLine refLine(std::string_view s, size_t h, const Limits& limits, size_t& cr) {
  const size_t window = std::min(s.size(), h + size_t{limits.max_inline_bytes} + 1);
  for (size_t j = h; j < window; ++j) {
    if (s[j] == '\0') break;
    if (s[j] == '\r') {
      if (j + 1 >= s.size()) return RefLine::kMore;
      cr = j;
      return RefLine::kOk;
    }
  }
  return s.size() - h > limits.max_inline_bytes ? RefLine::kTooLong : RefLine::kMore;
}

// The events drive() must produce for the whole input `s`.
std::vector<Event> reference(std::string_view s, const Setup& setup) {
  const Limits& limits = setup.limits;
  std::vector<Event> events;
  auto more = [&](size_t at) {
    events.push_back({ParseStatus::kIncomplete, ParseError::kNone, s.size() - at, {}, false});
    return events;
  };
  auto error = [&](ParseError e, char got = 0) {
    events.push_back({ParseStatus::kError, e, 0, {}, false, got});
    return events;
  };
  size_t pos = 0;
  for (;;) {
    if (pos == s.size()) return more(pos);
    const size_t start = pos;
    if (s[pos] != '*') {
      const size_t window = std::min(s.size(), pos + size_t{limits.max_inline_bytes} + 1);
      size_t nl = std::string_view::npos;
      for (size_t j = pos; j < window && s[j] != '\0'; ++j) {
        if (s[j] == '\n') {
          nl = j;
          break;
        }
      }
      if (nl == std::string_view::npos) {
        if (s.size() - pos > limits.max_inline_bytes) return error(ParseError::kInlineTooLong);
        return more(pos);
      }
      std::string line(s.substr(pos, nl - pos));
      if (!line.empty() && line.back() == '\r') line.pop_back();
      std::vector<std::string> args;
      if (!refSplit(line, args)) return error(ParseError::kUnbalancedQuotes);
      events.push_back({ParseStatus::kComplete, ParseError::kNone, nl + 1 - pos, args, true});
      pos = nl + 1;
      continue;
    }
    size_t cr = 0;
    switch (refLine(s, pos, limits, cr)) {
      case RefLine::kMore:
        return more(start);
      case RefLine::kTooLong:
        return error(ParseError::kMultibulkLineTooLong);
      case RefLine::kOk:
        break;
    }
    int64_t count = 0;
    if (!refString2ll(s.substr(pos + 1, cr - pos - 1), count) || count > INT32_MAX) {
      return error(ParseError::kInvalidMultibulkLength);
    }
    if (setup.auth_required && count > 10) {
      return error(ParseError::kUnauthenticatedMultibulkLength);
    }
    size_t p = cr + 2;
    if (count <= 0) {
      events.push_back({ParseStatus::kComplete, ParseError::kNone, p - start, {}, false});
      pos = p;
      continue;
    }
    std::vector<std::string> args;
    bool oversize = false;
    size_t dropped_from = 0;
    if (static_cast<uint64_t>(count) > limits.max_args) {
      oversize = true;
      events.push_back({ParseStatus::kOversize, ParseError::kTooManyArgs, p - start, {}, false});
      dropped_from = p;
    }
    for (int64_t i = 0; i < count; ++i) {
      if (p == s.size()) return more(oversize ? p : start);
      switch (refLine(s, p, limits, cr)) {
        case RefLine::kMore:
          return more(oversize ? p : start);
        case RefLine::kTooLong:
          return error(ParseError::kBulkLineTooLong);
        case RefLine::kOk:
          break;
      }
      if (s[p] != '$') return error(ParseError::kExpectedDollar, s[p]);
      int64_t n = 0;
      if (cr == p || !refString2ll(s.substr(p + 1, cr - p - 1), n) || n < 0 ||
          static_cast<uint64_t>(n) > limits.max_bulk_bytes) {
        return error(ParseError::kInvalidBulkLength);
      }
      if (setup.auth_required && n > 16384) return error(ParseError::kUnauthenticatedBulkLength);
      const size_t body = cr + 2;
      const uint64_t end = body + static_cast<uint64_t>(n) + 2;
      if (!oversize && end - start > limits.max_request_bytes) {
        oversize = true;
        events.push_back(
            {ParseStatus::kOversize, ParseError::kRequestTooLarge, body - start, {}, false});
        dropped_from = body;
      }
      // A discard drops a partial payload as it arrives; a parse keeps the frame for later.
      if (end > s.size()) return more(oversize ? s.size() : start);
      if (!oversize) args.emplace_back(s.substr(body, static_cast<size_t>(n)));
      p = end;
    }
    if (oversize) {
      events.push_back({ParseStatus::kDiscarded, ParseError::kNone, p - dropped_from, {}, false});
    } else {
      events.push_back({ParseStatus::kComplete, ParseError::kNone, p - start, args, false});
    }
    pos = p;
  }
}

void runWith(const uint8_t* data, size_t size, const Setup& setup) {
  corral::fuzz::checkSplits(data, size, setup, drive, reference);
}

}  // namespace

// The entry point libFuzzer calls; its name is fixed.
extern "C" int LLVMFuzzerTestOneInput(  // NOLINT(readability-identifier-naming)
    const uint8_t* data, size_t size) {
  if (size > 1 << 16) return -1;  // small inputs explore faster; limits are tested with tiny ones
  runWith(data, size, Setup{});
  Setup tiny;
  tiny.limits.max_args = 6;
  tiny.limits.max_bulk_bytes = 40;
  tiny.limits.max_request_bytes = 64;
  tiny.limits.max_inline_bytes = 24;
  tiny.auth_required = true;
  runWith(data, size, tiny);
  return 0;
}
