// fill.decode: the JSON object reader (every JSON type, invalid bodies, limits), HGETALL's
// encoding of the members, and what decodeOriginBody makes of an origin's answer.
#include "policies/fill_decode.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "policies/fill.h"

namespace corral::policies {
namespace {

std::vector<JsonMember> parseOk(std::string_view body) {
  std::vector<JsonMember> m;
  std::string error;
  INFO(body);
  CHECK(parseJsonObject(body, kMaxHashFields, &m, &error));
  CHECK(error.empty());
  return m;
}

std::string parseError(std::string_view body, size_t max_members = kMaxHashFields) {
  std::vector<JsonMember> m;
  std::string error;
  INFO(body);
  CHECK_FALSE(parseJsonObject(body, max_members, &m, &error));
  CHECK(m.empty());
  return error;
}

TEST_CASE("fill_decode: every JSON type as a member's stored value") {
  const auto m = parseOk(
      R"( { "s": "plain", "i": -12, "f": 1.50e+3, "t": true, "n": null, "no": false,
          "o": {"a": [1, {"b": "c"}]}, "a": [ ], "e": {} } )");
  REQUIRE(m.size() == 9);
  const std::vector<std::pair<std::string, std::string>> want = {{"s", "plain"},
                                                                 {"i", "-12"},
                                                                 {"f", "1.50e+3"},
                                                                 {"t", "true"},
                                                                 {"n", "null"},
                                                                 {"no", "false"},
                                                                 {"o", R"({"a": [1, {"b": "c"}]})"},
                                                                 {"a", "[ ]"},
                                                                 {"e", "{}"}};
  for (size_t i = 0; i < want.size(); ++i) {
    CHECK(m[i].name == want[i].first);  // body order kept
    CHECK(m[i].value == want[i].second);
  }
}

TEST_CASE("fill_decode: string escapes are unescaped, nested text is kept as written") {
  const auto m =
      parseOk(R"({"q\"k": "a\"b\\c\/d\b\f\n\r\t", "u": "\u00e9\u20ac\ud83d\ude00", "x": ["\n"]})");
  REQUIRE(m.size() == 3);
  CHECK(m[0].name == "q\"k");
  CHECK(m[0].value == "a\"b\\c/d\b\f\n\r\t");
  CHECK(m[1].value == "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");  // é € 😀 as UTF-8
  CHECK(m[2].value == R"(["\n"])");
  CHECK(parseOk("{}").empty());
  CHECK(parseOk(" \t\r\n{ } \n").empty());
  CHECK(parseOk(R"({"z":"\u0000"})")[0].value == std::string("\0", 1));
  CHECK(parseOk("{\"b\":\"\xff\xfe\"}")[0].value == "\xff\xfe");  // bytes passed through
}

TEST_CASE("fill_decode: numbers follow RFC 8259 exactly") {
  for (const char* ok : {"0", "-0", "1", "10", "0.5", "-1.25", "1e5", "1E-5", "2.5e+10"}) {
    CHECK(parseOk(std::string("{\"n\":") + ok + "}")[0].value == ok);
  }
  for (const char* bad :
       {"01", "+1", ".5", "1.", "1e", "1e+", "-", "0x10", "NaN", "Infinity", "1.5.2", "--1"}) {
    const std::string e = parseError(std::string("{\"n\":") + bad + "}");
    CHECK(e.starts_with("body is not JSON ("));
  }
}

TEST_CASE("fill_decode: bodies that are not one JSON object") {
  CHECK(parseError("[1, 2]") == "body is not a JSON object");
  CHECK(parseError("\"text\"") == "body is not a JSON object");
  CHECK(parseError(" 42 ") == "body is not a JSON object");
  CHECK(parseError("null") == "body is not a JSON object");
  CHECK(parseError("") == "body is not JSON (expected a value at byte 0)");
  CHECK(parseError("<html>") == "body is not JSON (expected a value at byte 0)");
  CHECK(parseError("{\"a\":1} x") == "body is not JSON (bytes after the object at byte 8)");
  CHECK(parseError("{\"a\":1}{}") == "body is not JSON (bytes after the object at byte 7)");
  for (const char* bad : {"{",
                          "{\"a\"}",
                          "{\"a\":}",
                          "{\"a\":1,}",
                          "{,}",
                          "{a:1}",
                          "{'a':1}",
                          "{\"a\":1 \"b\":2}",
                          "{\"a\":[1,]}",
                          "{\"a\":tru}",
                          "{\"a\":nul}",
                          "{\"a\":\"x}",
                          "{\"a\":\"\\x\"}",
                          "{\"a\":\"\\u12\"}",
                          "{\"a\":\"\\ud800\"}",
                          "{\"a\":\"\\udc00\"}",
                          "{\"a\":\"\\ud800\\u0041\"}",
                          "{\"a\":\"tab\there\"}",
                          "{\"a\":1 // c\n}",
                          "{\"a\":[}",
                          "{\"a\":{\"b\":1}"}) {
    CHECK(parseError(bad).starts_with("body is not JSON ("));
  }
}

