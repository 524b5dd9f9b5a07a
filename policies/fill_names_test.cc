// Names and paths of fills: lease and negative keys in the data key's slot, origin paths.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policies/fill.h"

namespace corral::policies {
namespace {

// ---- Redis Cluster key slot (CRC16/XMODEM), for the names tests only ---------------------

uint16_t crc16(std::string_view s) {
  uint16_t crc = 0;
  for (char ch : s) {
    crc = static_cast<uint16_t>(crc ^ (static_cast<uint8_t>(ch) << 8));
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) != 0 ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

uint16_t keySlot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return static_cast<uint16_t>(crc16(key) & 16383);
}

// ---- keys and paths -------------------------------------------------------------------------

TEST_CASE("fill: keySlot (test helper) matches the Redis Cluster reference values") {
  CHECK(crc16("123456789") == 0x31C3);  // CRC16/XMODEM check value
  CHECK(keySlot("foo") == 12182);       // CLUSTER KEYSLOT foo
  CHECK(keySlot("{user1000}.following") == keySlot("{user1000}.followers"));
  CHECK(keySlot("foo{}{bar}") == keySlot("foo{}{bar}"));
  CHECK(keySlot("foo{}{bar}") != keySlot("bar"));  // empty first tag: the whole key hashes
  CHECK(keySlot("foo{{bar}}zap") == keySlot("{bar"));
  CHECK(keySlot("foo{bar}{zap}") == keySlot("bar"));
}

TEST_CASE("fill: internal key names are keyed digests in the data key's slot (defect 12b)") {
  // Known answers (tests/support/fill_keys.py computes the same names).
  const FillKeyNames names("0123456789abcdef-test-secret");
  FillKeys k = names.keys("user:42");
  CHECK(k.data == "user:42");
  CHECK(k.lease == "__corral:lease:{user:42}:665c778035415d28");
  CHECK(k.negative == "__corral:neg:{user:42}:d68f8a4e0958b1f1");
  k = names.keys("cart:{42}:items");
  CHECK(k.lease == "__corral:lease:{42}:6c63681c4a784c58");
  CHECK(k.negative == "__corral:neg:{42}:3ab040386b7d6a9b");
  k = names.keys("a{b{c}d");  // tag "b{c": the first '}' after the first '{'
  CHECK(k.lease == "__corral:lease:{b{c}:2d077607ec728ebe");
  std::string lease;
  names.appendLease(lease, "user:42");
  CHECK(lease == names.keys("user:42").lease);

  // Another secret, other names: without the secret nobody can name a key's lease. The same
  // secret elsewhere (another corral): the same names.
  const FillKeyNames other("another-secret-of-16+-bytes");
  CHECK(other.keys("user:42").lease != k.lease);
  CHECK(other.keys("user:42").lease.starts_with("__corral:lease:{user:42}:"));
  CHECK(FillKeyNames("0123456789abcdef-test-secret").keys("user:42").lease ==
        names.keys("user:42").lease);
  // The old, guessable names are never used.
  CHECK(names.keys("user:42").lease != "__corral:lease:{user:42}");
  // Without a configured secret: one random secret per process, the same on every call.
  CHECK(FillKeyNames::processDefault().keys("user:42").lease ==
        FillKeyNames::processDefault().keys("user:42").lease);
  CHECK(FillKeyNames::processDefault().keys("user:42").lease != names.keys("user:42").lease);

  // Keys that keep their slot: no brace at all, or a valid hash tag; also "a{b" (wrapped, its
  // tag is the whole key again).
  for (std::string_view key : {"user:42", "x", "sess:9f86d081884c7d65", "cart:{42}:items", "{42}",
                               "a{b{c}d", "foo{bar}{zap}", "a{b"}) {
    CAPTURE(key);
    const FillKeys fk = names.keys(key);
    CHECK(keySlot(fk.lease) == keySlot(key));
    CHECK(keySlot(fk.negative) == keySlot(key));
    CHECK(fk.lease != fk.negative);
  }
  // Documented limit: braces without a valid tag ("{a}b}" hashes "a", not "a}b"), and the
  // empty key ("{}" is an empty tag).
  for (std::string_view key : {"a}b", "a{}b", "}{", "foo{}{bar}x", ""}) {
    CAPTURE(key);
    const FillKeys fk = names.keys(key);
    CHECK(fk.lease.starts_with("__corral:lease:{" + std::string(key) + "}:"));
    CHECK(keySlot(fk.lease) != keySlot(key));
  }
}

TEST_CASE("fill: buildFillPath percent-encodes captures and copies literal text") {
  const std::string id = "a b/\xc3\xa4~._-Z9%?";
  const std::vector<Capture> caps = {{"id", id}, {"kind", "gold"}};
  CHECK(buildFillPath("/v1/users/<id>", caps) == "/v1/users/a%20b%2F%C3%A4~._-Z9%25%3F");
  CHECK(buildFillPath("/<kind>/<id>?x=<kind>", caps) == "/gold/a%20b%2F%C3%A4~._-Z9%25%3F?x=gold");
  CHECK(buildFillPath("/static/path", caps) == "/static/path");
  CHECK(buildFillPath("", caps) == "");
  CHECK(buildFillPath("/a<kind", caps) == "/a<kind");  // no '>': literal
  CHECK(buildFillPath("/<nope>", caps) == std::nullopt);
  CHECK(buildFillPath("/<>", caps) == std::nullopt);
  const std::vector<Capture> raw = {{"v", std::string_view("\x00\xff\n", 3)}};
  CHECK(buildFillPath("<v>", raw) == "%00%FF%0A");

  std::string missing = "unchanged";
  const std::vector<std::string> names = {"id", "kind"};
  CHECK(fillPathValid("/v1/<kind>/<id>", names, &missing));
  CHECK(missing == "unchanged");
  CHECK_FALSE(fillPathValid("/v1/<kind>/<uid>/<other>", names, &missing));
  CHECK(missing == "uid");
  CHECK_FALSE(fillPathValid("/<>", names, &missing));
  CHECK(missing == "");
  CHECK_FALSE(fillPathValid("/<x>", names, nullptr));
  CHECK(fillPathValid("/plain", {}, nullptr));
}

TEST_CASE("fill: no key can change the origin path's structure (defect 12a)") {
  auto path = [](std::string_view tmpl, std::vector<Capture> caps) {
    return buildFillPath(tmpl, caps).value_or("<none>");
  };
  // Dot-segments made with a capture: their dots are encoded, the origin sees a name.
  CHECK(path("/v1/users/<id>", {{"id", ".."}}) == "/v1/users/%2E%2E");
  CHECK(path("/v1/users/<id>", {{"id", "."}}) == "/v1/users/%2E");
  CHECK(path("/v1/users/<id>/profile", {{"id", ".."}}) == "/v1/users/%2E%2E/profile");
  CHECK(path("/v1/<a><b>/x", {{"a", "."}, {"b", "."}}) == "/v1/%2E%2E/x");
  CHECK(path("/v1/.<a>/x", {{"a", "."}}) == "/v1/%2E%2E/x");
  CHECK(path("/v1/<a>", {{"a", "..."}}) == "/v1/...");  // not a dot-segment
  CHECK(path("/v1/<a>.json", {{"a", "."}}) == "/v1/..json");
  // The operator's own dots stay (the template is trusted), and so does the query.
  CHECK(path("/v1/../<id>", {{"id", "7"}}) == "/v1/../7");
  CHECK(path("/v1/<id>?up=<id>", {{"id", ".."}}) == "/v1/%2E%2E?up=..");
  CHECK(path("/v1/<id>#<id>", {{"id", "."}}) == "/v1/%2E#.");
  // Separators, query and fragment marks and '%' never pass through unencoded.
  CHECK(path("/v1/users/<id>", {{"id", "../admin"}}) == "/v1/users/..%2Fadmin");
  CHECK(path("/v1/users/<id>", {{"id", "x?admin=1#y"}}) == "/v1/users/x%3Fadmin%3D1%23y");
  CHECK(path("/v1/users/<id>", {{"id", "%2E%2E"}}) == "/v1/users/%252E%252E");
  CHECK(path("/v1/users/<id>", {{"id", "a\\b"}}) == "/v1/users/a%5Cb");
  // An empty capture would name the collection ("/v1/users/"): no path, no fill.
  CHECK(path("/v1/users/<id>", {{"id", ""}}) == "<none>");
}

TEST_CASE("fill names: the validator key shares the slot, differs from the others") {
  const FillKeys a = FillKeyNames("secret-one-0123456789").keys("cart:{7}:items");
  const FillKeys b = FillKeyNames("secret-two-0123456789").keys("cart:{7}:items");
  CHECK(a.meta.rfind("__corral:val:{7}:", 0) == 0);
  CHECK(a.meta.size() == std::string_view("__corral:val:{7}:").size() + 16);
  CHECK(a.meta != b.meta);  // a digest under the secret
  // Its own derived key: the digest differs from the lease's and the negative entry's.
  CHECK(a.meta.substr(a.meta.size() - 16) != a.lease.substr(a.lease.size() - 16));
  CHECK(a.meta.substr(a.meta.size() - 16) != a.negative.substr(a.negative.size() - 16));
  std::string appended;
  FillKeyNames("secret-one-0123456789").appendMeta(appended, "cart:{7}:items");
  CHECK(appended == a.meta);
}

}  // namespace
}  // namespace corral::policies
