// Cache-aside fill with single-flight: the decisions, over interfaces the proxy implements.
//
//   GET k -> Redis: nil --> FillEngine::onMiss(k)
//     local flight for k exists?  yes: attach (coalesced waiter)
//     no: Store::lookup(k)  [one script on the primary: value? negative? else take the lease]
//        value     -> every waiter gets it (someone filled it meanwhile)
//        negative  -> every waiter gets nil (origin said 404 recently)
//        lease won -> Origin::fetch(path) -> 200: Store::commit (token-checked) -> waiters
//                                          404: Store::commitNegative -> waiters get nil
//                                          error: Store::release; stale value or on_error
//        lease held (another corral fills) -> poll Store::lookup with backoff until the value
//                     appears or stampede.wait passes; then take over if the lease expired
//   a client write/delete of k -> revoke(k): the flight's commit must not store its value
//
//   GET k -> Redis: value, PTTL p --> onHit(k, p): stale (p < window)? or xfetch says so?
//        -> one background refresh (a flight without waiters), lease-gated like any other
//
// One FillEngine per worker thread (no locks); the workers of a process share their flights
// through a FlightObserver (fill_flights.h), so "local" means one flight per key per process.
// Every callback runs on the engine's thread. Time comes from Clock; sleeping from Timer;
// randomness from Random (lease tokens, xfetch), so every branch is testable with fakes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/policy_config.h"
#include "policies/clock.h"
#include "policies/fill_decode.h"
#include "policies/http_freshness.h"
#include "policies/siphash.h"
#include "policies/template.h"

namespace corral::policies {

// Keys a fill uses besides the data key: the lease and the negative entry. They live under
// kInternalPrefix, which clients cannot name as a key through corral, and their names carry a
// keyed digest of the data key under the deployment's fill secret (FillKeyNames): a client that
// could still write an arbitrary key (EVAL with the name in ARGV, a module command) cannot name
// a lease or a negative entry without the secret, so it cannot block or poison fills.
//   key with a hash tag ("cart:{42}:items")  -> "__corral:lease:{42}:<16 hex digits>"
//   key without any brace ("user:42")        -> "__corral:lease:{user:42}:<16 hex digits>"
// Both share the data key's Redis Cluster hash slot (so the lookup and commit scripts touch one
// slot). Limit: a key with braces but no valid tag ("a}b", "a{}b") is wrapped the same way,
// "{a}b}", whose tag is no longer the whole key: its fill keys may hash to another slot (a
// CROSSSLOT error under Redis Cluster). Such keys should not be filled in cluster mode.
// The names are not secret from whoever can list or watch the keyspace (KEYS, SCAN, MONITOR):
// deny those to clients that must not interfere with fills (global.commands.deny).
inline constexpr std::string_view kInternalPrefix = "__corral:";
struct FillKeys {
  std::string data;      // the client's key
  std::string lease;     // "__corral:lease:{tag}:<digest>" holds the winner's token, PX lock_ttl
  std::string negative;  // "__corral:neg:{tag}:<digest>" present while a 404 is remembered
  bool hash = false;     // the data key is a hash (fill_decode.h): values are HGETALL's reply
  // "__corral:val:{tag}:<digest>" (ttl.from_origin): the origin's validator of the value, as
  // sha1hex(value) + httpValidator(), with the value's TTL (see fill_freshness.h)
  std::string meta;
};

// The internal key names of one deployment. Every corral given the same secret names a key's
// lease and negative entry alike (distributed single-flight and revocations work across
// sidecars); a corral without a configured secret uses a random one of its own process.
// The digest is SipHash-2-4 of the data key, 64 bits as hex, under a 128-bit key derived from
// the secret (one per kind of internal key). Cheap to copy (a flight keeps its own).
class FillKeyNames {
 public:
  // The names under `secret` (any bytes; the config asks for at least 16).
  explicit FillKeyNames(std::string_view secret);
  // The names of this process when no secret is configured: random, the same for every policy
  // and every reload of this process, different in every other.
  static const FillKeyNames& processDefault();

