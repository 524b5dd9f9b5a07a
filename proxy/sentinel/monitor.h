// The Sentinel monitor: one thread with its own libevent loop that keeps asking the sentinels
// which server is the primary, and listens to what they announce.
//
//   every sentinel ── command connection (upstream::Connection, reconnecting) ──┐
//     poll_interval, and soon after an event:                                   │ replies
//       SENTINEL GET-MASTER-ADDR-BY-NAME m, SENTINEL MASTER m, SENTINEL REPLICAS m
//   every sentinel ── subscription (a pipe; remade when lost or silent to PING) ─┤ events
//       +switch-master, +try-failover ..., -failover-abort-*, +slave, +sdown ...  │
//                                                                                  v
//                    View (view.h: newest epoch wins, fences during a failover) ──> TopologyBoard
//                                                           workers <── publish() ┘  (wake)
//
// A sentinel that is down is skipped: its requests fail fast (or at connect_timeout /
// command_timeout) and the round goes on with the others. With every sentinel down, the last
// known topology stays in force; the status says so (/ready, /metrics) and it is logged.
// All I/O is non-blocking on this thread; the data path never waits for it. The connections
// are proxy/upstream's, so framing, timeouts and reconnect backoff are the same code.
#pragma once

#include <event2/event.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "proxy/sentinel/topology.h"
#include "proxy/sentinel/view.h"
#include "proxy/tls/context.h"
#include "proxy/upstream/upstream.h"

namespace corral::sentinel {

class Monitor {
 public:
  // `cfg`: upstream.sentinel; `upstream`: its timeouts and backoff serve the sentinel
  // connections too. Needs evthread_use_pthreads() called before (it is woken across threads).
  // tls: the upstream.tls context, for sentinels written tls://host:port (may be null).
  Monitor(const config::SentinelConfig& cfg, const config::UpstreamConfig& upstream,
          tls::Holder* tls = nullptr);
  ~Monitor();  // stops the thread if it runs
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  TopologyBoard& board() { return board_; }

  // Starts the thread (connects, subscribes, sends the first round of questions) and returns
  // once that round ended, every sentinel having answered or failed, or after connect_timeout
  // + command_timeout + 100 ms: the workers start with a primary when one could be had. A start
  // without one is logged; requests then fail fast until a sentinel names it.
  void start();
  // Stops the thread and closes every connection. Call after the workers stopped.
  void stop();

 private:
  struct Link;
  static void onTimer(evutil_socket_t fd, short what, void* arg);
  static void onWake(evutil_socket_t fd, short what, void* arg);
  void run();
  bool waitFirstRound(int64_t timeout_ms);
  void tick();
  void flushDirty();
  void soon();  // a round as soon as the minimum gap between rounds allows
  void startRound();
  void finishRound();
  void onReply(Link& l, uint64_t seq, std::string_view reply);
  void onSubscriptionFrame(Link& l, std::string_view frame);
  void onEvent(Link& l, std::string_view channel, std::string_view payload);
  void openSubscription(Link& l);
  void retireSubscription(Link& l);
  void checkSubscriptions();
  // Publishes and logs what a View call changed; `before` is the primary before it.
  void apply(uint32_t changes, const std::optional<config::ListenAddress>& before,
             std::string_view via, const Link* from);
  void publishStatus();

  config::SentinelConfig cfg_;
  config::UpstreamConfig conn_cfg_;  // connect/command timeouts and backoff of every sentinel
  config::Limits limits_;            // defaults: replies from sentinels are small
  TopologyBoard board_;
  upstream::LoopContext ctx_;
  std::vector<std::unique_ptr<Link>> links_;
  std::vector<std::unique_ptr<upstream::Connection>> retired_;  // closed at the end of a turn
  View view_;
  event* timer_ = nullptr;
  event* wake_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> refresh_{false};

  bool round_active_ = false;
  int64_t round_started_ms_ = 0;
  size_t round_waiting_ = 0;  // sentinels whose replies are still due
  int64_t next_round_ms_ = 0;
  int64_t last_round_ms_ = -1;

  // Status and logging.
  uint64_t switches_ = 0;
  uint64_t rounds_ = 0;
  uint64_t events_ = 0;
  int64_t last_answer_ms_ = -1;
  size_t reachable_ = 0;
  bool all_down_logged_ = false;
  int64_t all_down_log_ms_ = 0;

  std::mutex first_mu_;
  std::condition_variable first_cv_;
  bool first_done_ = false;
};

}  // namespace corral::sentinel
