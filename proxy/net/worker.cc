#include "proxy/net/worker.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "config/logging.h"
#include "proxy/cluster/slot.h"
#include "proxy/loop/clock.h"
#include "proxy/net/client.h"
#include "proxy/net/worker_parts.h"

namespace corral::net {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = logging::get("net");
  return logger;
}

constexpr int kMaxAcceptsPerEvent = 64;
constexpr std::string_view kMaxClientsReply = "-ERR max number of clients reached\r\n";

std::string peerName(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  return Worker::addressText(ss);
}

// The tick drives timeouts and reconnects; a quarter of the shortest timeout keeps their
// error under 25%, within [5 ms, 100 ms].
timeval tickInterval(const config::UpstreamConfig& u) {
  int64_t shortest =
      std::min({u.command_timeout.count(), u.connect_timeout.count(), u.reconnect_min.count()});
  int64_t ms = std::clamp<int64_t>(shortest / 4, 5, 100);
  return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}

}  // namespace

std::string Worker::addressText(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return "unix";
}

codec::Limits Worker::codecLimits() const {
  return codec::Limits{.max_args = limits_.max_args,
                       .max_bulk_bytes = limits_.max_bulk_bytes,
                       .max_request_bytes = limits_.max_request_bytes,
                       .max_inline_bytes = limits_.max_inline_bytes,
                       .max_reply_bytes = limits_.max_reply_bytes};
}

Worker::Worker(int index, const config::Config& cfg, SharedState& shared,
               std::vector<ListenSocket> listeners)
    : index_(index),
      cfg_(cfg),
      limits_(cfg.limits),
      shared_(shared),
      stats_(shared.stats.blocks.at(static_cast<size_t>(index)).get()),
      listeners_(std::move(listeners)),
      read_scratch_(new char[kReadScratch]) {
  // TLS handshakes of clients do not run here but on the handshake thread (handshaker.h).
  loop_.base = event_base_new();
  loop_.ids = &shared.ids;
  loop_.tls = shared.tls_upstream.get();
  // Upstream host names (managed services give names): /etc/hosts, then resolv.conf's servers.
  loop_.dns = upstream::newResolver(loop_.base);
  if (shared.workers.size() <= static_cast<size_t>(index)) {
    shared.workers.resize(static_cast<size_t>(index) + 1);
  }
  shared.workers[static_cast<size_t>(index)] = this;
  loop_.now_ms = loop::monotonicMs();
  for (const ListenSocket& l : listeners_) {
    event* ev = event_new(loop_.base, l.fd, EV_READ | EV_PERSIST, &Worker::onAccept, this);
    event_add(ev, nullptr);
    accept_events_.push_back(ev);
  }
  tick_ev_ = event_new(loop_.base, -1, EV_PERSIST, &Worker::onTick, this);
  timeval tv = tickInterval(cfg_.upstream);
  event_add(tick_ev_, &tv);
  control_ev_ = event_new(loop_.base, -1, 0, &Worker::onControl, this);
  policies_ = std::make_unique<wiring::PolicyRuntime>(
      loop_.base, loop_.dns, index, shared.policy_registry,
      [this](std::string_view key) {
        // Fill scripts: with a cluster, on the owner of the data key's slot (their keys share
        // its hash tag); else the primary.
        if (cluster_ != nullptr) {
          return cluster_->connection(key.empty() ? -1 : cluster::keySlot(key), 0);
        }
        return route(false, 0, cfg_.upstream.primary.db);
      },
      [this](std::function<void()> task) { post(std::move(task)); });
  policies_->globalLimits().setWake([this] {
    std::vector<Client*> waiters;
    waiters.swap(limit_waiters_);
    for (Client* c : waiters) c->onWaitOver();  // each parses its request again
  });
  syncPolicies();

  if (shared.auth != nullptr && shared.auth->passthrough() && shared.verdicts != nullptr) {
    auth_checks_ = std::make_unique<AuthChecks>(
        loop_, cfg_.upstream, limits_, cfg_.auth.passthrough.max_checks, *shared.verdicts, *stats_);
    user_pools_ = std::make_unique<UserPools>(loop_, cfg_.upstream, limits_, cfg_.auth.passthrough,
                                              *stats_, retired_);
  }
  command_ask_ = std::make_unique<CommandAsk>(*this);
  primary_addr_ = cfg_.upstream.primary;
  makeUpstreams();
  // A fill that waits for another corral's lease hears of the value through CLIENT TRACKING on
  // the near cache's connection instead of polling every few ms.
  policies_->fillEngine().setWaitWatcher([this](std::string_view key) { near().watch(key); });
  stats_->upstreams_total.set(static_cast<uint64_t>(pools_[0].size()) * pools_.size());
}

