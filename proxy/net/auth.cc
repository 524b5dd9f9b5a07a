// Authenticator: a list of (name, SHA-256 of the password), built once from the config.
// Comparing digests rather than passwords means a plain password and a configured
// password_sha256 are checked the same way, and the comparison time is fixed (32 bytes).
#include "proxy/net/auth.h"

namespace corral::net {

bool digestsEqual(const Sha256Digest& a, const Sha256Digest& b) {
  // OR the differences of every byte: no early exit, no data-dependent branch. volatile keeps
  // the compiler from turning the loop back into a memcmp that stops at the first difference.
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = static_cast<uint8_t>(diff | (a[i] ^ b[i]));
  return diff == 0;
}

Authenticator::Authenticator(const config::AuthConfig& cfg)
    // Listed users mean mode users (the loader refuses them with another mode).
    : mode_(cfg.users.empty() ? cfg.mode : config::AuthMode::kUsers) {
  gate_ =
      !cfg.users.empty() || (mode_ == config::AuthMode::kPassthrough &&
                             cfg.passthrough.unauthenticated == config::Unauthenticated::kRefuse);
  users_.reserve(cfg.users.size());
  for (const config::AuthUser& u : cfg.users) {
    users_.push_back(User{u.name, u.has_sha ? u.sha256 : sha256(u.password)});
  }
}

bool Authenticator::check(std::string_view user, std::string_view password) const {
  if (!enabled()) return false;
  if (user.empty()) user = kDefaultUser;
  // Hash first and always, so an unknown user costs the same hash as a known one.
  const Sha256Digest given = sha256(password);
  // An unknown user is compared against a digest no password has been found to produce (all
  // zero bytes), so the comparison still runs; `found` decides the answer, not the compare.
  static constexpr Sha256Digest kNoUser{};
  const Sha256Digest* want = &kNoUser;
  bool found = false;
  // Scan every user without stopping at a match: the loop length does not depend on the name.
  for (const User& u : users_) {
    if (!found && u.name == user) {
      want = &u.digest;
      found = true;
    }
  }
  const bool equal = digestsEqual(given, *want);
  return found && equal;
}

}  // namespace corral::net
