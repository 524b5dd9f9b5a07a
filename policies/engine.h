// The policy engine: a compiled, immutable PolicySet and the per-request decision.
//
//   PolicyConfig --compile (main thread, off the request path)--> shared_ptr<const PolicySet>
//        workers pick up a new set between loop turns; requests in flight keep the old one
//
//   request --decide--> 1 command lists: global.commands.deny (-DENIED) and .audit
//                   --> 2 keys (command table) --> Matcher: each key's policy; naming (-KEYNAME)
//                   --> 3 rate limits, global then per policy (-RATELIMITED)
//                   --> 4 TTL rules of writes: rewrite, -TTL, PEXPIRE ... NX follow-ups
//                   --> 5 routing hints (read_from, read-your-writes), hit/miss accounting
//                   --> 6 fills: the fill plan of a GET or MGET; revocations of writes
//   A phase that nothing in the set can act on is skipped (no limits, no TTL rules, no fills),
//   and what a command is (a write, a GET-like read, where its key is) is looked up once per
//   command in a table built from the command table, not worked out per request.
//
// Files: engine_compile.cc (compile), engine_decide.cc (decide and its phases),
// engine_describe.cc (describeJson). The counters live
// in registry.h, the outcome in decision.h. PolicySets are read by every worker thread at once
// and never change after compile().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/policy_config.h"
#include "policies/decision.h"
#include "policies/fill.h"
#include "policies/rate_limiter.h"
#include "policies/registry.h"
#include "policies/template.h"

namespace corral::commands {
struct CommandInfo;
}

namespace corral::policies {

struct CompiledLimit {
  const config::RateLimitSpec* spec = nullptr;  // into PolicySet::config_
  GcraParams params;
  LimitCounters* counters = nullptr;
  bool all_commands = true;
  bool reads = false;   // "@read"
  bool writes = false;  // "@write"
  std::vector<const commands::CommandInfo*> commands;
  // Whether the limit applies, per top-level command (indexed like commands::allCommands()).
  std::vector<uint8_t> applies_top;
  std::vector<int> capture_index;  // per key_by part: index into the policy's captures, or -1
  bool by_key = false;             // key_by has `key`: one bucket per key of the request
  bool by_capture = false;      // key_by has a capture: one bucket per key, the key matched again
  bool by_client_only = false;  // key_by is [client]
  bool global = false;          // scope global: credits leased from Redis (global_limits.h)
};

struct CompiledPolicy {
  const config::PolicySpec* spec = nullptr;  // into PolicySet::config_
  PolicyCounters* counters = nullptr;
  std::vector<CompiledLimit> limits;
  bool has_ttl_rules = false;
  bool audit = false;          // mode audit
  bool off = false;            // mode off
  uint32_t max_key_bytes = 0;  // naming.max_key_bytes
  // Cache-aside fill settings (fill.origin set), defaults resolved; origin pointer left null:
  // origins are per worker (the proxy looks them up by origin_name).
  std::unique_ptr<FillPolicy> fill;
  bool fill_get = false;      // fill.commands has GET
  bool fill_mget = false;     // fill.commands has MGET
  bool fill_hgetall = false;  // fill.commands has HGETALL (the policy's values are hashes)
  bool fill_hget = false;     // fill.commands has HGET
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
  // True when a limit has scope global (the proxy's GlobalLimits beats the heartbeat).
  bool hasGlobalLimits() const { return any_global_limits_; }
  // True when a policy fills hashes (fill.commands: HGETALL or HGET).
  bool fillsHashes() const { return any_hash_fills_; }
  // global.unknown_commands in force (config::effectiveUnknownCommands): what the proxy does with
  // a command neither the built-in table nor the learnt overlay knows. Decided by the proxy,
  // not by decide(), since only the proxy knows which commands it answers itself.
  config::UnknownCommands unknownCommands() const { return unknown_commands_; }
  size_t size() const { return policies_.size(); }
  // The i-th policy (i < size()), in config order; valid as long as the set.
  const CompiledPolicy& policy(size_t i) const { return policies_[i]; }

  // What the set says of one key's name, counting nothing. policy: the one it falls to
  // (nullptr: none covers it; a policy in mode off is returned too, callers check `off`);
  // violation: it breaks that policy's template; too_long: naming.max_key_bytes; internal: one of
  // corral's own keys (kInternalPrefix), policy then nullptr. decide() takes keys through it,
  // and tools that audit a keyspace by the proxy's rules (corral doctor) call it directly.
  struct KeyVerdict {
    const CompiledPolicy* policy = nullptr;
    bool violation = false;
    bool too_long = false;
    bool internal = false;
  };
  KeyVerdict classify(std::string_view key) const {
    KeyVerdict v;
    if (key.starts_with(kInternalPrefix)) [[unlikely]] {
      v.internal = true;
      return v;
    }
    if (!matcher_) return v;
    const MatchResult m = matcher_->match(key, nullptr);
    if (m.entry < 0) return v;
    v.policy = &policies_[static_cast<size_t>(m.entry)];
    v.violation = m.violation;
    v.too_long = key.size() > v.policy->max_key_bytes;
    return v;
  }

