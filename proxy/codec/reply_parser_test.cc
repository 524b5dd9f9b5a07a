// ReplyParser: every RESP2/RESP3 type, every split point, malformed replies, nesting,
// pipelining and the cost of frames that arrive in pieces.
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
// Replies

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

}  // namespace
}  // namespace corral::codec
