// What the policy engine arms for the request being handled, until the request is sent: a
// rewritten request, follow-up commands, a fill to watch for, routing. One per worker (one
// request at a time is handled on a worker thread), so an idle client keeps none of it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "policies/command_batch.h"
#include "policies/decision.h"
#include "proxy/codec/resp.h"
#include "proxy/nearcache/near_reads.h"

namespace corral::policies {
struct PolicyCounters;
class PolicySet;
}  // namespace corral::policies

namespace corral::net {

// What a GET (or MGET) of a fill policy's key needs once its reply is back (see
// Client::onFillReply): the decision's FillPlan, kept past the request.
struct FillReq {
  std::shared_ptr<const policies::PolicySet> set;  // keeps the plan's policies alive (reloads)
  const policies::FillPolicy* policy = nullptr;
  std::string key;
  std::string path;
  bool with_pttl = false;  // sent as FillPlan::request: the reply is {value, pttl}
  policies::FillPlan::Read read = policies::FillPlan::Read::kGet;  // GET, HGETALL or HGET
  std::string field;                                               // HGET's field
  // MGET: the keys that may be filled (key and path empty above).
  std::vector<policies::FillPlan::Item> mget;
};

struct Armed {
  // Routing a policy asked for: default, the primary (read-your-writes), or a ReadFrom value.
  static constexpr int8_t kRouteDefault = -1;
  static constexpr int8_t kRoutePrimary = -2;

  codec::Request rewritten;  // a request whose args a policy changed (views into the decision)
  std::string rewrite_buf;   // rewritten.frame when only arguments were appended
  policies::PolicyCounters* hitmiss = nullptr;  // the reply counts as the policy's hit or miss
  std::unique_ptr<FillReq> fill;                // moved into the request's slot when sent
  policies::CommandBatch hidden;                // sent right behind the request
  int8_t route = kRouteDefault;
  // Near cache (near_cache.h): a read it may answer (near_reads.h) of near policies' keys: the
  // first key's spec, every key's for MGET/EXISTS; and the near keys a write drops (again when
  // it is answered).
  const config::PolicySpec* near = nullptr;
  nearcache::NearRead near_read = nearcache::NearRead::kNone;
  std::vector<const config::PolicySpec*> near_specs;
  std::vector<std::string> near_drop;

  // After each request: nothing armed outlives it.
  void reset() {
    hitmiss = nullptr;
    if (fill != nullptr) [[unlikely]] {
      fill.reset();
    }
    if (!hidden.empty()) [[unlikely]] {
      hidden.clear();
    }
    route = kRouteDefault;
    near = nullptr;
    if (!near_drop.empty()) [[unlikely]] {
      near_drop.clear();
    }
  }
};

}  // namespace corral::net
