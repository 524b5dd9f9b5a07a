// What corral does with a command: answer it itself, refuse it, move the client to a dedicated
// connection, or forward it. Pure functions of the command table entry and the arguments.
//
//   args --commands::lookup--> CommandInfo* --classify--> CommandKind --> the session decides
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "commands/command_table.h"
#include "proxy/codec/resp.h"

namespace corral::net {

// Commands corral answers itself or refuses; looked up only for commands whose flags say they
// may be one (see kMaybeLocal), so GET/SET never pay for it.
enum class CommandKind : uint8_t {
  kPing,
  kEcho,
  kQuit,
  kHello,
  kAuth,
  kSelect,
  kReset,
  kClient,  // CLIENT container: SETINFO (unknown to Redis 7.0) is answered locally
  kClientSetname,
  kClientGetname,
  kClientId,
  kMulti,  // the following are served on a dedicated connection
  kExecDiscard,
  kWatch,
  kUnwatch,
  kBlocking,   // BLPOP & co, WAIT, and XREAD/XREADGROUP with BLOCK
  kInfo,       // forwarded; the reply gets corral's "# Proxy" section
  kConfigGet,  // forwarded; corral's upstream credentials are blanked in the reply
  kKeyspace,   // keyspace-wide reads: always the primary (SCAN, KEYS, DBSIZE, RANDOMKEY)
  kPipe,       // from here on the client talks to its own upstream connection, as a pipe
  kRefuse,     // needs connection state this version does not carry yet (pub/sub, RESP3, ...)
  kForward,    // not in the table: forwarded
};

// The kind of a command (cmd may be nullptr: an unknown command is forwarded). Only commands
// whose flags say they may be special are looked up, so GET/SET never pay for it.
CommandKind classify(const commands::CommandInfo* cmd, const std::vector<std::string_view>& args);

// How long a blocking command may block, in ms: -1 for ever (a zero timeout), 0 when it does
// not block (or the argument is not a number: Redis will answer at once with an error).
int64_t blockMs(std::string_view name, const std::vector<std::string_view>& args);

// A whole decimal integer (no sign other than '-', no spaces).
bool parseInt(std::string_view s, int64_t& out);

// "CLIENT PAUSE" / "SYNC": the command's name as Redis prints it in errors.
std::string upperName(const commands::CommandInfo* cmd, const codec::Request& req);

}  // namespace corral::net