Worker::~Worker() {
  // Fills first: their pending callbacks point at clients and use the loop's timers.
  policies_.reset();
  for (Client* c : all_clients_) delete c;  // dead_clients_ is a subset of all_clients_
  cluster_.reset();
  auth_checks_.reset();
  user_pools_.reset();
  busy_.clear();
  pools_.clear();
  db_pools_.clear();
  retired_.clear();
  for (event* ev : accept_events_) event_free(ev);
  for (const ListenSocket& l : listeners_) {
    if (l.fd >= 0) ::close(l.fd);
  }
  if (tick_ev_ != nullptr) event_free(tick_ev_);
  if (control_ev_ != nullptr) event_free(control_ev_);
  // Lookups still in flight end in callbacks evdns defers: run them, with nothing of ours
  // left on the loop, so that their memory is freed.
  upstream::freeResolver(loop_.base, loop_.dns);
  if (loop_.base != nullptr) event_base_free(loop_.base);
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::run() {
  const std::string name = "corral-w" + std::to_string(index_);
  ::pthread_setname_np(::pthread_self(), name.c_str());  // top -H, /proc/<pid>/task/*/comm
  loop_.now_ms = loop::monotonicMs();
  for (auto& pool : pools_) {
    for (auto& c : pool) c->start();
  }
  if (cluster_ != nullptr) cluster_->start();
  while (!stop_loop_) {
    syncPolicies();
    event_base_loop(loop_.base, EVLOOP_ONCE);
    loop_.now_ms = loop::monotonicMs();
    syncTopology();  // before the flush: what a switch answers leaves this turn
    if (cluster_ != nullptr) cluster_->sync();
    flushPhase();
    reap();
  }
  // Shutdown: other workers' fills stop waiting for this one's; fail whatever is still in
  // flight, then release every client.
  policies_->stopFills();
  for (Client* c : all_clients_) c->closeNow("shutdown");
  if (cluster_ != nullptr) cluster_->shutdown();
  if (near_ != nullptr) near_->shutdown();
  for (auto& pool : pools_) {
    for (auto& c : pool) c->shutdown();
  }
  for (auto& entry : db_pools_) {
    for (auto& c : entry.second) c->shutdown();
  }
  if (auth_checks_ != nullptr) auth_checks_->shutdown();
  if (user_pools_ != nullptr) user_pools_->shutdown();
  flushPhase();
  reap();
  finished_.store(true, std::memory_order_release);
}

void Worker::syncPolicies() {
  const uint64_t gen = shared_.policyGeneration();
  if (gen == policy_gen_seen_) return;
  policy_gen_seen_ = gen;
  policies_->sync(shared_.policies());
  policies_trivial_ = policies_->set().trivial();
  reject_unknown_ = policies_->set().unknownCommands() == config::UnknownCommands::kReject;
}

void Worker::askCommands() {
  if (command_ask_->in_flight || draining_) return;
  if (shared_.commands.settled()) {
    command_ask_->settled = true;
    return;
  }
  upstream::Connection* c = pools_[0][0].get();
  if (!c->ready() || !shared_.commands.claim()) return;
  // No arguments: every command the server has. COMMAND rather than COMMAND INFO, which needs
  // an argument before Redis 7.0; both give the same reply.
  static constexpr std::string_view kCommand = "*1\r\n$7\r\nCOMMAND\r\n";
  command_ask_->in_flight = true;
  c->enqueue(command_ask_.get(), 0, kCommand);
}

void Worker::refreshClock() { loop_.now_ms = loop::monotonicMs(); }

void Worker::onAccept(evutil_socket_t fd, short, void* arg) {
  static_cast<Worker*>(arg)->acceptFrom(fd);
}

void Worker::acceptFrom(int lfd) {
  bool tls = false;
  for (const ListenSocket& l : listeners_) tls = tls || (l.fd == lfd && l.tls);
  for (int i = 0; i < kMaxAcceptsPerEvent; ++i) {
    int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        log()->warn("accept failed worker={} err={}", index_, std::strerror(errno));
      }
      return;
    }
    const uint32_t now = shared_.clients.fetch_add(1, std::memory_order_relaxed) + 1;
    if (now > shared_.max_clients.load(std::memory_order_relaxed)) {
      shared_.clients.fetch_sub(1, std::memory_order_relaxed);
      stats_->connections_rejected.add();
      // Best effort, like Redis: the socket is new, so the short reply fits its buffer. (A TLS
      // client could not read it before a handshake: it is only closed.)
      if (!tls) {
        ssize_t ignored =
            ::send(fd, kMaxClientsReply.data(), kMaxClientsReply.size(), MSG_NOSIGNAL);
        (void)ignored;
      }
      ::close(fd);
      log()->debug("client rejected: max clients reached limit={}",
                   shared_.max_clients.load(std::memory_order_relaxed));
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // fails harmlessly on unix
    stats_->connections_accepted.add();
    if (tls) {
      handOverTls(fd);
    } else {
      addClient(fd, nullptr, peerName(fd));
    }
  }
}

