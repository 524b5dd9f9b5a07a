// Client: the near cache (near_cache.h). A GET of a near policy's key is answered from the
// worker's memory when it holds the key, else read on the tracking connection (which fills the
// cache); a write of a near key drops it before it is sent and again when it is answered.
#include "policies/engine.h"
#include "proxy/net/client.h"
#include "proxy/net/near_cache.h"
#include "proxy/net/worker.h"

namespace corral::net {

void Client::armNear(const commands::CommandInfo* cmd, const codec::Request& req,
                     const policies::Decision& d) {
  const bool write = (cmd->flags & commands::kWrite) != 0;
  for (size_t i = 0; i < d.key_policy.size() && i < d.keys.size(); ++i) {
    const policies::CompiledPolicy* p = d.key_policy[i];
    if (p == nullptr || p->spec == nullptr || !p->spec->near_cache.enabled ||
        p->spec->mode == config::PolicyMode::kOff) {
      continue;
    }
    NearCache& near = worker_.near();
    near.noteSet(worker_.policies().setPtr().get());
    const std::string_view key = req.args[d.keys[i]];
    if (write) {
      near.invalidate(key);  // this worker never serves the old value once the write is sent
      if (st_.link == Link::kShared) {
        armed().near_drop.emplace_back(key);  // again when its reply comes (Client::openSlot)
      } else {
        extras().near_written.emplace_back(key);  // again when the client is idle
      }
    } else if (cmd->name == "get" && req.args.size() == 2 && st_.link == Link::kShared &&
               db_ == worker_.defaultDb() && user_pool_ == nullptr) {
      // (A client logged in as its own Redis user reads as that user: Redis's ACL decides,
      // never a copy corral read with its own credentials.)
      armed().near = p->spec;
      armed().near_key = key;
    }
  }
}

// Redis would run the requests still due before this GET; the near cache answers from memory
// or reads on another socket, so it may only step in front of requests that change nothing (a
// pipelined SET k / GET k must read what the SET wrote; a FLUSHALL or a script names no key the
// cache could drop).
bool Client::onlyReadsPending() {
  for (size_t i = 0; i < pending_.size(); ++i) {
    const Slot& s = pending_[i];
    if (s.flags & kReady) continue;
    if (s.cmd == kNoCommand) return false;  // an unknown command: it may write
    const commands::CommandInfo* c = commands::byId(s.cmd);
    if (c == nullptr || !(c->flags & commands::kRead) || (c->flags & commands::kWrite)) {
      return false;
    }
  }
  return true;
}

bool Client::forwardNear(const codec::Request& req) {
  Armed& a = armed();
  const config::PolicySpec& spec = *a.near;
  const std::string_view key = a.near_key;
  a.near = nullptr;
  if (a.fill != nullptr || !a.hidden.empty()) return false;  // a fill policy's GET: its own path
  if (!onlyReadsPending()) return false;                     // behind them, as usual
  NearCache& near = worker_.near();
  const int64_t now = worker_.loop_.now_ms;
  if (const std::optional<std::string_view> hit = near.lookup(spec, key, now)) {
    if (a.hitmiss != nullptr) a.hitmiss->countRead(*hit);
    a.hitmiss = nullptr;
    worker_.stats().local_replies.add();
    replyLocal(*hit);
    return true;
  }
  if (!near.accepting(key)) return false;  // its tracking connection is down: as if no near cache
  near.fill(spec, key, this, openSlot(Rewrite::kNone, 0, req.frame.size()), proto_ == 2);
  return true;
}

}  // namespace corral::net