TEST_CASE("fill_decode: limits: depth, members, duplicates, size") {
  std::string deep(kMaxJsonDepth - 1, '[');
  deep.append(kMaxJsonDepth - 1, ']');
  CHECK(parseOk("{\"d\":" + deep + "}")[0].value == deep);  // depth 64 with the object
  std::string deeper(kMaxJsonDepth, '[');
  deeper.append(kMaxJsonDepth, ']');
  CHECK(parseError("{\"d\":" + deeper + "}").find("nested too deeply") != std::string::npos);

  CHECK(parseError(R"({"a":1,"b":2,"c":3})", 2) == "body has more than 2 members");
  std::vector<JsonMember> m;
  std::string error;
  CHECK(parseJsonObject(R"({"a":1,"b":2})", 2, &m, &error));
  CHECK(parseError(R"({"a":1,"b":2,"a":3})") == "body has a duplicate member 'a'");

  std::string big = "{\"a\":\"" + std::string(kMaxDecodeBytes, 'x') + "\"}";
  CHECK(parseError(big) == "body larger than 8388608 bytes to decode");
}

TEST_CASE("fill_decode: HGETALL's RESP2 encoding of the members") {
  std::string out = "junk";
  encodeHashReply(parseOk(R"({"name":"Ann","age":42,"tags":["a"]})"), &out);
  CHECK(out ==
        "*6\r\n$4\r\nname\r\n$3\r\nAnn\r\n$3\r\nage\r\n$2\r\n42\r\n$4\r\ntags\r\n$5\r\n"
        "[\"a\"]\r\n");
}

OriginResult value(std::string body) {
  OriginResult r;
  r.kind = OriginResult::Kind::kValue;
  r.body = std::move(body);
  return r;
}

TEST_CASE("fill_decode: decodeOriginBody per decode kind") {
  FillDecode raw;
  OriginResult r = value("{not json");
  decodeOriginBody(raw, r);
  CHECK(r.kind == OriginResult::Kind::kValue);
  CHECK(r.body == "{not json");

  FillDecode field{FillDecode::Kind::kJsonField, "price"};
  r = value(R"({"price": "9.90", "n": 1})");
  decodeOriginBody(field, r);
  CHECK(r.kind == OriginResult::Kind::kValue);
  CHECK(r.body == "9.90");
  r = value(R"({"price": {"eur": 9.9}})");
  decodeOriginBody(field, r);
  CHECK(r.body == R"({"eur": 9.9})");
  r = value(R"({"cost": 1})");
  decodeOriginBody(field, r);
  CHECK(r.kind == OriginResult::Kind::kError);
  CHECK(r.error == "body has no member 'price'");
  CHECK(r.body.empty());
  r = value("[1]");
  decodeOriginBody(field, r);
  CHECK(r.kind == OriginResult::Kind::kError);
  CHECK(r.error == "body is not a JSON object");

  FillDecode hash{FillDecode::Kind::kHash, {}};
  r = value(R"({"a": "x", "b": null})");
  decodeOriginBody(hash, r);
  CHECK(r.kind == OriginResult::Kind::kValue);
  CHECK(r.body == "*4\r\n$1\r\na\r\n$1\r\nx\r\n$1\r\nb\r\n$4\r\nnull\r\n");
  r = value(" {} ");
  decodeOriginBody(hash, r);
  CHECK(r.kind == OriginResult::Kind::kNotFound);  // Redis has no empty hash
  r = value("oops");
  decodeOriginBody(hash, r);
  CHECK(r.kind == OriginResult::Kind::kError);
  CHECK(r.error == "body is not JSON (expected a value at byte 0)");
  std::string many = "{";
  for (size_t i = 0; i <= kMaxHashFields; ++i) {
    many += (i ? ",\"" : "\"") + std::to_string(i) + "\":0";
  }
  r = value(many + "}");
  decodeOriginBody(hash, r);
  CHECK(r.error == "body has more than 10000 members");

  // Other answers are left alone.
  OriginResult nf;
  nf.kind = OriginResult::Kind::kNotFound;
  decodeOriginBody(hash, nf);
  CHECK(nf.kind == OriginResult::Kind::kNotFound);
}

}  // namespace
}  // namespace corral::policies
