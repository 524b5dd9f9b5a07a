// The policy engine: a compiled, immutable PolicySet and the per-request decision.
//
//   PolicyConfig --compile (main thread, off the request path)--> shared_ptr<const PolicySet>
//        workers pick up a new set between loop turns; requests in flight keep the old one
//
//   request --decide--> deny?  --> keys (command table) --> Matcher: policy per key
//       --> naming (-KEYNAME) --> rate limits (-RATELIMITED) --> TTL rules (rewrite / -TTL)
//       --> routing hints, follow-up PEXPIREs, hit/miss accounting
//
// Counters and rate-limit buckets live in a Registry that outlives every PolicySet: a policy
// or limit keeps its counters (and its buckets) across reloads as long as it keeps its name.
// PolicySets are read by every worker thread at once and never change after compile().
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/policy_config.h"
#include "policies/clock.h"
#include "policies/decision.h"
#include "policies/fill.h"
#include "policies/rate_limiter.h"
#include "policies/template.h"
#include "policies/ttl.h"

namespace corral::commands {
struct CommandInfo;
}

namespace corral::policies {

// A counter bumped by any worker thread (relaxed: metrics only).
struct AtomicCounter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n = 1) { v.fetch_add(n, std::memory_order_relaxed); }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

// What a policy did, for /metrics. "audited" = would have acted (mode audit or
// on_violation audit) but changed nothing.
struct PolicyCounters {
  std::string name;
  AtomicCounter requests;  // requests with at least one key of the policy
  AtomicCounter naming_rejected;
  AtomicCounter naming_audited;
  AtomicCounter ttl_fixed;
  AtomicCounter ttl_rejected;
  AtomicCounter ttl_audited;
  AtomicCounter hits;    // GET-like reads answered with a value
  AtomicCounter misses;  // ... answered with nil / an empty collection

  // Counts a GET-like reply (RESP bytes): nil (RESP2 "$-1"/"*-1", RESP3 "_") or an empty
  // collection is a miss, an error neither, anything else a hit.
  void countRead(std::string_view reply);
};

struct LimitCounters {
  std::string name;
  uint32_t id = 0;  // bucket namespace in the RateLimiter
  AtomicCounter admitted;
  AtomicCounter rejected;  // answered -RATELIMITED
  AtomicCounter shadowed;  // over the limit but let through (on_limit shadow, or mode audit)
};

// Process-wide: counters by name and the rate-limit buckets. Entries are never removed (a
// policy that disappears keeps its last values, as Prometheus counters must), so pointers into
// it stay valid for the life of the process.
class Registry {
 public:
  PolicyCounters* policy(const std::string& name);  // get or create; thread-safe
  LimitCounters* limit(const std::string& name);
  FillCounters* fill(const std::string& policy);  // shared by every worker's FillEngine
  RateLimiter& limiter() { return limiter_; }

  AtomicCounter unmatched_rejected;  // keys no policy covers, refused (unmatched_keys: reject)
  AtomicCounter unmatched_audited;
  AtomicCounter denied;             // global.commands.deny
  AtomicCounter command_audit;      // global.commands.audit
  AtomicCounter followup_errors;    // follow-up PEXPIREs that Redis answered with an error
  AtomicCounter followups_skipped;  // follow-ups not sent (client in pipe mode)

  // Prometheus text of every counter above (corral_policy_*).
  void appendMetrics(std::string& out) const;

 private:
  mutable std::mutex mu_;
  std::deque<PolicyCounters> policies_;  // deque: stable addresses
  std::deque<LimitCounters> limits_;
  std::deque<std::pair<std::string, FillCounters>> fills_;
  RateLimiter limiter_;
};

struct CompiledLimit {
  const config::RateLimitSpec* spec = nullptr;  // into PolicySet::config_
  GcraParams params;
  LimitCounters* counters = nullptr;
  bool all_commands = true;
  bool reads = false;   // "@read"
  bool writes = false;  // "@write"
  std::vector<const commands::CommandInfo*> commands;
  std::vector<int> capture_index;  // per key_by part: index into the policy's captures, or -1
  bool by_key = false;             // key_by has `key`: one bucket per key of the request
  bool by_capture = false;  // key_by has a capture: one bucket per key, the key matched again
};

struct CompiledPolicy {
  const config::PolicySpec* spec = nullptr;  // into PolicySet::config_
  PolicyCounters* counters = nullptr;
  std::vector<CompiledLimit> limits;
  bool has_ttl_rules = false;
  // Cache-aside fill settings (fill.origin set), defaults resolved; origin pointer left null:
  // origins are per worker (the proxy looks them up by origin_name).
  std::unique_ptr<FillPolicy> fill;
  bool fill_get = false;   // fill.commands has GET
  bool fill_mget = false;  // fill.commands has MGET
  bool distributed = false;
};

class PolicySet {
 public:
  // Compiles templates (errors: bad template, ambiguous templates, unknown capture in key_by,
  // ...), each as file:line:col and key path (PolicySpec::path) like the loader's. Returns
  // nullptr when there are errors.
  static std::shared_ptr<const PolicySet> compile(const config::PolicyConfig& cfg, Registry& reg,
                                                  std::vector<config::ConfigError>* errors);

  // True when no rule could ever act: the proxy then skips decide() altogether.
  bool trivial() const { return trivial_; }
  size_t size() const { return policies_.size(); }

  // Decides one request. cmd may be nullptr (unknown command: only the deny list applies).
  void decide(const commands::CommandInfo* cmd, std::span<const std::string_view> args,
              const RequestContext& ctx, Registry& reg, Decision& out) const;

  // The policies in force, as JSON (for the admin endpoint /policies).
  std::string describeJson() const;
  // Origins the policies use (spec by name), for the proxy to create per worker.
  const std::vector<config::OriginSpec>& origins() const { return config_.origins; }

  PolicySet(const PolicySet&) = delete;
  PolicySet& operator=(const PolicySet&) = delete;
  ~PolicySet();

 private:
  PolicySet();
  bool commandListed(const std::vector<std::string>& names,
                     const std::vector<const commands::CommandInfo*>& cmds,
                     const commands::CommandInfo* cmd, std::string_view name) const;
  bool limitApplies(const CompiledLimit& l, const commands::CommandInfo* cmd) const;
  // Builds the bucket key of l for this request into out.bucket; false when the limit does not
  // apply (e.g. keyed by a capture the key lacks).
  void bucketKey(const CompiledLimit& l, const CompiledPolicy* p, const commands::CommandInfo* cmd,
                 std::string_view key, std::span<const Capture> caps, const RequestContext& ctx,
                 std::string& out) const;
  // The origin path of key under p's fill.path (out.caps is scratch).
  void fillPath(const CompiledPolicy& p, std::string_view key, Decision& out,
                std::string& path) const;
  // Applies one limit; false (and out.error set) when the request must be refused.
  bool checkLimit(const CompiledLimit& l, bool shadow, std::string& bucket,
                  const RequestContext& ctx, Registry& reg, Decision& out) const;

  config::PolicyConfig config_;
  std::optional<Matcher> matcher_;
  std::vector<CompiledPolicy> policies_;  // parallel to config_.policies
  std::vector<CompiledLimit> global_limits_;
  std::vector<const commands::CommandInfo*> deny_, audit_;
  // The same for top-level commands, indexed like commands::allCommands(): one load per request.
  std::vector<uint8_t> deny_top_, audit_top_;
  bool trivial_ = true;
};

}  // namespace corral::policies
