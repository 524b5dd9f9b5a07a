// The passthrough verdict cache and its keys: time is passed in, so every expiry is exact.
#include "proxy/net/auth_cache.h"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace corral::net {
namespace {

constexpr std::string_view kOk = "+OK\r\n";
constexpr std::string_view kWrong =
    "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
constexpr std::string_view kNoPassword =
    "-ERR AUTH <password> called without any password configured for the default user. Are you "
    "sure your configuration is correct?\r\n";

CredentialHasher::Salt saltOf(uint8_t b) {
  CredentialHasher::Salt s{};
  s.fill(b);
  return s;
}

Sha256Digest keyN(const CredentialHasher& h, int i) {
  return h.key(false, "user" + std::to_string(i), "pw");
}

TEST_CASE("credential keys: form, user, password and salt all count; no ambiguity") {
  const CredentialHasher h(saltOf(1));
  const Sha256Digest base = h.key(false, "app", "pw");
  CHECK(h.key(false, "app", "pw") == base);  // deterministic within a process
  std::set<Sha256Digest> keys = {
      base,
      h.key(false, "app", "pw2"),
      h.key(false, "app2", "pw"),
      h.key(false, "ap", "ppw"),      // the same bytes split elsewhere
      h.key(false, "", "apppw"),      // AUTH "" apppw
      h.key(true, "", "pw"),          // AUTH pw
      h.key(false, "default", "pw"),  // AUTH default pw: another question than AUTH pw
      CredentialHasher(saltOf(2)).key(false, "app", "pw"),
  };
  CHECK(keys.size() == 8);
  // The one-argument form ignores the user it is given.
  CHECK(h.key(true, "whoever", "pw") == h.key(true, "", "pw"));
  // The key is not the plain SHA-256 of anything the client sent.
  CHECK(base != sha256("pw"));
  CHECK(base != sha256("apppw"));
  // Two hashers made by the default constructor draw different salts.
  CHECK(CredentialHasher().key(false, "app", "pw") != CredentialHasher().key(false, "app", "pw"));
}

TEST_CASE("verdicts: kept for the ttl, then asked again") {
  const CredentialHasher h(saltOf(3));
  VerdictCache c(10, 1000);
  std::string r;
  const Sha256Digest k = h.key(false, "app", "pw");
  CHECK_FALSE(c.find(k, 0, &r));
  c.put(k, kOk, 100);
  REQUIRE(c.find(k, 100, &r));
  CHECK(r == kOk);
  CHECK(c.find(k, 1099, &r));
  CHECK_FALSE(c.find(k, 1100, &r));  // exactly ttl later: gone
  CHECK(c.size() == 0);              // and dropped
  // A newer verdict replaces the older one and restarts its time.
  c.put(k, kOk, 2000);
  c.put(k, kWrong, 2500);
  REQUIRE(c.find(k, 3000, &r));
  CHECK(r == kWrong);
  CHECK(c.size() == 1);
  CHECK_FALSE(c.find(k, 3500, &r));
}

TEST_CASE("verdicts: only Redis's answers about the credentials are kept") {
  CHECK(VerdictCache::cacheable(kOk));
  CHECK(VerdictCache::cacheable(kWrong));
  CHECK(VerdictCache::cacheable(kNoPassword));
  CHECK_FALSE(VerdictCache::cacheable("-ERR corral: upstream 127.0.0.1:6379 unavailable\r\n"));
  CHECK_FALSE(VerdictCache::cacheable("-ERR corral: upstream 127.0.0.1:6379 timeout\r\n"));
  CHECK_FALSE(VerdictCache::cacheable("-LOADING Redis is loading the dataset in memory\r\n"));
  CHECK_FALSE(VerdictCache::cacheable("+OKAY\r\n"));
  CHECK_FALSE(VerdictCache::cacheable(""));
  const CredentialHasher h(saltOf(4));
  VerdictCache c(10, 1000);
  std::string r;
  c.put(h.key(true, "", "x"), "-ERR corral: upstream a unavailable\r\n", 0);
  CHECK(c.size() == 0);
  CHECK_FALSE(c.find(h.key(true, "", "x"), 0, &r));
  c.put(h.key(true, "", "x"), kNoPassword, 0);
  REQUIRE(c.find(h.key(true, "", "x"), 1, &r));
  CHECK(r == kNoPassword);
}

TEST_CASE("verdicts: a ttl of 0 keeps nothing") {
  const CredentialHasher h(saltOf(5));
  VerdictCache c(10, 0);
  std::string r;
  c.put(h.key(false, "a", "b"), kOk, 0);
  CHECK(c.size() == 0);
  CHECK_FALSE(c.find(h.key(false, "a", "b"), 0, &r));
}

TEST_CASE("verdicts: bounded, oldest out; refusals never push out acceptances") {
  const CredentialHasher h(saltOf(6));
  VerdictCache c(3, 1000000);
  std::string r;
  for (int i = 0; i < 3; ++i) c.put(keyN(h, i), kOk, i);
  // A flood of wrong passwords: at most 3 refusals are kept, and every acceptance stays.
  for (int i = 100; i < 200; ++i) c.put(keyN(h, i), kWrong, 10 + i);
  CHECK(c.size() == 6);
  for (int i = 0; i < 3; ++i) CHECK(c.find(keyN(h, i), 500, &r));
  for (int i = 197; i < 200; ++i) CHECK(c.find(keyN(h, i), 500, &r));
  CHECK_FALSE(c.find(keyN(h, 196), 500, &r));
  // A fourth acceptance pushes out the oldest one.
  c.put(keyN(h, 3), kOk, 600);
  CHECK_FALSE(c.find(keyN(h, 0), 601, &r));
  for (int i = 1; i < 4; ++i) CHECK(c.find(keyN(h, i), 601, &r));
  CHECK(c.size() == 6);
}

TEST_CASE("verdicts: expired entries make room before live ones are pushed out") {
  const CredentialHasher h(saltOf(7));
  VerdictCache c(2, 100);
  std::string r;
  c.put(keyN(h, 0), kOk, 0);
  c.put(keyN(h, 1), kOk, 50);
  c.put(keyN(h, 2), kOk, 120);  // key 0 expired at 100: it goes, key 1 stays
  CHECK(c.find(keyN(h, 1), 120, &r));
  CHECK(c.find(keyN(h, 2), 120, &r));
  CHECK(c.size() == 2);
}

TEST_CASE("verdicts: used from several threads at once") {
  const CredentialHasher h(saltOf(8));
  VerdictCache c(64, 1000000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c, &h, t] {
      std::string r;
      for (int i = 0; i < 2000; ++i) {
        const Sha256Digest k = keyN(h, (i * 7 + t) % 100);
        if (!c.find(k, i, &r)) c.put(k, (i % 3) ? kOk : kWrong, i);
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(c.size() <= 128);
}

}  // namespace
}  // namespace corral::net
