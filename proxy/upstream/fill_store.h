// The control plane of fills: policies::Store as Lua scripts on the primary.
//
//   FillEngine --lookup/commit/commitNegative/release--> FillStore --EVAL on a shared primary
//   connection (pipelined with the data path, our codec)--> one reply --> decoded --> callback
//
// Each script is one atomic step in Redis, so two corrals can never both win a lease, and a
// commit whose token no longer holds the lease (it expired, or a client write revoked it)
// stores nothing. Not thread-safe: one FillStore per worker.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "policies/fill.h"
#include "proxy/upstream/upstream.h"

namespace corral::upstream {

class FillStore final : public policies::Store {
 public:
  // primary(key) returns the connection to run a script on (the worker's shared primary
  // connection of the configured db; with a cluster, the owner of the key's slot: a script's
  // keys share the data key's hash tag); called for every script with its first key.
  FillStore(std::function<Connection*(std::string_view key)> primary, policies::Timer& timer)
      : primary_(std::move(primary)), timer_(timer) {}

  void lookup(const policies::FillKeys& keys, const std::string& token, int64_t lock_ttl_ms,
              bool take_lease, std::function<void(policies::LookupResult)> done) override;
  void commit(const policies::FillKeys& keys, const std::string& token, const std::string& value,
              int64_t ttl_ms, std::function<void(bool)> done) override;
  void commitNegative(const policies::FillKeys& keys, const std::string& token, int64_t ttl_ms,
                      std::function<void(bool)> done) override;
  void release(const policies::FillKeys& keys, const std::string& token) override;
  void commitValidated(const policies::FillKeys& keys, const std::string& token,
                       const std::string& value, int64_t ttl_ms, const std::string& meta,
                       std::function<void(bool)> done) override;
  void extend(const policies::FillKeys& keys, const std::string& token, int64_t ttl_ms,
              const std::string& meta, std::function<void(bool)> done) override;
  void refreshLookup(const policies::FillKeys& keys, const std::string& token, int64_t lock_ttl_ms,
                     int64_t fresh_above_ms,
                     std::function<void(policies::LookupResult)> done) override;

  // Decodes the lookup script's reply (exposed for tests).
  static policies::LookupResult decodeLookup(std::string_view reply);
  // The same for a hash key (FillKeys::hash): {1, {field, value, ...}, pttl} -> kValue whose
  // value is HGETALL's RESP2 reply (fill_store_hash.cc).
  static policies::LookupResult decodeHashLookup(std::string_view reply);

 private:
  // fill_store_hash.cc: the scripts of keys.hash (HGETALL / HGET fills).
  void lookupHash(const policies::FillKeys& keys, const std::string& token, int64_t lock_ttl_ms,
                  bool take_lease, std::function<void(policies::LookupResult)> done);
  void refreshLookupHash(const policies::FillKeys& keys, const std::string& token,
                         int64_t lock_ttl_ms, int64_t fresh_above_ms,
                         std::function<void(policies::LookupResult)> done);
  void commitHash(const policies::FillKeys& keys, const std::string& token,
                  const std::string& value, int64_t ttl_ms, std::function<void(bool)> done);

  // EVAL script with keys and args; done gets the reply frame (or an error frame when the
  // primary is unavailable: then on the next loop turn, never from inside the call).
  void eval(std::string_view script, std::initializer_list<std::string_view> keys,
            std::initializer_list<std::string_view> args,
            std::function<void(std::string_view)> done);

  std::function<Connection*(std::string_view key)> primary_;
  policies::Timer& timer_;
  std::string scratch_;
};

}  // namespace corral::upstream