void Worker::addClient(int fd, std::unique_ptr<tls::Stream> stream, std::string peer) {
  const uint64_t id = shared_.next_client_id.fetch_add(1, std::memory_order_relaxed);
  auto* c = new Client(*this, fd, id, std::move(peer));
  if (stream != nullptr) c->adoptTls(std::move(stream));
  c->index_ = all_clients_.size();
  all_clients_.push_back(c);
  stats_->clients.add();
  c->start();
  if (draining_) c->beginDrain();
}

void Worker::handOverTls(int fd) {
  // The result comes back on the handshake thread; it travels to this worker in a shared
  // holder, so that a task never run (the worker stopped first) still closes the socket.
  struct Back {
    Handshaker::Result r;
    ~Back() {
      if (r.fd >= 0) ::close(r.fd);
    }
  };
  std::string peer = peerName(fd);
  shared_.handshaker->submit(fd, shared_.tls_server->current(), [this, peer](Handshaker::Result r) {
    auto back = std::make_shared<Back>();
    back->r = std::move(r);
    post([this, back, peer] {
      Handshaker::Result got = std::move(back->r);
      back->r.fd = -1;
      onHandshake(std::move(got), peer);
    });
  });
}

void Worker::onHandshake(Handshaker::Result r, const std::string& peer) {
  using Outcome = Handshaker::Result::Outcome;
  if (r.outcome == Outcome::kDone) {
    stats_->tls_handshakes.add();
    log()->debug("client TLS handshake done peer={} version={} resumed={}", peer,
                 r.stream->version(), r.stream->resumed());
    addClient(r.fd, std::move(r.stream), peer);
    return;
  }
  shared_.clients.fetch_sub(1, std::memory_order_relaxed);
  switch (r.outcome) {
    case Outcome::kLate:
      stats_->tls_timeouts.add();
      log()->info("client TLS handshake timeout peer={} timeout_ms={}", peer,
                  cfg_.tls.handshake_timeout.count());
      break;
    case Outcome::kFailed:
      // The app's own mistake (plaintext to a TLS port, an unknown CA): worth a line, not more.
      stats_->tls_failures.add();
      log()->info("client TLS error peer={} err=\"{}\"", peer, r.error);
      break;
    default:
      break;  // closed before its handshake ended: nothing to say
  }
}

void Worker::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    tasks_.push_back(std::move(task));
  }
  event_active(control_ev_, EV_READ, 0);
}

void Worker::fanOut(FanOutEach each, std::function<void(const std::string&, int64_t)> done) {
  struct Gather {
    std::mutex mu;
    std::string text;
    int64_t count = 0;
    size_t remaining = 0;
  };
  auto g = std::make_shared<Gather>();
  g->remaining = shared_.workers.size();
  auto shared_each = std::make_shared<FanOutEach>(std::move(each));
  auto shared_done =
      std::make_shared<std::function<void(const std::string&, int64_t)>>(std::move(done));
  Worker* origin = this;
  for (Worker* w : shared_.workers) {
    w->post([w, g, shared_each, shared_done, origin] {
      std::string text;
      int64_t count = 0;
      (*shared_each)(*w, text, count);
      bool last = false;
      {
        std::lock_guard<std::mutex> lock(g->mu);
        g->text += text;
        g->count += count;
        last = --g->remaining == 0;
      }
      if (last) origin->post([g, shared_done] { (*shared_done)(g->text, g->count); });
    });
  }
}

