// The fill engine with fill.decode and hash policies: what reaches the store (FillKeys::hash,
// the decoded value), decode errors as fill errors, {} as a 404, with the fakes of
// fill_test_support.h.
#include <doctest/doctest.h>

#include <string>

#include "policies/fill.h"
#include "policies/fill_test_support.h"

namespace corral::policies::filltest {
namespace {

FillPolicy hashPolicy(Env& e, SingleFlight sf) {
  FillPolicy p = e.policy(sf);
  p.decode.kind = FillDecode::Kind::kHash;
  p.negative_ttl_ms = 5000;
  p.on_error = FillOnError::kError;
  return p;
}

constexpr std::string_view kHash = "*4\r\n$1\r\na\r\n$1\r\nx\r\n$1\r\nn\r\n$1\r\n1\r\n";

TEST_CASE("fill hash: the decoded hash is committed with the lease's token and served") {
  Env e;
  const FillPolicy p = hashPolicy(e, SingleFlight::kDistributed);
  e.miss(p, 1);
  e.miss(p, 2);
  REQUIRE(e.store.lookups.size() == 1);
  CHECK(e.store.lookups[0].keys.hash);
  CHECK(e.store.lookups[0].keys.data == "user:42");
  e.store.answer(0, LKind::kLeaseWon);
  REQUIRE(e.origin.requests.size() == 1);
  e.origin.complete(0, OKind::kValue, R"({"a": "x", "n": 1})");
  REQUIRE(e.store.commits.size() == 1);
  const auto& commit = e.store.commits[0];
  CHECK(commit.keys.hash);
  CHECK(commit.value == kHash);
  CHECK(commit.token == e.store.lookups[0].token);
  CHECK(commit.ttl_ms == 52500);
  REQUIRE(e.got.size() == 2);
  checkValue(e.got[0], 1, std::string(kHash));
  checkValue(e.got[1], 2, std::string(kHash));
}

TEST_CASE("fill hash: a body that is not a JSON object is a fill error, nothing stored") {
  Env e;
  const FillPolicy p = hashPolicy(e, SingleFlight::kDistributed);
  e.miss(p, 1);
  e.store.answer(0, LKind::kLeaseWon);
  e.origin.complete(0, OKind::kValue, "[1, 2]");
  CHECK(e.store.commits.empty());
  REQUIRE(e.store.releases.size() == 1);  // the lease is given back
  CHECK(e.c().fill_errors == 1);
  REQUIRE(e.got.size() == 1);
  checkError(e.got[0], 1, "FILLERR users-api body is not a JSON object");
}

TEST_CASE("fill hash: an empty object is remembered as a 404") {
  Env e;
  const FillPolicy p = hashPolicy(e, SingleFlight::kLocal);
  e.miss(p, 1);
  e.store.answer(0, LKind::kMissing);
  e.origin.complete(0, OKind::kValue, " {} ");
  REQUIRE(e.store.commits.size() == 1);
  CHECK(e.store.commits[0].negative);
  CHECK(e.store.commits[0].ttl_ms == 5000);
  REQUIRE(e.got.size() == 1);
  checkNil(e.got[0], 1);
}

TEST_CASE("fill hash: a revoked fill answers its waiters and commits nothing") {
  Env e;
  const FillPolicy p = hashPolicy(e, SingleFlight::kLocal);
  e.miss(p, 1);
  e.store.answer(0, LKind::kMissing);
  e.engine->revoke("user:42");
  e.origin.complete(0, OKind::kValue, R"({"a": "x", "n": 1})");
  CHECK(e.store.commits.empty());
  CHECK(e.c().not_stored == 1);
  REQUIRE(e.got.size() == 1);
  checkValue(e.got[0], 1, std::string(kHash));
}

TEST_CASE("fill decode: json-field stores one member; a missing one is an error") {
  Env e;
  FillPolicy p = e.policy(SingleFlight::kLocal);
  p.decode = FillDecode{FillDecode::Kind::kJsonField, "price"};
  e.miss(p, 1, "user:1");
  e.store.answer(0, LKind::kMissing);
  CHECK_FALSE(e.store.lookups[0].keys.hash);
  e.origin.complete(0, OKind::kValue, R"({"price": 9.90, "c": "EUR"})");
  REQUIRE(e.store.commits.size() == 1);
  CHECK(e.store.commits[0].value == "9.90");
  checkValue(e.got.at(0), 1, "9.90");

  p.on_error = FillOnError::kNil;
  e.miss(p, 2, "user:2");
  e.store.answer(1, LKind::kMissing);
  e.origin.complete(1, OKind::kValue, R"({"cost": 1})");
  CHECK(e.store.commits.size() == 1);  // nothing more stored
  CHECK(e.c().fill_errors == 1);
  checkNil(e.got.at(1), 2);  // on_error nil: the error is a miss
}

}  // namespace
}  // namespace corral::policies::filltest
