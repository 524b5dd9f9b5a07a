// The Sentinel monitor's loop (the flow is drawn in monitor.h).
#include "proxy/sentinel/monitor.h"

#include <event2/dns.h>

#include <algorithm>

#include "config/logging.h"
#include "proxy/codec/resp.h"
#include "proxy/loop/clock.h"

namespace corral::sentinel {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = logging::get("sentinel");
  return logger;
}

// The three questions of a round, as the sequence numbers of their replies.
constexpr uint64_t kAskAddr = 1;
constexpr uint64_t kAskMaster = 2;
constexpr uint64_t kAskReplicas = 3;
constexpr uint32_t kAllAnswered = 0b111;

constexpr int64_t kTickMs = 25;         // timeouts of the connections, rounds that are due
constexpr int64_t kMinRoundGapMs = 50;  // a burst of events makes one round, not one each
constexpr int64_t kAllDownLogEveryMs = 30000;

std::string joinNodes(const std::vector<config::ListenAddress>& v) {
  std::string out;
  for (const auto& a : v) {
    if (!out.empty()) out += ',';
    out += a.text;
  }
  return out.empty() ? "none" : out;
}

// An error reply's text, capped, for a log line ("" when the reply is not an error).
std::string errorText(std::string_view reply) {
  codec::FrameReader rd(reply);
  std::string_view e;
  if (!rd.error(&e)) return {};
  return std::string(e.substr(0, 160));
}

// A nil reply, in either protocol.
bool isNil(std::string_view reply) {
  return reply == "*-1\r\n" || reply == "$-1\r\n" || reply == "_\r\n";
}

}  // namespace

// One sentinel: its command connection, its subscription, and its answers to the round.
struct Monitor::Link final : upstream::ReplySink {
  Monitor& m;
  size_t index;
  config::UpstreamAddress addr;
  std::unique_ptr<upstream::Connection> cmd;
  std::unique_ptr<upstream::Connection> sub;
  bool sub_lost = false;        // kPipeClosed arrived: retire it at the next check
  bool sub_confirmed = false;   // a SUBSCRIBE confirmation arrived
  int64_t ping_sent_ms = -1;    // a PING on the subscription not answered yet (-1: none)
  uint32_t waiting = 0;         // replies of this round still due
  uint32_t ok_bits = 0;         // which of the three parsed
  bool unknown_master = false;  // GET-MASTER-ADDR-BY-NAME answered nil this round
  Answer answer;
  bool reachable = false;
  std::string problem;  // why the last round got no answer, for the log

  Link(Monitor& mon, size_t i, config::UpstreamAddress a) : m(mon), index(i), addr(std::move(a)) {}
  void onUpstreamReply(uint64_t seq, std::string_view reply) override {
    m.onReply(*this, seq, reply);
  }
};

Monitor::Monitor(const config::SentinelConfig& cfg, const config::UpstreamConfig& upstream,
                 tls::Holder* tls)
    : cfg_(cfg), conn_cfg_(upstream), view_(cfg.addresses.size()) {
  ctx_.base = event_base_new();
  ctx_.tls = tls;
  ctx_.dns = upstream::newResolver(ctx_.base);
  ctx_.now_ms = loop::monotonicMs();
  timer_ = event_new(ctx_.base, -1, EV_PERSIST, &Monitor::onTimer, this);
  wake_ = event_new(ctx_.base, -1, 0, &Monitor::onWake, this);
  for (size_t i = 0; i < cfg_.addresses.size(); ++i) {
    config::UpstreamAddress a;
    a.addr = cfg_.addresses[i];
    a.user = cfg_.user;
    a.password = cfg_.password;
    a.text = cfg_.addresses[i].text;
    auto l = std::make_unique<Link>(*this, i, std::move(a));
    l->cmd = std::make_unique<upstream::Connection>(ctx_, l->addr, conn_cfg_, limits_, false);
    links_.push_back(std::move(l));
  }
  board_.setRefreshHook([this] {
    refresh_.store(true, std::memory_order_relaxed);
    event_active(wake_, EV_READ, 0);
  });
  Status s;
  s.master = cfg_.master;
  for (const auto& l : links_) s.sentinels.push_back(SentinelState{l->addr.text, false, false});
  board_.setStatus(std::move(s));
}