void Worker::markDirty(Client* c) {
  if (c->in_dirty_) return;
  c->in_dirty_ = true;
  dirty_clients_.push_back(c);
}

void Worker::clientClosed(Client* c) {
  if (c->in_dead_ || c->inflightRefs() != 0) return;
  c->in_dead_ = true;
  dead_clients_.push_back(c);
}

void Worker::flushPhase() {
  // Upstreams first so requests leave as early as possible; clients second. Resuming a paused
  // client can queue more upstream work, so repeat until both lists are empty (finite: each
  // client resumes only with the input it holds).
  std::vector<upstream::Connection*> ups;
  std::vector<Client*> cls;
  while (!loop_.dirty.empty() || !dirty_clients_.empty()) {
    ups.swap(loop_.dirty);
    for (upstream::Connection* u : ups) u->flush();
    ups.clear();
    cls.swap(dirty_clients_);
    for (Client* c : cls) {
      c->in_dirty_ = false;
      if (c->closed()) continue;
      c->flush();
      if (!c->closed()) c->maybeResume();
    }
    cls.clear();
  }
  // Keep the swapped vectors' capacity for the next turn.
  if (loop_.dirty.capacity() < ups.capacity()) loop_.dirty.swap(ups);
  if (dirty_clients_.capacity() < cls.capacity()) dirty_clients_.swap(cls);
}

void Worker::reap() {
  // Retired dedicated connections first: closing one fails what it still holds, which can
  // make its (closed) client dead.
  for (auto& call : busy_) {
    if (call->done) retired_.push_back(std::move(call->conn));
  }
  std::erase_if(busy_, [](const auto& call) { return call->done; });
  while (!retired_.empty()) {
    std::vector<std::unique_ptr<upstream::Connection>> batch;
    batch.swap(retired_);
    for (auto& c : batch) c->shutdown();
  }
  if (dead_clients_.empty()) return;
  for (Client* c : dead_clients_) {
    // Swap-remove from all_clients_.
    Client* last = all_clients_.back();
    all_clients_[c->index_] = last;
    last->index_ = c->index_;
    all_clients_.pop_back();
    shared_.clients.fetch_sub(1, std::memory_order_relaxed);
    stats_->clients.sub();
    delete c;
  }
  dead_clients_.clear();
  if (draining_) checkDrain();
}

void Worker::onTick(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  self->refreshClock();
  uint64_t ready = 0;
  uint64_t primary_ready = 0;
  // A copy: a tick may end a dedicated connection, which changes the list.
  const std::vector<Client*> owners = self->dedicated_owners_;
  for (Client* c : owners) {
    if (c->dedicated_ != nullptr) c->dedicated_->tick();
    c->checkDeadline(self->loop_.now_ms);
  }
  for (auto& call : self->busy_) {
    if (!call->done) call->conn->tick();
  }
  for (auto& entry : self->db_pools_) {
    for (auto& c : entry.second) c->tick();
  }
  if (self->auth_checks_ != nullptr) self->auth_checks_->tick();
  self->policies_->tick();
  if (self->user_pools_ != nullptr) self->user_pools_->tick(self->loop_.now_ms);
  for (size_t u = 0; u < self->pools_.size(); ++u) {
    for (auto& c : self->pools_[u]) {
      c->tick();
      if (c->ready()) {
        ++ready;
        if (u == 0) ++primary_ready;
      }
    }
  }
  if (self->near_ != nullptr) {
    self->near_->tick(self->loop_.now_ms);
    const NearCache::Totals t = self->near_->totals();
    Stats::Worker& st = *self->stats_;
    st.near_hits.set(t.hits);
    st.near_misses.set(t.misses);
    st.near_invalidations.set(t.invalidations);
    st.near_evictions.set(t.evictions);
    st.near_bytes.set(t.bytes);
    st.near_entries.set(t.entries);
  }
  if (self->cluster_ != nullptr) {
    self->cluster_->tick(self->loop_.now_ms);
    // /ready: the cluster's primaries, not the seed connection (pools_[0]).
    primary_ready = self->cluster_->anyReady() ? 1 : 0;
    self->cluster_->forEachConnection([&ready](const upstream::Connection& c) {
      if (c.ready()) ++ready;
    });
  }
  // Once a second, clients idle for a second give back their buffers.
  if (self->loop_.now_ms - self->idle_sweep_ms_ >= 1000) {
    self->idle_sweep_ms_ = self->loop_.now_ms;
    for (Client* c : self->all_clients_) {
      if (self->loop_.now_ms - c->lastActiveMs() >= 1000) c->releaseIdleMemory();
    }
  }
  if (!self->command_ask_->settled) self->askCommands();
  self->stats_->upstreams_ready.set(ready);
  self->stats_->primary_ready.set(primary_ready);
  self->reportUpstreams();
  if (self->draining_) self->checkDrain();
}

