// near_reads: which commands the near cache answers, the replies it makes from a string or hash
// entry in both protocols (the bytes Redis 7.0 sends for the same reads: RESP2 flat arrays and
// "$-1", RESP3 maps and "_"), and the RESP3 -> RESP2 rewriting of fill replies.
#include "proxy/nearcache/near_reads.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace corral::nearcache {
namespace {

// HGETALL's RESP3 reply for {f1: "a", f2: "bc"}.
const std::string kHash = "%2\r\n$2\r\nf1\r\n$1\r\na\r\n$2\r\nf2\r\n$2\r\nbc\r\n";
const std::string kString = "$5\r\nhello\r\n";

// The reply made from `entry` for the request `args`, or "(no)" when the entry cannot answer.
std::string from(std::string_view entry, std::vector<std::string_view> args, int proto) {
  const NearRead r = nearReadOf(args[0], args.size());
  std::string out = "keep:";
  if (!appendFromEntry(r, entry, args, proto, out)) {
    CHECK(out == "keep:");
    return "(no)";
  }
  return out.substr(5);
}

TEST_CASE("nearReadOf: the reads answered, with Redis's argument counts") {
  CHECK(nearReadOf("get", 2) == NearRead::kGet);
  CHECK(nearReadOf("get", 3) == NearRead::kNone);
  CHECK(nearReadOf("mget", 4) == NearRead::kMget);
  CHECK(nearReadOf("exists", 3) == NearRead::kExists);
  CHECK(nearReadOf("strlen", 2) == NearRead::kStrlen);
  CHECK(nearReadOf("hgetall", 2) == NearRead::kHgetall);
  CHECK(nearReadOf("hget", 3) == NearRead::kHget);
  CHECK(nearReadOf("hget", 2) == NearRead::kNone);
  CHECK(nearReadOf("hmget", 4) == NearRead::kHmget);
  CHECK(nearReadOf("hmget", 2) == NearRead::kNone);
  CHECK(nearReadOf("hlen", 2) == NearRead::kHlen);
  CHECK(nearReadOf("hexists", 3) == NearRead::kHexists);
  CHECK(nearReadOf("getex", 2) == NearRead::kNone);  // may write (EX/PERSIST)
  CHECK(nearReadOf("getrange", 4) == NearRead::kNone);
  CHECK(nearReadOf("mget", 1) == NearRead::kNone);
  CHECK(fills(NearRead::kGet));
  CHECK(fills(NearRead::kMget));
  CHECK(fills(NearRead::kHgetall));
  CHECK_FALSE(fills(NearRead::kHget));
  CHECK_FALSE(fills(NearRead::kStrlen));
}

TEST_CASE("storable: a value, never nil, an error or a missing hash") {
  CHECK(storable(kString));
  CHECK(storable("$0\r\n\r\n"));  // the empty string is a value
  CHECK(storable(kHash));
  CHECK_FALSE(storable("$-1\r\n"));
  CHECK_FALSE(storable("_\r\n"));
  CHECK_FALSE(storable("%0\r\n"));
  CHECK_FALSE(storable("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"));
  CHECK_FALSE(storable(":1\r\n"));
}

TEST_CASE("string entry: GET and STRLEN; hash reads refused") {
  for (int proto : {2, 3}) {
    CHECK(from(kString, {"get", "k"}, proto) == kString);
    CHECK(from(kString, {"strlen", "k"}, proto) == ":5\r\n");
    CHECK(from("$0\r\n\r\n", {"strlen", "k"}, proto) == ":0\r\n");
    CHECK(from(kString, {"hget", "k", "f"}, proto) == "(no)");
    CHECK(from(kString, {"hgetall", "k"}, proto) == "(no)");
    CHECK(from(kString, {"hlen", "k"}, proto) == "(no)");
  }
}

TEST_CASE("hash entry: HGETALL, HGET, HMGET, HLEN, HEXISTS in RESP2 and RESP3") {
  CHECK(from(kHash, {"hgetall", "k"}, 3) == kHash);
  CHECK(from(kHash, {"hgetall", "k"}, 2) ==
        "*4\r\n$2\r\nf1\r\n$1\r\na\r\n$2\r\nf2\r\n$2\r\nbc\r\n");
  for (int proto : {2, 3}) {
    const std::string nil = proto == 3 ? "_\r\n" : "$-1\r\n";
    CHECK(from(kHash, {"hget", "k", "f2"}, proto) == "$2\r\nbc\r\n");
    CHECK(from(kHash, {"hget", "k", "f"}, proto) == nil);
    CHECK(from(kHash, {"hget", "k", "a"}, proto) == nil);  // a value is not a field
    CHECK(from(kHash, {"hmget", "k", "f2", "x", "f1"}, proto) ==
          "*3\r\n$2\r\nbc\r\n" + nil + "$1\r\na\r\n");
    CHECK(from(kHash, {"hlen", "k"}, proto) == ":2\r\n");
    CHECK(from(kHash, {"hexists", "k", "f1"}, proto) == ":1\r\n");
    CHECK(from(kHash, {"hexists", "k", "bc"}, proto) == ":0\r\n");
    CHECK(from(kHash, {"get", "k"}, proto) == "(no)");
    CHECK(from(kHash, {"strlen", "k"}, proto) == "(no)");
  }
}

TEST_CASE("appendInProto: RESP3 as is; RESP2 spells nulls and maps its own way") {
  const std::string mget = "*3\r\n$1\r\na\r\n_\r\n$0\r\n\r\n";
  std::string out;
  CHECK(appendInProto(mget, 3, out));
  CHECK(out == mget);
  out.clear();
  CHECK(appendInProto(mget, 2, out));
  CHECK(out == "*3\r\n$1\r\na\r\n$-1\r\n$0\r\n\r\n");
  out.clear();
  CHECK(appendInProto("_\r\n", 2, out));
  CHECK(out == "$-1\r\n");
  out.clear();
  CHECK(appendInProto(kHash, 2, out));
  CHECK(out == "*4\r\n$2\r\nf1\r\n$1\r\na\r\n$2\r\nf2\r\n$2\r\nbc\r\n");
  out.clear();
  CHECK(appendInProto("%0\r\n", 2, out));
  CHECK(out == "*0\r\n");
  out.clear();
  CHECK(appendInProto("-WRONGTYPE Operation against a key\r\n", 2, out));
  CHECK(out == "-WRONGTYPE Operation against a key\r\n");
  out.clear();
  CHECK(appendInProto("*2\r\n%1\r\n$1\r\nk\r\n_\r\n:7\r\n", 2, out));  // nested
  CHECK(out == "*2\r\n*2\r\n$1\r\nk\r\n$-1\r\n:7\r\n");
  out.clear();
  CHECK_FALSE(appendInProto(",1.5\r\n", 2, out));  // no double in these reads' replies
}

}  // namespace
}  // namespace corral::nearcache
