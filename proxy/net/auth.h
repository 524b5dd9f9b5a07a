// Client authentication: checks AUTH credentials against config::AuthConfig. Pure: no I/O, no
// clock, no logging; the client session owns the "authenticated as whom" state.
//
//   config::AuthConfig --Authenticator(): plain passwords hashed once--> [name, SHA-256]
//   AUTH [user] password --check(): hash, look up, constant-time compare--> true / false
//
// Redis semantics the client session follows when enabled() (checked against redis-server
// 7.0.15 with requirepass):
//   - Before a successful AUTH, only AUTH, HELLO, QUIT and RESET run; every other command,
//     PING and CLIENT included, is answered kNoAuthError. corral deviates for PING, which it
//     answers before AUTH too (health checks; the policy contract lists it).
//   - AUTH <password> logs in as user "default"; AUTH <user> <password> as that user; more
//     arguments: -ERR syntax error. A failed AUTH answers kWrongPassError and leaves the client
//     as it was (an authenticated client stays authenticated as its previous user).
//   - HELLO <ver> AUTH <user> <password> authenticates like AUTH (kWrongPassError on failure);
//     a HELLO without AUTH from an unauthenticated client gets kHelloNoAuthError.
//   - RESET de-authenticates the client (Redis: back to "default", which needs a password).
// In mode off, AUTH <password> is answered kNoPasswordConfiguredError, as Redis does without
// requirepass. In mode passthrough, Redis itself answers each AUTH (client_passthrough.cc).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/net/sha256.h"

namespace corral::net {

// Error replies, word for word as Redis sends them, without the leading '-' and the CRLF (the
// form Client::replyError() and codec::errorText() use).
constexpr std::string_view kNoAuthError = "NOAUTH Authentication required.";
constexpr std::string_view kWrongPassError =
    "WRONGPASS invalid username-password pair or user is disabled.";
constexpr std::string_view kHelloNoAuthError =
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
    "AUTH <user> <pass> option can be used to authenticate the client and select the RESP "
    "protocol version at the same time";
constexpr std::string_view kNoPasswordConfiguredError =
    "ERR AUTH <password> called without any password configured for the default user. Are you "
    "sure your configuration is correct?";

// The user of a one-argument AUTH and of an empty user name.
constexpr std::string_view kDefaultUser = "default";

// Immutable after construction, so one instance may be shared by every worker thread.
class Authenticator {
 public:
  // Copies what it needs from cfg (names and digests; plain passwords are hashed here and not
  // kept). cfg is expected to be validated by config/ (unique names).
  explicit Authenticator(const config::AuthConfig& cfg);

  // True when corral itself checks AUTH against auth.users (mode users): clients must AUTH first.
  bool enabled() const { return !users_.empty(); }
  // True in mode passthrough: Redis checks AUTH (client_passthrough.cc).
  bool passthrough() const { return mode_ == config::AuthMode::kPassthrough; }
  // True when a client must authenticate before its commands run: mode users, or passthrough
  // with unauthenticated: refuse.
  bool gate() const { return gate_; }

  // Returns true when (user, password) is valid. An empty user means "default". Always false
  // when !enabled(). The password is hashed and compared in constant time whether or not the
  // user exists, so the timing shows neither how much of a password matched nor (beyond a
  // string comparison of names, nanoseconds against the microseconds of a hash) whether the
  // user exists.
  bool check(std::string_view user, std::string_view password) const;

 private:
  struct User {
    std::string name;
    Sha256Digest digest;
  };
  std::vector<User> users_;
  config::AuthMode mode_ = config::AuthMode::kPassthrough;
  bool gate_ = false;
};

// Compares two digests in time that depends only on their size, not on where they differ.
bool digestsEqual(const Sha256Digest& a, const Sha256Digest& b);

}  // namespace corral::net