void Worker::postLimits(const config::Limits& limits) {
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    pending_limits_ = true;
    new_limits_ = limits;
  }
  event_active(control_ev_, EV_READ, 0);
}

void Worker::postDrain(int64_t deadline_ms) {
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    pending_drain_deadline_ = deadline_ms;
  }
  event_active(control_ev_, EV_READ, 0);
}

void Worker::onControl(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  bool limits = false;
  config::Limits l;
  int64_t drain = -1;
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(self->control_mu_);
    tasks.swap(self->tasks_);
    limits = self->pending_limits_;
    l = self->new_limits_;
    self->pending_limits_ = false;
    drain = self->pending_drain_deadline_;
    self->pending_drain_deadline_ = -1;
  }
  if (limits) {
    self->limits_ = l;
    const codec::Limits cl = self->codecLimits();
    for (Client* c : self->all_clients_) c->applyLimits(cl);
    log()->info("limits reloaded worker={}", self->index_);
  }
  for (auto& task : tasks) task();
  if (drain >= 0 && !self->draining_) self->beginDrain(drain);
}

void Worker::beginDrain(int64_t deadline_ms) {
  draining_ = true;
  drain_deadline_ms_ = deadline_ms;
  // Stop listening at once: new connections are refused (not left waiting in the backlog), so
  // a rolling update moves them to the new instance.
  for (event* ev : accept_events_) event_free(ev);
  accept_events_.clear();
  for (ListenSocket& l : listeners_) {
    ::close(l.fd);
    l.fd = -1;
  }
  // Copy: beginDrain may close clients, which only marks them dead (no removal yet).
  for (Client* c : all_clients_) c->beginDrain();
  log()->info("draining worker={} clients={}", index_, all_clients_.size());
  checkDrain();
}

void Worker::checkDrain() {
  bool busy = false;
  for (Client* c : all_clients_) {
    if (!c->closed()) {
      busy = true;
      break;
    }
  }
  if (!busy || loop_.now_ms >= drain_deadline_ms_) {
    if (busy) log()->warn("drain deadline reached worker={}", index_);
    stop_loop_ = true;
  }
}

NearCache& Worker::near() {
  if (near_ == nullptr) {
    if (cluster_ != nullptr) {
      near_ = std::make_unique<NearCache>(loop_, *cluster_, cfg_.upstream, limits_, workerCount(),
                                          shared_.policy_registry, retired_);
      cluster_->onMapChange([this] { near_->onClusterChange(); });
    } else {
      // With Sentinel, the primary of now (applyTopology retargets it), ROLE checked, fenced
      // while the primary's pool is.
      near_ =
          std::make_unique<NearCache>(loop_, primary_addr_, cfg_.upstream, limits_, workerCount(),
                                      shared_.policy_registry, shared_.topology != nullptr);
      if (fenced_) near_->setFenced(true);
    }
    // Lease waiters are woken by their key's change (FillEngine::setWaitWatcher).
    near_->setWatchHooks(
        [this](std::string_view key) {
          if (policies_ != nullptr) policies_->fillEngine().wake(key);
        },
        [this] {
          if (policies_ != nullptr) policies_->fillEngine().wakeAll();
        });
    near_->start();
  }
  return *near_;
}

}  // namespace corral::net
