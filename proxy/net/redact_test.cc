// redactConfigGetReply: RESP2 arrays and RESP3 maps, secrets at several positions and in any
// case, binary values, and every way a reply can be something else (errors, other shapes,
// truncation, corruption): those give false and leave `out` alone.
#include "proxy/net/redact.h"

#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace corral::net {
namespace {

using namespace std::string_literals;

std::string bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}

// A CONFIG GET reply from name/value pairs, as a RESP2 array or a RESP3 map.
std::string reply(const std::vector<std::pair<std::string, std::string>>& pairs, bool resp3) {
  std::string out = resp3 ? "%" + std::to_string(pairs.size()) + "\r\n"
                          : "*" + std::to_string(pairs.size() * 2) + "\r\n";
  for (const auto& [name, value] : pairs) out += bulk(name) + bulk(value);
  return out;
}

constexpr const char* kUntouched = "untouched";

// Returns what redaction produced, or kUntouched when it returned false (and then checks that
// it did leave `out` alone).
std::string redacted(std::string_view text) {
  // An exact-size heap copy, so ASan reports any read past the end of the reply (a std::string
  // may keep short text in a larger inline buffer).
  std::unique_ptr<char[]> copy(new char[text.size()]);
  std::memcpy(copy.get(), text.data(), text.size());
  std::string_view in(copy.get(), text.size());
  std::string out = kUntouched;
  if (!redactConfigGetReply(in, out)) {
    CHECK(out == kUntouched);
    return kUntouched;
  }
  CHECK(out != kUntouched);
  // What it produced is itself a valid reply with nothing left to hide.
  std::string again = kUntouched;
  CHECK_FALSE(redactConfigGetReply(out, again));
  return out;
}

TEST_CASE("redact: requirepass in a RESP2 array and a RESP3 map") {
  for (bool resp3 : {false, true}) {
    CAPTURE(resp3);
    CHECK(redacted(reply({{"requirepass", "hunter2"}}, resp3)) ==
          reply({{"requirepass", ""}}, resp3));
  }
  // The wire bytes, spelled out once.
  CHECK(redacted("*2\r\n$11\r\nrequirepass\r\n$7\r\nhunter2\r\n") ==
        "*2\r\n$11\r\nrequirepass\r\n$0\r\n\r\n");
  CHECK(redacted("%1\r\n$10\r\nmasterauth\r\n$2\r\npw\r\n") ==
        "%1\r\n$10\r\nmasterauth\r\n$0\r\n\r\n");
}

TEST_CASE("redact: secrets at the first, middle and last positions, any case") {
  const std::vector<std::pair<std::string, std::string>> in = {
      {"RequirePass", "pw1"},    {"maxmemory", "0"},           {"masterauth", "pw2"},
      {"requirepass-x", "keep"}, {"tls-key-file-pass", "tls"}, {"user", "masteruser"},
      {"MASTERUSER", "corral"},
  };
  const std::vector<std::pair<std::string, std::string>> want = {
      {"RequirePass", ""},       {"maxmemory", "0"},        {"masterauth", ""},
      {"requirepass-x", "keep"}, {"tls-key-file-pass", ""}, {"user", "masteruser"},
      {"MASTERUSER", ""},
  };
  for (bool resp3 : {false, true}) {
    CAPTURE(resp3);
    CHECK(redacted(reply(in, resp3)) == reply(want, resp3));
  }
}

TEST_CASE("redact: nothing to hide gives false") {
  for (bool resp3 : {false, true}) {
    CAPTURE(resp3);
    CHECK(redacted(reply({}, resp3)) == kUntouched);
    CHECK(redacted(reply({{"maxmemory", "0"}, {"appendonly", "no"}}, resp3)) == kUntouched);
    // Already empty (Redis without requirepass): nothing changes, so false.
    CHECK(redacted(reply({{"requirepass", ""}, {"masterauth", ""}}, resp3)) == kUntouched);
    // A secret name as a *value* is not a name.
    CHECK(redacted(reply({{"foo", "requirepass"}, {"bar", "x"}}, resp3)) == kUntouched);
  }
}

TEST_CASE("redact: values are binary-safe; lengths are parsed, not searched") {
  // A value that looks like a whole secret entry, and a secret value holding CRLF and NUL.
  const std::string fake = "\r\n$11\r\nrequirepass\r\n$2\r\npw\r\n";
  const std::string secret = "a\r\nb\0c\r\n$3\r\n"s;
  CHECK(redacted(reply({{"notes", fake}}, false)) == kUntouched);
  CHECK(redacted(reply({{"notes", fake}, {"masterauth", secret}, {"x", fake}}, false)) ==
        reply({{"notes", fake}, {"masterauth", ""}, {"x", fake}}, false));
  CHECK(redacted(reply({{"requirepass", secret}}, true)) == reply({{"requirepass", ""}}, true));
  // A large value.
  const std::string big(100000, 'x');
  CHECK(redacted(reply({{"maxmemory", "1"}, {"requirepass", big}}, false)) ==
        reply({{"maxmemory", "1"}, {"requirepass", ""}}, false));
}

