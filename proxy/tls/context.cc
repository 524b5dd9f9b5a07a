#include "proxy/tls/context.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

namespace corral::tls {
namespace {

int minVersion(config::TlsVersion v) {
  return v == config::TlsVersion::k13 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

// What every context shares: partial writes of a buffer that may move between retries (the
// data path's ring buffers grow), no renegotiation (a read never has to wait for a write), and
// a peer's close without close_notify read as an ordinary end of stream, as redis-cli does.
// Read-ahead: one recv takes every record waiting on the socket (pending() then tells whether
// any is left). The record buffers stay with the connection (no SSL_MODE_RELEASE_BUFFERS:
// releasing them costs two allocations per request at pipeline depth 1).
void commonOptions(SSL_CTX* ctx, config::TlsVersion min) {
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_min_proto_version(ctx, minVersion(min));
}

bool loadPair(SSL_CTX* ctx, const std::string& cert, const std::string& key, std::string* err) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    *err = "certificate " + cert + ": " + lastError();
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    *err = "key " + key + ": " + lastError();
    return false;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    *err = "key " + key + " does not match certificate " + cert;
    ERR_clear_error();
    return false;
  }
  return true;
}

}  // namespace

Counters& counters() {
  static Counters c;
  return c;
}

std::string lastError() {
  unsigned long e = ERR_get_error();
  unsigned long next;
  while ((next = ERR_get_error()) != 0) e = next;  // the last one is the most specific
  if (e == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(e);
  return reason != nullptr ? reason : "error " + std::to_string(e);
}

Context::~Context() { SSL_CTX_free(ctx_); }

std::unique_ptr<Holder> Holder::server(const config::TlsServerConfig& cfg, std::string* err) {
  std::unique_ptr<Holder> h(new Holder());
  h->role_ = Context::Role::kServer;
  h->server_cfg_ = cfg;
  h->files_ = {cfg.cert_file, cfg.key_file};
  if (!cfg.client_ca_file.empty()) h->files_.push_back(cfg.client_ca_file);
  h->signature_ = h->signature();
  h->ctx_ = h->build(err);
  if (h->ctx_ == nullptr) return nullptr;
  return h;
}

std::unique_ptr<Holder> Holder::client(const config::TlsClientConfig& cfg, std::string* err) {
  std::unique_ptr<Holder> h(new Holder());
  h->role_ = Context::Role::kClient;
  h->client_cfg_ = cfg;
  h->verify_ = !cfg.insecure;
  for (const std::string* f : {&cfg.ca_file, &cfg.cert_file, &cfg.key_file}) {
    if (!f->empty()) h->files_.push_back(*f);
  }
  h->signature_ = h->signature();
  h->ctx_ = h->build(err);
  if (h->ctx_ == nullptr) return nullptr;
  return h;
}

std::string Holder::signature() const {
  std::string sig;
  for (const std::string& f : files_) {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) {
      sig += f + ":missing;";
      continue;
    }
    sig += f + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_ino) + ";";
  }
  return sig;
}

std::shared_ptr<const Context> Holder::build(std::string* err) const {
  ERR_clear_error();
  const bool server = role_ == Context::Role::kServer;
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) {
    *err = "SSL_CTX_new: " + lastError();
    return nullptr;
  }
  std::shared_ptr<const Context> out(new Context(ctx, role_));
  if (server) {
    const config::TlsServerConfig& c = server_cfg_;
    commonOptions(ctx, c.min_version);
    if (!loadPair(ctx, c.cert_file, c.key_file, err)) return nullptr;
    if (c.client_certs != config::TlsServerConfig::ClientCerts::kNone) {
      if (SSL_CTX_load_verify_locations(ctx, c.client_ca_file.c_str(), nullptr) != 1) {
        *err = "client CA " + c.client_ca_file + ": " + lastError();
        return nullptr;
      }
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(c.client_ca_file.c_str());
      if (names != nullptr) SSL_CTX_set_client_CA_list(ctx, names);
      int mode = SSL_VERIFY_PEER;
      if (c.client_certs == config::TlsServerConfig::ClientCerts::kRequired) {
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
      }
      SSL_CTX_set_verify(ctx, mode, nullptr);
    }
    // Session resumption for apps that reconnect: tickets, keyed per context.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    static const unsigned char kSessionId[] = "corral";
    SSL_CTX_set_session_id_context(ctx, kSessionId, sizeof(kSessionId) - 1);
  } else {
    const config::TlsClientConfig& c = client_cfg_;
    commonOptions(ctx, c.min_version);
    if (c.insecure) {
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    } else {
      const bool ok = c.ca_file.empty()
                          ? SSL_CTX_set_default_verify_paths(ctx) == 1
                          : SSL_CTX_load_verify_locations(ctx, c.ca_file.c_str(), nullptr) == 1;
      if (!ok) {
        *err = "CA " + (c.ca_file.empty() ? std::string("(system store)") : c.ca_file) + ": " +
               lastError();
        return nullptr;
      }
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    if (!c.cert_file.empty() && !loadPair(ctx, c.cert_file, c.key_file, err)) return nullptr;
    // Sessions to resume are kept by each connection (Stream::saveSession), not in the context.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  }
  return out;
}

bool Holder::reload(bool force, bool* changed, std::string* err) {
  *changed = false;
  const std::string sig = signature();
  if (!force && sig == signature_) return true;
  // Remember what was seen either way: a bad file is reported once, not on every poll.
  signature_ = sig;
  std::shared_ptr<const Context> fresh = build(err);
  if (fresh == nullptr) {
    counters().reload_failures.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ctx_ = std::move(fresh);
  }
  counters().reloads.fetch_add(1, std::memory_order_relaxed);
  *changed = true;
  return true;
}

}  // namespace corral::tls
