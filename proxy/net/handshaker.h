// TLS handshakes of the apps that connect to tls:// listeners, on a thread of their own.
//
//   worker: accept ──submit(fd)──> handshaker thread (own event loop, lower CPU priority)
//                                     SSL_do_handshake until done, failed or late
//   worker: Client(fd, stream) <──post── done(Result)
//
// Why a thread: a server handshake costs a few hundred microseconds of cryptography, and 2,000
// apps reconnecting at once would queue every established client of the worker behind them.
// On its own thread, at a lower scheduling priority (nice), the kernel runs the workers first
// whenever both want the CPU, so a reconnect storm slows the handshakes, not the requests.
// Only the handshake runs here; once it is done the connection (socket and TLS stream) moves to
// the worker that accepted it and never comes back.
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "proxy/tls/context.h"
#include "proxy/tls/stream.h"

namespace corral::net {

class Handshaker {
 public:
  // What became of one connection; handed to the submitter's callback on the handshake thread.
  struct Result {
    enum class Outcome { kDone, kClosed, kFailed, kLate };
    Outcome outcome = Outcome::kFailed;
    int fd = -1;                          // kDone only: the socket, now the receiver's to close
    std::unique_ptr<tls::Stream> stream;  // kDone only
    std::string error;                    // kFailed: why ("wrong version number", ...)
  };
  using Done = std::function<void(Result)>;

  // `timeout_ms`: a peer that has not finished its handshake by then is closed (kLate).
  // `nice`: added to the thread's scheduling niceness (0: none).
  Handshaker(int64_t timeout_ms, int nice);
  ~Handshaker();  // stop()s
  Handshaker(const Handshaker&) = delete;
  Handshaker& operator=(const Handshaker&) = delete;

  void start();
  // Ends the thread; connections still in their handshake are closed without a callback.
  void stop();

  // Takes over `fd` (accepted, non-blocking). `done` runs once, on the handshake thread (or at
  // once, on the caller's, when no TLS stream can be made), unless stop() comes first.
  // Callable from any thread.
  void submit(int fd, std::shared_ptr<const tls::Context> ctx, Done done);

  size_t inFlight() const;  // for tests and metrics: connections in their handshake

 private:
  struct Conn;
  static void onWake(evutil_socket_t, short, void* arg);
  static void onConn(evutil_socket_t, short what, void* arg);
  void step(Conn* c);
  void arm(Conn* c);
  void finish(Conn* c, Result r);
  void run();

  const int64_t timeout_ms_;
  const int nice_;
  event_base* base_ = nullptr;
  event* wake_ = nullptr;
  std::thread thread_;

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Conn>> incoming_;  // submitted, not yet on the loop
  bool stopping_ = false;
  size_t in_flight_ = 0;  // under mu_: incoming_ plus the loop's

  std::vector<std::unique_ptr<Conn>> conns_;  // the loop's (handshake thread only)
};

}  // namespace corral::net
