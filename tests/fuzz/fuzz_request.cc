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
// the whole input at once (no resume hints, no fast paths), written from the Redis rules. It
// catches bugs that the parser would make consistently however the input is split.
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
using corral::fuzz::Ref;
using corral::fuzz::refNumber;

struct Event {
  ParseStatus status;
  ParseError error;
  size_t consumed;  // for kDiscarded: every byte dropped since the kOversize
  std::vector<std::string> args;
  bool is_inline;
  bool operator==(const Event&) const = default;
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
    // Args are views into the frame, in order, each followed by its CRLF.
    FUZZ_CHECK(a.data() > prev_end && a.data() + a.size() + 2 <= data + r.consumed);
    FUZZ_CHECK(a.size() <= limits.max_bulk_bytes);
    FUZZ_CHECK(a.data()[a.size()] == '\r' && a.data()[a.size() + 1] == '\n');
    prev_end = a.data() + a.size();
  }
  // Lengths are parsed strictly (no '+', no leading zeros), so a multibulk has exactly one
  // spelling: re-encoding the args must give the frame back byte for byte.
  if (!req.args.empty()) {
    std::string wire;
    appendCommand(wire, req.args);
    FUZZ_CHECK(wire == req.frame);
  } else {
    FUZZ_CHECK(req.frame == "*0\r\n" || req.frame == "*-1\r\n");
  }
}

// Feeds data[0, size) in pieces: first `first` bytes, then `step` bytes at a time.
std::vector<Event> drive(const uint8_t* input, size_t size, size_t first, size_t step,
                         const Limits& limits) {
  RequestParser parser(limits);
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
          FUZZ_CHECK(!discarding && r.error == ParseError::kRequestTooLarge);
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
          FUZZ_CHECK(!corral::codec::errorText(r.error).empty());
          FUZZ_CHECK(!parser.midFrame());
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

// The events drive() must produce for the whole input `s`.
std::vector<Event> reference(std::string_view s, const Limits& limits) {
  std::vector<Event> events;
  auto more = [&](size_t at) {
    events.push_back({ParseStatus::kIncomplete, ParseError::kNone, s.size() - at, {}, false});
    return events;
  };
  auto error = [&](ParseError e) {
    events.push_back({ParseStatus::kError, e, 0, {}, false});
    return events;
  };
  size_t pos = 0;
  for (;;) {
    if (pos == s.size()) return more(pos);
    const size_t start = pos;
    if (s[pos] != '*') {
      const size_t nl = s.find('\n', pos);
      if (nl == std::string_view::npos && s.size() - pos <= limits.max_inline_bytes) {
        return more(pos);
      }
      if (nl == std::string_view::npos || nl - pos > limits.max_inline_bytes) {
        return error(ParseError::kInlineTooLong);
      }
      std::string line(s.substr(pos, nl - pos));
      if (!line.empty() && line.back() == '\r') line.pop_back();
      std::vector<std::string> args;
      if (!refSplit(line, args)) return error(ParseError::kUnbalancedQuotes);
      events.push_back({ParseStatus::kComplete, ParseError::kNone, nl + 1 - pos, args, true});
      pos = nl + 1;
      continue;
    }
    int64_t count = 0;
    size_t p = 0;
    switch (refNumber(s, pos + 1, true, count, p)) {
      case Ref::kMore:
        return more(start);
      case Ref::kBad:
        return error(ParseError::kInvalidMultibulkLength);
      case Ref::kOk:
        break;
    }
    if (count < -1 || count > static_cast<int64_t>(limits.max_args)) {
      return error(ParseError::kInvalidMultibulkLength);
    }
    std::vector<std::string> args;
    bool oversize = false;
    size_t dropped_from = 0;
    for (int64_t i = 0; i < count; ++i) {
      if (p == s.size()) return more(oversize ? p : start);
      if (s[p] != '$') return error(ParseError::kExpectedDollar);
      int64_t n = 0;
      size_t body = 0;
      switch (refNumber(s, p + 1, false, n, body)) {
        case Ref::kMore:
          return more(oversize ? p : start);
        case Ref::kBad:
          return error(ParseError::kInvalidBulkLength);
        case Ref::kOk:
          break;
      }
      if (static_cast<uint64_t>(n) > limits.max_bulk_bytes) {
        return error(ParseError::kInvalidBulkLength);
      }
      const uint64_t end = body + static_cast<uint64_t>(n) + 2;
      if (!oversize && end - start > limits.max_request_bytes) {
        oversize = true;
        events.push_back(
            {ParseStatus::kOversize, ParseError::kRequestTooLarge, body - start, {}, false});
        dropped_from = body;
      }
      if (end > s.size()) {
        if (!oversize) return more(start);
        // Discarding drops what is there, checking whatever part of the CRLF has arrived.
        for (uint64_t k = body + static_cast<uint64_t>(n); k < s.size(); ++k) {
          if (s[k] != "\r\n"[k - body - static_cast<uint64_t>(n)]) {
            return error(ParseError::kInvalidBulkLength);
          }
        }
        return more(s.size());
      }
      if (s.substr(end - 2, 2) != "\r\n") return error(ParseError::kInvalidBulkLength);
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

void runWith(const uint8_t* data, size_t size, const Limits& limits) {
  corral::fuzz::checkSplits(data, size, limits, drive, reference);
}

}  // namespace

// The entry point libFuzzer calls; its name is fixed.
extern "C" int LLVMFuzzerTestOneInput(  // NOLINT(readability-identifier-naming)
    const uint8_t* data, size_t size) {
  if (size > 1 << 16) return -1;  // small inputs explore faster; limits are tested with tiny ones
  runWith(data, size, Limits{});
  Limits tiny;
  tiny.max_args = 6;
  tiny.max_bulk_bytes = 40;
  tiny.max_request_bytes = 64;
  tiny.max_inline_bytes = 24;
  tiny.max_depth = 4;
  runWith(data, size, tiny);
  return 0;
}
