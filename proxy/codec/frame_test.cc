// Encoders and FrameReader.
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
