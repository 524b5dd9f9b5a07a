// Passthrough authentication's memory of Redis's verdicts (auth.passthrough.cache_ttl). Pure:
// no I/O, no clock of its own (callers pass the loop's time), no logging.
//
//   AUTH [user] password --CredentialHasher::key()--> SHA-256(salt, form, user, password)
//   key --VerdictCache::find(now)--> "+OK\r\n" | "-WRONGPASS ...\r\n" | nothing (ask Redis)
//   Redis's reply --VerdictCache::put(key, reply, now)--> kept for cache_ttl
//
// Keys are salted hashes, so neither the cache nor the user pools keyed by the same digest hold a
// password in a form that can be searched or compared outside this process: the salt is random
// per process and never leaves it. The key covers the form of the AUTH too: `AUTH pw` and
// `AUTH default pw` are different questions (Redis answers the first with an error when the
// default user has no password, and the second with +OK).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "proxy/net/sha256.h"

namespace corral::net {

// Salted keys of credentials. Immutable after construction: one instance serves every worker.
class CredentialHasher {
 public:
  using Salt = std::array<uint8_t, 32>;
  CredentialHasher();  // a random salt (std::random_device)
  explicit CredentialHasher(const Salt& salt) : salt_(salt) {}  // tests
  // one_arg: `AUTH <password>` (user is then ignored); else `AUTH <user> <password>` or HELLO's
  // AUTH option. The encoding is unambiguous: the user's length precedes it.
  Sha256Digest key(bool one_arg, std::string_view user, std::string_view password) const;

 private:
  Salt salt_;
};

// Hash of a digest for unordered containers: its first bytes (it is already uniform).
struct DigestHash {
  size_t operator()(const Sha256Digest& d) const {
    size_t h = 0;
    std::memcpy(&h, d.data(), sizeof(h));
    return h;
  }
};

// Verdicts, kept for ttl_ms. Accepted and refused verdicts are bounded apart (max_entries each),
// oldest first out, so a flood of wrong passwords never pushes out the verdicts of the users
// that work. Thread-safe (a mutex; used only when a client authenticates, never per request).
class VerdictCache {
 public:
  VerdictCache(uint32_t max_entries, int64_t ttl_ms);

  // Worth keeping: +OK, and Redis's refusals of the credentials themselves (WRONGPASS, and the
  // error for `AUTH <password>` without a password configured). Not corral's own errors (an
  // upstream unavailable), which say nothing about the credentials.
  static bool cacheable(std::string_view reply);

  // The verdict for key into *reply; false when unknown or older than ttl_ms.
  bool find(const Sha256Digest& key, int64_t now_ms, std::string* reply);
  // Keeps a cacheable reply (others are ignored), replacing an older verdict for the same key.
  void put(const Sha256Digest& key, std::string_view reply, int64_t now_ms);

  size_t size() const;

 private:
  struct Entry {
    std::string reply;
    int64_t expires_ms = 0;
    bool ok = false;
    std::list<Sha256Digest>::iterator pos;  // in order_[ok]
  };
  void erase(std::unordered_map<Sha256Digest, Entry, DigestHash>::iterator it);

  const uint32_t max_entries_;
  const int64_t ttl_ms_;
  mutable std::mutex mu_;
  std::unordered_map<Sha256Digest, Entry, DigestHash> map_;
  // Keys by age, oldest first: [0] refused, [1] accepted. Every entry lives ttl_ms, so the
  // oldest is also the first to expire.
  std::list<Sha256Digest> order_[2];
};

}  // namespace corral::net
