// RequestParser, inline commands: sdssplitargs quoting, line ends, NULs, the line limit.
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
       {R"("abc)"s, "'abc"s, R"("abc"x)"s, "'abc'x"s, R"("abc\")"s, R"(x "\)"s}) {
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

TEST_CASE("request: an inline line holding a NUL never ends, as in Redis") {
  // Redis finds the '\n' with strchr, which stops at the NUL: it waits for more, and fails once
  // the line is longer than 64 KiB. (Redis then closes; nothing of the line ever runs.)
  Limits limits;
  limits.max_inline_bytes = 16;
  for (const std::string& wire : {"PI\0NG\r\nPING\r\n"s, "\0\n"s, "GET a\0\r\n"s}) {
    CAPTURE(wire);
    CHECK(parseFresh(wire, limits).status == ParseStatus::kIncomplete);
    const std::string more = wire + std::string(17, 'x');
    const Got g = parseFresh(more, limits);
    CHECK(g.status == ParseStatus::kError);
    CHECK(g.error == ParseError::kInlineTooLong);
    checkEverySplit(more, limits);
  }
  // A NUL after the '\n' belongs to the next line.
  CHECK(parseFresh("PING\r\n\0"s, limits).args == Args{"PING"});
  // Inside a multibulk a NUL is only data.
  CHECK(parseFresh("*1\r\n$3\r\na\0b\r\n"s, limits).args == Args{"a\0b"s});
}

}  // namespace
}  // namespace corral::codec
