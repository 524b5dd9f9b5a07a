#include "proxy/upstream/fill_store.h"

#include "proxy/codec/resp.h"
#include "proxy/upstream/script.h"

namespace corral::upstream {

namespace {

// KEYS: data, negative, lease. ARGV: token, lock_ttl_ms, take_lease ("1"/"0").
// {1, value, pttl} value | {2} negative | {3} lease won | {4, pttl} lease held | {5} missing
constexpr std::string_view kLookup = R"lua(
local v = redis.call('GET', KEYS[1])
if v then return {1, v, redis.call('PTTL', KEYS[1])} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {2} end
if ARGV[3] == '1' then
  if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return {3} end
  return {4, redis.call('PTTL', KEYS[3])}
end
return {5})lua";

// KEYS: data, lease. ARGV: token, value, ttl_ms. Writes only while token holds the lease; an
// empty token (a miss under single_flight local/off: no lease) writes only if the key is still
// missing, so a value a client wrote meanwhile is never overwritten. 1 = written.
constexpr std::string_view kCommit = R"lua(
if ARGV[1] == '' then
  if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end
  return 0
end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1)lua";

// KEYS: data, lease, meta. ARGV: token, lock_ttl_ms, fresh_above_ms. For a refresh: a value
// that is fresh again (PTTL above fresh_above_ms, or no TTL) -> {1, value, pttl}; else take the
// lease -> {3, meta}: what meta holds after "<sha1hex of the value>" (policies::encodeMeta:
// windows and validator), only while that digest is the value's (a write since makes the
// refresh a plain GET), else false.
constexpr std::string_view kRefreshLookup = R"lua(
local v = redis.call('GET', KEYS[1])
if v then
  local t = redis.call('PTTL', KEYS[1])
  if t == -1 or t > tonumber(ARGV[3]) then return {1, v, t} end
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local m = redis.call('GET', KEYS[3])
  if v and m and string.sub(m, 1, 40) == redis.sha1hex(v) then return {3, string.sub(m, 41)} end
  return {3, false}
end
return {4, redis.call('PTTL', KEYS[2])})lua";

// KEYS: data, lease, meta. ARGV: token, value, ttl_ms, meta. kCommit, then meta set to
// sha1hex(value) .. meta with the same TTL, in the same step.
constexpr std::string_view kCommitValidated = R"lua(
if ARGV[1] == '' then
  if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3]) then return 0 end
else
  if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
redis.call('SET', KEYS[3], redis.sha1hex(ARGV[2]) .. ARGV[4], 'PX', ARGV[3])
return 1)lua";

// KEYS: data, lease, meta. ARGV: token, ttl_ms, meta. After a 304: only while token holds the
// lease (deleted) and meta's digest is still the value's (no write since the validated one),
// PEXPIRE the value and rewrite meta (digest kept, new windows / validator) with that TTL. The
// value is hashed in Redis, never sent or rewritten. 1 = extended.
constexpr std::string_view kExtend = R"lua(
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
local m = redis.call('GET', KEYS[3])
local v = redis.call('GET', KEYS[1])
if not m or not v or string.sub(m, 1, 40) ~= redis.sha1hex(v) then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[3], string.sub(m, 1, 40) .. ARGV[3], 'PX', ARGV[2])
return 1)lua";

// KEYS: negative, lease. ARGV: token, ttl_ms (0: nothing to remember, just release).
constexpr std::string_view kNegative = R"lua(
if ARGV[1] ~= '' then
  if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
  redis.call('DEL', KEYS[2])
end
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[1], '1', 'PX', ARGV[2]) end
return 1)lua";

// KEYS: lease. ARGV: token.
constexpr std::string_view kRelease = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0)lua";

}  // namespace

void FillStore::eval(std::string_view script, std::initializer_list<std::string_view> keys,
                     std::initializer_list<std::string_view> args,
                     std::function<void(std::string_view)> done) {
  runScript(primary_(keys.size() == 0 ? std::string_view() : *keys.begin()), timer_, scratch_,
            script, keys, args, std::move(done));
}

