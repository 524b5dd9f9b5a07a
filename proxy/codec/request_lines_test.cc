// RequestParser, Redis 7.0.15's rules for length lines: judged once they end (a CR and one more
// byte), a NUL means never, too long past max_inline_bytes, resumed at every cut, and the
// smaller limits before AUTH. (The malformed-frame table is in request_parser_test.cc.)
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

TEST_CASE("request: a line is judged only once it has ended, as Redis does") {
  // Redis waits for the '\r' and one more byte before it looks at a length line or at the
  // element's '$'; until then nothing is wrong yet.
  for (const char* wire : {"*abc", "*abc\r", "*1\r\n:5", "*1\r\n:5\r", "*1\r\n$abc", "*1\n", "*-",
                           "*1\r\n$-1\r", "*1\r\nPING"}) {
    CAPTURE(wire);
    const Got g = parseFresh(wire);
    CHECK(g.status == ParseStatus::kIncomplete);
    CHECK(g.consumed == 0);
  }
}

TEST_CASE("request: a NUL before a line's end means it never ends") {
  // Redis finds line ends with strchr, which stops at a NUL: it waits, then fails past 64 KiB.
  Limits limits;
  limits.max_inline_bytes = 16;
  const std::vector<std::pair<std::string, ParseError>> cases = {
      {"*1\0\r\n$4\r\nPING\r\n"s, ParseError::kMultibulkLineTooLong},
      {"*1\r\n$4\0\r\nPING\r\n"s, ParseError::kBulkLineTooLong},
      {"*1\r\n\0$4\r\nPING\r\n"s, ParseError::kBulkLineTooLong},
  };
  for (const auto& c : cases) {
    const std::string& head = c.first;
    const ParseError error = c.second;
    CAPTURE(head);
    CHECK(parseFresh(head, limits).status == ParseStatus::kIncomplete);
    const std::string wire = head + std::string(20, 'x');  // the line is now too long
    const Got g = parseFresh(wire, limits);
    CHECK(g.status == ParseStatus::kError);
    CHECK(g.error == error);
    checkEverySplit(wire, limits);
  }
}

TEST_CASE("request: a length line without its end fails past max_inline_bytes") {
  // Like Redis with 64 KiB: the line may hold that many bytes (its type byte included) without
  // a '\r'; one more, and it is too long.
  Limits limits;
  limits.max_inline_bytes = 16;
  const std::string count = "*" + std::string(15, '1');
  CHECK(parseFresh(count, limits).status == ParseStatus::kIncomplete);
  CHECK(parseFresh(count + "\r", limits).status == ParseStatus::kIncomplete);
  CHECK(parseFresh(count + "\r\n", limits).error == ParseError::kInvalidMultibulkLength);
  CHECK(parseFresh(count + "1", limits).error == ParseError::kMultibulkLineTooLong);
  const std::string bulk = "*1\r\n$" + std::string(15, 'x');
  CHECK(parseFresh(bulk, limits).status == ParseStatus::kIncomplete);
  CHECK(parseFresh(bulk + "x", limits).error == ParseError::kBulkLineTooLong);
  CHECK(parseFresh(bulk + "\r\n", limits).error == ParseError::kInvalidBulkLength);
  checkEverySplit(count + "1", limits);
  checkEverySplit(bulk + "x", limits);
  checkEverySplit(count + "\r\n", limits);
  // The default is Redis's 64 KiB.
  const std::string nines = "*" + std::string(65535, '9');
  CHECK(parseFresh(nines).status == ParseStatus::kIncomplete);
  CHECK(parseFresh(nines + "\r\n").error == ParseError::kInvalidMultibulkLength);
  CHECK(parseFresh(nines + "9").error == ParseError::kMultibulkLineTooLong);
}

TEST_CASE("request: a long length line arriving in pieces is searched once") {
  RequestParser parser;
  const std::string wire = "*1\r\n$" + std::string(60000, '-') + "\r\n";
  const uint64_t before = parser.scanWork();
  for (size_t k = 4; k < wire.size(); k += 100) {
    CHECK(parseWith(parser, wire.substr(0, k)).status == ParseStatus::kIncomplete);
  }
  CHECK(parseWith(parser, wire).error == ParseError::kInvalidBulkLength);
  CHECK(parser.scanWork() - before <= wire.size() + 1000);
}

TEST_CASE("request: a length line cut right after its CR resumes correctly") {
  // Every pair of cuts through frames whose lines take the fast path, the digit path and the
  // general search: each prefix is incomplete, and the whole parses the same.
  for (const std::string& wire :
       {"*2\r\n$1\r\na\r\n$100\r\n"s + std::string(100, 'b') + "\r\n",
        "*2\r\n$1\rXa\r\n$3\r\rxyz\n\n"s, "*3\r\n$2\r\nab\r\n$10\r\n0123456789\r\n$0\r\n\r\n"s}) {
    CAPTURE(wire);
    const Got whole = parseFresh(wire);
    REQUIRE(whole.status == ParseStatus::kComplete);
    for (size_t a = 1; a < wire.size(); ++a) {
      for (size_t b = a; b < wire.size(); b += 3) {
        RequestParser parser;
        CHECK(parseWith(parser, wire.substr(0, a)).status == ParseStatus::kIncomplete);
        CHECK(parseWith(parser, wire.substr(0, b)).status == ParseStatus::kIncomplete);
        REQUIRE(parseWith(parser, wire) == whole);
        // The parser is clean for the next frame.
        REQUIRE(parseWith(parser, "*1\r\n$\r\n").error == ParseError::kInvalidBulkLength);
      }
    }
  }
}

TEST_CASE("request: before AUTH, Redis's smaller limits apply") {
  RequestParser parser;
  parser.setAuthRequired(true);
  CHECK(parseWith(parser, "*10\r\n").status == ParseStatus::kIncomplete);
  parser.reset();
  Got g = parseWith(parser, "*11\r\n");
  CHECK(g.error == ParseError::kUnauthenticatedMultibulkLength);
  CHECK(parseWith(parser, "*-5\r\n").status == ParseStatus::kComplete);  // skipped as before
  CHECK(parseWith(parser, "*2147483648\r\n").error == ParseError::kInvalidMultibulkLength);
  CHECK(parseWith(parser, "*1\r\n$16384\r\n").status == ParseStatus::kIncomplete);
  parser.reset();
  g = parseWith(parser, "*1\r\n$16385\r\n");
  CHECK(g.error == ParseError::kUnauthenticatedBulkLength);
  CHECK(parseWith(parser, "*1\r\n:16385\r\n").error == ParseError::kExpectedDollar);
  CHECK(parseWith(parser, "*1\r\n$-1\r\n").error == ParseError::kInvalidBulkLength);
  parser.setAuthRequired(false);
  CHECK(parseWith(parser, "*11\r\n").status == ParseStatus::kIncomplete);
}

}  // namespace
}  // namespace corral::codec
