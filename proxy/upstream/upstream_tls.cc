// A connection's socket I/O: plain recv/send, or the TLS stream of a rediss:// upstream.
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "proxy/upstream/log.h"
#include "proxy/upstream/upstream.h"

namespace corral::upstream {
namespace {}  // namespace

bool Connection::startTls(std::string* err) {
  if (ctx_.tls == nullptr) {
    *err = "no upstream.tls context";
    return false;
  }
  const std::string& name = cfg_.tls.server_name.empty() ? addr_.addr.host : cfg_.tls.server_name;
  auto it = ctx_.tls_sessions.find(addr_.text);
  SSL_SESSION* resume = it == ctx_.tls_sessions.end() ? nullptr : it->second.get();
  tls_ = tls::Stream::connect(ctx_.tls->current(), fd_, name, ctx_.tls->verifies(), resume);
  if (tls_ == nullptr) {
    *err = "cannot start: " + tls::lastError();
    return false;
  }
  read_wants_write_ = false;
  return true;
}

void Connection::saveTlsSession() {
  if (tls_->resumed()) counters().tls_resumed.fetch_add(1, std::memory_order_relaxed);
  SSL_SESSION* s = tls_->session();
  log()->debug("upstream TLS ready addr={} version={} resumed={} session_saved={}", addr_.text,
               tls_->version(), tls_->resumed(), s != nullptr);
  if (s == nullptr) return;
  auto it = ctx_.tls_sessions.find(addr_.text);
  if (it != ctx_.tls_sessions.end()) {
    it->second.reset(s);
  } else {
    ctx_.tls_sessions.emplace(
        addr_.text, std::unique_ptr<SSL_SESSION, void (*)(SSL_SESSION*)>(s, SSL_SESSION_free));
  }
}

ssize_t Connection::recvSome(char* buf, size_t cap) {
  if (tls_ == nullptr) return ::recv(fd_, buf, cap, 0);
  const ssize_t n = tls_->read(buf, cap);
  if (n >= 0) return n;
  if (n == tls::Stream::kAgain) {
    if (tls_->wantsWrite()) {
      read_wants_write_ = true;
      armWrite(true);
    }
    errno = EAGAIN;
    return -1;
  }
  errno = EPROTO;
  return -1;
}

ssize_t Connection::sendSome(const char* buf, size_t len) {
  if (tls_ == nullptr) return ::send(fd_, buf, len, MSG_NOSIGNAL);
  const ssize_t n = tls_->write(buf, len);
  if (n >= 0) return n;
  if (n == tls::Stream::kAgain) {
    // Waiting to read (the handshake): the read event, always on once connected, resumes the
    // write (onEvent). Waiting to write: flush() arms the write event as for a full socket.
    errno = EAGAIN;
    return -1;
  }
  errno = EPROTO;
  return -1;
}

std::string Connection::ioError(std::string_view what) const {
  if (tls_ != nullptr && errno == EPROTO && !tls_->error().empty()) {
    counters().tls_failures.fetch_add(1, std::memory_order_relaxed);
    return "TLS: " + tls_->error();
  }
  return std::string(what) + ": " + std::strerror(errno);
}

}  // namespace corral::upstream
