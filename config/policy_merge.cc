// After the walk: `defaults:` (the main file's, then a policy file's own) merged into each
// policy field by field, then the rules that need more than one value: origin names, replicas
// for routing.read_from, ttl.min <= ttl.default <= ttl.max, and required fields.
#include <set>
#include <string>

#include "config/loader.h"

namespace corral::config::detail {

void Loader::apply(PolicyBody* merged, const PolicyBody& top) {
  for (const PolicyField& f : policyFields()) {
    if (top.written.find(f.path) == top.written.end()) continue;
    f.copy(merged->spec, top.spec);
    merged->written.emplace(f.path);
    auto it = top.set.find(f.path);
    if (it != top.set.end()) {
      merged->set[std::string(f.path)] = it->second;
    } else if (auto old = merged->set.find(f.path); old != merged->set.end()) {
      merged->set.erase(old);
    }
  }
  merged->prefix = top.prefix;
  merged->where = top.where;
  merged->errors += top.errors;
  merged->spec.where = top.where;
  merged->spec.path = top.prefix;
}

// Rules that need only what one layer wrote: each is reported once, where it was written.
void Loader::checkLayer(const PolicyBody& body, const std::set<std::string, std::less<>>& origins) {
  if (auto it = body.set.find("fill.origin"); it != body.set.end()) {
    if (origins.find(body.spec.fill.origin) == origins.end()) {
      failAt(it->second.where, it->second.path, "must name an entry of origins",
             quoteForError(it->second.text));
    }
  }
  if (auto it = body.set.find("routing.read_from"); it != body.set.end()) {
    if (body.spec.routing.read_from == PolicyReadFrom::kReplica && replicas_.empty() &&
        !sentinel_mark_ && !cluster_mark_) {
      failAt(it->second.where, it->second.path, "needs at least one upstream.replicas entry",
             "replica");
    }
  }
}

// Order rules between fields (ttl.min <= ttl.default <= ttl.max) on a merged layer. A rule is
// reported only when `top` wrote one of its fields, at a field `top` wrote: when every field came
// from defaults, the check of the defaults themselves has reported it already.
void Loader::checkConsistency(const PolicyBody& merged, const PolicyBody& top) {
  const TtlSpec& t = merged.spec.ttl;
  auto less_eq = [&](std::string_view lo, const std::optional<Millis>& lo_value,
                     std::string_view hi, const std::optional<Millis>& hi_value, bool prefer_hi) {
    auto a = merged.set.find(lo);
    auto b = merged.set.find(hi);
    if (a == merged.set.end() || b == merged.set.end() || !lo_value || !hi_value) return;
    bool top_lo = top.has(lo);
    bool top_hi = top.has(hi);
    if ((!top_lo && !top_hi) || *lo_value <= *hi_value) return;
    bool at_hi = prefer_hi ? top_hi : !top_lo;
    const Written& at = at_hi ? b->second : a->second;
    const Written& other = at_hi ? a->second : b->second;
    std::string rule = at_hi ? "must not be less than " : "must not be more than ";
    rule += std::string(at_hi ? lo : hi) + " (" + quoteForError(other.text);
    if (!(at_hi ? top_lo : top_hi))
      rule += " from " + other.path + " at " + formatWhere(other.where);
    rule += ")";
    failAt(at.where, at.path, rule, quoteForError(at.text));
  };
  less_eq("ttl.min", t.min, "ttl.max", t.max, /*prefer_hi=*/true);
  less_eq("ttl.min", t.min, "ttl.default", t.default_ttl, /*prefer_hi=*/true);
  less_eq("ttl.default", t.default_ttl, "ttl.max", t.max, /*prefer_hi=*/false);
}

// Rules for a whole policy, defaults merged: required fields and fields that need others.
void Loader::checkComplete(const PolicyBody& merged, const PolicyBody& top) {
  // Point at the field when the policy wrote it, else at the policy (defaults wrote it).
  auto at = [&](std::string_view field) {
    auto it = top.set.find(field);
    return it != top.set.end() ? it->second.where : top.where;
  };
  if (top.written.find("name") == top.written.end()) {
    failAt(top.where, top.prefix + ".name", "is required");
  }
  if (top.written.find("match") == top.written.end()) {
    failAt(top.where, top.prefix + ".match", "is required, like \"user:<id:int>\"");
  }
  const PolicySpec& s = merged.spec;
  if (s.ttl.require && s.ttl.on_violation == TtlOnViolation::kFix && !s.ttl.default_ttl &&
      !merged.bad("ttl.default") && !merged.bad("ttl.on_violation")) {
    failAt(at("ttl.require"), top.prefix, "ttl.require with on_violation fix needs ttl.default");
  }
  if (!s.fill.origin.empty() && s.fill.path.empty() && !merged.bad("fill.path")) {
    failAt(at("fill.origin"), top.prefix + ".fill.path", "is required with fill.origin");
  }
  if (auto it = top.set.find("fill.path");
      it != top.set.end() && s.fill.origin.empty() && !merged.bad("fill.origin")) {
    failAt(it->second.where, it->second.path, "needs fill.origin", quoteForError(it->second.text));
  }
}

void Loader::finishPolicies() {
  std::set<std::string, std::less<>> origins;
  for (const OriginSpec& o : cfg_.policy.origins) origins.insert(o.name);
  // Runs checks, counting the errors they report against the layer checked.
  auto checked = [this](PolicyBody& layer, const auto& checks) {
    const size_t before = errors_.size();
    checks();
    layer.errors += errors_.size() - before;
  };
  checked(main_defaults_, [&] {
    checkLayer(main_defaults_, origins);
    checkConsistency(main_defaults_, main_defaults_);
  });
  // Each policy file's defaults apply on top of the main ones, for that file's policies.
  std::vector<PolicyBody> file_defaults;
  for (const PolicyBody& fd : file_defaults_) {
    PolicyBody merged = main_defaults_;
    apply(&merged, fd);
    checked(merged, [&] {
      checkLayer(fd, origins);
      checkConsistency(merged, fd);
    });
    file_defaults.push_back(std::move(merged));
  }
  for (const PolicyBody& p : policy_bodies_) {
    PolicyBody merged =
        p.file_defaults < 0 ? main_defaults_ : file_defaults[static_cast<size_t>(p.file_defaults)];
    apply(&merged, p);
    checked(merged, [&] {
      checkLayer(p, origins);
      checkConsistency(merged, p);
      checkComplete(merged, p);
    });
    // The config is returned only without errors, so with errors cfg_.policy is free to hold
    // what the policy compiler can still check (LoadResult::policy): a policy with errors only
    // by its template, so that it is compiled without echoing the loader's errors as the
    // compiler's (a bad ttl.default would also read "fill needs ttl.default").
    if (merged.errors == 0) {
      cfg_.policy.policies.push_back(std::move(merged.spec));
    } else if (p.has("name") && p.has("match") && !merged.bad("priority")) {
      PolicySpec only_template;
      only_template.name = merged.spec.name;
      only_template.match = merged.spec.match;
      only_template.priority = merged.spec.priority;
      only_template.where = merged.spec.where;
      only_template.match_where = merged.spec.match_where;
      only_template.path = merged.spec.path;
      cfg_.policy.policies.push_back(std::move(only_template));
    }
  }
  policies_finished_ = true;
  std::vector<RateLimitSpec>& limits = cfg_.policy.global.rate_limits;
  for (auto it = bad_global_limits_.rbegin(); it != bad_global_limits_.rend(); ++it) {
    limits.erase(limits.begin() + static_cast<std::ptrdiff_t>(*it));
  }
}

}  // namespace corral::config::detail