policies::LookupResult FillStore::decodeLookup(std::string_view reply) {
  using Kind = policies::LookupResult::Kind;
  policies::LookupResult out;
  if (reply.empty() || reply[0] == '-') {
    out.kind = Kind::kError;
    out.error = std::string(reply.empty() ? std::string_view("empty reply") : errorText(reply));
    return out;
  }
  codec::FrameReader rd(reply);
  int64_t n = 0;
  int64_t code = 0;
  bool ok = rd.array(&n) && n >= 1 && rd.integer(&code);
  switch (code) {
    case 1: {
      std::string_view value;
      bool nil = false;
      ok = ok && n == 3 && rd.bulk(&value, &nil) && !nil && rd.integer(&out.pttl);
      out.value.assign(value);
      out.kind = Kind::kValue;
      break;
    }
    case 2:
      out.kind = Kind::kNegative;
      break;
    case 3:
      if (ok && n == 2) {  // refreshLookup: the validator, or nil
        std::string_view validator;
        bool nil = false;
        ok = rd.bulk(&validator, &nil);
        out.validator.assign(validator);
      } else {
        ok = ok && n == 1;
      }
      out.kind = Kind::kLeaseWon;
      break;
    case 4:
      ok = ok && n == 2 && rd.integer(&out.pttl);
      out.kind = Kind::kLeaseHeld;
      break;
    case 5:
      out.kind = Kind::kMissing;
      break;
    default:
      ok = false;
  }
  if (!ok || !rd.atEnd()) {
    out = policies::LookupResult{};
    out.kind = Kind::kError;
    out.error = "unexpected reply to the fill lookup script";
  }
  return out;
}

void FillStore::lookup(const policies::FillKeys& keys, const std::string& token,
                       int64_t lock_ttl_ms, bool take_lease,
                       std::function<void(policies::LookupResult)> done) {
  if (keys.hash) return lookupHash(keys, token, lock_ttl_ms, take_lease, std::move(done));
  const std::string ttl = std::to_string(lock_ttl_ms > 0 ? lock_ttl_ms : 1);
  eval(kLookup, {keys.data, keys.negative, keys.lease}, {token, ttl, take_lease ? "1" : "0"},
       [done = std::move(done)](std::string_view reply) { done(decodeLookup(reply)); });
}

void FillStore::refreshLookup(const policies::FillKeys& keys, const std::string& token,
                              int64_t lock_ttl_ms, int64_t fresh_above_ms,
                              std::function<void(policies::LookupResult)> done) {
  if (keys.hash) {
    return refreshLookupHash(keys, token, lock_ttl_ms, fresh_above_ms, std::move(done));
  }
  const std::string ttl = std::to_string(lock_ttl_ms > 0 ? lock_ttl_ms : 1);
  const std::string fresh = std::to_string(fresh_above_ms);
  eval(kRefreshLookup, {keys.data, keys.lease, keys.meta}, {token, ttl, fresh},
       [done = std::move(done)](std::string_view reply) { done(decodeLookup(reply)); });
}

void FillStore::commit(const policies::FillKeys& keys, const std::string& token,
                       const std::string& value, int64_t ttl_ms, std::function<void(bool)> done) {
  if (keys.hash) return commitHash(keys, token, value, ttl_ms, std::move(done));
  const std::string ttl = std::to_string(ttl_ms > 0 ? ttl_ms : 1);
  eval(kCommit, {keys.data, keys.lease}, {token, value, ttl},
       [done = std::move(done)](std::string_view reply) { done(reply == ":1\r\n"); });
}

void FillStore::commitValidated(const policies::FillKeys& keys, const std::string& token,
                                const std::string& value, int64_t ttl_ms, const std::string& meta,
                                std::function<void(bool)> done) {
  const std::string ttl = std::to_string(ttl_ms > 0 ? ttl_ms : 1);
  eval(kCommitValidated, {keys.data, keys.lease, keys.meta}, {token, value, ttl, meta},
       [done = std::move(done)](std::string_view reply) { done(reply == ":1\r\n"); });
}

void FillStore::extend(const policies::FillKeys& keys, const std::string& token, int64_t ttl_ms,
                       const std::string& meta, std::function<void(bool)> done) {
  const std::string ttl = std::to_string(ttl_ms > 0 ? ttl_ms : 1);
  eval(kExtend, {keys.data, keys.lease, keys.meta}, {token, ttl, meta},
       [done = std::move(done)](std::string_view reply) { done(reply == ":1\r\n"); });
}

void FillStore::commitNegative(const policies::FillKeys& keys, const std::string& token,
                               int64_t ttl_ms, std::function<void(bool)> done) {
  const std::string ttl = std::to_string(ttl_ms > 0 ? ttl_ms : 0);
  eval(kNegative, {keys.negative, keys.lease}, {token, ttl},
       [done = std::move(done)](std::string_view reply) { done(reply == ":1\r\n"); });
}

void FillStore::release(const policies::FillKeys& keys, const std::string& token) {
  if (token.empty()) return;  // no lease was taken
  eval(kRelease, {keys.lease}, {token}, [](std::string_view) {});
}

}  // namespace corral::upstream