TEST_CASE("redact: replies of other kinds give false") {
  for (const std::string& in : {
           ""s,
           "-ERR unknown subcommand 'GTE'. Try CONFIG HELP.\r\n"s,
           "-NOAUTH Authentication required.\r\n"s,
           "+OK\r\n"s,
           ":1\r\n"s,
           "$11\r\nrequirepass\r\n"s,
           "*-1\r\n"s,
           "%-1\r\n"s,
           "_\r\n"s,
           // An odd RESP2 array cannot be name/value pairs.
           "*3\r\n$11\r\nrequirepass\r\n$2\r\npw\r\n$1\r\nx\r\n"s,
           // Elements that are not bulk strings.
           "*2\r\n+requirepass\r\n$2\r\npw\r\n"s,
           "*2\r\n$11\r\nrequirepass\r\n+pw\r\n"s,
           "*2\r\n$11\r\nrequirepass\r\n$-1\r\n"s,
           "*2\r\n$11\r\nrequirepass\r\n*1\r\n$2\r\npw\r\n"s,
           "%1\r\n$11\r\nrequirepass\r\n=6\r\ntxt:pw\r\n"s,
           // A RESP3 attribute before the map is not handled (Redis sends none here).
           "|1\r\n$1\r\na\r\n$1\r\nb\r\n%1\r\n$11\r\nrequirepass\r\n$2\r\npw\r\n"s,
       }) {
    CAPTURE(in);
    CHECK(redacted(in) == kUntouched);
  }
}

TEST_CASE(
    "redact: truncated, padded and malformed replies give false without reading past the end") {
  const std::string good = reply({{"maxmemory", "0"}, {"requirepass", "hunter2"}}, false);
  REQUIRE(redacted(good) != kUntouched);
  // Every proper prefix (redacted() copies each to an exact-size heap block for ASan).
  for (size_t n = 0; n < good.size(); ++n) {
    CAPTURE(n);
    const std::string prefix = good.substr(0, n);
    CHECK(redacted(prefix) == kUntouched);
  }
  // Trailing bytes: not exactly one frame.
  CHECK(redacted(good + "+OK\r\n") == kUntouched);
  CHECK(redacted(good + "\r\n") == kUntouched);
  for (const std::string& in : {
           "*"s,
           "*\r\n"s,
           "*2"s,
           "*2\r"s,
           "*2\n$11\r\nrequirepass\r\n$2\r\npw\r\n"s,
           "*+2\r\n$11\r\nrequirepass\r\n$2\r\npw\r\n"s,
           "*2x\r\n$11\r\nrequirepass\r\n$2\r\npw\r\n"s,
           "*2\r\n$12\r\nrequirepass\r\n$2\r\npw\r\n"s,  // length one too long
           "*2\r\n$10\r\nrequirepass\r\n$2\r\npw\r\n"s,  // one too short
           "*2\r\n$11\r\nrequirepass\r\n$3\r\npw\r\n"s,  // value runs into the end
           "*2\r\n$11\r\nrequirepass\r\n$2\r\npwXY"s,    // no CRLF after the value
           "*2\r\n$11\r\nrequirepass\r\n$\r\npw\r\n"s,   // no digits
           "*2\r\n$11\r\nrequirepass\r\n$-2\r\npw\r\n"s,
           "*2\r\n$11\r\nrequirepass\r\n$99999999999999999999999\r\npw\r\n"s,
           "*2\r\n$11\r\nrequirepass\r\n$18446744073709551615\r\npw\r\n"s,
           "*99999999999999999999\r\n$11\r\nrequirepass\r\n$2\r\npw\r\n"s,
           "*18446744073709551614\r\n$11\r\nrequirepass\r\n$2\r\npw\r\n"s,
           "%9223372036854775807\r\n$11\r\nrequirepass\r\n$2\r\npw\r\n"s,
           "%2\r\n$11\r\nrequirepass\r\n$2\r\npw\r\n"s,  // one pair short
       }) {
    CAPTURE(in);
    CHECK(redacted(in) == kUntouched);
  }
}

TEST_CASE("redact: any single corrupted byte is handled (no crash; output only when well formed)") {
  for (bool resp3 : {false, true}) {
    const std::string good =
        reply({{"requirepass", "pw"}, {"maxmemory", "10"}, {"masteruser", "u"}}, resp3);
    for (size_t i = 0; i < good.size(); ++i) {
      for (char c : {'\0', '\r', '\n', '$', '*', '%', '0', '9', '-', 'x'}) {
        std::unique_ptr<char[]> bad_bytes(new char[good.size()]);
        std::memcpy(bad_bytes.get(), good.data(), good.size());
        bad_bytes[i] = c;
        const std::string_view bad(bad_bytes.get(), good.size());
        std::string out;
        if (redactConfigGetReply(bad, out)) {
          CAPTURE(bad);
          CHECK((out[0] == '*' || out[0] == '%'));
          CHECK(out.size() < bad.size());  // something was emptied
        }
      }
    }
  }
}

}  // namespace
}  // namespace corral::net
