// connection.h, the pure parts: ReplyReader (replies out of bytes fed in any pieces) and the
// texts of TLS failures.
#include "doctor/connection.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace corral::doctor;

namespace {

// A status, an error, an integer, a nil, a bulk string holding CRLF, an empty array and a nested
// array: what INFO, PING, SCAN, SLOWLOG GET and a refused command send back.
const std::string kWire =
    "+PONG\r\n"
    "-NOPERM no scan for you\r\n"
    ":42\r\n"
    "$-1\r\n"
    "$7\r\na\r\nb\r\nc\r\n"
    "*0\r\n"
    "*2\r\n$1\r\n0\r\n*2\r\n$6\r\nuser:1\r\n$5\r\njob:2\r\n";

// Every reply the bytes hold, fed in pieces cut at `cuts`.
std::vector<Reply> readAll(const std::string& wire, const std::vector<size_t>& cuts) {
  ReplyReader reader;
  std::vector<Reply> out;
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(wire.size());
  for (size_t end : ends) {
    reader.feed(wire.data() + from, end - from);
    from = end;
    Reply r;
    std::string err;
    int got = 0;
    while ((got = reader.next(&r, &err)) == 1) out.push_back(std::move(r));
    REQUIRE(got == 0);
  }
  return out;
}

void checkReplies(const std::vector<Reply>& r) {
  REQUIRE(r.size() == 7);
  CHECK(r[0]->type == REDIS_REPLY_STATUS);
  CHECK(replyText(r[0].get()) == "PONG");
  CHECK(r[1]->type == REDIS_REPLY_ERROR);
  CHECK(replyText(r[1].get()) == "NOPERM no scan for you");
  CHECK(r[2]->type == REDIS_REPLY_INTEGER);
  CHECK(r[2]->integer == 42);
  CHECK(r[3]->type == REDIS_REPLY_NIL);
  CHECK(r[4]->type == REDIS_REPLY_STRING);
  CHECK(replyText(r[4].get()) == "a\r\nb\r\nc");
  CHECK(r[5]->type == REDIS_REPLY_ARRAY);
  CHECK(r[5]->elements == 0);
  REQUIRE(r[6]->type == REDIS_REPLY_ARRAY);
  REQUIRE(r[6]->elements == 2);
  CHECK(replyText(r[6]->element[0]) == "0");
  REQUIRE(r[6]->element[1]->elements == 2);
  CHECK(replyText(r[6]->element[1]->element[0]) == "user:1");
  CHECK(replyText(r[6]->element[1]->element[1]) == "job:2");
}

}  // namespace

TEST_CASE("ReplyReader: whole, byte by byte, and cut at every point") {
  checkReplies(readAll(kWire, {}));
  std::vector<size_t> every;
  for (size_t i = 1; i < kWire.size(); ++i) every.push_back(i);
  checkReplies(readAll(kWire, every));
  for (size_t cut = 1; cut < kWire.size(); ++cut) {
    CAPTURE(cut);
    checkReplies(readAll(kWire, {cut}));
  }
}

TEST_CASE("ReplyReader: nothing yet is 0, not RESP is -1 with the reason") {
  ReplyReader reader;
  Reply r;
  std::string err;
  CHECK(reader.next(&r, &err) == 0);
  reader.feed("$5\r\nab", 6);
  CHECK(reader.next(&r, &err) == 0);
  CHECK(r == nullptr);
  ReplyReader bad;
  bad.feed("?what\r\n", 7);
  CHECK(bad.next(&r, &err) == -1);
  CHECK(err.rfind("protocol error: ", 0) == 0);
  CHECK(err.size() > std::string("protocol error: ").size());
}

TEST_CASE("tlsFailureText: OpenSSL's reason, then the setting that fixes it") {
  const std::string mismatch = "certificate verify failed (hostname mismatch)";
  std::string t = tlsFailureText(mismatch, "redis.example.com");
  CHECK(t.rfind(mismatch, 0) == 0);
  CHECK(t.find("does not name redis.example.com") != std::string::npos);
  CHECK(t.find("upstream.tls.server_name") != std::string::npos);
  t = tlsFailureText("certificate verify failed (IP address mismatch)", "10.0.0.1");
  CHECK(t.find("does not name 10.0.0.1") != std::string::npos);

  const std::string issuer = "certificate verify failed (unable to get local issuer certificate)";
  t = tlsFailureText(issuer, "localhost");
  CHECK(t.rfind(issuer, 0) == 0);
  CHECK(t.find("upstream.tls.ca_file") != std::string::npos);
  CHECK(tlsFailureText("certificate verify failed (self-signed certificate)", "h")
            .find("upstream.tls.ca_file") != std::string::npos);

  CHECK(tlsFailureText("tlsv13 alert certificate required", "h").find("cert_file") !=
        std::string::npos);
  CHECK(tlsFailureText("wrong version number", "h").find("tls-port") != std::string::npos);

  // A reason with no known fix is given as it is.
  CHECK(tlsFailureText("certificate verify failed (certificate has expired)", "h") ==
        "certificate verify failed (certificate has expired)");
}
