#include "config/logging.h"

#include <doctest/doctest.h>

#include <string>

namespace corral::logging {
namespace {

std::string json(std::string_view s) {
  std::string out;
  appendJsonString(out, s);
  return out;
}

TEST_CASE("splitFields: the event, then key=value pairs whose values may hold spaces") {
  Fields f = splitFields("upstream down addr=10.0.0.5:6379 err=Connection refused attempt=3");
  CHECK(f.event == "upstream down");
  REQUIRE(f.fields.size() == 3);
  CHECK(f.fields[0].first == "addr");
  CHECK(f.fields[0].second == "10.0.0.5:6379");
  CHECK(f.fields[1].first == "err");
  CHECK(f.fields[1].second == "Connection refused");
  CHECK(f.fields[2].first == "attempt");
  CHECK(f.fields[2].second == "3");
}

TEST_CASE("splitFields: no pairs, an empty value, and '=' that starts no key") {
  CHECK(splitFields("listening").event == "listening");
  CHECK(splitFields("listening").fields.empty());
  Fields f = splitFields("x a= b=2 c=x=y 3=z");
  CHECK(f.event == "x");
  REQUIRE(f.fields.size() == 3);
  CHECK(f.fields[0].second == "");
  CHECK(f.fields[1].second == "2");
  CHECK(f.fields[2].first == "c");
  CHECK(f.fields[2].second == "x=y 3=z");        // "3" is not a key
  CHECK(splitFields("Upper=1").fields.empty());  // keys are lower case and follow a space
}

TEST_CASE("splitFields: a quoted value is one value, without its quotes") {
  Fields f = splitFields("upstream unavailable reason=\"connect failed: x=1 y\" failures=1");
  CHECK(f.event == "upstream unavailable");
  REQUIRE(f.fields.size() == 2);
  CHECK(f.fields[0].first == "reason");
  CHECK(f.fields[0].second == "connect failed: x=1 y");
  CHECK(f.fields[1].first == "failures");
  CHECK(f.fields[1].second == "1");
  Fields open = splitFields("e a=\"no close b=2");  // an unclosed quote: keys go on
  REQUIRE(open.fields.size() == 2);
  CHECK(open.fields[0].second == "\"no close");
}

TEST_CASE("appendJsonString escapes quotes, backslashes and control bytes") {
  CHECK(json("plain") == "\"plain\"");
  CHECK(json("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(json("l1\nl2\t\r") == "\"l1\\nl2\\t\\r\"");
  CHECK(json(std::string_view("\x01\x1f\x7f", 3)) == "\"\\u0001\\u001f\\u007f\"");
  CHECK(json(std::string_view("nul\0x", 5)) == "\"nul\\u0000x\"");
}

TEST_CASE("appendJsonString keeps UTF-8 and replaces bytes that are not") {
  CHECK(json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") ==
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  CHECK(json("\xff") == "\"\\ufffd\"");
  CHECK(json("\xc3") == "\"\\ufffd\"");                        // cut short
  CHECK(json("\xc0\xaf") == "\"\\ufffd\\ufffd\"");             // overlong '/'
  CHECK(json("\xed\xa0\x80") == "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate
  CHECK(json("a\xe2\x82z") == "\"a\\ufffd\\ufffdz\"");
}

TEST_CASE("parseFormat") {
  CHECK(parseFormat("text") == Format::kText);
  CHECK(parseFormat("json") == Format::kJson);
  CHECK_FALSE(parseFormat("JSON").has_value());
  CHECK_FALSE(parseFormat("").has_value());
}

}  // namespace
}  // namespace corral::logging
