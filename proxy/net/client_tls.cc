// Client: the bytes on the wire, through the socket or the TLS stream of a tls:// client.
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "proxy/net/client.h"
#include "proxy/net/log.h"
#include "proxy/net/worker.h"

namespace corral::net {

bool Client::startTls(std::shared_ptr<const tls::Context> ctx) {
  tls_ = tls::Stream::accept(std::move(ctx), fd_);
  tls_handshaking_ = tls_ != nullptr;
  return tls_ != nullptr;
}

int Client::eventPriority() const {
  return tls_handshaking_ ? Worker::kPriorityHandshake : Worker::kPriorityDefault;
}

ssize_t Client::readSome(char* buf, size_t cap) {
  if (tls_ == nullptr) return ::recv(fd_, buf, cap, 0);
  const ssize_t n = tls_->read(buf, cap);
  if (tls_handshaking_ && tls_->handshakeDone()) {
    // From now on this client's events run with everyone else's.
    tls_handshaking_ = false;
    worker_.stats().tls_handshakes.add();
    log()->debug("client TLS handshake done id={} peer={} version={} resumed={}", id_, peer_,
                 tls_->version(), tls_->resumed());
    event_priority_set(ev_, eventPriority());
  }
  if (n >= 0) return n;
  if (n == tls::Stream::kAgain) {
    if (tls_->wantsWrite()) setWriteEnabled(true);
    errno = EAGAIN;
    return -1;
  }
  errno = EPROTO;
  return -1;
}

ssize_t Client::writeSome(const char* buf, size_t len) {
  if (tls_ == nullptr) return ::send(fd_, buf, len, MSG_NOSIGNAL);
  const ssize_t n = tls_->write(buf, len);
  if (n >= 0) return n;
  errno = n == tls::Stream::kAgain ? EAGAIN : EPROTO;
  return -1;
}

std::string Client::ioError() const {
  if (tls_ != nullptr && errno == EPROTO) {
    worker_.stats().tls_failures.add();
    // The app's own mistake (plaintext to a TLS port, an unknown CA): worth a line, not more.
    log()->info("client TLS error id={} peer={} handshake_done={} err=\"{}\"", id_, peer_,
                tls_->handshakeDone(), tls_->error());
    return "TLS: " + tls_->error();
  }
  return std::strerror(errno);
}

}  // namespace corral::net
