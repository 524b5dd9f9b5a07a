// Running one of corral's own Lua scripts in Redis (fill leases, global rate limits).
//
//   runScript(conn, ...) --EVAL <script> <n> keys args, our codec, pipelined on `conn`--> one
//   reply frame --> done(reply) exactly once: Redis's reply, or an error frame when `conn` is
//   missing or not accepting (then on the next loop turn, never from inside the call).
#pragma once

#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include "policies/fill.h"
#include "proxy/upstream/upstream.h"

namespace corral::upstream {

// scratch: reused for the encoded request. timer: for errors answered on the next turn.
// timeout_ms: as for Connection::enqueue (0: the configured command timeout).
void runScript(Connection* conn, policies::Timer& timer, std::string& scratch,
               std::string_view script, std::initializer_list<std::string_view> keys,
               std::initializer_list<std::string_view> args,
               std::function<void(std::string_view)> done, int64_t timeout_ms = 0);
// The same with as many arguments as a caller has (a hash fill's fields).
void runScript(Connection* conn, policies::Timer& timer, std::string& scratch,
               std::string_view script, std::span<const std::string_view> keys,
               std::span<const std::string_view> args, std::function<void(std::string_view)> done,
               int64_t timeout_ms = 0);

// "ERR ..." of an error frame "-ERR ...\r\n" (no '-', no CRLF).
std::string_view errorText(std::string_view reply);

}  // namespace corral::upstream
