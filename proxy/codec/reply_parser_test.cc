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

std::string nested(size_t depth, const char* open, const char* leaf = ":1\r\n") {
  std::string s;
  s.reserve(depth * std::strlen(open) + std::strlen(leaf));
  for (size_t i = 0; i < depth; ++i) s += open;
  return s + leaf;
}

TEST_CASE("reply: any depth is framed, as Redis sends it") {
  // A Lua table nested 200 deep (defect 8), the 7,995 levels Redis reaches before "reached lua
  // stack limit" (the error is the innermost element), and far more: only the element count
  // matters, so depth costs neither memory nor a limit.
  for (size_t depth : {1, 128, 129, 200, 1000}) {
    CAPTURE(depth);
    const std::string wire = nested(depth, "*1\r\n");
    CHECK(replyFresh(wire) ==
          ReplyGot{ParseStatus::kComplete, ParseError::kNone, wire.size(), ReplyType::kArray});
    if (depth <= 200) checkEveryReplySplit(wire);
  }
  const std::string lua = nested(7995, "*1\r\n", "-ERR reached lua stack limit\r\n");
  CHECK(replyFresh(lua).consumed == lua.size());
  const std::string deep = nested(1000000, "*1\r\n");
  CHECK(replyFresh(deep).consumed == deep.size());
  // Maps, sets, pushes and attributes nest the same way, and an element may follow a deep one.
  const std::string mixed = "*4\r\n" + nested(300, "%1\r\n+k\r\n") + nested(300, ">2\r\n:0\r\n") +
                            nested(300, "|1\r\n+a\r\n+b\r\n~1\r\n") + "*3\r\n:1\r\n:2\r\n:3\r\n";
  CHECK(replyFresh(mixed + "+NEXT\r\n").consumed == mixed.size());
  checkAllReplyChunkings(nested(40, "*2\r\n:1\r\n") + "+OK\r\n" + nested(40, "|1\r\n+a\r\n+b\r\n"));
  // Empty aggregates are single elements.
  CHECK(replyFresh("*1\r\n*1\r\n*1\r\n*0\r\n").status == ParseStatus::kComplete);
}

TEST_CASE("reply: counts that can never be met make it wait, never overflow") {
  // 2^62 elements in each of several levels: the expected count saturates, so the reply simply
  // never ends (the upstream's command timeout deals with such a connection).
  std::string wire;
  for (int i = 0; i < 6; ++i) wire += "*4611686018427387904\r\n";
  wire += ":1\r\n";
  CHECK(replyFresh(wire).status == ParseStatus::kIncomplete);
  CHECK(replyFresh("%4611686018427387903\r\n:1\r\n").status == ParseStatus::kIncomplete);
  CHECK(replyFresh("%4611686018427387904\r\n").error == ParseError::kBadReplyLength);
}

// ---------------------------------------------------------------------------------------------
// Replies over max_reply_bytes (defect 9)

TEST_CASE("reply: over max_reply_bytes, the reply is discarded as it streams in") {
  Limits limits;
  limits.max_reply_bytes = 32;
  const std::string ok = "+OK\r\n";
  struct Case {
    std::string name;
    std::string wire;    // one reply
    size_t oversize_at;  // the start of the first element that ends past 32 bytes
    ReplyType type;
    // The type known when kOversize comes: none yet (kSimpleString) inside a leading attribute.
    ReplyType type_at_oversize = ReplyType::kSimpleString;
  };
  const std::vector<Case> cases = {
      {"bulk, known from its length", "$40\r\n" + std::string(40, 'v') + "\r\n", 0,
       ReplyType::kBulkString},
      {"bulk exactly one byte over", "$26\r\n" + std::string(26, 'v') + "\r\n", 0,
       ReplyType::kBulkString},
      {"array of small elements", "*20\r\n" + nested(19, ":12\r\n", ":12\r\n"), 30,
       ReplyType::kArray},
      {"the bulk of an MGET", "*3\r\n$3\r\nabc\r\n$30\r\n" + std::string(30, 'x') + "\r\n$-1\r\n",
       13, ReplyType::kArray},
      {"a long simple string", "+" + std::string(100, 's') + "\r\n", 0, ReplyType::kSimpleString},
      {"a long error inside an array", "*2\r\n:1\r\n-ERR " + std::string(50, 'e') + "\r\n", 8,
       ReplyType::kArray},
      {"a line whose CRLF straddles", "*2\r\n:1\r\n-" + std::string(22, 'e') + "\r\n", 8,
       ReplyType::kArray},
      {"deep nesting", nested(20, "*1\r\n"), 32, ReplyType::kArray},
      {"inside a top-level attribute", "|1\r\n+k\r\n$30\r\n" + std::string(30, 'a') + "\r\n:7\r\n",
       8, ReplyType::kInteger, ReplyType::kSimpleString},
      {"a map of verbatim strings",
       "%1\r\n=8\r\ntxt:abcd\r\n=20\r\ntxt:" + std::string(16, 'q') + "\r\n", 18, ReplyType::kMap},
  };
  for (Case c : cases) {
    CAPTURE(c.name);
    REQUIRE(c.wire.size() > 32);
    if (c.name != "inside a top-level attribute") c.type_at_oversize = c.type;
    // Fed whole with a small reply on each side, as on a shared connection.
    const std::string wire = ok + c.wire + ok;
    const std::vector<ReplyGot> want = {
        {ParseStatus::kComplete, ParseError::kNone, ok.size(), ReplyType::kSimpleString},
        {ParseStatus::kOversize, ParseError::kReplyTooLarge, c.oversize_at, c.type_at_oversize},
        {ParseStatus::kDiscarded, ParseError::kNone, c.wire.size() - c.oversize_at, c.type},
        {ParseStatus::kComplete, ParseError::kNone, ok.size(), ReplyType::kSimpleString},
        {ParseStatus::kIncomplete, ParseError::kNone, 0, ReplyType{}},
    };
    const std::vector<ReplyGot> got = driveReplies(wire, wire.size(), limits);
    CHECK(got == want);
    // The same at every split point and chunk size: nothing is kept while discarding.
    checkAllReplyChunkings(wire, limits);
  }
}

