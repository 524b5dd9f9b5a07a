// tls: and upstream.tls: (tls_sections.cc), tls:// listeners and rediss:// upstreams.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "config/test_helpers.h"

namespace corral::config {
namespace {

using namespace testing;

// A file that exists (its content is not read by the loader).
std::string existingFile() {
  static const std::string path = [] {
    std::string p = "/tmp/corral_tls_test_" + std::to_string(::getpid()) + ".pem";
    std::FILE* f = std::fopen(p.c_str(), "w");
    std::fputs("x\n", f);
    std::fclose(f);
    return p;
  }();
  return path;
}

TEST_CASE("tls:// listeners and rediss:// upstreams") {
  const std::string f = existingFile();
  Config c = mustLoad(
      "listen: [127.0.0.1:6380, tls://0.0.0.0:6381]\n"
      "tls: {cert_file: " +
      f + ", key_file: " + f +
      "}\n"
      "upstream: {primary: 'rediss://app:pw@redis.example.com:6390/2',"
      " replicas: [r1:6379]}\n");
  REQUIRE(c.listen.size() == 2);
  CHECK_FALSE(c.listen[0].tls);
  CHECK(c.listen[1].tls);
  CHECK(c.listen[1].host == "0.0.0.0");
  CHECK(c.listen[1].port == 6381);
  CHECK(c.upstream.primary.addr.tls);
  CHECK(c.upstream.primary.addr.host == "redis.example.com");
  CHECK(c.upstream.primary.addr.port == 6390);
  CHECK(c.upstream.primary.db == 2);
  CHECK(c.upstream.primary.text == "rediss://app:***@redis.example.com:6390/2");
  CHECK_FALSE(c.upstream.replicas[0].addr.tls);  // only rediss:// or tls.enabled
  CHECK(c.tls.client_certs == TlsServerConfig::ClientCerts::kNone);
  CHECK(c.tls.handshake_timeout == Millis{10000});
  CHECK(c.tls.handshake_nice == 19);
  CHECK(addressLines(c).find("listen 0.0.0.0:6381 tls\n") != std::string::npos);
  CHECK(addressLines(c).find("primary redis.example.com:6390 password tls\n") != std::string::npos);
}

TEST_CASE("upstream.tls: every key; enabled puts every upstream on TLS") {
  const std::string f = existingFile();
  LoadResult r = loadConfigText(
      "upstream:\n  primary: h:1\n  replicas: [r:2]\n  tls:\n"
      "    enabled: true\n    ca_file: " +
          f +
          "\n"
          "    server_name: redis.internal\n    cert_file: " +
          f +
          "\n"
          "    key_file: " +
          f + "\n    min_version: 1.3\n",
      "t.yaml");
  REQUIRE(r.config.has_value());
  const UpstreamConfig& u = r.config->upstream;
  CHECK(u.tls.enabled);
  CHECK(u.primary.addr.tls);
  CHECK(u.replicas[0].addr.tls);
  CHECK(u.tls.ca_file == f);
  CHECK(u.tls.server_name == "redis.internal");
  CHECK(u.tls.min_version == TlsVersion::k13);
  CHECK_FALSE(u.tls.insecure);
  CHECK(r.refused_by_check.empty());
}

TEST_CASE("insecure loads but is refused by --check-config") {
  LoadResult r =
      loadConfigText("upstream:\n  primary: rediss://h:1\n  tls: {insecure: true}\n", "t.yaml");
  REQUIRE(r.config.has_value());
  CHECK(r.config->upstream.tls.insecure);
  REQUIRE(r.refused_by_check.size() == 1);
  CHECK(r.refused_by_check[0].format().find("t.yaml:3:") == 0);
  CHECK(r.refused_by_check[0].format().find("upstream.tls.insecure: turns off certificate") !=
        std::string::npos);
  // Only the literal boolean.
  CHECK(errorsOf("upstream:\n  primary: h:1\n  tls: {insecure: yes}\n").size() == 1);
}

TEST_CASE("tls: client certificates") {
  const std::string f = existingFile();
  const std::string base = "listen: tls://127.0.0.1:6381\n" + std::string(kPrimary);
  Config c = mustLoad(base + "tls: {cert_file: " + f + ", key_file: " + f +
                      ", client_ca_file: " + f + "}\n");
  CHECK(c.tls.client_certs == TlsServerConfig::ClientCerts::kRequired);  // the default with a CA
  Config o = mustLoad(base + "tls: {cert_file: " + f + ", key_file: " + f +
                      ", client_ca_file: " + f + ", client_certs: optional}\n");
  CHECK(o.tls.client_certs == TlsServerConfig::ClientCerts::kOptional);
  const auto e =
      errorsOf(base + "tls: {cert_file: " + f + ", key_file: " + f + ", client_certs: required}\n");
  REQUIRE(e.size() == 1);
  CHECK(e[0].find("t.yaml:3:") == 0);  // the column depends on the temporary file's name
  CHECK(e[0].find(": tls.client_certs: needs tls.client_ca_file to check them (got required)") !=
        std::string::npos);
}

TEST_CASE("tls errors") {
  const std::string f = existingFile();
  CHECK(errorsOf("listen: tls://127.0.0.1:6381\n" + std::string(kPrimary)) ==
        std::vector<std::string>{
            "t.yaml:1:1: tls: a tls:// listener needs tls.cert_file and tls.key_file"});
  CHECK(errorsOf(std::string(kPrimary) + "tls: {cert_file: /nonexistent/c.pem, key_file: " + f +
                 "}\n") ==
        std::vector<std::string>{"t.yaml:2:18: tls.cert_file: cannot be read (got "
                                 "/nonexistent/c.pem)"});
  CHECK(errorsOf(std::string(kPrimary) + "tls: {cert_file: " + f + "}\n") ==
        std::vector<std::string>{"t.yaml:2:6: tls: cert_file and key_file go together"});
  CHECK(
      errorsOf(std::string(kPrimary) + "tls: {min_version: 1.1}\n") ==
      std::vector<std::string>{"t.yaml:2:20: tls.min_version: must be one of 1.2, 1.3 (got 1.1)"});
  CHECK(errorsOf("admin: {listen: 'tls://127.0.0.1:9'}\n" + std::string(kPrimary)) ==
        std::vector<std::string>{"t.yaml:1:17: admin.listen: the admin endpoint speaks plain "
                                 "HTTP only (got tls://127.0.0.1:9)"});
  CHECK(errorsOf("upstream: {primary: 'rediss://h:1', tls: {server_name: 'a b'}}\n").size() == 1);
  CHECK(errorsOf("upstream: {primary: 'rediss://h:1', tls: {bogus: 1}}\n").size() == 1);
  const auto nice = errorsOf(std::string(kPrimary) + "tls: {handshake_nice: 20}\n");
  REQUIRE(nice.size() == 1);
  CHECK(nice[0].find("tls.handshake_nice") != std::string::npos);
}

TEST_CASE("tls.handshake_nice") {
  CHECK(mustLoad(std::string(kPrimary) + "tls: {handshake_nice: 0}\n").tls.handshake_nice == 0);
  CHECK(mustLoad(std::string(kPrimary) + "tls: {handshake_nice: 7}\n").tls.handshake_nice == 7);
}

}  // namespace
}  // namespace corral::config
