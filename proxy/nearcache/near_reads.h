// Which reads the near cache answers, and how their replies are made from what it keeps.
//
// One entry per key holds the key's whole value as Redis encoded it on the RESP3 tracking
// connection: a string as GET's bulk reply ("$5\r\nhello\r\n"), a hash as HGETALL's map
// ("%2\r\n$1\r\nf\r\n$1\r\nv\r\n..."). Every read below is answered from that one entry, so a
// key's invalidation drops everything its reads could return:
//
//   entry "$..."  GET -> the bulk     STRLEN -> ":len"     EXISTS -> 1 per key     MGET -> each
//   entry "%..."  HGETALL -> the map  HGET/HMGET -> field values or nil  HLEN  HEXISTS  EXISTS
//
// Only GET, MGET and HGETALL fill the cache on a miss (their replies are whole values); the
// others are answered when an entry is there and otherwise go to Redis as usual, so a large
// hash is never read whole for one HGET.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace corral::nearcache {

enum class NearRead : uint8_t {
  kNone,  // not a read the near cache answers
  kGet,
  kMget,
  kExists,
  kStrlen,
  kHgetall,
  kHget,
  kHmget,
  kHlen,
  kHexists,
};

// The read of a command (its lower-case table name, e.g. "hget") with nargs arguments counting
// the name; kNone for anything else or a wrong argument count.
NearRead nearReadOf(std::string_view name, size_t nargs);

// True for the reads whose miss is read on the tracking connection and stored (GET, MGET,
// HGETALL); the others are answered from entries only.
constexpr bool fills(NearRead r) {
  return r == NearRead::kGet || r == NearRead::kMget || r == NearRead::kHgetall;
}

// True for the reads of several keys (MGET, EXISTS): every argument after the name is a key.
constexpr bool manyKeys(NearRead r) { return r == NearRead::kMget || r == NearRead::kExists; }

// Whether an entry may be stored for a fill's reply (the RESP3 bytes of GET or HGETALL): a
// non-nil bulk, or a non-empty map. Nil, errors and an empty map (no such key) are not kept.
bool storable(std::string_view reply);

// Appends to `out` the reply of a single-key read (not MGET or EXISTS) made from `entry`, in
// the client's protocol (2 or 3); `args` is the whole request (name, key, fields). False, with
// `out` unchanged, when the entry cannot answer it (a string entry for a hash read, or the
// reverse): the read then goes to Redis, which says WRONGTYPE itself.
bool appendFromEntry(NearRead read, std::string_view entry, std::span<const std::string_view> args,
                     int proto, std::string& out);

// Appends `reply` (one RESP3 frame from the tracking connection) in the client's protocol: as is
// for RESP3; for RESP2 nulls become "$-1" and maps flat arrays, at any depth. False, with `out`
// holding a partial frame, if the frame holds a type RESP2 has no spelling for here.
bool appendInProto(std::string_view reply, int proto, std::string& out);

}  // namespace corral::nearcache
