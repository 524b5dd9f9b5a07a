// Shared by proxy/nearcache's tests: a reply in RESP, and a fill in one call.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/nearcache/near_store.h"

namespace corral::nearcache::test {

// A GET's bulk reply carrying `value`, as Redis writes it.
inline std::string bulk(std::string_view value) {
  return "$" + std::to_string(value.size()) + "\r\n" + std::string(value) + "\r\n";
}

// beginFill + complete with nothing in between.
inline FillResult fill(NearStore& s, std::string_view key, std::string_view reply,
                       int64_t expires_ms, int64_t now_ms) {
  const FillTicket t = s.beginFill(key);
  return s.complete(t, key, reply, expires_ms, now_ms);
}

// The reply cached for `key` at now_ms, or "(miss)".
inline std::string get(NearStore& s, std::string_view key, int64_t now_ms) {
  auto v = s.lookup(key, now_ms);
  return v ? std::string(*v) : std::string("(miss)");
}

}  // namespace corral::nearcache::test
