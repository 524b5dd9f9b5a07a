#include "proxy/admin/access.h"

#include <strings.h>

#include <cstddef>

namespace corral::admin {

bool sameSecret(std::string_view a, std::string_view b) {
  // volatile: keep the compiler from turning the loop into an early-exit memcmp.
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = diff | static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

bool bearerAuthorized(const char* authorization, std::string_view token) {
  if (token.empty()) return true;
  if (authorization == nullptr) return false;
  std::string_view h(authorization);
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  h = trim(h);
  constexpr std::string_view kScheme = "bearer";
  if (h.size() <= kScheme.size() || strncasecmp(h.data(), kScheme.data(), kScheme.size()) != 0) {
    return false;
  }
  if (h[kScheme.size()] != ' ' && h[kScheme.size()] != '\t') return false;
  return sameSecret(trim(h.substr(kScheme.size())), token);
}

bool servingReady(bool stopping, std::string* body) {
  *body = stopping ? "draining (shutting down)\n" : "ready (serving; ready_when: serving)\n";
  return !stopping;
}

}  // namespace corral::admin
