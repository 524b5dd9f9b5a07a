// Client: the near cache (near_cache.h). A read of near policies' keys (near_reads.h) is
// answered from the worker's memory when it holds every key; else GET, MGET and HGETALL are read
// on the tracking connection (which fills the cache) and the other reads go to Redis as usual. A
// write of a near key drops it before it is sent and again when it is answered.
#include <span>
#include <string>

#include "policies/engine.h"
#include "proxy/codec/resp.h"
#include "proxy/net/client.h"
#include "proxy/net/near_cache.h"
#include "proxy/net/worker.h"

namespace corral::net {

void Client::armNear(const commands::CommandInfo* cmd, const codec::Request& req,
                     const policies::Decision& d) {
  auto nearSpec = [&d](size_t i) -> const config::PolicySpec* {
    const policies::CompiledPolicy* p = i < d.key_policy.size() ? d.key_policy[i] : nullptr;
    if (p == nullptr || p->spec == nullptr || !p->spec->near_cache.enabled ||
        p->spec->mode == config::PolicyMode::kOff) {
      return nullptr;
    }
    return p->spec;
  };
  if (cmd->flags & commands::kWrite) {
    for (size_t i = 0; i < d.keys.size(); ++i) {
      if (nearSpec(i) == nullptr) continue;
      NearCache& near = worker_.near();
      near.noteSet(worker_.policies().setPtr().get());
      const std::string_view key = req.args[d.keys[i]];
      near.invalidate(key);  // this worker never serves the old value once the write is sent
      if (st_.link == Link::kShared) {
        armed().near_drop.emplace_back(key);  // again when its reply comes (Client::openSlot)
      } else {
        extras().near_written.emplace_back(key);  // again when the client is idle
      }
    }
    return;
  }
  // A client logged in as its own Redis user reads as that user: Redis's ACL decides, never a
  // copy corral read with its own credentials.
  if ((st_.link != Link::kShared && !nearHeld()) || db_ != worker_.defaultDb() ||
      user_pool_ != nullptr) {
    return;
  }
  const nearcache::NearRead read = nearcache::nearReadOf(cmd->name, req.args.size());
  if (read == nearcache::NearRead::kNone || d.keys.empty()) return;
  Armed& a = armed();
  a.near_specs.clear();
  const size_t nkeys = nearcache::manyKeys(read) ? req.args.size() - 1 : 1;
  if (d.keys.size() < nkeys) return;  // (every argument of MGET and EXISTS is a key)
  for (size_t i = 0; i < nkeys; ++i) {
    const config::PolicySpec* spec = nearSpec(i);
    if (spec == nullptr) return;  // one key outside the near cache: the read goes to Redis
    a.near_specs.push_back(spec);
  }
  worker_.near().noteSet(worker_.policies().setPtr().get());
  a.near = a.near_specs[0];
  a.near_read = read;
}

bool Client::nearHeld() const {
  // A RESP3 client of a single Redis holds a connection of its own only to hear RESP3. While it
  // has no transaction, no subscription, no MONITOR and no CLIENT TRACKING of its own (whose
  // invalidations need its reads to run on its connection), its reads may be answered as a
  // shared client's are.
  return st_.link == Link::kPush && proto_ == 3 && st_.tx == Tx::kNone &&
         worker_.cluster() == nullptr && !subscribedUpstream() && !monitoring_ &&
         (extras_ == nullptr || extras_->tracking_redirect < 0);
}

bool Client::nearWaits() {
  // Its connection's replies pair with the head of pending_: nothing goes there while a read is
  // due from the tracking connection (client_dedicated.cc, onDedicatedFrame).
  if (st_.link != Link::kPush || worker_.cluster() != nullptr) return false;
  for (size_t i = 0; i < pending_.size(); ++i) {
    if (!(pending_[i].flags & (kReady | kOnDedicated))) return true;
  }
  return false;
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
    if (!commands::readsOnly(commands::byId(s.cmd))) return false;
  }
  return true;
}

bool Client::forwardNear(const codec::Request& req) {
  Armed& a = armed();
  const nearcache::NearRead read = a.near_read;
  a.near = nullptr;
  if (!a.hidden.empty()) return false;     // follow-ups ride behind it: the usual way
  if (!onlyReadsPending()) return false;   // behind them, as usual
  const bool filling = a.fill != nullptr;  // a fill policy's GET or MGET
  NearCache& near = worker_.near();
  const int64_t now = worker_.loop_.now_ms;
  const std::span<const std::string_view> keys =
      std::span(req.args).subspan(1, nearcache::manyKeys(read) ? req.args.size() - 1 : 1);
  std::string& out = near.replyScratch();
  out.clear();
  bool whole = true;  // every key answered from memory
  if (read == nearcache::NearRead::kMget) {
    codec::appendArrayHeader(out, keys.size());
    for (size_t i = 0; i < keys.size() && whole; ++i) {
      const std::optional<std::string_view> hit = near.lookup(*a.near_specs[i], keys[i], now);
      whole = hit && nearcache::appendFromEntry(nearcache::NearRead::kGet, *hit, {}, proto_, out);
    }
  } else if (read == nearcache::NearRead::kExists) {
    for (size_t i = 0; i < keys.size() && whole; ++i) {
      whole = near.lookup(*a.near_specs[i], keys[i], now).has_value();
    }
    codec::appendInteger(out, static_cast<int64_t>(keys.size()));
  } else {
    const std::optional<std::string_view> hit = near.lookup(*a.near_specs[0], keys[0], now);
    whole = hit && nearcache::appendFromEntry(read, *hit, req.args, proto_, out);
  }
  if (whole) {
    if (a.hitmiss != nullptr) a.hitmiss->countRead(out);
    a.hitmiss = nullptr;
    worker_.stats().local_replies.add();
    replyLocal(out);
    return true;
  }
  if (filling) {
    // A miss goes the fill's way (its GET finds the value, or the fill makes it). The cache
    // reads the key beside it, for itself: a later GET finds it in memory once Redis has one.
    if (read == nearcache::NearRead::kGet && near.accepting(keys)) {
      near.fill(read, std::span(a.near_specs.data(), 1), keys, encode({"GET", keys[0]}), nullptr, 0,
                proto_);
    }
    return false;
  }
  // Not all in memory: GET, MGET and HGETALL are read on the tracking connection (and kept);
  // the others go to Redis the usual way, as do these when their tracking connection is down
  // (or, with a cluster, an MGET's keys live on several nodes).
  if (!nearcache::fills(read) || !near.accepting(keys)) return false;
  bool worth = false;  // a key TinyLFU would refuse is read the usual way (no PTTL, no tracking)
  for (size_t i = 0; i < keys.size() && !worth; ++i) {
    worth = near.worthFilling(*a.near_specs[i], keys[i]);
  }
  if (!worth) return false;
  const std::string_view bytes = wireBytes(req);
  const uint64_t seq = openSlot(Rewrite::kNone, 0, bytes.size());
  near_fill_seq_ = seq + 1;  // writes behind it wait for its reply (Client::dispatch)
  near.fill(read, std::span(a.near_specs.data(), keys.size()), keys, bytes, this, seq, proto_);
  return true;
}

}  // namespace corral::net