Monitor::~Monitor() {
  stop();
  board_.setRefreshHook(nullptr);
  links_.clear();
  retired_.clear();
  if (timer_ != nullptr) event_free(timer_);
  if (wake_ != nullptr) event_free(wake_);
  upstream::freeResolver(ctx_.base, ctx_.dns);
  if (ctx_.base != nullptr) event_base_free(ctx_.base);
}

void Monitor::start() {
  timeval tv{0, static_cast<suseconds_t>(kTickMs * 1000)};
  event_add(timer_, &tv);
  thread_ = std::thread([this] { run(); });
  const int64_t wait_ms =
      conn_cfg_.connect_timeout.count() + conn_cfg_.command_timeout.count() + 100;
  if (!waitFirstRound(wait_ms)) {
    log()->warn(
        "sentinel named no primary at startup, requests fail until one does master={} "
        "waited_ms={}",
        cfg_.master, wait_ms);
  }
}

bool Monitor::waitFirstRound(int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(first_mu_);
  first_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return first_done_; });
  return board_.get() != nullptr && board_.get()->primary.has_value();
}

void Monitor::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_relaxed);
  event_active(wake_, EV_READ, 0);
  thread_.join();
}

void Monitor::run() {
  ctx_.now_ms = loop::monotonicMs();
  log()->info("sentinel monitor started master={} sentinels={} poll_interval_ms={}", cfg_.master,
              links_.size(), cfg_.poll_interval.count());
  for (auto& l : links_) {
    l->cmd->start();
    openSubscription(*l);
  }
  startRound();
  while (!stop_.load(std::memory_order_relaxed)) {
    event_base_loop(ctx_.base, EVLOOP_ONCE);
    ctx_.now_ms = loop::monotonicMs();
    flushDirty();
    retired_.clear();
  }
  // Replies that still arrive while closing (the errors of shutdown()) are ignored: stop_ is set.
  for (auto& l : links_) {
    l->cmd->shutdown();
    if (l->sub != nullptr) {
      l->sub->setPipe(nullptr);
      l->sub->shutdown();
    }
  }
  retired_.clear();
  log()->info("sentinel monitor stopped master={}", cfg_.master);
}

void Monitor::flushDirty() {
  std::vector<upstream::Connection*> dirty;
  while (!ctx_.dirty.empty()) {
    dirty.swap(ctx_.dirty);
    for (upstream::Connection* c : dirty) c->flush();
    dirty.clear();
  }
}

void Monitor::onTimer(evutil_socket_t, short, void* arg) { static_cast<Monitor*>(arg)->tick(); }

void Monitor::onWake(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Monitor*>(arg);
  self->ctx_.now_ms = loop::monotonicMs();
  if (self->stop_.load(std::memory_order_relaxed)) {
    event_base_loopbreak(self->ctx_.base);
    return;
  }
  if (self->refresh_.exchange(false, std::memory_order_relaxed)) self->soon();
}

void Monitor::soon() {
  const int64_t at = last_round_ms_ < 0 ? ctx_.now_ms : last_round_ms_ + kMinRoundGapMs;
  next_round_ms_ = std::min(next_round_ms_, std::max(at, ctx_.now_ms));
}

void Monitor::tick() {
  ctx_.now_ms = loop::monotonicMs();
  for (auto& l : links_) {
    l->cmd->tick();
    if (l->sub != nullptr && !l->sub_lost) l->sub->tick();
  }
  const auto before = view_.topology().primary;
  apply(view_.onTick(ctx_.now_ms), before, "fence timeout", nullptr);
  if (ctx_.now_ms >= next_round_ms_ && !round_active_) {
    checkSubscriptions();
    startRound();
  }
}