  FillKeys keys(std::string_view key) const;
  void appendLease(std::string& out, std::string_view key) const;  // no allocation when warm
  void appendNegative(std::string& out, std::string_view key) const;
  void appendMeta(std::string& out, std::string_view key) const;

 private:
  FillKeyNames() = default;
  SipKey lease_;
  SipKey negative_;
  SipKey meta_;
};

// A fleet-unique lease token: 16 random bytes as 32 hex digits (4 draws of 32 bits).
std::string newLeaseToken(Random& random);

// What a GET under freshness rules runs instead of GET: the value and its PTTL in one atomic
// step (EVAL <script> 1 <key>), so a fill policy can tell a stale value from a fresh one.
inline constexpr std::string_view kGetWithPttlScript =
    "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}";
// The same under ttl.from_origin (EVAL <script> 2 <key> <meta key>): {value, pttl} or, when the
// meta key holds windows ("<40 hex digest><swr_ms>:<sie_ms>:<validator>", fill_freshness.h),
// {value, pttl, swr_ms, sie_ms}. The digest is not checked here (it would hash the value on
// every hit); a client's write through corral deletes the meta key instead.
inline constexpr std::string_view kGetWithPttlWindowsScript =
    "local v = redis.call('GET', KEYS[1]) local t = redis.call('PTTL', KEYS[1]) "
    "if v then local m = redis.call('GET', KEYS[2]) if m then "
    "local s, e = string.match(m, '^(%d+):(%d+):', 41) "
    "if s then return {v, t, tonumber(s), tonumber(e)} end end end return {v, t}";

// fill.path with "<name>" replaced by the key's capture of that name, percent-encoded so that no
// key can change the path's structure: RFC 3986 unreserved bytes are kept, everything else
// ('/', '?', '#', '%', spaces, ...) becomes %XX, and the dots of a "." or ".." segment made with
// a capture become %2E ("user:.." fetches /v1/users/%2E%2E, not /v1/users/..). nullopt when the
// path names a capture the template lacks, or a capture is empty.
std::optional<std::string> buildFillPath(std::string_view path_template,
                                         std::span<const Capture> caps);
// True when every <name> in path_template is a placeholder of the template (for load checks);
// otherwise sets *missing to the first unknown name.
bool fillPathValid(std::string_view path_template, const std::vector<std::string>& capture_names,
                   std::string* missing);

// What an origin answered.
struct OriginResult {
  // kNotModified: 304 to a conditional request (fetchConditional): the stored value is current.
  enum class Kind : uint8_t { kValue, kNotFound, kError, kNotModified };
  Kind kind = Kind::kError;
  std::string body;          // kValue
  std::string error;         // kError: one short reason: "timeout", "status 503", "overloaded", ...
  HttpCacheHeaders headers;  // kValue, kNotModified: the caching headers of the answer
};

// An HTTP origin (proxy/origin implements it with evhttp).
class Origin {
 public:
  virtual ~Origin() = default;
  // GET base_url + path. done runs exactly once on the caller's thread, possibly before
  // fetch returns (e.g. "overloaded" when max_in_flight requests are already running).
  virtual void fetch(const std::string& path, std::function<void(OriginResult)> done) = 0;
  // fetch() with the validator of the stored value (httpValidator: "E<etag>" sent as
  // If-None-Match, "L<date>" as If-Modified-Since; "": a plain fetch): a 304 answers
  // kNotModified. An origin that cannot send conditional requests may ignore the validator.
  virtual void fetchConditional(const std::string& path, const std::string& validator,
                                std::function<void(OriginResult)> done) {
    (void)validator;
    fetch(path, std::move(done));
  }
};

// What the store's lookup script found.
struct LookupResult {
  enum class Kind : uint8_t {
    kValue,      // the data key holds a value (value, pttl set)
    kNegative,   // the negative entry is present
    kLeaseWon,   // we hold the lease now (take_lease was true)
    kLeaseHeld,  // another token holds it (pttl: the lease's remaining time)
    kMissing,    // no value, no negative, no lease taken (take_lease was false)
    kError,      // Redis unreachable or an error reply (error set)
  };
  Kind kind = Kind::kError;
  std::string value;
  int64_t pttl = -1;
  std::string error;
  // refreshLookup's kLeaseWon: what keys.meta holds after the digest (encodeMeta), only while
  // the digest is the value's; else empty.
  std::string validator;
};

// Redis, for fills (the proxy runs these as scripts on the primary). For keys.hash the value
// (lookup's, commit's) is HGETALL's RESP2 reply, and commit replaces the whole hash.
class Store {
 public:
  virtual ~Store() = default;
  // One atomic step: value present -> kValue; negative present -> kNegative; else when
  // take_lease: SET lease token NX PX lock_ttl_ms -> kLeaseWon or kLeaseHeld; else kMissing.
  virtual void lookup(const FillKeys& keys, const std::string& token, int64_t lock_ttl_ms,
                      bool take_lease, std::function<void(LookupResult)> done) = 0;
  // Stores value with PX ttl_ms and deletes the lease, only if the lease still holds token
  // (token empty: only if the data key does not exist, SET NX). done(true) when written.
  virtual void commit(const FillKeys& keys, const std::string& token, const std::string& value,
                      int64_t ttl_ms, std::function<void(bool written)> done) = 0;
  // Sets the negative entry for ttl_ms (when ttl_ms > 0) and deletes the lease, under the same
  // token rule as commit.
  virtual void commitNegative(const FillKeys& keys, const std::string& token, int64_t ttl_ms,
                              std::function<void(bool written)> done) = 0;
  // Deletes the lease if it still holds token (after an origin error).
  virtual void release(const FillKeys& keys, const std::string& token) = 0;
  // lookup() for a refresh (onHit's background refresh, onMiss with a stale value): the data
  // key may still hold the very value being refreshed, which lookup() would report as kValue.
  // One atomic step: a value whose PTTL is above fresh_above_ms, or that has no TTL (someone
  // refreshed it already) -> kValue; else SET lease token NX PX lock_ttl_ms -> kLeaseWon or
  // kLeaseHeld. The negative entry is not consulted. A refresh always holds a lease: its
  // commit must overwrite the existing value, which only the token-checked commit does.
  virtual void refreshLookup(const FillKeys& keys, const std::string& token, int64_t lock_ttl_ms,
                             int64_t fresh_above_ms, std::function<void(LookupResult)> done) = 0;
  // commit() for ttl.from_origin: also sets keys.meta to sha1hex(value) + meta with the same
  // TTL in the same step.
  // meta: what follows the digest (encodeMeta: windows and validator).
  virtual void commitValidated(const FillKeys& keys, const std::string& token,
                               const std::string& value, int64_t ttl_ms, const std::string& meta,
                               std::function<void(bool written)> done) = 0;
  // After a 304: only while token holds the lease (deleted here) and keys.meta's digest is
  // still the data key's value: PEXPIRE the value to ttl_ms without touching it, and set
  // keys.meta to the same digest + meta with that TTL.
  virtual void extend(const FillKeys& keys, const std::string& token, int64_t ttl_ms,
                      const std::string& meta, std::function<void(bool extended)> done) = 0;
};

// Deferred calls on the worker's loop.
class Timer {
 public:
  virtual ~Timer() = default;
  // Runs cb once after delay_ms (>= 0). The returned id cancels it (cancel of a fired or
  // unknown id does nothing).
  virtual uint64_t after(int64_t delay_ms, std::function<void()> cb) = 0;
  virtual void cancel(uint64_t id) = 0;
};

// The fill settings of one policy, resolved at compile time (defaults applied).
struct FillPolicy {
  std::string name;  // policy name (metrics, errors)
  Origin* origin = nullptr;
  std::string origin_name;
  int64_t origin_timeout_ms = 1000;
  int64_t ttl_ms = 0;   // ttl.default (required with fill)
  double jitter = 0.1;  // ttl.jitter
  int64_t negative_ttl_ms = 0;
  config::SingleFlight single_flight = config::SingleFlight::kLocal;
  int64_t lock_ttl_ms = 2000;  // stampede.lock_ttl (default 2 x origin timeout)
  int64_t wait_ms = 2000;      // stampede.wait (default lock_ttl)
  int64_t swr_ms = 0;          // freshness.stale_while_revalidate
  int64_t sie_ms = 0;          // freshness.stale_if_error
  bool xfetch = false;
  double beta = 1.0;
  config::FillOnError on_error = config::FillOnError::kNil;
  uint64_t max_value_bytes = 0;  // 0 = no limit; larger bodies are served, not stored
  // ttl.from_origin: the origin's caching headers set the TTL (fill_freshness.h), clamped to
  // [ttl_min_ms, ttl_max_ms] (0: no bound); validators are kept for conditional refreshes.
  bool ttl_from_origin = false;
  int64_t ttl_min_ms = 0;
  int64_t ttl_max_ms = 0;
  bool audit = false;  // mode audit: count the fill it would make, never fill
  FillDecode decode;   // fill.decode, or kHash for HGETALL / HGET fills
  // How the lease and negative entry of a key are named (global.fill_secret).
  FillKeyNames names = FillKeyNames::processDefault();
  // The TTL to store: ttl_ms jittered, plus the freshness window (physical = soft + window).
  int64_t window_ms() const { return swr_ms > sie_ms ? swr_ms : sie_ms; }
};

// The freshness windows of one stored value when the origin chose them (ttl.from_origin:
// stale-while-revalidate / stale-if-error), read back beside the value on a hit.
struct ValueWindows {
  int64_t swr_ms = 0;
  int64_t sie_ms = 0;
};

// What the waiting client gets.
struct FillOutcome {
  enum class Kind : uint8_t { kValue, kNil, kError };
  Kind kind = Kind::kNil;
  std::string value;  // kValue (shared by every waiter: copied into each reply)
  std::string error;  // kError: "FILLERR <origin> <reason>" (no '-', no CRLF)
};

// Told of the flights waiters may join (single_flight local or distributed), so that the
// workers of one process share them (fill_flights.h). Called on the engine's thread.
class FlightObserver {
 public:
  virtual ~FlightObserver() = default;
  // The flight of key ended, before its waiters are called: o is the answer, or nullptr when it
  // failed (failed: what a waiter without a stale value gets, by on_error).
  virtual void onFlightEnd(std::string_view key, const FillOutcome* o,
                           const FillOutcome& failed) = 0;
  // Asked before the flight of key stores what the origin answered: true when a client write
  // on another worker revoked it.
  virtual bool revokedElsewhere(std::string_view key) = 0;
};

// Per-policy fill counters (process-wide atomics live in the Registry; the engine bumps them
// through this struct of pointers so tests can read plain values).
// A counter bumped by whichever worker's engine runs the fill and read by the admin thread.
struct FillCount {
  std::atomic<uint64_t> v{0};
  FillCount& operator++() {
    v.fetch_add(1, std::memory_order_relaxed);
    return *this;
  }
  FillCount& operator+=(uint64_t n) {
    v.fetch_add(n, std::memory_order_relaxed);
    return *this;
  }
  operator uint64_t() const { return v.load(std::memory_order_relaxed); }  // NOLINT: a count
};

// Per policy. The proxy points every worker's engine at one process-wide set per policy name
// (FillEngine::setCounterSource); without a source each engine keeps its own (tests).
struct FillCounters {
  FillCount fills;        // origin calls made
  FillCount fill_errors;  // origin errors and timeouts
  FillCount coalesced;    // waiters that joined an existing local flight
  FillCount lease_wins;
  FillCount lease_losses;   // lookups that found another corral's lease
  FillCount stale_served;   // stale values served (SWR or stale-if-error)
  FillCount negative_hits;  // misses answered by a remembered 404
  FillCount would_fill;     // audit mode
  FillCount not_stored;     // bodies over max_value_bytes, or commits refused by token
  FillCount refreshes;      // background refreshes started (SWR / xfetch)
  FillCount store_errors;   // lookups that failed or never answered (waiters: on_error)
  FillCount wait_timeouts;  // lease waits that ended without a value (waiters: on_error)
  FillCount worker_waits;   // coalesced waiters whose flight ran on another worker
  FillCount worker_wakes;   // workers handed a flight's result by the worker that ran it
  FillCount revalidated;    // 304 answers that extended the stored value (no body moved)
  FillCount origin_bytes;   // body bytes received from the origin (200 answers)
  // Origin latency of fills (200 and 404 answers), a Prometheus histogram.
  static constexpr size_t kLatencyBuckets = 10;
  static constexpr int64_t kLatencyBoundsMs[kLatencyBuckets] = {5,   10,  25,   50,   100,
                                                                250, 500, 1000, 2500, 5000};
  FillCount latency_bucket[kLatencyBuckets + 1];  // last: +Inf
  FillCount latency_sum_us;
  FillCount latency_count;
  void observeLatency(int64_t us) {
    size_t i = 0;
    while (i < kLatencyBuckets && us > kLatencyBoundsMs[i] * 1000) ++i;
    ++latency_bucket[i];
    latency_sum_us += static_cast<uint64_t>(us < 0 ? 0 : us);
    ++latency_count;
  }
};

class FillEngine {
 public:
  FillEngine(Store& store, Timer& timer, const Clock& clock, Random& random);
  ~FillEngine();

