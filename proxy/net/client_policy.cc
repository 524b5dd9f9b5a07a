// Client: the glue between a request and the policy engine (decide, refusals, rewrites,
// hidden follow-ups, read-your-writes routing, fill planning).
#include <algorithm>
#include <charconv>

#include "commands/command_table.h"
#include "proxy/net/client.h"
#include "proxy/net/log.h"
#include "proxy/net/worker.h"

namespace corral::net {
namespace {

// GET k and PTTL k in one step, for fill policies with freshness rules.
constexpr std::string_view kGetWithPttl =
    "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}";

}  // namespace

using commands::CommandInfo;

void HiddenCommands::add(std::initializer_list<std::string_view> args) {
  codec::appendArrayHeader(bytes_, args.size());
  for (std::string_view a : args) codec::appendBulk(bytes_, a);
  ends_.push_back(bytes_.size());
}

void HiddenCommands::append(const HiddenCommands& other) {
  const size_t base = bytes_.size();
  bytes_ += other.bytes_;
  for (size_t e : other.ends_) ends_.push_back(base + e);
}

void HiddenCommands::sendOn(upstream::Connection* conn, upstream::ReplySink* sink) const {
  size_t start = 0;
  for (size_t end : ends_) {
    conn->enqueue(sink, 0, std::string_view(bytes_).substr(start, end - start), 0);
    start = end;
  }
}

bool Client::applyPolicies(const CommandInfo* cmd, const codec::Request& req,
                           const codec::Request** use) {
  policies::Decision& d = worker_.policies().decision();
  policies::RequestContext ctx = worker_.policies().context(identity());
  worker_.policies().set().decide(cmd, req.args, ctx, worker_.shared().policy_registry, d);
  if (!d.audit.empty()) [[unlikely]] {
    worker_.policies().logAudit(worker_.nowMs(), id_, d.audit);
  }
  if (d.verdict == policies::Decision::Verdict::kReject) {
    worker_.stats().requests.add();
    log()->debug("refused by policy client={} err={}", id_, d.error);
    rejectByPolicy(d.error);
    return false;
  }
  if (d.verdict == policies::Decision::Verdict::kRewrite) {
    rewritten_.args.assign(d.args.begin(), d.args.end());
    if (d.append_from == req.args.size() && !req.is_inline) {
      // Only arguments appended (SET k v -> SET k v PX n): the request's own bytes with a new
      // count, then the new arguments; nothing re-encoded.
      std::string& b = rewrite_buf_;
      b.clear();
      codec::appendArrayHeader(b, d.args.size());
      const size_t first_line = req.frame.find('\n') + 1;
      b.append(req.frame.substr(first_line));
      for (size_t i = d.append_from; i < d.args.size(); ++i) codec::appendBulk(b, d.args[i]);
      rewritten_.frame = b;
      rewritten_.is_inline = false;
    } else {
      // Re-encoded from the new args by wireBytes() (an "inline" request goes as multibulk).
      rewritten_.is_inline = true;
      rewritten_.frame = {};
    }
    *use = &rewritten_;
  }
  // Follow-ups go right behind the request on its connection (a dedicated connection pairs
  // their replies and drops them; inside MULTI they wait for EXEC).
  for (const auto& [key, ms] : d.followups) {
    char num[24];
    const auto r = std::to_chars(num, num + sizeof num, ms);
    hidden_.add({"PEXPIRE", key, std::string_view(num, static_cast<size_t>(r.ptr - num)), "NX"});
  }
  next_hitmiss_ = d.hitmiss;
  for (const auto& [key, distributed] : d.revoke) {
    // A write of a key that may be being filled: the fill must not store its (older) value.
    worker_.policies().fillEngine().revoke(key);
    if (distributed) {
      // Other corrals' fills too: their commit needs the lease, which this DEL takes away.
      const std::string lease = policies::fillKeys(key).lease;
      if (inMulti()) {
        // Inside MULTI a hidden command would wait for EXEC: delete the lease now on a shared
        // connection too, and again right after EXEC (with the transaction's follow-ups).
        upstream::Connection* shared = worker_.route(false, primary_slot_, db_);
        if (shared->accepting())
          shared->enqueue(worker_.policies().followupSink(), 0, encode({"DEL", lease}), 0);
      }
      hidden_.add({"DEL", lease});
    }
  }
  // Fills wait in a slot of a shared connection's request (never on a dedicated one, whose
  // frames must pair in order).
  const bool fills = db_ == worker_.defaultDb() && st_.link == Link::kShared;
  if (d.fill != nullptr && fills) [[unlikely]] {
    auto f = std::make_unique<FillReq>();
    f->set = worker_.policies().setPtr();
    f->policy = d.fill;
    f->key.assign(d.fill_key);
    f->path = d.fill_path;
    f->fresh = d.fill_fresh;
    if (f->fresh) {
      // One atomic read of the value and its remaining TTL (freshness needs both).
      rewritten_.args = {"EVAL", kGetWithPttl, "1", f->key};
      rewritten_.is_inline = true;
      rewritten_.frame = {};
      *use = &rewritten_;
    }
    next_fill_ = std::move(f);
  } else if (d.mget_count > 0 && fills) [[unlikely]] {
    auto f = std::make_unique<FillReq>();
    f->set = worker_.policies().setPtr();
    for (size_t i = 0; i < d.mget_count; ++i) {
      const auto& m = d.mget_fills[i];
      f->mget.push_back(FillReq::Item{m.pos, m.policy, std::string(m.key), m.path});
    }
    next_fill_ = std::move(f);
  }
  if (d.read_your_writes_ms > 0 && cmd != nullptr) {
    if (cmd->flags & commands::kWrite) {
      noteWrite(d.ryw_key, d.read_your_writes_ms);
    } else if (recentlyWritten(d.ryw_key)) {
      policy_route_ = kRoutePrimary;
    }
  }
  if (d.has_read_from && policy_route_ == kRouteDefault) {
    policy_route_ = static_cast<int8_t>(d.read_from);
  }
  return true;
}

void Client::rejectByPolicy(std::string_view error) {
  // Redis would abort the transaction at EXEC. The error takes its place in the reply order
  // like any other reply (on a dedicated connection too: its frames are paired here).
  if (inMulti()) st_.tx = Tx::kMultiDirty;
  replyError(error);
}

std::string_view Client::identity() const {
  if (extras_ != nullptr) {
    if (!extras_->user.empty()) return extras_->user;
    if (!extras_->name.empty()) return extras_->name;
  }
  // "1.2.3.4:5678" or "[::1]:5678" -> the address alone.
  std::string_view p = peer_;
  if (!p.empty() && p[0] == '[') return p.substr(1, p.find(']') - 1);
  const size_t colon = p.rfind(':');
  return colon == std::string_view::npos ? p : p.substr(0, colon);
}

void Client::noteWrite(std::string_view key, int64_t window_ms) {
  constexpr size_t kMaxRecentWrites = 1024;
  const int64_t now = worker_.nowMs();
  Extras& x = extras();
  if (x.ryw.size() >= kMaxRecentWrites) {
    int64_t latest = now + window_ms;
    std::erase_if(x.ryw, [now, &latest](const auto& e) {
      latest = std::max(latest, e.second);
      return e.second <= now;
    });
    if (x.ryw.size() >= kMaxRecentWrites) {
      // Too many live keys to follow one by one: every read goes to the primary for a while.
      x.ryw.clear();
      x.ryw_all_until = std::max(x.ryw_all_until, latest);
      return;
    }
  }
  auto [it, inserted] = x.ryw.try_emplace(std::string(key), now + window_ms);
  if (!inserted) it->second = now + window_ms;
}

bool Client::recentlyWritten(std::string_view key) const {
  if (extras_ == nullptr) return false;
  const int64_t now = worker_.nowMs();
  if (now < extras_->ryw_all_until) return true;
  if (extras_->ryw.empty()) return false;
  auto it = extras_->ryw.find(std::string(key));
  return it != extras_->ryw.end() && it->second > now;
}

}  // namespace corral::net
