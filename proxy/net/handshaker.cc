#include "proxy/net/handshaker.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "proxy/loop/clock.h"
#include "proxy/net/log.h"

namespace corral::net {

struct Handshaker::Conn {
  Handshaker* owner = nullptr;
  int fd = -1;
  std::unique_ptr<tls::Stream> stream;
  Done done;
  int64_t deadline_ms = 0;
  event* ev = nullptr;
  size_t index = 0;  // in conns_
  ~Conn() {
    if (ev != nullptr) event_free(ev);
    if (fd >= 0) ::close(fd);
  }
};

Handshaker::Handshaker(int64_t timeout_ms, int nice) : timeout_ms_(timeout_ms), nice_(nice) {
  base_ = event_base_new();
  wake_ = event_new(base_, -1, EV_PERSIST, &Handshaker::onWake, this);
}

Handshaker::~Handshaker() {
  stop();
  conns_.clear();  // frees their events: before the loop
  incoming_.clear();
  if (wake_ != nullptr) event_free(wake_);
  if (base_ != nullptr) event_base_free(base_);
}

void Handshaker::start() {
  thread_ = std::thread([this] { run(); });
}

void Handshaker::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) {
    event_active(wake_, EV_READ, 0);
    thread_.join();
  }
}

void Handshaker::run() {
  ::pthread_setname_np(::pthread_self(), "corral-tls");  // top -H, /proc/<pid>/task/*/comm
  if (nice_ != 0) {
    // Linux schedules threads one by one: this sets the handshake thread's niceness only.
    const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
    const int now = ::getpriority(PRIO_PROCESS, tid);
    if (::setpriority(PRIO_PROCESS, tid, now + nice_) != 0) {
      log()->warn("TLS handshake thread keeps its priority: setpriority failed err={}",
                  std::strerror(errno));
    }
  }
  // The wake event is never pending (only made active), so an idle loop must not end.
  event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
}

void Handshaker::submit(int fd, std::shared_ptr<const tls::Context> ctx, Done done) {
  auto c = std::make_unique<Conn>();
  c->owner = this;
  c->fd = fd;
  c->done = std::move(done);
  c->stream = tls::Stream::accept(std::move(ctx), fd);
  if (c->stream == nullptr) {
    Result r;
    r.error = "cannot start a TLS stream: " + tls::lastError();
    c->done(std::move(r));
    return;  // ~Conn closes the socket
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    incoming_.push_back(std::move(c));
    ++in_flight_;
  }
  event_active(wake_, EV_READ, 0);
}

size_t Handshaker::inFlight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

void Handshaker::onWake(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Handshaker*>(arg);
  std::vector<std::unique_ptr<Conn>> fresh;
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    if (self->stopping_) {
      event_base_loopbreak(self->base_);
      return;
    }
    fresh.swap(self->incoming_);
  }
  const int64_t now = loop::monotonicMs();
  for (auto& c : fresh) {
    Conn* raw = c.get();
    raw->deadline_ms = now + self->timeout_ms_;
    raw->index = self->conns_.size();
    raw->ev = event_new(self->base_, raw->fd, 0, &Handshaker::onConn, raw);
    self->conns_.push_back(std::move(c));
    // The ClientHello is usually in the socket already: try before waiting.
    self->step(raw);
  }
}

void Handshaker::onConn(evutil_socket_t, short what, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  if (what & EV_TIMEOUT) {
    Result r;
    r.outcome = Result::Outcome::kLate;
    c->owner->finish(c, std::move(r));
    return;
  }
  c->owner->step(c);
}

void Handshaker::step(Conn* c) {
  const ssize_t rc = c->stream->handshake();
  if (rc == 1) {
    Result r;
    r.outcome = Result::Outcome::kDone;
    r.fd = c->fd;
    r.stream = std::move(c->stream);
    c->fd = -1;  // the receiver's now
    finish(c, std::move(r));
    return;
  }
  if (rc == tls::Stream::kAgain) {
    if (loop::monotonicMs() >= c->deadline_ms) {
      Result r;
      r.outcome = Result::Outcome::kLate;
      finish(c, std::move(r));
      return;
    }
    arm(c);
    return;
  }
  Result r;
  r.outcome = rc == 0 ? Result::Outcome::kClosed : Result::Outcome::kFailed;
  r.error = c->stream->error();
  finish(c, std::move(r));
}

void Handshaker::arm(Conn* c) {
  const short what = c->stream->wantsWrite() ? EV_WRITE : EV_READ;
  const int64_t left_ms = std::max<int64_t>(c->deadline_ms - loop::monotonicMs(), 1);
  timeval tv{static_cast<time_t>(left_ms / 1000), static_cast<suseconds_t>(left_ms % 1000 * 1000)};
  event_del(c->ev);
  event_assign(c->ev, base_, c->fd, what, &Handshaker::onConn, c);
  event_add(c->ev, &tv);
}

void Handshaker::finish(Conn* c, Result r) {
  Done done = std::move(c->done);
  // Swap-remove from conns_: the last one takes c's place.
  const size_t i = c->index;
  std::unique_ptr<Conn> gone = std::move(conns_[i]);
  if (i + 1 != conns_.size()) {
    conns_[i] = std::move(conns_.back());
    conns_[i]->index = i;
  }
  conns_.pop_back();
  {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
  }
  gone.reset();  // closes the socket unless it went with the result
  done(std::move(r));
}

}  // namespace corral::net
