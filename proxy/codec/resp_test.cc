// Unit tests for the RESP codec: tables of wire bytes, every split point of every frame, every
// limit, pipelining, the oversize discard path, inline quoting, every reply type, round trips.
#include "proxy/codec/resp.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace corral::codec {

// Readable names in failure messages (test-only; found by ADL).
std::ostream& operator<<(std::ostream& os, ParseStatus s) {
  static const char* const kNames[] = {"kComplete", "kIncomplete", "kOversize", "kDiscarded",
                                       "kError"};
  return os << kNames[static_cast<int>(s)];
}
std::ostream& operator<<(std::ostream& os, ParseError e) {
  return os << "ParseError(" << static_cast<int>(e) << ")";
}
std::ostream& operator<<(std::ostream& os, ReplyType t) {
  return os << "ReplyType(" << static_cast<int>(t) << ")";
}

namespace {

using namespace std::string_literals;

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
  bool operator==(const Got&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Got& g) {
  os << "{" << g.status << " " << g.error << " consumed=" << g.consumed << " args=[";
  for (const auto& a : g.args) os << '"' << a << "\" ";
  return os << "] inline=" << g.is_inline << "}";
}

Got parseWith(RequestParser& parser, std::string_view wire) {
  Copy copy(wire);
  Request req;
  const ParseResult r = parser.parse(copy.data(), copy.size, req);
  Got g;
  g.status = r.status;
  g.error = r.error;
  g.consumed = r.consumed;
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

Got parseFresh(std::string_view wire, const Limits& limits = Limits{}) {
  RequestParser parser(limits);
  return parseWith(parser, wire);
}

// Feeds every proper prefix of `wire` to one parser, each time from a new copy (as a caller whose
// buffer grows and moves): all must be incomplete with nothing consumed. Then the whole frame
// must give the same result as a fresh parser does. Also checks a fresh parser per prefix.
void checkEverySplit(std::string_view wire, const Limits& limits = Limits{}) {
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

std::ostream& operator<<(std::ostream& os, const Event& e) {
  os << "{" << e.status << " " << e.error << " consumed=" << e.consumed << " args=[";
  for (const auto& a : e.args) os << '"' << a << "\" ";
  return os << "]}";
}

// Simulates a client connection: `wire` arrives `chunk` bytes at a time into a buffer that is
// parsed until the parser wants more, dropping consumed bytes. Returns every result but
// kIncomplete, stopping at kError; the last event is kIncomplete with the bytes left over.
std::vector<Event> drive(std::string_view wire, size_t chunk, const Limits& limits = Limits{}) {
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

void checkSameEvents(const std::vector<Event>& got, const std::vector<Event>& want) {
  CHECK(got.size() == want.size());
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    CAPTURE(i);
    CHECK(got[i] == want[i]);
  }
}

// The same stream cut into pieces of every size must give the same events as fed whole.
void checkAllChunkings(std::string_view wire, const Limits& limits = Limits{}) {
  CAPTURE(wire);
  const std::vector<Event> whole = drive(wire, wire.size() + 1, limits);
  for (size_t chunk = 1; chunk <= wire.size(); ++chunk) {
    CAPTURE(chunk);
    checkSameEvents(drive(wire, chunk, limits), whole);
  }
}

using Args = std::vector<std::string>;

// ---------------------------------------------------------------------------------------------
// Requests: valid frames

struct RequestCase {
  std::string_view name;
  std::string wire;
  size_t consumed;
  Args args;
  bool is_inline;
};

const std::vector<RequestCase>& validRequests() {
  static const std::vector<RequestCase> kCases = {
      {"GET", "*2\r\n$3\r\nGET\r\n$10\r\nkey:000001\r\n", 30, {"GET", "key:000001"}, false},
      {"PING", "*1\r\n$4\r\nPING\r\n", 14, {"PING"}, false},
      {"empty array is skipped", "*0\r\n", 4, {}, false},
      {"null array is skipped", "*-1\r\n", 5, {}, false},
      {"empty bulk", "*1\r\n$0\r\n\r\n", 10, {""}, false},
      {"binary bulk",
       "*2\r\n$3\r\nSET\r\n$6\r\na\0\r\n\nb\r\n"s,
       25,
       {"SET", "a\0\r\n\nb"s},
       false},
      {"bulk of CRLFs", "*1\r\n$4\r\n\r\n\r\n\r\n", 14, {"\r\n\r\n"}, false},
      {"trailing bytes are not consumed",
       "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n",
       20,
       {"GET", "k"},
       false},
      {"multi-digit lengths",
       "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$12\r\nhello world!\r\n",
       39,
       {"SET", "k", "hello world!"},
       false},
      {"inline CRLF", "PING\r\n", 6, {"PING"}, true},
      {"inline LF only", "PING\n", 5, {"PING"}, true},
      {"inline words", "SET  k\tv \r\n", 11, {"SET", "k", "v"}, true},
      {"inline empty line is skipped", "\r\n", 2, {}, true},
      {"inline bare LF is skipped", "\n", 1, {}, true},
      {"inline blanks only", " \t \r\n", 5, {}, true},
      {"inline quoted", "SET k \"a b\"\r\nNEXT", 13, {"SET", "k", "a b"}, true},
      {"inline starting with $", "$3\r\n", 4, {"$3"}, true},
  };
  return kCases;
}

TEST_CASE("request: valid frames parse to the expected args") {
  for (const RequestCase& c : validRequests()) {
    CAPTURE(c.name);
    const Got g = parseFresh(c.wire);
    CHECK(g.status == ParseStatus::kComplete);
    CHECK(g.error == ParseError::kNone);
    CHECK(g.consumed == c.consumed);
    CHECK(g.args == c.args);
    CHECK(g.is_inline == c.is_inline);
    CHECK(g.frame == c.wire.substr(0, c.consumed));
  }
}

TEST_CASE("request: every split point of every valid frame is incomplete, then the same") {
  for (const RequestCase& c : validRequests()) {
    CAPTURE(c.name);
    checkEverySplit(c.wire);
  }
}

// ---------------------------------------------------------------------------------------------
// Requests: protocol errors

struct ErrorCase {
  std::string wire;
  ParseError error;
};

const std::vector<ErrorCase>& badRequests() {
  static const std::vector<ErrorCase> kCases = {
      {"*abc\r\n", ParseError::kInvalidMultibulkLength},
      {"*\r\n", ParseError::kInvalidMultibulkLength},
      {"*-2\r\n", ParseError::kInvalidMultibulkLength},
      {"*-0\r\n", ParseError::kInvalidMultibulkLength},
      {"*+1\r\n", ParseError::kInvalidMultibulkLength},
      {"* 1\r\n", ParseError::kInvalidMultibulkLength},
      {"*01\r\n", ParseError::kInvalidMultibulkLength},
      {"*1 \r\n", ParseError::kInvalidMultibulkLength},
      {"*1\n", ParseError::kInvalidMultibulkLength},
      {"*1\rx", ParseError::kInvalidMultibulkLength},
      {"*12345678901234567890\r\n", ParseError::kInvalidMultibulkLength},
      {"*9223372036854775808\r\n", ParseError::kInvalidMultibulkLength},
      {"*1\r\n:1\r\n", ParseError::kExpectedDollar},
      {"*1\r\n*1\r\n$1\r\na\r\n", ParseError::kExpectedDollar},
      {"*2\r\n$1\r\na\r\nGET\r\n", ParseError::kExpectedDollar},
      {"*1\r\n$-1\r\n", ParseError::kInvalidBulkLength},
      {"*1\r\n$abc\r\n", ParseError::kInvalidBulkLength},
      {"*1\r\n$\r\n", ParseError::kInvalidBulkLength},
      {"*1\r\n$03\r\nfoo\r\n", ParseError::kInvalidBulkLength},
      {"*1\r\n$3\r\nfooXY", ParseError::kInvalidBulkLength},
      {"*1\r\n$3\r\nfoo\rX", ParseError::kInvalidBulkLength},
      {"*1\r\n$3\r\nfoo\n\r", ParseError::kInvalidBulkLength},
      {"*1\r\n$99999999999999999999\r\n", ParseError::kInvalidBulkLength},
      {"SET k \"abc\r\n", ParseError::kUnbalancedQuotes},
      {"SET k 'abc\r\n", ParseError::kUnbalancedQuotes},
      {"SET k \"abc\"def\r\n", ParseError::kUnbalancedQuotes},
      {"SET k 'abc'def\r\n", ParseError::kUnbalancedQuotes},
  };
  return kCases;
}

TEST_CASE("request: malformed frames are errors, at every split point too") {
  for (const ErrorCase& c : badRequests()) {
    CAPTURE(c.wire);
    const Got g = parseFresh(c.wire);
    CHECK(g.status == ParseStatus::kError);
    CHECK(g.error == c.error);
    CHECK(g.consumed == 0);
    checkEverySplit(c.wire);
  }
}

TEST_CASE("request: an error resets the parser") {
  RequestParser parser;
  CHECK(parseWith(parser, "*2\r\n$3\r\nGET\r\n").status == ParseStatus::kIncomplete);
  CHECK(parser.midFrame());
  CHECK(parseWith(parser, "*2\r\n$3\r\nGET\r\n:").error == ParseError::kExpectedDollar);
  CHECK_FALSE(parser.midFrame());
  CHECK(parseWith(parser, "*1\r\n$1\r\nx\r\n").args == Args{"x"});
}

TEST_CASE("request: error texts are Redis's") {
  CHECK(errorText(ParseError::kInvalidMultibulkLength) ==
        "ERR Protocol error: invalid multibulk length");
  CHECK(errorText(ParseError::kInvalidBulkLength) == "ERR Protocol error: invalid bulk length");
  CHECK(errorText(ParseError::kExpectedDollar) == "ERR Protocol error: expected '$'");
  CHECK(errorText(ParseError::kUnbalancedQuotes) ==
        "ERR Protocol error: unbalanced quotes in request");
  CHECK(errorText(ParseError::kInlineTooLong) == "ERR Protocol error: too big inline request");
  CHECK(errorText(ParseError::kRequestTooLarge) == "ERR corral: request too large");
  CHECK(errorText(ParseError::kNone).empty());
  for (ParseError e :
       {ParseError::kTooDeep, ParseError::kBadReplyType, ParseError::kBadReplyLength}) {
    CHECK(errorText(e).substr(0, 4) == "ERR ");
  }
}

// ---------------------------------------------------------------------------------------------
// Requests: limits

TEST_CASE("request: max_args") {
  Limits limits;
  limits.max_args = 2;
  CHECK(parseFresh("*2\r\n$1\r\na\r\n$1\r\nb\r\n", limits).args == Args{"a", "b"});
  // Rejected on the header alone, before any element arrives.
  const Got g = parseFresh("*3\r\n", limits);
  CHECK(g.status == ParseStatus::kError);
  CHECK(g.error == ParseError::kInvalidMultibulkLength);
  // The default allows 1024*1024 and no more.
  CHECK(parseFresh("*1048576\r\n").status == ParseStatus::kIncomplete);
  CHECK(parseFresh("*1048577\r\n").error == ParseError::kInvalidMultibulkLength);
}

TEST_CASE("request: max_bulk_bytes") {
  Limits limits;
  limits.max_bulk_bytes = 5;
  CHECK(parseFresh("*1\r\n$5\r\nhello\r\n", limits).args == Args{"hello"});
  const Got g = parseFresh("*1\r\n$6\r\n", limits);  // rejected before the payload arrives
  CHECK(g.status == ParseStatus::kError);
  CHECK(g.error == ParseError::kInvalidBulkLength);
  // The default is 512 MiB, like Redis's proto-max-bulk-len (with a request limit above it).
  Limits big;
  big.max_request_bytes = std::numeric_limits<uint64_t>::max();
  CHECK(parseFresh("*1\r\n$536870912\r\n", big).status == ParseStatus::kIncomplete);
  CHECK(parseFresh("*1\r\n$536870913\r\n", big).error == ParseError::kInvalidBulkLength);
  // With the default 64 MiB request limit, such a bulk is an oversize request instead.
  CHECK(parseFresh("*1\r\n$536870912\r\n").status == ParseStatus::kOversize);
}

TEST_CASE("request: max_inline_bytes") {
  Limits limits;
  limits.max_inline_bytes = 8;
  CHECK(parseFresh("12345678\n", limits).args == Args{"12345678"});
  CHECK(parseFresh("1234567\r\n", limits).args == Args{"1234567"});  // the \r is not counted
  CHECK(parseFresh("12345678", limits).status == ParseStatus::kIncomplete);
  for (const char* wire : {"123456789", "123456789\n", "1234 6789\r\n"}) {
    CAPTURE(wire);
    const Got g = parseFresh(wire, limits);
    CHECK(g.status == ParseStatus::kError);
    CHECK(g.error == ParseError::kInlineTooLong);
    checkEverySplit(wire, limits);
  }
  // The default is 64 KiB, like Redis.
  std::string line(size_t{64} * 1024, 'a');
  CHECK(parseFresh(line).status == ParseStatus::kIncomplete);
  CHECK(parseFresh(line + "\n").args == Args{line});
  CHECK(parseFresh(line + "a").error == ParseError::kInlineTooLong);
}

TEST_CASE("request: an inline line arriving in pieces is searched once") {
  RequestParser parser;
  std::string line = "SET k " + std::string(60000, 'v') + "\r\n";
  const uint64_t before = parser.scanWork();
  for (size_t k = 0; k < line.size(); k += 100) {
    CHECK(parseWith(parser, line.substr(0, k)).status == ParseStatus::kIncomplete);
  }
  const Got g = parseWith(parser, line);
  CHECK(g.status == ParseStatus::kComplete);
  CHECK(g.args.size() == 3);
  CHECK(parser.scanWork() - before <= line.size() + 1);
}

// "*1\r\n$N\r\n" + N bytes + "\r\n" is 4 + 3 + digits(N) + N + 2 bytes.
std::string oneBulk(size_t n, char fill = 'x') {
  std::string s = "*1\r\n$" + std::to_string(n) + "\r\n";
  s.append(n, fill);
  return s + "\r\n";
}

TEST_CASE("request: max_request_bytes boundary") {
  Limits limits;
  limits.max_request_bytes = 32;
  REQUIRE(oneBulk(21).size() == 32);
  const Got ok = parseFresh(oneBulk(21), limits);
  CHECK(ok.status == ParseStatus::kComplete);
  CHECK(ok.args == Args{std::string(21, 'x')});
  const Got over = parseFresh(oneBulk(22), limits);
  CHECK(over.status == ParseStatus::kOversize);
  CHECK(over.error == ParseError::kRequestTooLarge);
  CHECK(over.consumed == 9);  // "*1\r\n$22\r\n", dropped already
}

TEST_CASE("request: oversize requests are discarded and the next request parses") {
  Limits limits;
  limits.max_request_bytes = 32;
  const std::string big = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$40\r\n" + std::string(40, 'v') + "\r\n";
  const std::string ping = "*1\r\n$4\r\nPING\r\n";

  SUBCASE("step by step") {
    RequestParser parser(limits);
    Request req;
    std::string buf = big.substr(0, 30);  // header, SET, k, $40 and 5 bytes of payload
    ParseResult r = parser.parse(buf.data(), buf.size(), req);
    CHECK(r.status == ParseStatus::kOversize);
    CHECK(r.error == ParseError::kRequestTooLarge);
    CHECK(r.consumed == 25);
    CHECK(parser.midFrame());
    buf.erase(0, r.consumed);
    r = parser.parse(buf.data(), buf.size(), req);  // drops the 5 payload bytes it has
    CHECK(r.status == ParseStatus::kIncomplete);
    CHECK(r.consumed == 5);
    buf.erase(0, r.consumed);
    CHECK(buf.empty());
    buf = big.substr(30) + ping;  // the remaining 35 payload bytes + CRLF, then PING
    r = parser.parse(buf.data(), buf.size(), req);
    CHECK(r.status == ParseStatus::kDiscarded);
    CHECK(r.consumed == 37);
    CHECK_FALSE(parser.midFrame());
    buf.erase(0, r.consumed);
    r = parser.parse(buf.data(), buf.size(), req);
    CHECK(r.status == ParseStatus::kComplete);
    CHECK(r.consumed == ping.size());
    REQUIRE(req.args.size() == 1);
    CHECK(req.args[0] == "PING");
  }

  SUBCASE("every chunking gives the same events") {
    const std::vector<Event> events = drive(big + ping, big.size() + ping.size(), limits);
    const std::vector<Event> want = {
        {ParseStatus::kOversize, ParseError::kRequestTooLarge, 25, {}, false},
        {ParseStatus::kDiscarded, ParseError::kNone, big.size() - 25, {}, false},
        {ParseStatus::kComplete, ParseError::kNone, ping.size(), {"PING"}, false},
        {ParseStatus::kIncomplete, ParseError::kNone, 0, {}, false},
    };
    checkSameEvents(events, want);
    checkAllChunkings(big + ping, limits);
  }

  SUBCASE("elements after the oversize one are discarded too") {
    const std::string more =
        "*4\r\n$3\r\nSET\r\n$40\r\n" + std::string(40, 'v') + "\r\n$0\r\n\r\n$3\r\nabc\r\n";
    const std::vector<Event> events = drive(more + ping, 1000, limits);
    REQUIRE(events.size() == 4);
    CHECK(events[0].status == ParseStatus::kOversize);
    CHECK(events[0].consumed == 18);
    CHECK(events[1].status == ParseStatus::kDiscarded);
    CHECK(events[1].consumed == more.size() - 18);
    CHECK(events[2].args == Args{"PING"});
    checkAllChunkings(more + ping + more + "PING\r\n", limits);
  }

  SUBCASE("framing lost while discarding is an error") {
    std::string bad_crlf = big;
    bad_crlf[bad_crlf.size() - 1] = 'X';
    std::vector<Event> events = drive(bad_crlf + ping, 7, limits);
    CHECK(events.back().status == ParseStatus::kError);
    CHECK(events.back().error == ParseError::kInvalidBulkLength);
    checkAllChunkings(bad_crlf + ping, limits);

    const std::string not_bulk = "*2\r\n$40\r\n" + std::string(40, 'v') + "\r\n:1\r\n";
    events = drive(not_bulk, 3, limits);
    CHECK(events.back().status == ParseStatus::kError);
    CHECK(events.back().error == ParseError::kExpectedDollar);

    const std::string bad_len = "*2\r\n$40\r\n" + std::string(40, 'v') + "\r\n$x\r\n";
    events = drive(bad_len, 3, limits);
    CHECK(events.back().status == ParseStatus::kError);
    CHECK(events.back().error == ParseError::kInvalidBulkLength);
  }

  SUBCASE("a huge declared bulk is dropped as it arrives, without buffering") {
    Limits l;
    l.max_request_bytes = 1024;
    RequestParser parser(l);
    Request req;
    std::string head = "*2\r\n$3\r\nSET\r\n$10000000\r\n";
    ParseResult r = parser.parse(head.data(), head.size(), req);
    CHECK(r.status == ParseStatus::kOversize);
    CHECK(r.consumed == head.size());
    const std::string piece(65536, 'z');
    size_t dropped = 0;
    while (dropped + piece.size() < 10000000) {
      r = parser.parse(piece.data(), piece.size(), req);
      REQUIRE(r.status == ParseStatus::kIncomplete);
      REQUIRE(r.consumed == piece.size());
      dropped += r.consumed;
    }
    std::string tail(10000000 - dropped, 'z');
    tail += "\r\nPING\r\n";
    r = parser.parse(tail.data(), tail.size(), req);
    CHECK(r.status == ParseStatus::kDiscarded);
    CHECK(r.consumed == tail.size() - 6);
    r = parser.parse(tail.data() + tail.size() - 6, 6, req);
    CHECK(r.status == ParseStatus::kComplete);
    CHECK(req.is_inline);
  }
}

// ---------------------------------------------------------------------------------------------
// Requests: pipelining, restartability, round trips

TEST_CASE("request: pipelined frames back to back") {
  const std::string wire =
      "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n*0\r\n\r\n"
      "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\0b\r\nECHO \"x\\ty\"\n*-1\r\n"s;
  const std::vector<Event> events = drive(wire, wire.size());
  const std::vector<Event> want = {
      {ParseStatus::kComplete, ParseError::kNone, 14, {"PING"}, false},
      {ParseStatus::kComplete, ParseError::kNone, 20, {"GET", "k"}, false},
      {ParseStatus::kComplete, ParseError::kNone, 6, {"PING"}, true},
      {ParseStatus::kComplete, ParseError::kNone, 4, {}, false},
      {ParseStatus::kComplete, ParseError::kNone, 2, {}, true},
      {ParseStatus::kComplete, ParseError::kNone, 29, {"SET", "k", "a\0b"s}, false},
      {ParseStatus::kComplete, ParseError::kNone, 12, {"ECHO", "x\ty"}, true},
      {ParseStatus::kComplete, ParseError::kNone, 5, {}, false},
      {ParseStatus::kIncomplete, ParseError::kNone, 0, {}, false},
  };
  checkSameEvents(events, want);
  checkAllChunkings(wire);
}

TEST_CASE("request: a 10,000-arg multibulk fed in 100 pieces is scanned once") {
  Args want;
  std::vector<std::string_view> views;
  for (int i = 0; i < 10000; ++i) want.push_back("v" + std::to_string(i));
  for (const auto& a : want) views.emplace_back(a);
  std::string wire;
  appendCommand(wire, views);

  RequestParser parser;
  const uint64_t before = parser.scanWork();
  const size_t piece = wire.size() / 100 + 1;
  size_t calls = 0;
  for (size_t k = piece; k < wire.size(); k += piece) {
    const Got g = parseWith(parser, wire.substr(0, k));
    REQUIRE(g.status == ParseStatus::kIncomplete);
    REQUIRE(g.consumed == 0);
    ++calls;
  }
  const Got g = parseWith(parser, wire);
  ++calls;
  CHECK(calls >= 100);
  CHECK(g.status == ParseStatus::kComplete);
  CHECK(g.consumed == wire.size());
  CHECK(g.args == want);
  // One header parse per element, plus at most one repeated (incomplete) header per call.
  const uint64_t work = parser.scanWork() - before;
  CHECK(work >= 10001);
  CHECK(work <= 10001 + calls);
}

TEST_CASE("request: a 1 MiB bulk arriving in 64 KiB pieces is not rescanned") {
  const std::string wire =
      "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048576\r\n" + std::string(1048576, 'b') + "\r\n";
  RequestParser parser;
  const uint64_t before = parser.scanWork();
  size_t calls = 0;
  for (size_t k = 65536; k < wire.size(); k += 65536, ++calls) {
    REQUIRE(parseWith(parser, wire.substr(0, k)).status == ParseStatus::kIncomplete);
  }
  const Got g = parseWith(parser, wire);
  ++calls;
  CHECK(g.args.size() == 3);
  CHECK(g.args[2].size() == 1048576);
  CHECK(parser.scanWork() - before <= 1 + 3 + calls);
}

TEST_CASE("request: a caller that hands back fewer bytes makes the parser start over") {
  RequestParser parser;
  CHECK(parseWith(parser, "*2\r\n$3\r\nGET\r\n$1\r\n").status == ParseStatus::kIncomplete);
  CHECK(parseWith(parser, "PING\r\n").args == Args{"PING"});
}

TEST_CASE("request: appendCommand round trips through the parser") {
  const std::vector<Args> commands = {
      {"PING"},
      {"GET", "key:000001"},
      {"SET", "k", ""},
      {"SET", "bin", "\0\r\n$3\r\n*1\r\n"s},
      {"MSET", "a", "1", "b", "2", "c", std::string(100000, 'z')},
      {""},
  };
  std::string all;
  for (const Args& args : commands) {
    CAPTURE(args.size());
    const std::vector<std::string_view> views(args.begin(), args.end());
    std::string wire;
    appendCommand(wire, views);
    all += wire;
    const Got g = parseFresh(wire);
    CHECK(g.status == ParseStatus::kComplete);
    CHECK(g.consumed == wire.size());
    CHECK(g.args == args);
    CHECK(g.frame == wire);
    if (wire.size() < 200) checkEverySplit(wire);
  }
  std::vector<Event> events = drive(all, 4096);
  REQUIRE(events.size() == commands.size() + 1);
  for (size_t i = 0; i < commands.size(); ++i) CHECK(events[i].args == commands[i]);
}

TEST_CASE("request: lengths of every digit count parse, at and around each limit") {
  // Bulk lengths 0..1200 cover the one- and two-digit fast paths and the general loop.
  for (size_t n = 0; n <= 1200; n += (n < 120 ? 1 : 37)) {
    CAPTURE(n);
    const std::string wire = oneBulk(n, 'q');
    const Got g = parseFresh(wire);
    REQUIRE(g.status == ParseStatus::kComplete);
    CHECK(g.consumed == wire.size());
    CHECK(g.args == Args{std::string(n, 'q')});
  }
  // Limits right at each digit-count boundary.
  for (uint32_t max : {0u, 1u, 8u, 9u, 10u, 11u, 98u, 99u, 100u, 101u, 1000u}) {
    CAPTURE(max);
    Limits limits;
    limits.max_args = max;
    limits.max_bulk_bytes = max;
    for (uint32_t n : {max, max + 1}) {
      CAPTURE(n);
      const std::string count = "*" + std::to_string(n) + "\r\n";
      const Got c = parseFresh(count, limits);
      if (n == 0) {
        CHECK(c.status == ParseStatus::kComplete);
      } else if (n <= max) {
        CHECK(c.status == ParseStatus::kIncomplete);
      } else {
        CHECK(c.error == ParseError::kInvalidMultibulkLength);
      }
      const Got b = parseFresh(oneBulk(n), limits);
      if (n <= max && max >= 1) {
        CHECK(b.status == ParseStatus::kComplete);
      } else {
        CHECK(b.status == ParseStatus::kError);
      }
    }
  }
  for (const char* wire : {"*1\r\n$00\r\n\r\n", "*1\r\n$007\r\n", "*00\r\n", "*1\r\n$1\rx"}) {
    CAPTURE(wire);
    CHECK(parseFresh(wire).status == ParseStatus::kError);
  }
}

TEST_CASE("request: args vector capacity is reused across frames") {
  RequestParser parser;
  Request req;
  const std::string wire = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";
  REQUIRE(parser.parse(wire.data(), wire.size(), req).status == ParseStatus::kComplete);
  const auto* storage = req.args.data();
  const size_t cap = req.args.capacity();
  for (int i = 0; i < 100; ++i) {
    REQUIRE(parser.parse(wire.data(), wire.size(), req).status == ParseStatus::kComplete);
  }
  CHECK(req.args.data() == storage);
  CHECK(req.args.capacity() == cap);
}

// ---------------------------------------------------------------------------------------------
// Requests: inline quoting (Redis sdssplitargs)

TEST_CASE("request: inline quoting follows sdssplitargs") {
  struct Case {
    std::string line;  // without its newline
    Args args;
  };
  const std::vector<Case> cases = {
      {"SET k \"hello world\"", {"SET", "k", "hello world"}},
      {"\"\"", {""}},
      {"''", {""}},
      {"a \"\" b", {"a", "", "b"}},
      {R"("a\x41\x7a")", {"aAz"}},
      {R"("\x00")", {"\0"s}},
      {R"("\xZZ")", {"xZZ"}},  // not two hex digits: "\x" is just 'x'
      {R"("\x4")", {"x4"}},
      {R"("\n\r\t\b\a\\\"\q")", {"\n\r\t\b\a\\\"q"}},
      {R"('it\'s')", {"it's"}},
      {R"('a\nb')", {R"(a\nb)"}},  // no escapes in single quotes but \'
      {"'\"'", {"\""}},
      {"\"'\"", {"'"}},
      {"ab\"c d\" e", {"abc d", "e"}},  // a quote inside a word opens quotes
      {"a\tb", {"a", "b"}},
      {"a\vb", {"a\vb"}},  // \v ends no word...
      {"\v\fa", {"a"}},    // ...but is skipped between words
      {"a\rb", {"a", "b"}},
      {"\"a\"\tb", {"a", "b"}},
      {"\"a\"\vb", {"a", "b"}},  // isspace() after a closing quote
      {"a\0b c"s, {"a"}},        // sdssplitargs reads a C string: NUL ends the line
      {R"(x "\"")", {"x", "\""}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.line);
    const std::string wire = c.line + "\r\n";
    const Got g = parseFresh(wire);
    CHECK(g.status == ParseStatus::kComplete);
    CHECK(g.args == c.args);
    CHECK(g.is_inline);
    CHECK(g.consumed == wire.size());
    checkEverySplit(wire);
  }
  for (const std::string& line :
       {R"("abc)"s, "'abc"s, R"("abc"x)"s, "'abc'x"s, R"("abc\")"s, "\"ab\0c\""s, R"(x "\)"s}) {
    CAPTURE(line);
    const Got g = parseFresh(line + "\n");
    CHECK(g.status == ParseStatus::kError);
    CHECK(g.error == ParseError::kUnbalancedQuotes);
  }
}

