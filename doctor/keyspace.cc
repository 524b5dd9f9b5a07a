#include "doctor/keyspace.h"

#include <string_view>

#include "doctor/rules.h"

namespace corral::doctor {

namespace {

// SCAN's COUNT hint: keys per page (and per pipelined batch of PTTL / MEMORY USAGE).
constexpr int kScanCount = 500;

void example(std::vector<std::string>& v, std::string s) {
  if (v.size() < kExamples) v.push_back(std::move(s));
}

std::string examples(const std::vector<std::string>& v, uint64_t total) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : ", ") + s;
  if (total > v.size()) out += ", ...";
  return out;
}

// One key of a page and what it needs asked.
struct Pending {
  std::string key;
  PolicyTally* tally = nullptr;
  bool ask_ttl = false;
};

}  // namespace

bool sampleKeyspace(Connection& c, const policies::PolicySet* set, const SampleLimits& limits,
                    KeyspaceTally* t, std::string* err) {
  t->have_policies = set != nullptr;
  t->big_value_bytes = limits.big_value_bytes;
  if (set != nullptr) {
    for (size_t i = 0; i < set->size(); ++i) {
      const config::PolicySpec& spec = *set->policy(i).spec;
      PolicyTally& p = t->by_policy[spec.name];
      p.match = spec.match;
      p.requires_ttl = spec.ttl.require;
      p.mode_off = spec.mode == config::PolicyMode::kOff;
    }
  }
  if (Reply r = c.command({"DBSIZE"}, err); !r) {
    return false;
  } else if (r->type == REDIS_REPLY_INTEGER) {
    t->dbsize = static_cast<double>(r->integer);
  }
  const auto start = std::chrono::steady_clock::now();
  std::string cursor = "0";
  std::vector<Pending> page;
  do {
    if (t->scanned >= limits.max_keys) {
      t->capped_keys = true;
      break;
    }
    if (std::chrono::steady_clock::now() - start >= limits.max_time) {
      t->capped_time = true;
      break;
    }
    Reply r = c.command({"SCAN", cursor, "COUNT", std::to_string(kScanCount)}, err);
    if (!r) return false;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      // An ACL or a managed service may refuse SCAN: the other checks still stand.
      t->refused = "SCAN refused: " + replyText(r.get());
      break;
    }
    cursor = replyText(r->element[0]);
    const redisReply* keys = r->element[1];
    page.clear();
    for (size_t i = 0; i < keys->elements; ++i) {
      if (t->scanned >= limits.max_keys) {
        t->capped_keys = true;
        break;
      }
      std::string key = replyText(keys->element[i]);
      ++t->scanned;
      Pending p{std::move(key), nullptr, false};
      if (set == nullptr) {
        p.tally = &t->by_policy[""];
      } else {
        const policies::PolicySet::KeyVerdict v = set->classify(p.key);
        if (v.internal) {
          ++t->internal;
          continue;
        }
        if (v.policy == nullptr) {
          p.tally = &t->by_policy[""];
        } else {
          p.tally = &t->by_policy[v.policy->spec->name];
          if (!v.policy->off && (v.violation || v.too_long)) {
            ++p.tally->broken;
            example(p.tally->broken_examples, shownKey(p.key));
          }
          p.ask_ttl = !v.policy->off && v.policy->spec->ttl.require;
        }
      }
      ++p.tally->keys;
      example(p.tally->key_examples, shownKey(p.key));
      if (p.ask_ttl) c.append({"PTTL", p.key});
      c.append({"MEMORY", "USAGE", p.key});
      page.push_back(std::move(p));
    }
    for (Pending& p : page) {
      if (p.ask_ttl) {
        Reply ttl = c.read(err);
        if (!ttl) return false;
        // -1: no TTL. -2: gone since SCAN saw it.
        if (ttl->type == REDIS_REPLY_INTEGER && ttl->integer == -1) {
          ++p.tally->no_ttl;
          example(p.tally->no_ttl_examples, shownKey(p.key));
        }
      }
      Reply mem = c.read(err);
      if (!mem) return false;
      if (mem->type == REDIS_REPLY_INTEGER &&
          static_cast<uint64_t>(mem->integer) > limits.big_value_bytes) {
        ++p.tally->big;
        example(p.tally->big_examples,
                shownKey(p.key) + " (" + humanBytes(static_cast<double>(mem->integer)) + ")");
      }
    }
  } while (cursor != "0");
  t->elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return true;
}

