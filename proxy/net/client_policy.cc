// Client: the glue between a request and the policy engine (decide, refusals, rewrites,
// hidden follow-ups, read-your-writes routing, fill planning).
#include <algorithm>

#include "commands/command_table.h"
#include "proxy/net/client.h"
#include "proxy/net/log.h"
#include "proxy/net/worker.h"

namespace corral::net {

using commands::CommandInfo;

void Client::sendHidden(const policies::CommandBatch& batch, upstream::Connection* conn) {
  for (size_t i = 0; i < batch.size(); ++i) {
    conn->enqueue(worker_.policies().followupSink(), 0, batch.command(i), 0);
  }
}

bool Client::decidePolicies(const CommandInfo* cmd, const codec::Request& req) {
  policies::Decision& d = worker_.policies().decision();
  policies::RequestContext& ctx = worker_.policies().context(identity());
  ctx.replay = limit_replay_;
  worker_.policies().set().decide(cmd, req.args, ctx, worker_.shared().policy_registry, d);
  ctx.replay = false;
  if (d.verdict == policies::Decision::Verdict::kWait) [[unlikely]] {
    // Credits of a global limit are on their way: wait for them (a take answers or gives up
    // within LeaseOptions::max_wait_ns), holding this client until then.
    limit_replay_ = true;
    checking_ = true;  // onWaitOver() ends it
    ++inflight_refs_;
    worker_.waitForLimits(this);
    return false;
  }
  limit_replay_ = false;
  return true;
}

bool Client::applyPolicies(const CommandInfo* cmd, const codec::Request& req,
                           const codec::Request** use) {
  policies::Decision& d = worker_.policies().decision();
  if (!d.audit.empty()) [[unlikely]] {
    worker_.policies().logAudit(worker_.nowMs(), id_, d.audit);
  }
  if (d.verdict == policies::Decision::Verdict::kReject) {
    log()->debug("refused by policy client={} err={}", id_, d.error);
    rejectByPolicy(d.error);
    return false;
  }
  if (d.verdict == policies::Decision::Verdict::kRewrite) {
    armed().rewritten.args.assign(d.args.begin(), d.args.end());
    if (d.append_from == req.args.size() && !req.is_inline) {
      // Only arguments appended (SET k v -> SET k v PX n): the request's own bytes with a new
      // count, then the new arguments; nothing re-encoded.
      std::string& b = armed().rewrite_buf;
      b.clear();
      codec::appendArrayHeader(b, d.args.size());
      const size_t first_line = req.frame.find('\n') + 1;
      b.append(req.frame.substr(first_line));
      for (size_t i = d.append_from; i < d.args.size(); ++i) codec::appendBulk(b, d.args[i]);
      armed().rewritten.frame = b;
      armed().rewritten.is_inline = false;
    } else {
      // Re-encoded from the new args by wireBytes() (an "inline" request goes as multibulk).
      armed().rewritten.is_inline = true;
      armed().rewritten.frame = {};
    }
    *use = &armed().rewritten;
  }
  armed().hitmiss = d.hitmiss;
  if (d.extras()) [[unlikely]] {
    // Follow-ups go right behind the request on its connection (a dedicated connection pairs
    // their replies and drops them; inside MULTI they wait for EXEC).
    armed().hidden.append(d.ttl_followups);
    // Writes of keys that may be being filled: the fills must not store their (older) values.
    for (std::string_view key : d.revoke) worker_.policies().sharedFill().revoke(key);
    if (!d.lease_deletes.empty()) {
      if (inMulti()) {
        // Inside MULTI a hidden command would wait for EXEC: delete the leases now on a shared
        // connection too, and again right after EXEC (with the transaction's follow-ups).
        upstream::Connection* shared = primaryConnection();
        if (shared->accepting()) sendHidden(d.lease_deletes, shared);
      }
      armed().hidden.append(d.lease_deletes);
    }
    // Fills wait in a slot of a shared connection's request (never on a dedicated one, whose
    // frames must pair in order): Client::fillsHere.
    const policies::FillPlan& plan = d.fill;
    if (!plan.empty() && fillsHere(plan)) {
      auto f = std::make_unique<FillReq>();
      f->set = worker_.policies().setPtr();
      f->policy = plan.policy;
      f->key = plan.key;
      f->path = plan.path;
      f->with_pttl = plan.with_pttl;
      f->read = plan.read;
      f->field = plan.field;
      f->mget.assign(plan.items().begin(), plan.items().end());
      if (plan.with_pttl) {
        // The plan's request (value and PTTL at once) goes instead of the GET.
        armed().rewritten.args.assign(req.args.begin(), req.args.end());
        armed().rewritten.frame = plan.request;
        armed().rewritten.is_inline = false;
        *use = &armed().rewritten;
      }
      armed().fill = std::move(f);
    }
  }
  if (d.read_your_writes_ms > 0 && cmd != nullptr) {
    if (cmd->flags & commands::kWrite) {
      noteWrite(d.ryw_key, d.read_your_writes_ms);
    } else if (recentlyWritten(d.ryw_key)) {
      armed().route = Armed::kRoutePrimary;
    }
  }
  if (d.has_read_from && armed().route == Armed::kRouteDefault) {
    armed().route = static_cast<int8_t>(d.read_from);
  }
  // The near cache (client_near.cc).
  if (cmd != nullptr && !d.key_policy.empty()) {
    armNear(cmd, req, d);
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