TEST_CASE("request: only one \\r before the \\n is stripped") {
  CHECK(parseFresh("GET a\r\r\n").args == Args{"GET", "a"});
  CHECK(parseFresh("GET \"a\r\"\r\n").args == Args{"GET", "a\r"});
}

// ---------------------------------------------------------------------------------------------
// Encoders

TEST_CASE("encoders write RESP2") {
  std::string out;
  appendSimple(out, "OK");
  CHECK(out == "+OK\r\n");
  out.clear();
  appendError(out, "ERR corral: request too large");
  CHECK(out == "-ERR corral: request too large\r\n");
  out.clear();
  appendInteger(out, 0);
  appendInteger(out, -1);
  appendInteger(out, std::numeric_limits<int64_t>::max());
  appendInteger(out, std::numeric_limits<int64_t>::min());
  CHECK(out == ":0\r\n:-1\r\n:9223372036854775807\r\n:-9223372036854775808\r\n");
  out.clear();
  appendBulk(out, "a\0b"s);
  appendBulk(out, "");
  appendNullBulk(out);
  appendArrayHeader(out, 0);
  appendArrayHeader(out, 12);
  CHECK(out == "$3\r\na\0b\r\n$0\r\n\r\n$-1\r\n*0\r\n*12\r\n"s);
  out = "keep";
  appendCommand(out, {"GET", "k"});
  CHECK(out == "keep*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
}

// ---------------------------------------------------------------------------------------------
// Replies

struct ReplyGot {
  ParseStatus status;
  ParseError error;
  size_t consumed;
  ReplyType type;
  bool operator==(const ReplyGot&) const = default;
};

std::ostream& operator<<(std::ostream& os, const ReplyGot& g) {
  return os << "{" << g.status << " " << g.error << " consumed=" << g.consumed << " " << g.type
            << "}";
}

ReplyGot replyWith(ReplyParser& parser, std::string_view wire) {
  Copy copy(wire);
  const ReplyResult r = parser.parse(copy.data(), copy.size);
  CHECK(r.consumed <= copy.size);
  return {r.status, r.error, r.consumed, r.type};
}

ReplyGot replyFresh(std::string_view wire, const Limits& limits = Limits{}) {
  ReplyParser parser(limits);
  return replyWith(parser, wire);
}

void checkEveryReplySplit(std::string_view wire, const Limits& limits = Limits{}) {
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

struct ReplyCase {
  std::string wire;
  size_t consumed;
  ReplyType type;
};

const std::vector<ReplyCase>& validReplies() {
  static const std::vector<ReplyCase> kCases = {
      {"+OK\r\n", 5, ReplyType::kSimpleString},
      {"+\r\n", 3, ReplyType::kSimpleString},
      {"+a\rb\nc\r\n", 8, ReplyType::kSimpleString},  // lone CR/LF are content, as in hiredis
      {"-ERR unknown command 'FOO'\r\n", 28, ReplyType::kError},
      {":0\r\n", 4, ReplyType::kInteger},
      {":-123\r\n", 7, ReplyType::kInteger},
      {":9223372036854775807\r\n", 22, ReplyType::kInteger},
      {":-9223372036854775808\r\n", 23, ReplyType::kInteger},
      {"$5\r\nhello\r\n", 11, ReplyType::kBulkString},
      {"$0\r\n\r\n", 6, ReplyType::kBulkString},
      {"$-1\r\n", 5, ReplyType::kBulkString},
      {"$7\r\na\0\r\n\r\nb\r\n"s, 13, ReplyType::kBulkString},
      {"*-1\r\n", 5, ReplyType::kArray},
      {"*0\r\n", 4, ReplyType::kArray},
      {"*2\r\n$1\r\na\r\n:1\r\n", 15, ReplyType::kArray},
      {"*3\r\n*1\r\n+a\r\n*0\r\n*2\r\n$-1\r\n*-1\r\n", 30, ReplyType::kArray},
      {"_\r\n", 3, ReplyType::kNull},
      {"#t\r\n", 4, ReplyType::kBoolean},
      {"#f\r\n", 4, ReplyType::kBoolean},
      {",3.14\r\n", 7, ReplyType::kDouble},
      {",-inf\r\n", 7, ReplyType::kDouble},
      {",nan\r\n", 6, ReplyType::kDouble},
      {"(3492890328409238509324850943850943825024385\r\n", 46, ReplyType::kBigNumber},
      {"!21\r\nSYNTAX invalid syntax\r\n", 28, ReplyType::kBulkError},
      {"=15\r\ntxt:Some string\r\n", 22, ReplyType::kVerbatim},
      {"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n", 29, ReplyType::kMap},
      {"%0\r\n", 4, ReplyType::kMap},
      {"~3\r\n:1\r\n:2\r\n:3\r\n", 16, ReplyType::kSet},
      {">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n", 36, ReplyType::kPush},
      // An attribute and the reply it annotates are one frame, typed by the reply.
      {"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
       "*2\r\n:2039123\r\n:9543892\r\n",
       81, ReplyType::kArray},
      {"|1\r\n+ttl\r\n:3600\r\n$1\r\nv\r\n", 24, ReplyType::kBulkString},
      {"|0\r\n+OK\r\n", 9, ReplyType::kSimpleString},
      {"|1\r\n|1\r\n+a\r\n+b\r\n+k\r\n+v\r\n:1\r\n", 28, ReplyType::kInteger},
      {"*2\r\n|1\r\n+ttl\r\n:3600\r\n$1\r\nv\r\n:5\r\n", 32, ReplyType::kArray},
      {"%1\r\n|1\r\n+a\r\n+b\r\n+k\r\n|1\r\n+c\r\n+d\r\n+v\r\n", 36, ReplyType::kMap},
      {"+OK\r\n+NEXT\r\n", 5, ReplyType::kSimpleString},
      {">2\r\n+invalidate\r\n*1\r\n$1\r\nk\r\n", 28, ReplyType::kPush},
  };
  return kCases;
}

TEST_CASE("reply: every type frames with the expected length and type") {
  for (const ReplyCase& c : validReplies()) {
    CAPTURE(c.wire);
    const ReplyGot g = replyFresh(c.wire);
    CHECK(g.status == ParseStatus::kComplete);
    CHECK(g.error == ParseError::kNone);
    CHECK(g.consumed == c.consumed);
    CHECK(g.type == c.type);
    checkEveryReplySplit(c.wire);
  }
}

TEST_CASE("reply: malformed replies are errors, at every split point too") {
  const std::vector<std::pair<std::string, ParseError>> cases = {
      {"?x\r\n", ParseError::kBadReplyType},
      {"\r\n", ParseError::kBadReplyType},
      {"@", ParseError::kBadReplyType},
      {";4\r\nabcd\r\n", ParseError::kBadReplyType},
      {".\r\n", ParseError::kBadReplyType},
      {"*2\r\n:1\r\nx\r\n", ParseError::kBadReplyType},
      {"$?\r\n;4\r\nabcd\r\n;0\r\n", ParseError::kBadReplyLength},  // streamed: unsupported
      {"*?\r\n:1\r\n.\r\n", ParseError::kBadReplyLength},
      {"%?\r\n", ParseError::kBadReplyLength},
      {"$abc\r\n", ParseError::kBadReplyLength},
      {"$\r\n", ParseError::kBadReplyLength},
      {"$05\r\nhello\r\n", ParseError::kBadReplyLength},
      {"$5\r\nhelloXX", ParseError::kBadReplyLength},
      {"$5\r\nhello\n\r", ParseError::kBadReplyLength},
      {"$-2\r\n", ParseError::kBadReplyLength},
      {"!-1\r\n", ParseError::kBadReplyLength},
      {"=-1\r\n", ParseError::kBadReplyLength},
      {"%-1\r\n", ParseError::kBadReplyLength},
      {"~-1\r\n", ParseError::kBadReplyLength},
      {"|-1\r\n", ParseError::kBadReplyLength},
      {"*-2\r\n", ParseError::kBadReplyLength},
      {"%9223372036854775807\r\n", ParseError::kBadReplyLength},
      {":abc\r\n", ParseError::kBadReplyLength},
      {":\r\n", ParseError::kBadReplyLength},
      {":1.5\r\n", ParseError::kBadReplyLength},
      {":99999999999999999999\r\n", ParseError::kBadReplyLength},
      {"#x\r\n", ParseError::kBadReplyLength},
      {"#tt\r\n", ParseError::kBadReplyLength},
      {"_x\r\n", ParseError::kBadReplyLength},
      {"_\rx", ParseError::kBadReplyLength},
      {"*1\r\n$1\r\nab\r\n", ParseError::kBadReplyLength},
  };
  for (const auto& c : cases) {
    const std::string& wire = c.first;
    const ParseError error = c.second;
    CAPTURE(wire);
    const ReplyGot g = replyFresh(wire);
    CHECK(g.status == ParseStatus::kError);
    CHECK(g.error == error);
    CHECK(g.consumed == 0);
    checkEveryReplySplit(wire);
  }
}

TEST_CASE("reply: nesting depth limit") {
  auto nested = [](int depth, const char* open) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += open;
    return s + ":1\r\n";
  };
  Limits limits;
  limits.max_depth = 3;
  CHECK(replyFresh(nested(3, "*1\r\n"), limits).status == ParseStatus::kComplete);
  ReplyGot g = replyFresh(nested(4, "*1\r\n"), limits);
  CHECK(g.status == ParseStatus::kError);
  CHECK(g.error == ParseError::kTooDeep);
  checkEveryReplySplit(nested(4, "*1\r\n"), limits);
  // Maps, sets, pushes and attributes count as levels too.
  CHECK(replyFresh("%1\r\n~1\r\n>1\r\n:1\r\n:2\r\n", limits).status == ParseStatus::kComplete);
  CHECK(replyFresh("%1\r\n~1\r\n>1\r\n*1\r\n:1\r\n:2\r\n", limits).error == ParseError::kTooDeep);
  CHECK(replyFresh("*1\r\n*1\r\n|1\r\n+a\r\n+b\r\n:1\r\n", limits).status ==
        ParseStatus::kComplete);
  CHECK(replyFresh("*1\r\n*1\r\n*1\r\n|1\r\n+a\r\n+b\r\n:1\r\n", limits).error ==
        ParseError::kTooDeep);
  // Empty aggregates open no level.
  CHECK(replyFresh("*1\r\n*1\r\n*1\r\n*0\r\n", limits).status == ParseStatus::kComplete);
  // Default: 128 levels.
  CHECK(replyFresh(nested(128, "*1\r\n")).status == ParseStatus::kComplete);
  CHECK(replyFresh(nested(129, "*1\r\n")).error == ParseError::kTooDeep);
}

TEST_CASE("reply: pipelined replies back to back") {
  std::string wire;
  for (const ReplyCase& c : validReplies()) wire += c.wire.substr(0, c.consumed);
  // Whole, then at every chunk size: the same sequence of frames.
  auto run = [&wire](size_t chunk) {
    ReplyParser parser;
    std::string buf;
    std::vector<ReplyGot> got;
    size_t fed = 0;
    for (;;) {
      for (;;) {
        Copy copy(buf);
        const ReplyResult r = parser.parse(copy.data(), copy.size);
        REQUIRE(r.status != ParseStatus::kError);
        if (r.status == ParseStatus::kIncomplete) {
          REQUIRE(r.consumed == 0);
          break;
        }
        got.push_back({r.status, r.error, r.consumed, r.type});
        buf.erase(0, r.consumed);
      }
      if (fed == wire.size()) break;
      const size_t n = std::min(chunk, wire.size() - fed);
      buf.append(wire, fed, n);
      fed += n;
    }
    CHECK(buf.empty());
    return got;
  };
  const std::vector<ReplyGot> whole = run(wire.size());
  REQUIRE(whole.size() == validReplies().size());
  for (size_t i = 0; i < whole.size(); ++i) {
    CHECK(whole[i].consumed == validReplies()[i].consumed);
    CHECK(whole[i].type == validReplies()[i].type);
  }
  for (size_t chunk : {1, 2, 3, 5, 7, 16, 64}) {
    CAPTURE(chunk);
    CHECK(run(chunk) == whole);
  }
}

TEST_CASE("reply: a 1 MiB bulk arriving in 64 KiB pieces is not rescanned") {
  const std::string wire = "$1048576\r\n" + std::string(1048576, 'b') + "\r\n";
  ReplyParser parser;
  const uint64_t before = parser.scanWork();
  size_t calls = 0;
  for (size_t k = 65536; k < wire.size(); k += 65536, ++calls) {
    REQUIRE(replyWith(parser, wire.substr(0, k)).status == ParseStatus::kIncomplete);
    CHECK(parser.midFrame());
  }
  const ReplyGot g = replyWith(parser, wire);
  ++calls;
  CHECK(g.status == ParseStatus::kComplete);
  CHECK(g.consumed == wire.size());
  CHECK(parser.scanWork() - before <= calls);  // one header parse per call
}

TEST_CASE("reply: a 100k-element array arriving in pieces is scanned once") {
  std::string wire = "*100000\r\n";
  for (int i = 0; i < 100000; ++i) {
    if (i % 2 == 0) {
      appendInteger(wire, i);
    } else {
      appendBulk(wire, std::to_string(i));
    }
  }
  ReplyParser parser;
  const uint64_t before = parser.scanWork();
  size_t calls = 0;
  for (size_t k = 4096; k < wire.size(); k += 4096, ++calls) {
    REQUIRE(replyWith(parser, wire.substr(0, k)).status == ParseStatus::kIncomplete);
  }
  const ReplyGot g = replyWith(parser, wire);
  ++calls;
  CHECK(g.status == ParseStatus::kComplete);
  CHECK(g.type == ReplyType::kArray);
  CHECK(g.consumed == wire.size());
  const uint64_t work = parser.scanWork() - before;
  CHECK(work >= 100001);
  CHECK(work <= 100001 + calls);
}

TEST_CASE("reply: a long simple string arriving in pieces is searched once") {
  const std::string wire = "-ERR " + std::string(1 << 20, 'e') + "\r\n";
  ReplyParser parser;
  const uint64_t before = parser.scanWork();
  for (size_t k = 65536; k < wire.size(); k += 65536) {
    REQUIRE(replyWith(parser, wire.substr(0, k)).status == ParseStatus::kIncomplete);
  }
  const ReplyGot g = replyWith(parser, wire);
  CHECK(g.status == ParseStatus::kComplete);
  CHECK(g.type == ReplyType::kError);
  CHECK(parser.scanWork() - before <= wire.size());
}

TEST_CASE("reply: resets after each frame and after errors") {
  ReplyParser parser;
  CHECK(replyWith(parser, "*2\r\n:1\r\n").status == ParseStatus::kIncomplete);
  CHECK(parser.midFrame());
  CHECK(replyWith(parser, "*2\r\n:1\r\n?").error == ParseError::kBadReplyType);
  CHECK_FALSE(parser.midFrame());
  CHECK(replyWith(parser, ":7\r\n") ==
        ReplyGot{ParseStatus::kComplete, ParseError::kNone, 4, ReplyType::kInteger});
  // A caller that hands back fewer bytes than before makes the parser start over.
  CHECK(replyWith(parser, "*3\r\n:1\r\n:2\r\n").status == ParseStatus::kIncomplete);
  CHECK(replyWith(parser, "+OK\r\n").type == ReplyType::kSimpleString);
  parser.reset();
  CHECK_FALSE(parser.midFrame());
}

TEST_CASE("reply: encoders produce frames the reply parser accepts") {
  std::string wire;
  appendArrayHeader(wire, 5);
  appendSimple(wire, "OK");
  appendError(wire, "ERR x");
  appendInteger(wire, -42);
  appendBulk(wire, "a\r\nb"s);
  appendNullBulk(wire);
  const ReplyGot g = replyFresh(wire);
  CHECK(g.status == ParseStatus::kComplete);
  CHECK(g.consumed == wire.size());
  CHECK(g.type == ReplyType::kArray);
  checkEveryReplySplit(wire);
}

TEST_CASE("FrameReader reads arrays, integers and bulk strings of a complete frame") {
  FrameReader rd("*3\r\n$3\r\nabc\r\n$-1\r\n:-42\r\n");
  int64_t n = 0;
  REQUIRE(rd.array(&n));
  CHECK(n == 3);
  std::string_view bytes;
  std::string_view raw;
  bool nil = true;
  REQUIRE(rd.bulk(&bytes, &nil, &raw));
  CHECK_FALSE(nil);
  CHECK(bytes == "abc");
  CHECK(raw == "$3\r\nabc\r\n");
  REQUIRE(rd.bulk(&bytes, &nil, &raw));
  CHECK(nil);
  CHECK(raw == "$-1\r\n");
  CHECK_FALSE(rd.atEnd());
  int64_t v = 0;
  REQUIRE(rd.integer(&v));
  CHECK(v == -42);
  CHECK(rd.atEnd());

  // A wrong type, a short bulk or a bad number fails, and so does every read after it.
  FrameReader wrong(":1\r\n");
  CHECK_FALSE(wrong.array(&n));
  CHECK_FALSE(wrong.integer(&v));
  FrameReader shortbulk("$5\r\nabc\r\n");
  CHECK_FALSE(shortbulk.bulk(&bytes, &nil));
  FrameReader badnum("*x\r\n");
  CHECK_FALSE(badnum.array(&n));
  FrameReader noend("$3\r\nabc");
  CHECK_FALSE(noend.bulk(&bytes, &nil));
}

}  // namespace
}  // namespace corral::codec
