// The TLS keys: `tls:` at the root (what the tls:// listeners present to apps) and
// `upstream.tls:` (how corral connects to Redis). Files are only named here: proxy/tls reads
// them (and re-reads them on change), cross_check.cc checks that they exist.
#include <string>
#include <vector>

#include "config/loader.h"

namespace corral::config::detail {

namespace {

constexpr const char* kFileRule = "must be the path of a readable PEM file";

}  // namespace

bool Loader::tlsVersion(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                        TlsVersion* out) {
  // Quoted or not: YAML reads 1.2 as a number, which scalar() gives back as written.
  return choice(key, value, path, {{"1.2", TlsVersion::k12}, {"1.3", TlsVersion::k13}}, out);
}

void Loader::tlsFile(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                     std::string* out) {
  const std::string* s = scalar(key, value, path, kFileRule);
  if (s == nullptr) return;
  if (s->empty()) return failValue(key, value, path, kFileRule);
  *out = *s;
  tls_files_.push_back(Located<std::string>{*s, value.Mark(), path});
}

void Loader::walkTlsServer(const YAML::Node& node, const std::string& prefix) {
  TlsServerConfig& t = cfg_.tls;
  tls_server_mark_ = node.Mark();
  std::vector<Key> keys = {
      {"cert_file", [&](const YAML::Node& k, const YAML::Node& v,
                        const std::string& p) { tlsFile(k, v, p, &t.cert_file); }},
      {"key_file", [&](const YAML::Node& k, const YAML::Node& v,
                       const std::string& p) { tlsFile(k, v, p, &t.key_file); }},
      {"client_ca_file", [&](const YAML::Node& k, const YAML::Node& v,
                             const std::string& p) { tlsFile(k, v, p, &t.client_ca_file); }},
      {"client_certs",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         using C = TlsServerConfig::ClientCerts;
         if (choice(k, v, p,
                    {{"none", C::kNone}, {"optional", C::kOptional}, {"required", C::kRequired}},
                    &t.client_certs)) {
           client_certs_ = Located<std::string>{v.Scalar(), v.Mark(), p};
         }
       }},
      {"min_version", [&](const YAML::Node& k, const YAML::Node& v,
                          const std::string& p) { tlsVersion(k, v, p, &t.min_version); }},
      {"handshake_timeout",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         duration(k, v, p, /*allow_zero=*/false, &t.handshake_timeout);
       }},
      {"handshake_nice",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         int64_t n = 0;
         if (integerOk(k, v, p, 0, 19, &n)) t.handshake_nice = static_cast<int>(n);
       }},
  };
  walkMap(node, prefix, keys);
}

void Loader::walkTlsClient(const YAML::Node& node, const std::string& prefix) {
  TlsClientConfig& t = cfg_.upstream.tls;
  std::vector<Key> keys = {
      {"enabled", [&](const YAML::Node& k, const YAML::Node& v,
                      const std::string& p) { boolean(k, v, p, &t.enabled); }},
      {"ca_file", [&](const YAML::Node& k, const YAML::Node& v,
                      const std::string& p) { tlsFile(k, v, p, &t.ca_file); }},
      {"server_name",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         static constexpr const char* kRule = "must be a DNS name, like redis.example.com";
         const std::string* s = scalar(k, v, p, kRule);
         if (s == nullptr) return;
         if (s->empty() || s->size() > 253 ||
             s->find_first_not_of(
                 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
                 std::string::npos) {
           return failValue(k, v, p, kRule);
         }
         t.server_name = *s;
       }},
      {"cert_file", [&](const YAML::Node& k, const YAML::Node& v,
                        const std::string& p) { tlsFile(k, v, p, &t.cert_file); }},
      {"key_file", [&](const YAML::Node& k, const YAML::Node& v,
                       const std::string& p) { tlsFile(k, v, p, &t.key_file); }},
      {"insecure",
       [&](const YAML::Node& k, const YAML::Node& v, const std::string& p) {
         if (boolean(k, v, p, &t.insecure) && t.insecure) {
           refused_by_check_.push_back(configError(
               whereOf(v.Mark()), p,
               "turns off certificate and host name checks: for tests only (corral runs with "
               "it, --check-config refuses it)",
               "true"));
         }
       }},
      {"min_version", [&](const YAML::Node& k, const YAML::Node& v,
                          const std::string& p) { tlsVersion(k, v, p, &t.min_version); }},
  };
  walkMap(node, prefix, keys);
}

void Loader::crossCheckTls() {
  bool tls_listener = false;
  for (const auto& l : listen_) tls_listener = tls_listener || l.value.tls;
  const TlsServerConfig& t = cfg_.tls;
  if (tls_listener && (t.cert_file.empty() || t.key_file.empty())) {
    fail(tls_server_mark_ ? *tls_server_mark_ : root_mark_, "tls",
         "a tls:// listener needs tls.cert_file and tls.key_file");
  }
  if (!t.cert_file.empty() != !t.key_file.empty()) {
    fail(tls_server_mark_ ? *tls_server_mark_ : root_mark_, "tls",
         "cert_file and key_file go together");
  }
  if (client_certs_ && cfg_.tls.client_certs != TlsServerConfig::ClientCerts::kNone &&
      t.client_ca_file.empty()) {
    fail(client_certs_->mark, client_certs_->path, "needs tls.client_ca_file to check them",
         client_certs_->value);
  }
  if (!client_certs_ && !t.client_ca_file.empty()) {
    cfg_.tls.client_certs = TlsServerConfig::ClientCerts::kRequired;
  }
  const TlsClientConfig& u = cfg_.upstream.tls;
  if (u.cert_file.empty() != u.key_file.empty()) {
    fail(upstream_mark_ ? *upstream_mark_ : root_mark_, "upstream.tls",
         "cert_file and key_file go together");
  }
  if (admin_listen_ && admin_listen_->value.tls) {
    fail(admin_listen_->mark, admin_listen_->path, "the admin endpoint speaks plain HTTP only",
         admin_listen_->value.text);
  }
  for (const auto& f : tls_files_) {
    std::FILE* fp = std::fopen(f.value.c_str(), "rb");
    if (fp == nullptr) {
      fail(f.mark, f.path, "cannot be read", f.value);
    } else {
      std::fclose(fp);
    }
  }
}

}  // namespace corral::config::detail
