#include "proxy/tls/stream.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>

namespace corral::tls {

std::unique_ptr<Stream> Stream::accept(std::shared_ptr<const Context> ctx, int fd) {
  SSL* ssl = SSL_new(ctx->get());
  if (ssl == nullptr) return nullptr;
  std::unique_ptr<Stream> s(new Stream(std::move(ctx), ssl));
  SSL_set_fd(ssl, fd);
  SSL_set_accept_state(ssl);
  return s;
}

std::unique_ptr<Stream> Stream::connect(std::shared_ptr<const Context> ctx, int fd,
                                        const std::string& name, bool verify, SSL_SESSION* resume) {
  SSL* ssl = SSL_new(ctx->get());
  if (ssl == nullptr) return nullptr;
  std::unique_ptr<Stream> s(new Stream(std::move(ctx), ssl));
  SSL_set_fd(ssl, fd);
  SSL_set_connect_state(ssl);
  expectServer(ssl, name, verify);
  if (resume != nullptr) SSL_set_session(ssl, resume);
  return s;
}

void expectServer(SSL* ssl, const std::string& name, bool verify) {
  in6_addr ip6;
  in_addr ip4;
  const bool is_ip =
      inet_pton(AF_INET, name.c_str(), &ip4) == 1 || inet_pton(AF_INET6, name.c_str(), &ip6) == 1;
  // SNI carries names only (RFC 6066); an address is checked against the certificate's IP SANs.
  if (!is_ip && !name.empty()) SSL_set_tlsext_host_name(ssl, name.c_str());
  if (verify && !name.empty()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      SSL_set1_host(ssl, name.c_str());
    }
  }
}

Stream::~Stream() { SSL_free(ssl_); }

SSL_SESSION* Stream::session() const {
  SSL_SESSION* s = SSL_get1_session(ssl_);
  if (s == nullptr) return nullptr;
  // A copy: when this connection ends without a close_notify (a killed server, a timeout),
  // SSL_free marks its own session not resumable, and that would be the one kept.
  SSL_SESSION* copy = SSL_SESSION_is_resumable(s) == 1 ? SSL_SESSION_dup(s) : nullptr;
  SSL_SESSION_free(s);
  return copy;
}

ssize_t Stream::handshake() {
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_);
  if (rc == 1) return 1;
  return result(rc, 0);
}

ssize_t Stream::read(char* buf, size_t cap) {
  ERR_clear_error();
  size_t done = 0;
  const int rc = SSL_read_ex(ssl_, buf, cap, &done);
  return result(rc, done);
}

ssize_t Stream::write(const char* buf, size_t len) {
  ERR_clear_error();
  size_t done = 0;
  const int rc = SSL_write_ex(ssl_, buf, len, &done);
  return result(rc, done);
}

ssize_t Stream::result(int rc, size_t done) {
  want_write_ = false;
  if (rc == 1) return static_cast<ssize_t>(done);
  const int saved_errno = errno;
  switch (SSL_get_error(ssl_, rc)) {
    case SSL_ERROR_WANT_READ:
      return kAgain;
    case SSL_ERROR_WANT_WRITE:
      want_write_ = true;
      return kAgain;
    case SSL_ERROR_ZERO_RETURN:
      return 0;  // close_notify
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0) {
        // EOF during the handshake (SSL_OP_IGNORE_UNEXPECTED_EOF covers it afterwards).
        if (saved_errno == 0) return 0;
        error_ = std::strerror(saved_errno);
        return kFailed;
      }
      [[fallthrough]];
    default: {
      error_ = lastError();
      const long verify = SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK) {
        error_ += " (";
        error_ += X509_verify_cert_error_string(verify);
        error_ += ")";
      }
      return kFailed;
    }
  }
}

}  // namespace corral::tls