void Monitor::startRound() {
  round_active_ = true;
  round_started_ms_ = ctx_.now_ms;
  last_round_ms_ = ctx_.now_ms;
  next_round_ms_ = ctx_.now_ms + cfg_.poll_interval.count();
  round_waiting_ = 0;
  std::string cmds;
  codec::appendCommand(cmds, {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", cfg_.master});
  const size_t addr_end = cmds.size();
  codec::appendCommand(cmds, {"SENTINEL", "MASTER", cfg_.master});
  const size_t master_end = cmds.size();
  codec::appendCommand(cmds, {"SENTINEL", "REPLICAS", cfg_.master});
  const std::string_view all(cmds);
  for (auto& l : links_) {
    l->answer = Answer{};
    l->ok_bits = 0;
    l->unknown_master = false;
    l->waiting = 0;
    if (!l->cmd->accepting()) {
      l->problem = "unreachable";  // down: skipped until it reconnects
      continue;
    }
    l->waiting = 3;
    ++round_waiting_;
    l->cmd->enqueue(l.get(), kAskAddr, all.substr(0, addr_end));
    l->cmd->enqueue(l.get(), kAskMaster, all.substr(addr_end, master_end - addr_end));
    l->cmd->enqueue(l.get(), kAskReplicas, all.substr(master_end));
  }
  if (round_waiting_ == 0) finishRound();
}

void Monitor::onReply(Link& l, uint64_t seq, std::string_view reply) {
  if (stop_.load(std::memory_order_relaxed)) return;
  if (seq == upstream::kPipeFrame) return onSubscriptionFrame(l, reply);
  if (seq == upstream::kPipeClosed) {
    l.sub_lost = true;
    if (l.sub_confirmed) log()->warn("sentinel subscription lost addr={}", l.addr.text);
    l.sub_confirmed = false;
    publishStatus();
    return;
  }
  if (l.waiting == 0) return;  // cannot happen: every request is answered once
  bool ok = false;
  switch (seq) {
    case kAskAddr:
      ok = parseMasterAddr(reply, &l.answer.primary);
      l.answer.knows_master = ok;
      if (!ok && isNil(reply)) {
        // This sentinel does not monitor the master (a configuration mistake): it answered,
        // and its SENTINEL MASTER and REPLICAS errors are the same news.
        ok = true;
        l.unknown_master = true;
        l.problem = "does not monitor master " + cfg_.master;
      }
      break;
    case kAskMaster:
      ok = parseMasterState(reply, &l.answer.state) || l.unknown_master;
      break;
    case kAskReplicas:
      ok = parseReplicas(reply, &l.answer.replicas) || l.unknown_master;
      break;
    default:
      break;
  }
  if (ok) {
    l.ok_bits |= 1u << (seq - 1);
  } else if (std::string e = errorText(reply); !e.empty()) {
    l.problem = e;
  } else {
    l.problem = "malformed reply";
  }
  if (--l.waiting > 0) return;
  l.answer.answered = l.ok_bits == kAllAnswered;
  if (--round_waiting_ == 0) finishRound();
}

void Monitor::finishRound() {
  round_active_ = false;
  ++rounds_;
  std::vector<Answer> answers;
  size_t reachable = 0;
  for (auto& l : links_) {
    const bool now_reachable = l->answer.answered;
    if (now_reachable != l->reachable || (!now_reachable && rounds_ == 1)) {
      if (now_reachable) {
        log()->info("sentinel reachable addr={}", l->addr.text);
      } else {
        log()->warn("sentinel unreachable addr={} reason=\"{}\"", l->addr.text, l->problem);
      }
    }
    if (now_reachable && !l->answer.knows_master) {
      log()->error("sentinel does not monitor the master addr={} master={}", l->addr.text,
                   cfg_.master);
    }
    l->reachable = now_reachable;
    if (now_reachable) ++reachable;
    answers.push_back(l->answer);
  }
  reachable_ = reachable;
  if (reachable > 0) last_answer_ms_ = ctx_.now_ms;
  const auto before = view_.topology().primary;
  apply(view_.onRound(answers, round_started_ms_, ctx_.now_ms), before, "poll", nullptr);

  // Every sentinel down: keep serving what corral last heard, and say so.
  if (reachable == 0) {
    if (!all_down_logged_ || ctx_.now_ms - all_down_log_ms_ >= kAllDownLogEveryMs) {
      const auto& p = view_.topology().primary;
      log()->warn("sentinel none reachable master={} sentinels={} serving={}", cfg_.master,
                  links_.size(), p ? "last known primary " + p->text : "nothing: no primary known");
      all_down_logged_ = true;
      all_down_log_ms_ = ctx_.now_ms;
    }
  } else if (all_down_logged_) {
    log()->info("sentinel reachable again master={} reachable={}", cfg_.master, reachable);
    all_down_logged_ = false;
  }
  publishStatus();
  {
    std::lock_guard<std::mutex> lock(first_mu_);
    first_done_ = true;
  }
  first_cv_.notify_all();
}

void Monitor::openSubscription(Link& l) {
  l.sub_lost = false;
  l.sub_confirmed = false;
  l.ping_sent_ms = -1;
  l.sub = std::make_unique<upstream::Connection>(ctx_, l.addr, conn_cfg_, limits_, false,
                                                 /*reconnect=*/false);
  l.sub->setPipe(&l);
  l.sub->start();  // a refused connect reports kPipeClosed from in here
  if (l.sub_lost) return;
  std::vector<std::string_view> args{"SUBSCRIBE"};
  const auto& channels = subscribedChannels();
  args.insert(args.end(), channels.begin(), channels.end());
  std::string cmd;
  codec::appendCommand(cmd, args);
  l.sub->enqueueRaw(cmd);
}

void Monitor::retireSubscription(Link& l) {
  if (l.sub == nullptr) return;
  l.sub->setPipe(nullptr);
  retired_.push_back(std::move(l.sub));
  l.sub_confirmed = false;
  publishStatus();
}

// Once per round: a lost subscription is made again; a live one is sent PING, and one that
// left the last PING unanswered for a whole interval (a frozen sentinel, a dead path with no
// RST) is replaced. The rounds keep corral right meanwhile.
void Monitor::checkSubscriptions() {
  static const std::string kPing = [] {
    std::string p;
    codec::appendCommand(p, {"PING"});
    return p;
  }();
  const int64_t silent_ms =
      std::max<int64_t>(cfg_.poll_interval.count(), conn_cfg_.command_timeout.count());
  for (auto& l : links_) {
    if (l->sub != nullptr && l->sub_lost) retireSubscription(*l);
    if (l->sub == nullptr) {
      openSubscription(*l);
      continue;
    }
    if (!l->sub_confirmed) continue;
    if (l->ping_sent_ms >= 0) {
      if (ctx_.now_ms - l->ping_sent_ms >= silent_ms) {
        log()->warn("sentinel subscription silent, subscribing again addr={} silent_ms={}",
                    l->addr.text, ctx_.now_ms - l->ping_sent_ms);
        retireSubscription(*l);
      }
      continue;
    }
    l->ping_sent_ms = ctx_.now_ms;
    l->sub->enqueueRaw(kPing);
  }
}

void Monitor::onSubscriptionFrame(Link& l, std::string_view frame) {
  const PubsubMessage m = parsePubsub(frame);
  switch (m.kind) {
    case PubsubMessage::Kind::kConfirmation:
      if (!l.sub_confirmed) {
        l.sub_confirmed = true;
        log()->debug("sentinel subscribed addr={}", l.addr.text);
        publishStatus();
      }
      break;
    case PubsubMessage::Kind::kPong:
      l.ping_sent_ms = -1;
      break;
    case PubsubMessage::Kind::kMessage:
      onEvent(l, m.channel, m.payload);
      break;
    case PubsubMessage::Kind::kOther:
      break;
  }
}

void Monitor::onEvent(Link& l, std::string_view channel, std::string_view payload) {
  const EventKind kind = classifyEvent(channel);
  const auto before = view_.topology().primary;
  if (kind == EventKind::kSwitchMaster) {
    SwitchMaster s;
    if (!parseSwitchMaster(payload, &s) || s.name != cfg_.master) return;
    ++events_;
    apply(view_.onSwitch(s), before, channel, &l);
    soon();  // confirm, and learn the new primary's replicas
    return;
  }
  std::string_view name;
  config::ListenAddress of;
  if (kind == EventKind::kOther || !eventMaster(payload, &name, &of) || name != cfg_.master) return;
  ++events_;
  log()->debug("sentinel event addr={} channel={} payload=\"{}\"", l.addr.text, channel,
               payload.substr(0, 200));
  if (kind == EventKind::kFailoverStarted) {
    apply(view_.onFailoverStarted(of, l.index, ctx_.now_ms), before, channel, &l);
  } else {
    soon();  // an abort, or the replicas changed: ask
  }
}

void Monitor::apply(uint32_t changes, const std::optional<config::ListenAddress>& before,
                    std::string_view via, const Link* from) {
  if (changes == kNoChange) return;
  const Topology& t = view_.topology();
  const std::string sentinel = from != nullptr ? from->addr.text : std::string("-");
  if (changes & kStaleIgnored) {
    log()->debug("sentinel answers older than the config epoch followed, ignored epoch={}",
                 view_.epoch());
  }
  if ((changes & kPrimaryChanged) && t.primary) {
    if (!before) {
      log()->info("sentinel primary found master={} addr={} epoch={}", cfg_.master, t.primary->text,
                  view_.epoch());
    } else {
      ++switches_;
      log()->warn("sentinel primary switched master={} from={} to={} via={} sentinel={}",
                  cfg_.master, before->text, t.primary->text, via, sentinel);
    }
  }
  if (changes & kFenceChanged) {
    const std::string primary = t.primary ? t.primary->text : std::string("none");
    if (t.fenced) {
      log()->warn(
          "sentinel failover under way, primary fenced (requests to it fail until the switch) "
          "master={} primary={} via={} sentinel={}",
          cfg_.master, primary, via, sentinel);
    } else if (changes & kFenceExpired) {
      log()->error(
          "sentinel failover fence expired without a switch, primary serves again "
          "master={} primary={}",
          cfg_.master, primary);
    } else if (!(changes & kPrimaryChanged)) {
      log()->info(
          "sentinel failover over without a switch, primary serves again master={} "
          "primary={}",
          cfg_.master, primary);
    }
  }
  if (changes & kReplicasChanged) {
    log()->info("sentinel replicas master={} replicas={}", cfg_.master, joinNodes(t.replicas));
  }
  if (changes & (kPrimaryChanged | kFenceChanged | kReplicasChanged)) {
    board_.publish(t);
    publishStatus();
  }
}

void Monitor::publishStatus() {
  Status s;
  s.master = cfg_.master;
  for (const auto& l : links_) {
    s.sentinels.push_back(SentinelState{l->addr.text, l->reachable,
                                        l->sub != nullptr && l->sub_confirmed && !l->sub_lost});
  }
  const Topology& t = view_.topology();
  s.reachable = reachable_;
  s.answered_once = t.primary.has_value();
  s.primary = t.primary ? t.primary->text : std::string();
  s.replicas = t.replicas.size();
  s.fenced = t.fenced;
  s.config_epoch = view_.epoch();
  s.switches = switches_;
  s.rounds = rounds_;
  s.events = events_;
  s.last_answer_ms = last_answer_ms_;
  board_.setStatus(std::move(s));
}

}  // namespace corral::sentinel
