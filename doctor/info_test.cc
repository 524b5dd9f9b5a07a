// info.h: INFO text as Redis 7.0 writes it, with CRLF, headers and the keyspace section.
#include "doctor/info.h"

#include <doctest/doctest.h>

using corral::doctor::Info;
using corral::doctor::parseNumber;

TEST_CASE("INFO: fields, numbers, sub-fields; headers and junk skipped") {
  const Info info = Info::parse(
      "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n\r\n# Memory\r\n"
      "used_memory:1048576\r\nmaxmemory:0\r\nmem_fragmentation_ratio:3.25\r\n"
      "maxmemory_policy:noeviction\r\nno colon here\r\n:novalue\r\n# Keyspace\r\n"
      "db0:keys=12,expires=3,avg_ttl=4500\r\nlast:tail-without-crlf");
  CHECK(info.text("redis_version") == "7.0.15");
  CHECK(info.text("maxmemory_policy") == "noeviction");
  CHECK(info.number("used_memory") == 1048576.0);
  CHECK(info.number("maxmemory") == 0.0);
  CHECK(info.number("mem_fragmentation_ratio") == doctest::Approx(3.25));
  CHECK_FALSE(info.number("redis_version").has_value());  // "7.0.15" is not a number
  CHECK_FALSE(info.text("absent").has_value());
  CHECK_FALSE(info.text("# Server").has_value());
  CHECK(info.sub("db0", "keys") == 12.0);
  CHECK(info.sub("db0", "expires") == 3.0);
  CHECK(info.sub("db0", "avg_ttl") == 4500.0);
  CHECK_FALSE(info.sub("db0", "nope").has_value());
  CHECK(info.text("last") == "tail-without-crlf");
  CHECK(Info::parse("").empty());
}

TEST_CASE("parseNumber: what INFO writes, nothing else") {
  CHECK(parseNumber("0") == 0.0);
  CHECK(parseNumber("-1") == -1.0);
  CHECK(parseNumber("1.50") == 1.5);
  CHECK_FALSE(parseNumber("").has_value());
  CHECK_FALSE(parseNumber("12abc").has_value());
  CHECK_FALSE(parseNumber("abc").has_value());
}
