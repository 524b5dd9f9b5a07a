// Client: the bytes on the wire, through the socket or the TLS stream of a tls:// client.
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "proxy/net/client.h"
#include "proxy/net/log.h"
#include "proxy/net/worker.h"

namespace corral::net {

ssize_t Client::readSome(char* buf, size_t cap) {
  if (tls_ == nullptr) return ::recv(fd_, buf, cap, 0);
  const ssize_t n = tls_->read(buf, cap);
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
    log()->info("client TLS error id={} peer={} err=\"{}\"", id_, peer_, tls_->error());
    return "TLS: " + tls_->error();
  }
  return std::strerror(errno);
}

}  // namespace corral::net
