// The outcome of PolicySet::decide for one request, and what the proxy must know about who is
// asking. The contract between the engine and the proxy's client:
//
//   kReject  --> reply "-" + error; nothing is sent
//   kWait    --> a global rate limit's credits are on their way (global_limits.h): nothing was
//                decided or counted; decide again once GlobalLimits wakes the proxy
//   kForward / kRewrite (args) --> send the request (or the rewritten one), then
//       ttl_followups   right behind it on the same connection (replies swallowed)
//       lease_deletes   likewise; inside MULTI also at once on a shared connection (a
//                       transaction would only run them at EXEC)
//       revoke          the keys whose in-flight local fills must not store their value
//       fill            a plan for the reply: a GET's miss (or stale value) or an MGET's misses
//       routing hints, hit/miss counters, an audit line to log
//
// The proxy encodes nothing itself: every command it sends on corral's behalf is in a batch,
// ready to enqueue. One Decision per worker, reused for every request: clear() keeps capacity,
// so a warm decision allocates nothing unless a request is rewritten or filled.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/policy_config.h"
#include "policies/clock.h"
#include "policies/command_batch.h"
#include "policies/rate_limiter.h"
#include "policies/template.h"
#include "policies/ttl.h"

namespace corral::policies {

struct CompiledLimit;
struct CompiledPolicy;
struct FillPolicy;
class GlobalLimits;
class Lease;
struct PolicyCounters;

// What a GET or MGET of keys of fill policies needs once Redis answers (fill.h has the flow).
// Pointers to FillPolicy point into the PolicySet that decided: whoever keeps the plan past the
// request keeps that set alive too.
struct FillPlan {
  // GET (HGETALL, HGET): the key's fill policy; nullptr when the request is not one to fill.
  const FillPolicy* policy = nullptr;
  std::string key;   // GET: the key
  std::string path;  // GET: its origin path (fill.path with the captures percent-encoded)
  // GET under freshness rules (stale_while_revalidate, stale_if_error, xfetch): the value's
  // PTTL is needed too, so `request` is sent instead of the GET. It is an EVAL whose reply is
  // {value, pttl}: "*2\r\n$<n>\r\n<value>\r\n:<pttl>\r\n", or "*2\r\n$-1\r\n:-2\r\n" on a miss.
  bool with_pttl = false;
  std::string request;
  // Which read it is: a GET (a string value), or an HGETALL / HGET of a policy that fills
  // hashes (fill_decode.h; field: HGET's field).
  enum class Read : uint8_t { kGet, kHgetall, kHget };
  Read read = Read::kGet;
  std::string field;

  // MGET: the keys whose policy fills on MGET. Each miss among them is filled on its own.
  struct Item {
    uint32_t pos = 0;  // index in MGET's reply array
    const FillPolicy* policy = nullptr;
    std::string key;
    std::string path;
  };
  std::span<const Item> items() const { return {items_.data(), item_count_}; }
  // A new item at the end; an entry of an earlier request is reused with its strings' capacity.
  Item& addItem();

  bool empty() const { return policy == nullptr && item_count_ == 0; }
  void clear();

 private:
  std::vector<Item> items_;  // entries past item_count_ are kept for reuse
  size_t item_count_ = 0;
};

struct Decision {
  enum class Verdict : uint8_t { kForward, kRewrite, kReject, kWait };
  Verdict verdict = Verdict::kForward;
  std::string error;  // kReject: e.g. "KEYNAME user: key 'x' ..." (no '-', no CRLF)
  std::vector<std::string_view> args;  // kRewrite: the whole new argv (views into `ttl`)
  size_t append_from = 0;  // kRewrite: args[0, append_from) are the request's own (see ttl.h)

  // PEXPIRE <key> <ms> NX of type writes under ttl rules (ttl.h), to send right behind the
  // request on the same connection; their replies are corral's, never the client's.
  CommandBatch ttl_followups;
  // DEL <lease key> of each written key of a distributed fill policy: other corrals' fills of
  // that key then cannot commit their (older) value, since their commit needs the lease.
  CommandBatch lease_deletes;
  // Every written key of a fill policy (views into the request): this worker's in-flight fills
  // of them must not store their value (FillEngine::revoke).
  std::vector<std::string_view> revoke;
  FillPlan fill;

  // Routing of a read: the policy's read_from (has_read_from); whether read-your-writes sends it
  // to the primary is for the proxy to check (it holds each client's recent writes).
  bool has_read_from = false;
  config::PolicyReadFrom read_from = config::PolicyReadFrom::kPrimary;
  int64_t read_your_writes_ms = 0;  // of the key's policy (reads and writes)
  std::string_view ryw_key;         // the key that read_your_writes applies to
  // GET-like single-key read of a policy key: the reply says hit or miss.
  PolicyCounters* hitmiss = nullptr;
  // What an audit rule (mode audit, on_violation audit, shadow limits, unmatched_keys audit,
  // commands.audit) saw in this request, first one only; "" = nothing. The proxy logs a sample.
  std::string audit;

  // Scratch of decide(), reused.
  std::vector<uint32_t> keys;                     // indexes of the key args
  std::vector<const CompiledPolicy*> key_policy;  // parallel to keys; nullptr: no policy
  std::vector<Capture> caps;
  std::array<std::string_view, RateLimiter::kMaxParts> bucket_parts;  // of one rate-limit bucket
  // checkLimits' first pass: each global bucket's limit and lease, in order.
  struct GlobalBucket {
    const CompiledLimit* limit = nullptr;
    Lease* lease = nullptr;
    bool shadow = false;
  };
  std::vector<GlobalBucket> global_buckets;
  std::vector<KeyTtlRules> ttl_rules;
  std::string scratch;
  TtlDecision ttl;

  // True when ttl_followups, lease_deletes, revoke or fill hold something (most requests have
  // none of them: the proxy checks this once).
  bool extras() const { return extras_; }

  // Ready for the next request (inline: every request calls it).
  void clear() {
    if (verdict != Verdict::kForward) [[unlikely]] {
      verdict = Verdict::kForward;
      error.clear();
      args.clear();
      append_from = 0;
    }
    if (extras_) [[unlikely]]
      clearExtras();
    if (!audit.empty()) [[unlikely]]
      audit.clear();
    has_read_from = false;
    read_your_writes_ms = 0;
    ryw_key = {};
    hitmiss = nullptr;
  }

 private:
  friend class PolicySet;
  void clearExtras();
  // Set by decide() when it fills ttl_followups, lease_deletes, revoke or fill: clear() skips
  // them otherwise (most requests have none).
  bool extras_ = false;
};

// Who is asking, for rate limits keyed by client.
struct RequestContext {
  std::string_view client;  // AUTH user, else CLIENT SETNAME name, else peer IP
  const Clock* clock = nullptr;
  Random* random = nullptr;
  GlobalLimits* global = nullptr;  // this worker's leases of scope global limits; nullptr: local
  // The request waited (kWait) and is decided again: what phases 1 and 2 counted the first
  // time is not counted twice.
  bool replay = false;
};

}  // namespace corral::policies
