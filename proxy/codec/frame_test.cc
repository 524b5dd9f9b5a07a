// Encoders, FrameReader and readPubsubFrame. This binary counts heap allocations (operator new
// is replaced below) so that "allocation-free" is checked, not just claimed.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "proxy/codec/codec_test_util.h"
#include "proxy/codec/resp.h"
#include "tests/support/count_allocations.h"

namespace corral::codec {
namespace {

using namespace std::string_literals;
using namespace test;

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
}

TEST_CASE("FrameReader: a failed read fails every later one") {
  int64_t n = 0;
  int64_t v = 0;
  std::string_view bytes;
  bool nil = false;
  FrameReader wrong(":1\r\n");
  CHECK_FALSE(wrong.array(&n));
  CHECK_FALSE(wrong.ok());
  CHECK_FALSE(wrong.integer(&v));  // the right type, but too late
  CHECK_FALSE(wrong.atEnd());
  // Malformed elements: a short bulk, no CRLF after a payload, numbers Redis never writes,
  // negative lengths other than the nil, an unterminated line, nothing left.
  for (const char* frame : {"$5\r\nabc\r\n", "$3\r\nabcXY", "$3\r\nabc", "$03\r\nabc\r\n",
                            "$+3\r\nabc\r\n", "$-2\r\n", "$\r\n", "$3", ""}) {
    CAPTURE(frame);
    FrameReader rd(frame);
    CHECK_FALSE(rd.bulk(&bytes, &nil));
  }
  for (const char* frame : {"*x\r\n", "*-2\r\n", "*01\r\n", "*1", "%-1\r\n", ">-1\r\n"}) {
    CAPTURE(frame);
    FrameReader rd(frame);
    ReplyType t = ReplyType::kArray;
    CHECK_FALSE(rd.aggregate(&t, &n));
  }
  FrameReader ints(":-0\r\n");
  CHECK_FALSE(ints.integer(&v));
  FrameReader line("+OK");
  std::string_view text;
  CHECK_FALSE(line.simple(&text));
}

TEST_CASE("FrameReader: RESP3 headers, strings and errors") {
  FrameReader rd(
      ">3\r\n%1\r\n~2\r\n+OK\r\n-ERR bad thing\r\n!7\r\nERR bad\r\n=8\r\ntxt:a\r\nb\r\n$2\r\nhi\r\n"
      "+status\r\n=8\r\nmkd:text\r\n");
  ReplyType t = ReplyType::kSimpleString;
  int64_t n = 0;
  CHECK(rd.peek(&t));
  CHECK(t == ReplyType::kPush);
  REQUIRE(rd.aggregate(&t, &n));
  CHECK((t == ReplyType::kPush && n == 3));
  REQUIRE(rd.map(&n));
  CHECK(n == 1);
  REQUIRE(rd.aggregate(&t, &n));
  CHECK((t == ReplyType::kSet && n == 2));
  std::string_view text;
  REQUIRE(rd.simple(&text));
  CHECK(text == "OK");
  REQUIRE(rd.error(&text));
  CHECK(text == "ERR bad thing");
  REQUIRE(rd.error(&text));  // a bulk error
  CHECK(text == "ERR bad");
  std::string_view format;
  REQUIRE(rd.verbatim(&text, &format));
  CHECK(format == "txt");
  CHECK(text == "a\r\nb");
  // string(): a bulk, a simple string or a verbatim string's text.
  REQUIRE(rd.string(&text));
  CHECK(text == "hi");
  REQUIRE(rd.string(&text));
  CHECK(text == "status");
  REQUIRE(rd.string(&text));
  CHECK(text == "text");
  CHECK(rd.atEnd());
  CHECK_FALSE(rd.peek(&t));  // nothing left
  // string() refuses a nil bulk and other types; verbatim() a payload without "fmt:".
  FrameReader nil_bulk("$-1\r\n");
  CHECK_FALSE(nil_bulk.string(&text));
  FrameReader number(":1\r\n");
  CHECK_FALSE(number.string(&text));
  FrameReader bad_verbatim("=3\r\nabc\r\n");
  CHECK_FALSE(bad_verbatim.verbatim(&text));
}

TEST_CASE("FrameReader: skip() passes one whole element, however nested") {
  const std::string deep = [] {
    std::string s;
    for (int i = 0; i < 500; ++i) s += "*2\r\n:1\r\n";
    return s + "$3\r\nend\r\n";
  }();
  const std::string wire =
      "*4\r\n" + deep + "|1\r\n+ttl\r\n:5\r\n%1\r\n+k\r\n$1\r\nv\r\n_\r\n:7\r\n";
  FrameReader rd(wire);
  int64_t n = 0;
  REQUIRE(rd.array(&n));
  std::string_view raw;
  REQUIRE(rd.skip(&raw));
  CHECK(raw == deep);
  REQUIRE(rd.skip(&raw));  // an attribute and the map it annotates
  CHECK(raw == "|1\r\n+ttl\r\n:5\r\n%1\r\n+k\r\n$1\r\nv\r\n");
  REQUIRE(rd.skip());
  int64_t v = 0;
  REQUIRE(rd.integer(&v));
  CHECK(v == 7);
  CHECK(rd.atEnd());
  CHECK_FALSE(rd.skip());  // nothing left
  FrameReader truncated("*2\r\n:1\r\n");
  CHECK_FALSE(truncated.skip());
  FrameReader bad("?\r\n");
  CHECK_FALSE(bad.skip());
}

// ---------------------------------------------------------------------------------------------
// readPubsubFrame

struct PubsubCase {
  std::string name;
  std::string frame;
  bool ok;
  bool has_kind;
  std::string kind;
  bool has_count;
  int64_t count;
};

TEST_CASE("readPubsubFrame: the kind first, the subscription count last") {
  const std::vector<PubsubCase> cases = {
      {"message", "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n", true, true, "message",
       false, 0},
      {"pmessage", "*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$1\r\nx\r\n", true, true,
       "pmessage", false, 0},
      {"subscribe", "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", true, true, "subscribe", true,
       1},
      {"unsubscribe from nothing", "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n", true, true,
       "unsubscribe", true, 0},
      {"RESP3 push", ">3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:12\r\n", true, true, "psubscribe",
       true, 12},
      {"invalidate with keys", ">2\r\n$10\r\ninvalidate\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n", true,
       true, "invalidate", false, 0},
      {"invalidate all", ">2\r\n$10\r\ninvalidate\r\n_\r\n", true, true, "invalidate", false, 0},
      {"pong in subscribed mode", "*2\r\n$4\r\npong\r\n$0\r\n\r\n", true, true, "pong", false, 0},
      {"nested elements in between",
       "*4\r\n$1\r\nk\r\n*2\r\n*1\r\n:5\r\n$0\r\n\r\n%1\r\n+a\r\n:1\r\n:3\r\n", true, true, "k",
       true, 3},
      {"one bulk only", "*1\r\n$3\r\nabc\r\n", true, true, "abc", false, 0},
      {"one integer only", "*1\r\n:5\r\n", true, false, "", true, 5},
      {"kind not a bulk", "*2\r\n+message\r\n:1\r\n", true, false, "", true, 1},
      {"nil kind", "*2\r\n$-1\r\n:1\r\n", true, false, "", true, 1},
      {"empty array", "*0\r\n", false, false, "", false, 0},
      {"nil array", "*-1\r\n", false, false, "", false, 0},
      {"a map", "%1\r\n$1\r\na\r\n:1\r\n", false, false, "", false, 0},
      {"a bulk", "$7\r\nmessage\r\n", false, false, "", false, 0},
      {"trailing bytes", "*1\r\n:5\r\n:6\r\n", false, false, "", false, 0},
      {"truncated", "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n", false, false, "", false, 0},
      {"malformed inside", "*3\r\n$9\r\nsubscribe\r\n$2\r\nchXX:1\r\n", false, false, "", false, 0},
      {"empty", "", false, false, "", false, 0},
  };
  for (const PubsubCase& c : cases) {
    CAPTURE(c.name);
    PubsubFrame f;
    f.has_kind = f.has_count = true;  // must be reset on failure too
    CHECK(readPubsubFrame(c.frame, &f) == c.ok);
    CHECK(f.has_kind == c.has_kind);
    CHECK(f.kind == c.kind);
    CHECK(f.has_count == c.has_count);
    CHECK(f.count == c.count);
    if (f.has_kind) {  // a view into the frame
      CHECK(f.kind.data() >= c.frame.data());
      CHECK(f.kind.data() + f.kind.size() <= c.frame.data() + c.frame.size());
    }
  }
}

TEST_CASE("readPubsubFrame and FrameReader allocate nothing") {
  std::string big = ">5\r\n$9\r\nsubscribe\r\n";
  for (int i = 0; i < 3; ++i) {
    for (int d = 0; d < 100; ++d) big += "*1\r\n";
    big += "$1\r\nx\r\n";
  }
  big += ":42\r\n";
  PubsubFrame f;
  const uint64_t before = g_allocations.load(std::memory_order_relaxed);
  for (int i = 0; i < 100; ++i) REQUIRE(readPubsubFrame(big, &f));
  FrameReader rd(big);
  int64_t n = 0;
  REQUIRE(rd.push(&n));
  for (int64_t i = 0; i < n; ++i) REQUIRE(rd.skip());
  const uint64_t after = g_allocations.load(std::memory_order_relaxed);
  CHECK(after == before);
  CHECK((f.has_count && f.count == 42 && f.kind == "subscribe"));
}

}  // namespace
}  // namespace corral::codec
