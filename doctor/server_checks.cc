#include "doctor/server_checks.h"

#include <algorithm>
#include <string_view>

#include "commands/command_table.h"

namespace corral::doctor {

namespace {

// Round trips measured for the latency check.
constexpr int kPings = 5;
// SLOWLOG entries read, and how many of the slowest are shown.
constexpr int kSlowlogRead = 128;
constexpr size_t kSlowlogShown = 5;

void checkVersionAndMode(const Info& info, const ServerContext& ctx, Report& out) {
  const std::string version = info.text("redis_version").value_or("unknown");
  const std::string redis_mode = info.text("redis_mode").value_or("standalone");
  const std::string role = info.text("role").value_or("unknown");
  std::string mode = redis_mode;
  if (redis_mode == "standalone" && role == "slave") mode = "replica";
  if (ctx.via_sentinel) mode += " (sentinel-managed)";
  out.facts.emplace_back("version", version);
  out.facts.emplace_back("mode", mode);
  out.facts.emplace_back("role", role == "slave" ? "replica" : role);
  std::string seen = "redis_version " + version + ", redis_mode " + redis_mode + ", role " + role;
  if (redis_mode == "sentinel") {
    out.add(finding("server", Severity::kError, seen + ": this is a Sentinel, not a data node",
                    "point corral at the data nodes (upstream.sentinel names the sentinels)"));
    return;
  }
  if (role == "slave" && !ctx.via_cluster) {
    out.add(finding("server", Severity::kWarning, seen + ": the primary address is a replica",
                    "writes through corral will fail (READONLY): set upstream.primary to the "
                    "primary"));
    return;
  }
  const int major = std::atoi(version.c_str());
  if (major > 0 && major < 6) {
    out.add(finding("server", Severity::kWarning, seen + ": older than Redis 6",
                    "upgrade: corral is tested against Redis 7 (ACL users, RESP3 and client "
                    "tracking need 6 or later)"));
    return;
  }
  out.add(finding("server", Severity::kOk, seen));
}

void checkMemory(const Info& info, const ServerContext& ctx, Report& out) {
  const double maxmemory = info.number("maxmemory").value_or(0);
  const double used = info.number("used_memory").value_or(0);
  out.add(judgeMaxmemory(maxmemory));
  if (auto mp = info.text("maxmemory_policy")) out.add(judgeEviction(*ctx.mix, *mp));
  if (maxmemory > 0) out.add(judgeMemoryUse(used, maxmemory));
  if (auto ratio = info.number("mem_fragmentation_ratio")) {
    out.add(judgeFragmentation(*ratio, used));
  }
  out.add(judgeHitRatio(info.number("keyspace_hits").value_or(0),
                        info.number("keyspace_misses").value_or(0)));
}

bool checkLatency(Connection& c, Report& out, std::string* err) {
  std::vector<double> rtts;
  for (int i = 0; i < kPings; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!c.command({"PING"}, err)) return false;
    const auto dt = std::chrono::steady_clock::now() - t0;
    rtts.push_back(
        static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(dt).count()) /
        1000.0);
  }
  out.add(judgeLatency(std::move(rtts)));
  return true;
}

bool checkSlowlog(Connection& c, Report& out, std::string* err) {
  Reply r = c.command({"SLOWLOG", "GET", std::to_string(kSlowlogRead)}, err);
  if (!r) return false;
  if (r->type != REDIS_REPLY_ARRAY) {
    out.add(finding("slowlog", Severity::kOk, "SLOWLOG GET refused: " + replyText(r.get())));
    return true;
  }
  struct Entry {
    int64_t us = 0;
    std::string what;
  };
  std::vector<Entry> entries;
  for (size_t i = 0; i < r->elements; ++i) {
    const redisReply* e = r->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 4) continue;
    std::vector<std::string> args;
    const redisReply* a = e->element[3];
    for (size_t j = 0; a->type == REDIS_REPLY_ARRAY && j < a->elements; ++j) {
      args.push_back(replyText(a->element[j]));
    }
    entries.push_back({e->element[2]->integer, slowlogCommand(args)});
  }
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.us > b.us; });
  if (entries.empty()) {
    out.add(finding("slowlog", Severity::kOk, "slowlog empty"));
    return true;
  }
  std::string seen = std::to_string(entries.size()) + " entries; slowest:";
  for (size_t i = 0; i < entries.size() && i < kSlowlogShown; ++i) {
    seen += (i == 0 ? " " : ", ") + entries[i].what + " " +
            fixed(static_cast<double>(entries[i].us) / 1000.0, 3) + " ms";
  }
  if (entries[0].us >= kSlowlogWarnUs) {
    out.add(finding("slowlog", Severity::kWarning,
                    seen + " (an entry of " + fixed(kSlowlogWarnUs / 1000.0, 0) + " ms or more)",
                    "find the callers of those commands: Redis serves nobody else while one "
                    "runs (prefer SCAN to KEYS, smaller ranges, UNLINK to DEL on big keys)"));
  } else {
    out.add(finding("slowlog", Severity::kOk, seen));
  }
  return true;
}

}  // namespace

std::string slowlogCommand(const std::vector<std::string>& args) {
  if (args.empty()) return "?";
  std::string name = shownKey(args[0], 32);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  std::vector<std::string_view> views(args.begin(), args.end());
  const commands::CommandInfo* cmd = commands::lookup(views);
  if (cmd == nullptr) return name;
  std::string out(cmd->name);
  std::vector<uint32_t> keys;
  if (commands::extractKeys(*cmd, views, keys) && !keys.empty()) {
    out += " " + shownKey(args[keys[0]], 40);
  }
  return out;
}

bool takeInfo(Connection& c, InfoSample* out, std::string* err) {
  Reply r = c.command({"INFO", "all"}, err);
  if (!r) return false;
  if (r->type != REDIS_REPLY_STRING) {
    *err = c.address() + ": INFO refused: " + replyText(r.get());
    return false;
  }
  out->info = Info::parse(std::string_view(r->str, r->len));
  out->at = std::chrono::steady_clock::now();
  return true;
}

bool checkServer(Connection& c, const InfoSample& first, const ServerContext& ctx, Report& out,
                 std::string* err) {
  checkVersionAndMode(first.info, ctx, out);
  if (first.info.text("redis_mode") == "sentinel") return true;
  checkMemory(first.info, ctx, out);
  return checkLatency(c, out, err) && checkSlowlog(c, out, err);
}

void checkRates(const InfoSample& first, const InfoSample& second, const PolicyMix& mix,
                Report& out) {
  const double seconds = std::chrono::duration<double>(second.at - first.at).count();
  auto delta = [&](const char* name) {
    return std::max(0.0,
                    second.info.number(name).value_or(0) - first.info.number(name).value_or(0));
  };
  out.add(judgeRates(delta("evicted_keys") / seconds, delta("expired_keys") / seconds, seconds,
                     second.info.number("evicted_keys").value_or(0), mix));
}

}  // namespace corral::doctor
