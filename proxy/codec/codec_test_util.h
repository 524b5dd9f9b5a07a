// Helpers shared by the codec's unit tests: copies that move the bytes between calls, a parser
// fed every split point, and a simulated connection that feeds a stream in chunks.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/codec/resp.h"

namespace corral::codec {

// Readable names in failure messages (test-only; found by ADL).
inline std::ostream& operator<<(std::ostream& os, ParseStatus s) {
  static const char* const kNames[] = {"kComplete", "kIncomplete", "kOversize", "kDiscarded",
                                       "kError"};
  return os << kNames[static_cast<int>(s)];
}
inline std::ostream& operator<<(std::ostream& os, ParseError e) {
  return os << "ParseError(" << static_cast<int>(e) << ")";
}
inline std::ostream& operator<<(std::ostream& os, ReplyType t) {
  return os << "ReplyType(" << static_cast<int>(t) << ")";
}

namespace test {

// A private heap copy of some bytes, so that each parse call sees the data at a new address
// (the parsers must keep offsets, not pointers) and ASan catches reads past the end.
struct Copy {
  explicit Copy(std::string_view s) : size(s.size()), bytes(new char[s.size() + 1]) {
    std::memcpy(bytes.get(), s.data(), s.size());
  }
  size_t size;
  std::unique_ptr<char[]> bytes;
  const char* data() const { return bytes.get(); }
};

// What one RequestParser::parse call produced, copied out of the views.
struct Got {
  ParseStatus status = ParseStatus::kIncomplete;
  ParseError error = ParseError::kNone;
  size_t consumed = 0;
  std::vector<std::string> args;
  std::string frame;
  bool is_inline = false;
  char got = 0;  // kExpectedDollar
  bool operator==(const Got&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const Got& g) {
  os << "{" << g.status << " " << g.error << " consumed=" << g.consumed << " args=[";
  for (const auto& a : g.args) os << '"' << a << "\" ";
  return os << "] inline=" << g.is_inline << "}";
}

inline Got parseWith(RequestParser& parser, std::string_view wire) {
  Copy copy(wire);
  Request req;
  const ParseResult r = parser.parse(copy.data(), copy.size, req);
  Got g;
  g.status = r.status;
  g.error = r.error;
  g.consumed = r.consumed;
  g.got = r.got;
  if (r.status == ParseStatus::kComplete) {
    for (std::string_view a : req.args) g.args.emplace_back(a);
    g.frame = std::string(req.frame);
    g.is_inline = req.is_inline;
    // The frame is the consumed prefix of the caller's bytes.
    CHECK(req.frame.data() == copy.data());
    CHECK(req.frame.size() == r.consumed);
  }
  return g;
}

inline Got parseFresh(std::string_view wire, const Limits& limits = Limits{}) {
  RequestParser parser(limits);
  return parseWith(parser, wire);
}

// Feeds every proper prefix of `wire` to one parser, each time from a new copy (as a caller whose
// buffer grows and moves): all must be incomplete with nothing consumed. Then the whole frame
// must give the same result as a fresh parser does. Also checks a fresh parser per prefix.
inline void checkEverySplit(std::string_view wire, const Limits& limits = Limits{}) {
  CAPTURE(wire);
  const Got whole = parseFresh(wire, limits);
  REQUIRE(whole.status != ParseStatus::kIncomplete);
  const size_t end = whole.status == ParseStatus::kError ? wire.size() : whole.consumed;
  RequestParser parser(limits);
  for (size_t k = 0; k < end; ++k) {
    CAPTURE(k);
    const Got g = parseWith(parser, wire.substr(0, k));
    if (whole.status == ParseStatus::kError && g.status == ParseStatus::kError) {
      // Errors may show before the whole input is there, but must be the same error.
      CHECK(g.error == whole.error);
      return;
    }
    REQUIRE(g.status == ParseStatus::kIncomplete);
    CHECK(g.consumed == 0);
    const Got fresh = parseFresh(wire.substr(0, k), limits);
    CHECK(fresh.status == ParseStatus::kIncomplete);
    CHECK(fresh.consumed == 0);
  }
  CHECK(parseWith(parser, wire.substr(0, end)) == whole);
  if (whole.status != ParseStatus::kOversize) CHECK_FALSE(parser.midFrame());
}

// One event of a simulated connection (see drive()).
struct Event {
  ParseStatus status;
  ParseError error;
  size_t consumed;  // for kDiscarded: every byte dropped since the kOversize
  std::vector<std::string> args;
  bool is_inline;
  bool operator==(const Event&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const Event& e) {
  os << "{" << e.status << " " << e.error << " consumed=" << e.consumed << " args=[";
  for (const auto& a : e.args) os << '"' << a << "\" ";
  return os << "]}";
}

// Simulates a client connection: `wire` arrives `chunk` bytes at a time into a buffer that is
// parsed until the parser wants more, dropping consumed bytes. Returns every result but
// kIncomplete, stopping at kError; the last event is kIncomplete with the bytes left over.
inline std::vector<Event> drive(std::string_view wire, size_t chunk,
                                const Limits& limits = Limits{}) {
  RequestParser parser(limits);
  Request req;
  std::string buf;
  std::vector<Event> events;
  size_t fed = 0;
  size_t dropped = 0;
  bool discarding = false;
  for (;;) {
    for (;;) {
      Copy copy(buf);
      const ParseResult r = parser.parse(copy.data(), copy.size, req);
      REQUIRE(r.consumed <= copy.size);
      buf.erase(0, r.consumed);
      if (r.status == ParseStatus::kIncomplete) {
        if (!discarding) REQUIRE(r.consumed == 0);
        dropped += r.consumed;
        break;
      }
      Event e{r.status, r.error, r.consumed, {}, false};
      if (r.status == ParseStatus::kComplete) {
        for (std::string_view a : req.args) e.args.emplace_back(a);
        e.is_inline = req.is_inline;
      } else if (r.status == ParseStatus::kOversize) {
        REQUIRE_FALSE(discarding);
        discarding = true;
        dropped = 0;
      } else if (r.status == ParseStatus::kDiscarded) {
        REQUIRE(discarding);
        discarding = false;
        e.consumed = dropped + r.consumed;
      } else {
        REQUIRE(r.status == ParseStatus::kError);
        CHECK(r.consumed == 0);
        events.push_back(e);
        return events;
      }
      events.push_back(e);
    }
    if (fed == wire.size()) break;
    const size_t n = std::min(chunk, wire.size() - fed);
    buf.append(wire.substr(fed, n));
    fed += n;
  }
  events.push_back({ParseStatus::kIncomplete, ParseError::kNone, buf.size(), {}, false});
  return events;
}

inline void checkSameEvents(const std::vector<Event>& got, const std::vector<Event>& want) {
  CHECK(got.size() == want.size());
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    CAPTURE(i);
    CHECK(got[i] == want[i]);
  }
}

// The same stream cut into pieces of every size must give the same events as fed whole.
inline void checkAllChunkings(std::string_view wire, const Limits& limits = Limits{}) {
  CAPTURE(wire);
  const std::vector<Event> whole = drive(wire, wire.size() + 1, limits);
  for (size_t chunk = 1; chunk <= wire.size(); ++chunk) {
    CAPTURE(chunk);
    checkSameEvents(drive(wire, chunk, limits), whole);
  }
}

using Args = std::vector<std::string>;

// "*1\r\n$N\r\n" + N bytes + "\r\n" is 4 + 3 + digits(N) + N + 2 bytes.
inline std::string oneBulk(size_t n, char fill = 'x') {
  std::string s = "*1\r\n$" + std::to_string(n) + "\r\n";
  s.append(n, fill);
  return s + "\r\n";
}

struct ReplyGot {
  ParseStatus status;
  ParseError error;
  size_t consumed;
  ReplyType type;
  bool operator==(const ReplyGot&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const ReplyGot& g) {
  return os << "{" << g.status << " " << g.error << " consumed=" << g.consumed << " " << g.type
            << "}";
}

inline ReplyGot replyWith(ReplyParser& parser, std::string_view wire) {
  Copy copy(wire);
  const ReplyResult r = parser.parse(copy.data(), copy.size);
  CHECK(r.consumed <= copy.size);
  return {r.status, r.error, r.consumed, r.type};
}

inline ReplyGot replyFresh(std::string_view wire, const Limits& limits = Limits{}) {
  ReplyParser parser(limits);
  return replyWith(parser, wire);
}

inline void checkEveryReplySplit(std::string_view wire, const Limits& limits = Limits{}) {
  CAPTURE(wire);
  const ReplyGot whole = replyFresh(wire, limits);
  REQUIRE(whole.status != ParseStatus::kIncomplete);
  const size_t end = whole.status == ParseStatus::kError ? wire.size() : whole.consumed;
  ReplyParser parser(limits);
  for (size_t k = 0; k < end; ++k) {
    CAPTURE(k);
    const ReplyGot g = replyWith(parser, wire.substr(0, k));
    if (whole.status == ParseStatus::kError && g.status == ParseStatus::kError) {
      CHECK(g.error == whole.error);
      return;
    }
    REQUIRE(g.status == ParseStatus::kIncomplete);
    CHECK(g.consumed == 0);
    CHECK(replyFresh(wire.substr(0, k), limits).status == ParseStatus::kIncomplete);
  }
  CHECK(replyWith(parser, wire.substr(0, end)) == whole);
  CHECK_FALSE(parser.midFrame());
}

// Simulates an upstream connection: `wire` arrives `chunk` bytes at a time into a buffer that is
// parsed until the parser wants more, dropping consumed bytes. Returns every result but
// kIncomplete (kDiscarded with every byte dropped since its kOversize), stopping at kError; the
// last event is kIncomplete with the bytes left over.
inline std::vector<ReplyGot> driveReplies(std::string_view wire, size_t chunk,
                                          const Limits& limits = Limits{}) {
  ReplyParser parser(limits);
  std::string buf;
  std::vector<ReplyGot> events;
  size_t fed = 0;
  size_t dropped = 0;
  bool discarding = false;
  for (;;) {
    for (;;) {
      Copy copy(buf);
      const ReplyResult r = parser.parse(copy.data(), copy.size);
      REQUIRE(r.consumed <= copy.size);
      buf.erase(0, r.consumed);
      if (r.status == ParseStatus::kIncomplete) {
        if (!discarding) REQUIRE(r.consumed == 0);
        dropped += r.consumed;
        break;
      }
      ReplyGot e{r.status, r.error, r.consumed, r.type};
      if (r.status == ParseStatus::kOversize) {
        REQUIRE_FALSE(discarding);
        discarding = true;
        dropped = 0;
      } else if (r.status == ParseStatus::kDiscarded) {
        REQUIRE(discarding);
        discarding = false;
        e.consumed = dropped + r.consumed;
      } else if (r.status == ParseStatus::kError) {
        CHECK(r.consumed == 0);
        events.push_back(e);
        return events;
      }
      events.push_back(e);
    }
    if (fed == wire.size()) break;
    const size_t n = std::min(chunk, wire.size() - fed);
    buf.append(wire.substr(fed, n));
    fed += n;
  }
  events.push_back({ParseStatus::kIncomplete, ParseError::kNone, buf.size(), ReplyType{}});
  return events;
}

// The same replies cut into pieces of every size must give the same events as fed whole.
inline void checkAllReplyChunkings(std::string_view wire, const Limits& limits = Limits{}) {
  CAPTURE(wire);
  const std::vector<ReplyGot> whole = driveReplies(wire, wire.size() + 1, limits);
  for (size_t chunk = 1; chunk <= wire.size(); ++chunk) {
    CAPTURE(chunk);
    const std::vector<ReplyGot> got = driveReplies(wire, chunk, limits);
    CHECK(got == whole);
  }
}

}  // namespace test
}  // namespace corral::codec
