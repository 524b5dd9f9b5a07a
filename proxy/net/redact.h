// Hiding upstream credentials in replies: corral's own upstream password must never reach a
// client, and CONFIG GET is how a client would ask Redis for it. Pure: bytes in, bytes out.
//
//   upstream reply to CONFIG GET --redactConfigGetReply--> same reply, secret values emptied
//                                                 \------> false: forward the reply verbatim
#pragma once

#include <string>
#include <string_view>

namespace corral::net {

// `reply` is exactly one complete reply frame to CONFIG GET <pattern...>: a RESP2 array
// (*2N, then name, value, name, value... as bulk strings) or a RESP3 map (%N of the same pairs).
// When the value of an entry named requirepass, masterauth or masteruser (any case) is not
// already empty, writes the whole reply to `out` (replacing its contents) with those values
// changed to the empty bulk string "$0\r\n\r\n", and returns true. Returns false, leaving `out`
// untouched, when nothing needed changing or `reply` is not such a frame (an error reply, other
// element types, trailing bytes, truncated or malformed input). Lengths are parsed, never
// searched for, so values may hold any bytes, "\r\n" included. Allocates only when it rewrites.
bool redactConfigGetReply(std::string_view reply, std::string& out);

}  // namespace corral::net