void addKeyspaceFindings(const KeyspaceTally& t, Report& out) {
  Finding s;
  // corral's own keys are not judged, and not counted in the shares below.
  const uint64_t judged = t.scanned - t.internal;
  s.check = "keyspace_sample";
  s.seen = std::to_string(t.scanned) + " keys scanned on " + t.where + " in " +
           fixed(t.elapsed_ms, 0) + " ms";
  if (t.dbsize >= 0) s.seen += " (DBSIZE " + fixed(t.dbsize, 0) + ")";
  if (t.capped_keys) s.seen += "; stopped at the cap of " + std::to_string(t.scanned) + " keys";
  if (t.capped_time) s.seen += "; stopped at the time cap";
  if (t.internal > 0) s.seen += "; " + std::to_string(t.internal) + " corral-internal keys skipped";
  if (!t.have_policies) s.seen += "; no policies (run with --config to check keys against them)";
  if (!t.refused.empty()) {
    s.severity = Severity::kWarning;
    s.seen += "; " + t.refused;
    s.action =
        "allow SCAN, MEMORY USAGE and PTTL to the user doctor connects as (or run it as "
        "another user)";
  }
  out.add(std::move(s));
  const std::string big = humanBytes(static_cast<double>(t.big_value_bytes));
  for (const auto& [name, p] : t.by_policy) {
    if (name.empty()) continue;
    if (p.broken > 0) {
      out.add(
          finding("keys_break_template", Severity::kWarning,
                  std::to_string(p.broken) + " of " + std::to_string(p.keys) +
                      " sampled keys of the policy break its template " + p.match +
                      " (or naming.max_key_bytes): " + examples(p.broken_examples, p.broken),
                  "rename them to fit the template, or widen it; corral refuses them (-KEYNAME), "
                  "so something writes to Redis around corral",
                  name));
    }
    if (p.no_ttl > 0) {
      out.add(finding(
          "keys_no_ttl", Severity::kWarning,
          std::to_string(p.no_ttl) + " of " + std::to_string(p.keys) +
              " sampled keys have no TTL (PTTL -1) though the policy has ttl.require: " +
              examples(p.no_ttl_examples, p.no_ttl),
          "give them a TTL (EXPIRE) or delete them; find the writer that bypasses corral", name));
    }
  }
  for (const auto& [name, p] : t.by_policy) {
    if (p.big == 0) continue;
    out.add(finding("big_values", Severity::kWarning,
                    std::to_string(p.big) + " of " + std::to_string(p.keys) + " sampled keys" +
                        (name.empty() && t.have_policies ? " (no policy)" : "") + " take over " +
                        big + " (MEMORY USAGE): " + examples(p.big_examples, p.big),
                    "split or compress them: a big value blocks Redis while it is read or deleted, "
                    "and travels whole through corral",
                    name));
  }
  if (auto it = t.by_policy.find("");
      t.have_policies && it != t.by_policy.end() && it->second.keys > 0) {
    const PolicyTally& p = it->second;
    out.add(
        finding("keys_unmatched", Severity::kWarning,
                std::to_string(p.keys) + " of " + std::to_string(judged) +
                    " sampled keys match no policy: " + examples(p.key_examples, p.keys),
                "add a policy for them (or delete them); global.unmatched_keys: reject stops new "
                "ones at corral"));
  }
}

}  // namespace corral::doctor
