// One TLS connection on a non-blocking socket, for the data path: the client and upstream
// connections keep their own buffers and events and call read()/write() where they would call
// recv()/send(). The handshake happens inside the first reads and writes; a call that cannot go
// on says which way the socket must become ready (wantsWrite()).
#pragma once

#include <openssl/ssl.h>
#include <sys/types.h>

#include <memory>
#include <string>

#include "proxy/tls/context.h"

namespace corral::tls {

// Sets up a client SSL for a server called `name` (a DNS name or an IP address): SNI for a
// name, and, when `verify`, the name or address the certificate must carry. Shared by the
// upstream streams and the https origins.
void expectServer(SSL* ssl, const std::string& name, bool verify);

class Stream {
 public:
  // read()/write() results other than a byte count.
  static constexpr ssize_t kAgain = -1;   // wait for the socket (wantsWrite() says which way)
  static constexpr ssize_t kFailed = -2;  // the connection is unusable: error() says why

  // A connection an app opened to a tls:// listener.
  static std::unique_ptr<Stream> accept(std::shared_ptr<const Context> ctx, int fd);
  // A connection to an upstream. `name`: sent as SNI and, when `verify`, checked against the
  // certificate (a DNS name or an IP address). `resume`: a session from an earlier connection
  // to the same server (may be null; not taken over).
  static std::unique_ptr<Stream> connect(std::shared_ptr<const Context> ctx, int fd,
                                         const std::string& name, bool verify, SSL_SESSION* resume);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Drives the handshake on its own (a tls:// client's, on the handshake thread): 1: done;
  // 0: the peer closed; kAgain; kFailed. read() and write() also handshake when needed.
  ssize_t handshake();
  // > 0: bytes read; 0: the peer closed; kAgain; kFailed.
  ssize_t read(char* buf, size_t cap);
  // > 0: bytes written (maybe fewer than len); kAgain; kFailed. After kAgain, the next call
  // must pass the same bytes again (at least as many; the buffer may have moved).
  ssize_t write(const char* buf, size_t len);

  bool wantsWrite() const { return want_write_; }
  // Decrypted bytes are waiting in OpenSSL: the socket will not signal them, read again.
  bool pending() const { return SSL_has_pending(ssl_) == 1; }
  bool handshakeDone() const { return SSL_is_init_finished(ssl_) == 1; }
  bool resumed() const { return SSL_session_reused(ssl_) == 1; }
  const char* version() const { return SSL_get_version(ssl_); }  // "TLSv1.3"
  // Why the connection failed: "certificate verify failed (hostname mismatch)", "wrong version
  // number", "peer did not return a certificate", ...
  const std::string& error() const { return error_; }
  // The session to resume on the next connection (a new reference; the caller frees it), or
  // null when the server offered none.
  SSL_SESSION* session() const;

 private:
  Stream(std::shared_ptr<const Context> ctx, SSL* ssl) : ctx_(std::move(ctx)), ssl_(ssl) {}
  ssize_t result(int rc, size_t done);

  std::shared_ptr<const Context> ctx_;
  SSL* ssl_;
  bool want_write_ = false;
  std::string error_;
};

}  // namespace corral::tls
