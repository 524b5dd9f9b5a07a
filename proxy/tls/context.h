// OpenSSL contexts: one for the tls:// listeners (what apps see), one for upstream connections
// (what corral checks in Redis's certificate). Built from the config's files, shared by every
// worker, and rebuilt whole when the files change: a connection keeps the context it started
// with (SSL_new holds a reference), so a rotation never drops an established connection, and
// a bad new file leaves the old context in force.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"

namespace corral::tls {

// Process-wide TLS counters, for /metrics (relaxed atomics: touched per handshake, not per
// request).
struct Counters {
  std::atomic<uint64_t> reloads{0};          // contexts rebuilt from changed files
  std::atomic<uint64_t> reload_failures{0};  // changed files refused (old context kept)
};
Counters& counters();

// One SSL_CTX and the files it was built from.
class Context {
 public:
  enum class Role : uint8_t { kServer, kClient };
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  SSL_CTX* get() const { return ctx_; }
  Role role() const { return role_; }

 private:
  friend class Holder;
  Context(SSL_CTX* ctx, Role role) : ctx_(ctx), role_(role) {}
  SSL_CTX* ctx_;
  Role role_;
};

// The context in force for one role, and how to rebuild it. Thread-safe: workers take
// current() when a connection starts; the main thread calls reload().
class Holder {
 public:
  // Builds the first context; on failure *err says why (a startup error) and nullptr returns.
  static std::unique_ptr<Holder> server(const config::TlsServerConfig& cfg, std::string* err);
  static std::unique_ptr<Holder> client(const config::TlsClientConfig& cfg, std::string* err);

  std::shared_ptr<const Context> current() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ctx_;
  }
  // Rebuilds the context when a file changed since the last build (always when force, as on
  // SIGHUP). Returns false, with *err, when the new files are refused; the old context stays.
  // *changed tells whether a new context is now in force.
  bool reload(bool force, bool* changed, std::string* err);

  // Upstream connections only: check certificates (false only with insecure: true).
  bool verifies() const { return verify_; }

 private:
  Holder() = default;
  std::shared_ptr<const Context> build(std::string* err) const;
  std::string signature() const;  // what the files look like now (size, mtime, inode)

  Context::Role role_ = Context::Role::kServer;
  config::TlsServerConfig server_cfg_;
  config::TlsClientConfig client_cfg_;
  bool verify_ = true;
  std::vector<std::string> files_;
  mutable std::mutex mu_;
  std::shared_ptr<const Context> ctx_;
  std::string signature_;
};

// The reason of the last OpenSSL error of this thread, and clears the queue: "certificate verify
// failed", "wrong version number", ... ("unknown error" when the queue is empty).
std::string lastError();

}  // namespace corral::tls
