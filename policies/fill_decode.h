// What a fill stores from an origin body (fill.decode, and the shape its commands ask for):
//
//   origin 200 body ──raw──────────> the body as the string value (GET fills, the default)
//                   ──json-field f─> member f of a JSON object body as the string value
//                   ──hash─────────> every member of a JSON object body as a hash field
//                                    (HGETALL / HGET fills): HGETALL's RESP2 reply, ready to
//                                    store (the commit script reads it) and to send
//
// Pure functions, no allocation beyond the output. The JSON reader is strict RFC 8259 (no
// comments, no trailing commas, no NaN, no lone surrogates, no control bytes in strings),
// bounded in body size, nesting depth and member count; bytes above 0x7F inside strings are
// passed through as they are (UTF-8 is not checked: Redis values are bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace corral::policies {

struct OriginResult;
struct FillPolicy;

// How a policy turns an origin body into the value it stores (FillPolicy::decode).
struct FillDecode {
  enum class Kind : uint8_t {
    kRaw,        // the body, byte for byte
    kJsonField,  // one member of a JSON object body (field names it)
    kHash,       // a JSON object body as a Redis hash (policies that fill on HGETALL / HGET)
  };
  Kind kind = Kind::kRaw;
  std::string field;  // kJsonField: the member's name
  bool hash() const { return kind == Kind::kHash; }
};

// Limits of the JSON reader (a body past them is a fill error; nothing is stored).
inline constexpr size_t kMaxDecodeBytes = 8u << 20;  // the origin itself allows 64 MiB bodies
inline constexpr size_t kMaxHashFields = 10000;      // members of an object stored as a hash
inline constexpr int kMaxJsonDepth = 64;             // nesting of objects and arrays

// One member of a JSON object: its name unescaped, its value as stored in Redis: a string
// member unescaped, any other (number, true, false, null, object, array) as its JSON text
// exactly as the body wrote it.
struct JsonMember {
  std::string name;
  std::string value;
};

// Parses body as one JSON object (surrounding whitespace allowed). true with its members in
// body order; false with *error set to a short reason ("not a JSON object", "invalid JSON at
// byte 12", "more than 10000 members", "duplicate member 'id'", ...). max_members bounds *out.
bool parseJsonObject(std::string_view body, size_t max_members, std::vector<JsonMember>* out,
                     std::string* error);

// HGETALL's RESP2 reply for members: "*<2n>\r\n" then name, value, ... as bulk strings.
void encodeHashReply(std::span<const JsonMember> members, std::string* out);

// Applies d to an origin's answer, in place: a kValue body becomes the value to store (kRaw
// leaves it). A body that cannot be decoded turns r into kError ("body is not a JSON object",
// ...); an empty JSON object under kHash turns it into kNotFound (Redis has no empty hash: the
// key would be missing again), as does nothing else: a missing json-field member is an error
// (the origin answered 200 with a shape the policy does not expect; 404 says "absent").
void decodeOriginBody(const FillDecode& d, OriginResult& r);

// PolicySet::compile's part: sets f.decode from the spec's fill.decode and the shape its
// commands ask for (hash: HGETALL or HGET listed). Reports to errors a policy that mixes string
// and hash commands (a key holds one type), fill.decode with hash commands (the object is the
// hash), and freshness windows or early refresh with hash commands (not supported yet).
void compileFillShape(const config::PolicySpec& p, const std::string& path, bool hash,
                      FillPolicy& f, std::vector<config::ConfigError>* errors);

}  // namespace corral::policies
