// Client: HGETALL and HGET fills of policies whose values are hashes (fill.commands: hgetall,
// hget; policies/fill_decode.h has how an origin's JSON object becomes the hash).
//
//   HGETALL k / HGET k f ──shared connection──> Redis
//     reply: a hit (fields, a value) ──> the client, in its protocol
//            a miss (RESP2 "*0" / RESP3 "%0"; HGET "$-1" / "_") ──> FillEngine::onMiss(k)
//              ──> value: HGETALL's RESP2 reply of the stored (or just filled) hash
//                    HGETALL: as is (RESP2) or as a map (RESP3); HGET: the field, or nil
//                  nil (404, negative entry): an empty HGETALL / a nil HGET
//                  error: -FILLERR ... (fill.on_error: error) or nil
//
// HGET cannot tell a missing hash from a missing field: every nil HGET goes to the engine,
// whose lookup finds the hash when it exists (one script call, no origin call).
// RESP3 clients of a single Redis hold a connection of their own only to hear RESP3
// (Client::nearHeld): their hash reads with a fill armed go on the shared RESP2 connection
// instead, the reply translated, and nothing goes on their own connection meanwhile
// (Client::nearWaits waits for every slot that is not on it); such a read itself waits for
// the requests that may write still due on their own connection (Client::fillHeldWaits).
#include "proxy/net/client.h"
#include "proxy/net/worker.h"

namespace corral::net {

namespace {

using Read = policies::FillPlan::Read;

// HGETALL's RESP2 reply as a RESP3 map: "*<2n>" becomes "%<n>", the elements stay.
void appendAsMap(std::string& out, std::string_view flat) {
  codec::FrameReader rd(flat);
  int64_t n = 0;
  const size_t header = flat.find("\r\n");
  if (!rd.array(&n) || n < 0 || n % 2 != 0 || header == std::string_view::npos) {
    out.append(flat);  // not HGETALL's shape: as Redis sent it
    return;
  }
  out.push_back('%');
  out.append(std::to_string(n / 2));
  out.append(flat.substr(header));
}

void appendNil(std::string& out, uint8_t proto) { out.append(proto == 3 ? "_\r\n" : "$-1\r\n"); }

}  // namespace

bool Client::fillsHere(const policies::FillPlan& plan) const {
  if (db_ != worker_.defaultDb()) return false;
  if (plan.read == Read::kGet) return st_.link == Link::kShared && proto_ == 2;
  return st_.link == Link::kShared || nearHeld();
}

bool Client::fillHeldWaits(const commands::CommandInfo* cmd) {
  if (cmd == nullptr || (cmd->name != "hgetall" && cmd->name != "hget")) return false;
  if (worker_.policiesTrivial() || !worker_.policies().set().fillsHashes() || !nearHeld()) {
    return false;
  }
  return !onlyReadsPending();
}

bool Client::forwardFillHeld(const commands::CommandInfo* cmd, const codec::Request& req) {
  // Behind a request still due on its own connection, Redis would run that one first: a write
  // of the key there must not be overtaken (fillHeldWaits made it wait for those). Follow-ups
  // ride with the request the usual way.
  if (!nearHeld() || !armed().hidden.empty() || !onlyReadsPending()) {
    armed().fill.reset();
    return false;
  }
  forward(sharedConnection(cmd), req, 0);
  return true;
}

void Client::onHashFillReply(uint64_t seq, std::unique_ptr<FillReq> f, std::string_view reply) {
  const bool miss = f->read == Read::kHgetall ? (reply == "*0\r\n" || reply == "%0\r\n")
                                              : (reply == "$-1\r\n" || reply == "_\r\n");
  if (!miss) {
    // A hit, or an error (WRONGTYPE): translated for a RESP3 client read on a RESP2 connection.
    if (proto_ == 3 && f->read == Read::kHgetall && !reply.empty() && reply[0] == '*') {
      std::string out;
      appendAsMap(out, reply);
      onUpstreamReply(seq, out);
    } else {
      onUpstreamReply(seq, reply);
    }
    return;
  }
  const policies::FillPolicy& p = worker_.policies().localFillPolicy(*f->policy, *f->set);
  std::shared_ptr<FillReq> req(std::move(f));
  worker_.policies().sharedFill().onMiss(
      p, req->key, req->path, nullptr,
      [this, seq, req](const policies::FillOutcome& o) { onHashFillDone(seq, *req, o); });
}

void Client::onHashFillDone(uint64_t seq, const FillReq& f, const policies::FillOutcome& o) {
  std::string out;
  switch (o.kind) {
    case policies::FillOutcome::Kind::kValue:
      if (f.read == Read::kHgetall) {
        if (proto_ == 3) {
          appendAsMap(out, o.value);
        } else {
          out = o.value;
        }
        break;
      }
      {
        // The field among the pairs, or nil: the hash lacks it.
        codec::FrameReader rd(o.value);
        int64_t n = 0;
        bool found = false;
        std::string_view name;
        std::string_view value;
        bool nil = false;
        const bool ok = rd.array(&n);
        for (int64_t i = 0; ok && i + 1 < n && !found; i += 2) {
          if (!rd.bulk(&name, &nil) || !rd.bulk(&value, &nil)) break;
          found = name == f.field;
        }
        if (found) {
          codec::appendBulk(out, value);
        } else {
          appendNil(out, proto_);
        }
      }
      break;
    case policies::FillOutcome::Kind::kNil:
      if (f.read == Read::kHgetall) {
        out = proto_ == 3 ? "%0\r\n" : "*0\r\n";
      } else {
        appendNil(out, proto_);
      }
      break;
    case policies::FillOutcome::Kind::kError:
      codec::appendError(out, o.error);
      break;
  }
  onUpstreamReply(seq, out);
}

}  // namespace corral::net
