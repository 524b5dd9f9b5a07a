// access.h: the bearer check of /policies and /ready with ready_when: serving.
#include "proxy/admin/access.h"

#include <doctest/doctest.h>

#include <string>

namespace corral::admin {
namespace {

TEST_CASE("sameSecret is equality, lengths included") {
  CHECK(sameSecret("", ""));
  CHECK(sameSecret("abc", "abc"));
  CHECK_FALSE(sameSecret("abc", "abd"));
  CHECK_FALSE(sameSecret("abc", "ab"));
  CHECK_FALSE(sameSecret("ab", "abc"));
  CHECK_FALSE(sameSecret("", "a"));
  // A shorter string padded with what the compare pads with is still not equal.
  CHECK_FALSE(sameSecret(std::string("ab\0", 3), "ab"));
}

TEST_CASE("bearerAuthorized: no token configured lets everything through") {
  CHECK(bearerAuthorized(nullptr, ""));
  CHECK(bearerAuthorized("Basic Zm9vOmJhcg==", ""));
}

TEST_CASE("bearerAuthorized: the header must carry the token") {
  const std::string token = "t0ken-value";
  CHECK(bearerAuthorized("Bearer t0ken-value", token));
  CHECK(bearerAuthorized("bearer t0ken-value", token));
  CHECK(bearerAuthorized("BEARER   t0ken-value  ", token));
  CHECK(bearerAuthorized("  Bearer\tt0ken-value", token));
  CHECK_FALSE(bearerAuthorized(nullptr, token));
  CHECK_FALSE(bearerAuthorized("", token));
  CHECK_FALSE(bearerAuthorized("Bearer", token));
  CHECK_FALSE(bearerAuthorized("Bearer ", token));
  CHECK_FALSE(bearerAuthorized("Bearert0ken-value", token));
  CHECK_FALSE(bearerAuthorized("Bearer t0ken-valu", token));
  CHECK_FALSE(bearerAuthorized("Bearer t0ken-value2", token));
  CHECK_FALSE(bearerAuthorized("Bearer T0KEN-VALUE", token));
  CHECK_FALSE(bearerAuthorized("Basic t0ken-value", token));
  CHECK_FALSE(bearerAuthorized("t0ken-value", token));
}

TEST_CASE("servingReady: ready until the drain starts") {
  std::string body;
  CHECK(servingReady(false, &body));
  CHECK(body.find("ready") == 0);
  CHECK_FALSE(servingReady(true, &body));
  CHECK(body.find("draining") == 0);
}

}  // namespace
}  // namespace corral::admin