  using Done = std::function<void(const FillOutcome&)>;

  // A GET of `key` under policy p came back nil (stale == nullptr), or with a value past its
  // soft expiry that may only be served if the refresh fails (stale != nullptr, see onHit).
  // `path` is the origin path (buildFillPath). done runs exactly once (maybe synchronously,
  // e.g. in audit mode) unless the waiter detaches first. Returns a waiter id for detach().
  // The flight copies p; p.origin must outlive it. Every flight ends by its own deadline:
  // wait_ms + 100 ms for the lookup / lease-wait phase, origin_timeout_ms + 100 ms once the
  // origin is called. Destroying the engine drops pending waiters without calling them.
  uint64_t onMiss(const FillPolicy& p, std::string_view key, const std::string& path,
                  const std::string* stale, Done done);
  // The client went away: it will not be called; the flight goes on for the others.
  void detach(uint64_t waiter);

  // A GET hit of key with remaining physical PTTL pttl_ms (-1: no TTL). Decides:
  enum class HitAction : uint8_t {
    kServe,        // fresh (or xfetch did not draw): serve it
    kServeStale,   // past soft expiry within stale_while_revalidate, or xfetch drew a refresh:
                   // serve it; one background refresh (a flight without waiters) is running
    kWaitRefresh,  // past soft expiry, no stale_while_revalidate but stale_if_error: call
                   // onMiss(..., &value, ...) and serve what it gives (the value if it fails)
  };
  // windows: the value's own (ttl.from_origin), else nullptr: the policy's.
  HitAction onHit(const FillPolicy& p, std::string_view key, const std::string& path,
                  int64_t pttl_ms, const ValueWindows* windows = nullptr);
  // A client wrote or deleted key through this corral: an in-flight fill of it must not store
  // its value (its waiters still get it). The proxy also deletes the lease in Redis.
  void revoke(std::string_view key);

  // Lease waits (another corral fills the key) without polling every few ms: `watch(key)` is
  // called each time a flight starts or resumes waiting, so the proxy can make Redis tell it
  // when key changes (a CLIENT TRACKING read of it), and then calls wake(key): the waiting
  // flights look again at once. Polls go on, sparser (up to 100 ms), as the safety net. Unset:
  // polls every 2..10 ms.
  void setWaitWatcher(std::function<void(std::string_view key)> watch);
  void wake(std::string_view key);
  // Every waiting flight looks again (the proxy lost track of which keys changed).
  void wakeAll();
  // Told of joinable flights' ends and asked about revocations (nullptr: none). Not owned.
  void setFlightObserver(FlightObserver* observer);

  FillCounters& counters(const std::string& policy);  // created on first use
  // Where a policy's counters live (called once per policy name, on first use); the pointer
  // must outlive the engine.
  void setCounterSource(std::function<FillCounters*(const std::string&)> source);
  size_t inflight() const;  // flights in progress (for tests, metrics)
  // Fill latency moving average of a policy (xfetch's delta), ms; 0 before the first fill.
  double deltaMs(const std::string& policy) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral::policies
