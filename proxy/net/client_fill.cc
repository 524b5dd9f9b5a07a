// Client: cache-aside fills. The reply of a GET (or MGET) of a fill policy's key is looked at; a
// miss starts or joins a fill and the request's slot waits for it, so order holds. HGETALL and
// HGET of hash policies: client_fill_hash.cc.
#include "proxy/net/client.h"
#include "proxy/net/worker.h"

namespace corral::net {

void Client::onFillReply(uint64_t idx, uint64_t seq, std::string_view reply) {
  std::unique_ptr<FillReq> f = std::move(pending_[idx].extra->fill);
  // The keyspace hit ratio is Redis's: a miss that a fill answers is still a miss. The final
  // answer must not count again.
  policies::PolicyCounters* hitmiss = pending_[idx].hitmiss;
  pending_[idx].hitmiss = nullptr;
  // Every answer below goes through onUpstreamReply again (now without a fill): one path for
  // ordering, stats and closed clients. It gives back the reference taken here.
  ++inflight_refs_;
  worker_.stats().pending.add();
  if (f->read != policies::FillPlan::Read::kGet) {
    if (hitmiss != nullptr) hitmiss->countRead(reply);
    onHashFillReply(seq, std::move(f), reply);
    return;
  }
  if (!f->mget.empty()) {
    onMgetFillReply(seq, std::move(f), reply);
    return;
  }
  if (!f->with_pttl) {
    if (hitmiss != nullptr) hitmiss->countRead(reply);
    if (reply == "$-1\r\n") {
      startFill(seq, std::move(f), nullptr);
    } else {
      onUpstreamReply(seq, reply);
    }
    return;
  }
  // {value, pttl}: "*2\r\n$<n>\r\n<value>\r\n:<pttl>\r\n" or "*2\r\n$-1\r\n:-2\r\n";
  // under ttl.from_origin maybe {value, pttl, swr_ms, sie_ms}: the value's own windows.
  codec::FrameReader rd(reply);
  int64_t n = 0;
  std::string_view value;
  std::string_view bulk;  // the value's whole encoding, what a GET would have answered
  bool nil = false;
  int64_t pttl = -1;
  policies::ValueWindows windows;
  if (!(rd.array(&n) && (n == 2 || n == 4) && rd.bulk(&value, &nil, &bulk) && rd.integer(&pttl) &&
        (n == 2 || (rd.integer(&windows.swr_ms) && rd.integer(&windows.sie_ms))) && rd.atEnd())) {
    // An error (e.g. WRONGTYPE): the client sees Redis's text without the script's suffix
    // (" script: <sha>, on @user_script:1."), as if it had sent GET itself.
    const size_t cut = reply.find(" script: ");
    if (!reply.empty() && reply[0] == '-' && cut != std::string_view::npos) {
      std::string plain(reply.substr(0, cut));
      plain += "\r\n";
      onUpstreamReply(seq, plain);
    } else {
      onUpstreamReply(seq, reply);
    }
    return;
  }
  if (hitmiss != nullptr) hitmiss->countRead(bulk);
  if (nil) {
    startFill(seq, std::move(f), nullptr);
    return;
  }
  const policies::FillPolicy& p = worker_.policies().localFillPolicy(*f->policy, *f->set);
  switch (worker_.policies().fillEngine().onHit(p, f->key, f->path, pttl,
                                                n == 4 ? &windows : nullptr)) {
    case policies::FillEngine::HitAction::kServe:
    case policies::FillEngine::HitAction::kServeStale:
      onUpstreamReply(seq, bulk);
      return;
    case policies::FillEngine::HitAction::kWaitRefresh: {
      const std::string stale(value);
      startFill(seq, std::move(f), &stale);
      return;
    }
  }
}

void Client::onMgetFillReply(uint64_t seq, std::unique_ptr<FillReq> f, std::string_view reply) {
  // Split "*<n>\r\n" + n bulk strings into elements; anything else goes back as it is.
  std::vector<std::string_view> elems;
  std::vector<bool> missing;
  codec::FrameReader rd(reply);
  int64_t n = 0;
  bool ok = rd.array(&n) && n >= 0;
  for (int64_t i = 0; ok && i < n; ++i) {
    std::string_view raw;
    bool nil = false;
    ok = rd.bulk(nullptr, &nil, &raw);
    elems.push_back(raw);
    missing.push_back(nil);
  }
  ok = ok && rd.atEnd();
  auto job = std::make_shared<MgetJob>();
  if (ok) {
    for (auto& item : f->mget) {
      if (item.pos < elems.size() && missing[item.pos]) job->todo.push_back(item);
    }
  }
  if (!ok || job->todo.empty()) {
    onUpstreamReply(seq, reply);
    return;
  }
  job->seq = seq;
  job->set = f->set;
  job->elems.assign(elems.begin(), elems.end());
  pumpMget(job);
}

void Client::pumpMget(const std::shared_ptr<MgetJob>& job) {
  // At most kParallel fills of one MGET at a time: a 1,000-key MGET must not take every origin
  // slot (max_in_flight) of the worker.
  constexpr size_t kParallel = 8;
  while (job->running < kParallel && job->next < job->todo.size()) {
    const policies::FillPlan::Item& item = job->todo[job->next++];
    ++job->running;
    const policies::FillPolicy& p = worker_.policies().localFillPolicy(*item.policy, *job->set);
    const uint32_t at = item.pos;
    worker_.policies().sharedFill().onMiss(p, item.key, item.path, nullptr,
                                           [this, job, at](const policies::FillOutcome& o) {
                                             // A failed fill leaves the element nil (on_error:
                                             // error is for GET: an error inside MGET's array would
                                             // surprise clients).
                                             if (o.kind == policies::FillOutcome::Kind::kValue) {
                                               job->elems[at].clear();
                                               codec::appendBulk(job->elems[at], o.value);
                                             }
                                             --job->running;
                                             pumpMget(job);
                                           });
  }
  if (job->running == 0 && job->next == job->todo.size() && !job->answered) {
    job->answered = true;
    std::string out;
    codec::appendArrayHeader(out, job->elems.size());
    for (const std::string& e : job->elems) out += e;
    onUpstreamReply(job->seq, out);
  }
}

void Client::startFill(uint64_t seq, std::unique_ptr<FillReq> f, const std::string* stale) {
  const policies::FillPolicy& p = worker_.policies().localFillPolicy(*f->policy, *f->set);
  worker_.policies().sharedFill().onMiss(
      p, f->key, f->path, stale,
      [this, seq](const policies::FillOutcome& o) { onFillDone(seq, o); });
}

void Client::onFillDone(uint64_t seq, const policies::FillOutcome& o) {
  std::string reply;
  switch (o.kind) {
    case policies::FillOutcome::Kind::kValue:
      codec::appendBulk(reply, o.value);
      break;
    case policies::FillOutcome::Kind::kNil:
      codec::appendNullBulk(reply);
      break;
    case policies::FillOutcome::Kind::kError:
      codec::appendError(reply, o.error);
      break;
  }
  onUpstreamReply(seq, reply);
}

}  // namespace corral::net
