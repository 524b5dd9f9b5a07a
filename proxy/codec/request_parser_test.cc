// RequestParser: tables of wire bytes, every split point of every frame, every limit, the
// oversize discard path, pipelining, restartability and round trips.
#include <doctest/doctest.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "proxy/codec/codec_test_util.h"
#include "proxy/codec/resp.h"

namespace corral::codec {
namespace {

using namespace std::string_literals;
using namespace test;

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
      {"any negative count is skipped", "*-5\r\n", 5, {}, false},
      {"the most negative count is skipped", "*-9223372036854775808\r\n", 23, {}, false},
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
      // Redis skips the byte after a length line's '\r' and the two after a payload unchecked.
      {"payload followed by any two bytes", "*1\r\n$4\r\nPINGxx*1", 14, {"PING"}, false},
      {"payload followed by LF LF", "*1\r\n$4\r\nPING\n\n", 14, {"PING"}, false},
      {"count line ended by CR and any byte", "*1\rX$4\r\nPING\r\n", 14, {"PING"}, false},
      {"length line ended by CR and any byte", "*1\r\n$4\r\rPING\r\n", 14, {"PING"}, false},
      {"length line ended by CR NUL", "*1\r\n$3\r\0abc\0\0"s, 13, {"abc"}, false},
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
  char got = 0;  // kExpectedDollar: the byte named in the error
};

// Each checked against redis-server 7.0.15 (tests/integration/test_protocol_parity.py sends the
// same bytes to both).
const std::vector<ErrorCase>& badRequests() {
  static const std::vector<ErrorCase> kCases = {
      {"*abc\r\n", ParseError::kInvalidMultibulkLength},
      {"*\r\n", ParseError::kInvalidMultibulkLength},
      {"*-\r\n", ParseError::kInvalidMultibulkLength},
      {"*-0\r\n", ParseError::kInvalidMultibulkLength},
      {"*+1\r\n", ParseError::kInvalidMultibulkLength},
      {"* 1\r\n", ParseError::kInvalidMultibulkLength},
      {"*01\r\n", ParseError::kInvalidMultibulkLength},
      {"*1 \r\n", ParseError::kInvalidMultibulkLength},
      {"*1\n\r\n", ParseError::kInvalidMultibulkLength},
      {"*2147483648\r\n", ParseError::kInvalidMultibulkLength},  // over INT_MAX
      {"*12345678901234567890\r\n", ParseError::kInvalidMultibulkLength},
      {"*9223372036854775808\r\n", ParseError::kInvalidMultibulkLength},
      {"*-9223372036854775809\r\n", ParseError::kInvalidMultibulkLength},
      {"*000000000000000000001\r\n", ParseError::kInvalidMultibulkLength},  // 21 characters
      {"*1\r\n:1\r\n", ParseError::kExpectedDollar, ':'},
      {"*1\r\n*1\r\n$1\r\na\r\n", ParseError::kExpectedDollar, '*'},
      {"*2\r\n$1\r\na\r\nGET\r\n", ParseError::kExpectedDollar, 'G'},
      {"*1\r\n\r\n", ParseError::kExpectedDollar, '\r'},
      {"*1\r\n\n\r\n", ParseError::kExpectedDollar, '\n'},
      {"*1\r\n:abc\r\n", ParseError::kExpectedDollar, ':'},  // the '$' is checked first
      {"*1\r\n$-1\r\n", ParseError::kInvalidBulkLength},
      {"*1\r\n$-0\r\n", ParseError::kInvalidBulkLength},
      {"*1\r\n$abc\r\n", ParseError::kInvalidBulkLength},
      {"*1\r\n$\r\n", ParseError::kInvalidBulkLength},
      {"*1\r\n$03\r\nfoo\r\n", ParseError::kInvalidBulkLength},
      {"*1\r\n$3 \r\nfoo\r\n", ParseError::kInvalidBulkLength},
      {"*1\r\n$536870913\r\n", ParseError::kInvalidBulkLength},  // over proto-max-bulk-len
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
    CHECK(g.got == c.got);
    CHECK(g.consumed == 0);
    checkEverySplit(c.wire);
  }
}

TEST_CASE("request: an error resets the parser") {
  RequestParser parser;
  CHECK(parseWith(parser, "*2\r\n$3\r\nGET\r\n").status == ParseStatus::kIncomplete);
  CHECK(parser.midFrame());
  CHECK(parseWith(parser, "*2\r\n$3\r\nGET\r\n:\r\n").error == ParseError::kExpectedDollar);
  CHECK_FALSE(parser.midFrame());
  CHECK(parseWith(parser, "*1\r\n$1\r\nx\r\n").args == Args{"x"});
}

TEST_CASE("request: error texts are Redis's") {
  CHECK(errorText(ParseError::kInvalidMultibulkLength) ==
        "ERR Protocol error: invalid multibulk length");
  CHECK(errorText(ParseError::kInvalidBulkLength) == "ERR Protocol error: invalid bulk length");
  CHECK(errorText(ParseError::kMultibulkLineTooLong) ==
        "ERR Protocol error: too big mbulk count string");
  CHECK(errorText(ParseError::kBulkLineTooLong) == "ERR Protocol error: too big bulk count string");
  CHECK(errorText(ParseError::kUnauthenticatedMultibulkLength) ==
        "ERR Protocol error: unauthenticated multibulk length");
  CHECK(errorText(ParseError::kUnauthenticatedBulkLength) ==
        "ERR Protocol error: unauthenticated bulk length");
  CHECK(errorText(ParseError::kUnbalancedQuotes) ==
        "ERR Protocol error: unbalanced quotes in request");
  CHECK(errorText(ParseError::kInlineTooLong) == "ERR Protocol error: too big inline request");
  CHECK(errorText(ParseError::kRequestTooLarge) == "ERR corral: request too large");
  CHECK(errorText(ParseError::kTooManyArgs) == "ERR corral: too many arguments (limits.max_args)");
  CHECK(errorText(ParseError::kReplyTooLarge) ==
        "ERR corral: reply too large (limits.max_reply_bytes)");
  CHECK(errorText(ParseError::kNone).empty());
  for (ParseError e :
       {ParseError::kReplyTooLarge, ParseError::kBadReplyType, ParseError::kBadReplyLength}) {
    CHECK(errorText(e).substr(0, 4) == "ERR ");
  }
  // The byte Redis names after "expected '$'"; CR and LF become spaces.
  ParseResult r;
  r.status = ParseStatus::kError;
  r.error = ParseError::kExpectedDollar;
  r.got = ':';
  CHECK(errorText(r) == "ERR Protocol error: expected '$', got ':'");
  r.got = '\r';
  CHECK(errorText(r) == "ERR Protocol error: expected '$', got ' '");
  r.got = '\n';
  CHECK(errorText(r) == "ERR Protocol error: expected '$', got ' '");
  r.got = '\xff';
  CHECK(errorText(r) == "ERR Protocol error: expected '$', got '\xff'");
  r.error = ParseError::kInvalidBulkLength;
  CHECK(errorText(r) == errorText(ParseError::kInvalidBulkLength));
}

// ---------------------------------------------------------------------------------------------
// Requests: limits

TEST_CASE("request: max_args") {
  Limits limits;
  limits.max_args = 2;
  CHECK(parseFresh("*2\r\n$1\r\na\r\n$1\r\nb\r\n", limits).args == Args{"a", "b"});
  // Over corral's limit (Redis 7 takes up to INT_MAX): known from the count line alone, and
  // the request is dropped as it arrives; the connection stays usable.
  const Got g = parseFresh("*3\r\n", limits);
  CHECK(g.status == ParseStatus::kOversize);
  CHECK(g.error == ParseError::kTooManyArgs);
  CHECK(g.consumed == 4);
  const std::string three = "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n";
  const std::string ping = "*1\r\n$4\r\nPING\r\n";
  const std::vector<Event> want = {
      {ParseStatus::kOversize, ParseError::kTooManyArgs, 4, {}, false},
      {ParseStatus::kDiscarded, ParseError::kNone, three.size() - 4, {}, false},
      {ParseStatus::kComplete, ParseError::kNone, ping.size(), {"PING"}, false},
      {ParseStatus::kIncomplete, ParseError::kNone, 0, {}, false},
  };
  checkSameEvents(drive(three + ping, 1000, limits), want);
  checkAllChunkings(three + ping, limits);
  // The default allows 1024*1024. Redis allows INT_MAX: with that limit, corral does too.
  CHECK(parseFresh("*1048576\r\n").status == ParseStatus::kIncomplete);
  CHECK(parseFresh("*1048577\r\n").error == ParseError::kTooManyArgs);
  Limits redis;
  redis.max_args = 2147483647;
  CHECK(parseFresh("*2147483647\r\n", redis).status == ParseStatus::kIncomplete);
  CHECK(parseFresh("*2147483648\r\n", redis).error == ParseError::kInvalidMultibulkLength);
  const Got g2 = parseFresh("*1048577\r\nPING\r\n", redis);
  CHECK(g2.error == ParseError::kExpectedDollar);
  CHECK(g2.got == 'P');
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

  SUBCASE("discarding frames like parsing: bytes after a payload unchecked, headers checked") {
    std::string bad_crlf = big;
    bad_crlf[bad_crlf.size() - 1] = 'X';
    std::vector<Event> events = drive(bad_crlf + ping, 7, limits);
    REQUIRE(events.size() == 4);
    CHECK(events[1].status == ParseStatus::kDiscarded);
    CHECK(events[2].args == Args{"PING"});
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
        CHECK(c.error == ParseError::kTooManyArgs);
      }
      const Got b = parseFresh(oneBulk(n), limits);
      if (max == 0) {
        CHECK(b.error == ParseError::kTooManyArgs);  // its one element is already too many
      } else if (n <= max) {
        CHECK(b.status == ParseStatus::kComplete);
      } else {
        CHECK(b.error == ParseError::kInvalidBulkLength);
      }
    }
  }
  for (const char* wire : {"*1\r\n$00\r\n\r\n", "*1\r\n$007\r\n", "*00\r\n", "*1\r\n$+1\r\n"}) {
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

}  // namespace
}  // namespace corral::codec