  // Decides one request. cmd may be nullptr (unknown command: only the deny list applies).
  // args are the request's arguments (args[0] the command name); out's views point into them.
  void decide(const commands::CommandInfo* cmd, std::span<const std::string_view> args,
              const RequestContext& ctx, Registry& reg, Decision& out) const;

  // The policies in force, as JSON (for the admin endpoint /policies).
  std::string describeJson() const;
  // global.near_cache.max_bytes: the near caches' cap for the whole process.
  uint64_t nearCacheMaxBytes() const { return config_.global.near_cache_max_bytes; }
  // Origins the policies use (spec by name), for the proxy to create per worker.
  const std::vector<config::OriginSpec>& origins() const { return config_.origins; }

  PolicySet(const PolicySet&) = delete;
  PolicySet& operator=(const PolicySet&) = delete;
  ~PolicySet();

  // One request as decide()'s phases see it, and what the set knows per top-level command
  // (engine_internal.h).
  struct Request;
  struct CommandEntry;

 private:
  PolicySet();

  // decide()'s phases, in order. Each returns false when the request is refused (out.error
  // set); the next phase runs only after the previous one let the request through. The ones
  // every request runs are `inline` (defined and used in engine_decide.cc only), so that the
  // compiler can fold them into their caller: decide() is the hot path.
  bool checkCommand(const Request& r, Decision& out) const;        // 1
  inline void run(const Request& r, Decision& out) const;          // 2 to 6, in order
  inline bool resolveKeys(const Request& r, Decision& out) const;  // 2
  // Phase 2 for one key: its policy into `policy` (nullptr: none, or mode off), naming checked.
  inline bool resolveKey(const Request& r, std::string_view key, Decision& out,
                         const CompiledPolicy*& policy) const;
  bool checkLimits(const Request& r, Decision& out) const;  // 3
  // Phase 3's walk: visit(limit, shadow, nparts, parts) for each bucket of the request, in
  // order, until one returns false.
  template <class Visit>
  bool forEachBucket(const Request& r, Decision& out, Visit&& visit) const;
  bool applyTtl(const Request& r, Decision& out) const;      // 4
  inline void route(const Request& r, Decision& out) const;  // 5
  void planFills(const Request& r, Decision& out) const;     // 6

  // Phase 3's parts: whether l applies to the command; one admission of the bucket made of
  // parts[0, nparts), false (out.error set) when refused.
  inline bool limitApplies(const CompiledLimit& l, const Request& r) const;
  inline bool admit(const CompiledLimit& l, bool shadow, const Request& r, size_t nparts,
                    const std::string_view* parts, Decision& out) const;
  // The verdict of one bucket, counted; false (out.error set) when refused.
  inline bool account(const CompiledLimit& l, bool shadow, const GcraVerdict& v,
                      Decision& out) const;
  // The origin path of key under p's fill.path into path (out.caps is scratch); false when
  // the key has none (buildFillPath).
  bool fillPath(const CompiledPolicy& p, std::string_view key, Decision& out,
                std::string& path) const;

  config::PolicyConfig config_;
  std::optional<Matcher> matcher_;
  std::vector<CompiledPolicy> policies_;  // parallel to config_.policies
  std::vector<CompiledLimit> global_limits_;
  std::vector<const commands::CommandInfo*> deny_, audit_;
  // Per top-level command (indexed like commands::allCommands()): its traits and whether it is
  // on the deny or audit list, so that a request costs one lookup.
  std::vector<CommandEntry> commands_;
  uintptr_t commands_base_ = 0;  // commands::allCommands(): where it starts, how many
  size_t commands_count_ = 0;
  bool trivial_ = true;
  config::UnknownCommands unknown_commands_ = config::UnknownCommands::kForward;
  // What the set can act on at all: phases without anything to do are skipped.
  bool any_limits_ = false;         // a global limit or a policy's
  bool any_global_limits_ = false;  // a limit of scope global (checkLimits' first pass)
  bool any_local_limits_ = false;   // a limit of scope local
  bool any_ttl_rules_ = false;      // a policy with TTL rules
  bool any_fills_ = false;          // a policy with fill
  bool any_hash_fills_ = false;     // a policy that fills on HGETALL or HGET
  bool any_routing_ = false;        // a policy with read_from or read_your_writes
};

}  // namespace corral::policies
