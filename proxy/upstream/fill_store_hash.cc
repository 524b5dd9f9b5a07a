// The fill store for hash keys (HGETALL / HGET fills, FillKeys::hash): the same steps as the
// string scripts of fill_store.cc, reading with HGETALL and writing DEL + HSET + PEXPIRE in one
// script, so a reader never sees a hash without its TTL or with only part of its fields.
//
//   lookup:  hash present -> {1, {f, v, ...}, pttl} | negative | lease won / held | missing
//   commit:  token holds the lease (or, without a lease, the key is still missing)
//            -> DEL data, HSET data f v ... (in chunks), PEXPIRE data ttl, DEL lease
//
// A value here is HGETALL's RESP2 reply ("*<2n>\r\n" + bulk strings), as the engine and the
// client pass it around (policies/fill_decode.h).
#include <string>
#include <string_view>
#include <vector>

#include "proxy/codec/resp.h"
#include "proxy/upstream/fill_store.h"
#include "proxy/upstream/script.h"

namespace corral::upstream {

namespace {

// KEYS: data, negative, lease. ARGV: token, lock_ttl_ms, take_lease ("1"/"0"). As kLookup of
// fill_store.cc; a key of another type makes HGETALL fail (WRONGTYPE: a store error).
constexpr std::string_view kLookupHash = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {1, redis.call('HGETALL', KEYS[1]), redis.call('PTTL', KEYS[1])}
end
if redis.call('EXISTS', KEYS[2]) == 1 then return {2} end
if ARGV[3] == '1' then
  if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return {3} end
  return {4, redis.call('PTTL', KEYS[3])}
end
return {5})lua";

// KEYS: data, lease. ARGV: token, lock_ttl_ms, fresh_above_ms. As kRefreshLookup.
constexpr std::string_view kRefreshLookupHash = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then
  local t = redis.call('PTTL', KEYS[1])
  if t == -1 or t > tonumber(ARGV[3]) then return {1, redis.call('HGETALL', KEYS[1]), t} end
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {3} end
return {4, redis.call('PTTL', KEYS[2])})lua";

// KEYS: data, lease. ARGV: token, ttl_ms, field, value, ... With a token: only while it holds
// the lease (a client's HSET or DEL of the key deleted it: the fill is revoked); the old hash
// is replaced, not merged. Without one: only if the key is still missing. HSET goes in chunks
// of 500 pairs: unpack() of very many values overflows Lua's C stack. 1 = written.
constexpr std::string_view kCommitHash = R"lua(
if ARGV[1] == '' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
else
  if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
  redis.call('DEL', KEYS[2])
  redis.call('DEL', KEYS[1])
end
for i = 3, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1)lua";

}  // namespace

policies::LookupResult FillStore::decodeHashLookup(std::string_view reply) {
  codec::FrameReader rd(reply);
  int64_t n = 0;
  int64_t code = 0;
  if (!(rd.array(&n) && n == 3 && rd.integer(&code) && code == 1)) return decodeLookup(reply);
  policies::LookupResult out;
  out.kind = policies::LookupResult::Kind::kValue;
  int64_t m = 0;
  bool ok = rd.array(&m) && m >= 2 && m % 2 == 0;
  if (ok) codec::appendArrayHeader(out.value, static_cast<size_t>(m));
  for (int64_t i = 0; ok && i < m; ++i) {
    std::string_view s;
    bool nil = false;
    ok = rd.bulk(&s, &nil) && !nil;
    codec::appendBulk(out.value, s);
  }
  if (!(ok && rd.integer(&out.pttl) && rd.atEnd())) {
    out = policies::LookupResult{};
    out.error = "unexpected reply to the hash fill lookup script";
  }
  return out;
}

void FillStore::lookupHash(const policies::FillKeys& keys, const std::string& token,
                           int64_t lock_ttl_ms, bool take_lease,
                           std::function<void(policies::LookupResult)> done) {
  const std::string ttl = std::to_string(lock_ttl_ms > 0 ? lock_ttl_ms : 1);
  eval(kLookupHash, {keys.data, keys.negative, keys.lease}, {token, ttl, take_lease ? "1" : "0"},
       [done = std::move(done)](std::string_view reply) { done(decodeHashLookup(reply)); });
}

void FillStore::refreshLookupHash(const policies::FillKeys& keys, const std::string& token,
                                  int64_t lock_ttl_ms, int64_t fresh_above_ms,
                                  std::function<void(policies::LookupResult)> done) {
  const std::string ttl = std::to_string(lock_ttl_ms > 0 ? lock_ttl_ms : 1);
  const std::string fresh = std::to_string(fresh_above_ms);
  eval(kRefreshLookupHash, {keys.data, keys.lease}, {token, ttl, fresh},
       [done = std::move(done)](std::string_view reply) { done(decodeHashLookup(reply)); });
}

void FillStore::commitHash(const policies::FillKeys& keys, const std::string& token,
                           const std::string& value, int64_t ttl_ms,
                           std::function<void(bool)> done) {
  const std::string ttl = std::to_string(ttl_ms > 0 ? ttl_ms : 1);
  std::vector<std::string_view> args{token, ttl};
  codec::FrameReader rd(value);
  int64_t m = 0;
  bool ok = rd.array(&m) && m >= 2 && m % 2 == 0;
  for (int64_t i = 0; ok && i < m; ++i) {
    std::string_view s;
    bool nil = false;
    ok = rd.bulk(&s, &nil) && !nil;
    args.push_back(s);
  }
  if (!ok || !rd.atEnd()) {
    // The engine only commits what fill_decode encoded: not expected. Nothing is stored.
    timer_.after(0, [done = std::move(done)] { done(false); });
    return;
  }
  const std::string_view ks[] = {keys.data, keys.lease};
  runScript(primary_(keys.data), timer_, scratch_, kCommitHash, ks, args,
            [done = std::move(done)](std::string_view reply) { done(reply == ":1\r\n"); });
}

}  // namespace corral::upstream