TEST_CASE("reply: exactly max_reply_bytes is not too large") {
  Limits limits;
  limits.max_reply_bytes = 32;
  const std::string bulk = "$25\r\n" + std::string(25, 'v') + "\r\n";
  REQUIRE(bulk.size() == 32);
  CHECK(replyFresh(bulk, limits).status == ParseStatus::kComplete);
  const std::string line = "+" + std::string(29, 's') + "\r\n";
  REQUIRE(line.size() == 32);
  CHECK(replyFresh(line, limits).status == ParseStatus::kComplete);
  checkEveryReplySplit(line, limits);
  // Without its CRLF after 32 bytes, a line is known to be longer.
  CHECK(replyFresh(line.substr(0, 31), limits).status == ParseStatus::kIncomplete);
  CHECK(replyFresh(line.substr(0, 31) + "s", limits).status == ParseStatus::kOversize);
  CHECK(replyFresh(line.substr(0, 30) + "\r\r", limits).status == ParseStatus::kOversize);
}

TEST_CASE("reply: a huge reply is dropped in pieces, memory bounded") {
  // 100 MB of MGET reply fed in 64 KiB reads to a parser whose limit is 1 MiB: every call
  // consumes what it was given (but a partial header), so the caller's buffer never grows.
  Limits limits;
  limits.max_reply_bytes = 1 << 20;
  ReplyParser parser(limits);
  const std::string value(100000, 'v');
  std::string element = "$100000\r\n" + value + "\r\n";
  const size_t count = 1000;
  std::string pending = "*1000\r\n";
  size_t sent = 0;
  size_t oversize = 0;
  size_t discarded = 0;
  size_t max_buffered = 0;
  std::string buf;
  while (true) {
    while (pending.size() < 65536 && sent < count) {
      pending += element;
      ++sent;
    }
    if (pending.empty() && buf.empty()) break;
    const size_t n = std::min<size_t>(65536, pending.size());
    buf += pending.substr(0, n);
    pending.erase(0, n);
    max_buffered = std::max(max_buffered, buf.size());
    const ReplyResult r = parser.parse(buf.data(), buf.size());
    REQUIRE(r.status != ParseStatus::kError);
    if (r.status == ParseStatus::kOversize) ++oversize;
    if (r.status == ParseStatus::kDiscarded) ++discarded;
    buf.erase(0, r.consumed);
    if (r.status == ParseStatus::kOversize) {
      const ReplyResult r2 = parser.parse(buf.data(), buf.size());
      buf.erase(0, r2.consumed);
    }
    if (pending.empty() && sent == count && r.status == ParseStatus::kDiscarded) break;
  }
  CHECK(oversize == 1);
  CHECK(discarded == 1);
  CHECK(buf.empty());
  CHECK(max_buffered <= (1 << 20) + 65536);
  CHECK_FALSE(parser.midFrame());
}

TEST_CASE("reply: framing errors while discarding still fail") {
  Limits limits;
  limits.max_reply_bytes = 16;
  for (const std::string& wire : {"$20\r\n" + std::string(20, 'x') + "XY"s,
                                  "*3\r\n$20\r\n" + std::string(20, 'x') + "\r\n?\r\n",
                                  "*2\r\n+" + std::string(20, 'x') + "\r\n:1x\r\n"}) {
    CAPTURE(wire);
    const std::vector<ReplyGot> got = driveReplies(wire, wire.size(), limits);
    REQUIRE(got.size() == 2);
    CHECK(got[0].status == ParseStatus::kOversize);
    CHECK(got[1].status == ParseStatus::kError);
    checkAllReplyChunkings(wire, limits);
  }
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
