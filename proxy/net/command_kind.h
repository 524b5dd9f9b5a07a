// What corral does with a command: answer it itself, refuse it, change the session's state, or
// forward it. Pure functions of the command table entry and the arguments.
//
//   args --commands::lookup--> CommandInfo* --classify--> CommandKind --> session event
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "commands/command_table.h"

namespace corral::net {

enum class CommandKind : uint8_t {
  kForward,  // nothing special: forwarded as it is
  kUnknown,  // neither the built-in table nor the learnt overlay knows it (a name, or a
             // container's subcommand): forwarded or refused by global.unknown_commands
  // Answered by corral.
  kPing,
  kEcho,
  kQuit,
  kHello,
  kAuth,
  kSelect,
  kReset,
  kClientSetinfo,  // CLIENT SETINFO (Redis 7.2; sent by current client libraries)
  kClientSetname,
  kClientGetname,
  kClientId,
  kClientList,
  kClientInfo,
  kClientKill,
  kClientGetredir,
  kClientReply,  // CLIENT REPLY: emulated by corral, never forwarded
  // Forwarded with corral's ids translated to Redis's (and back).
  kClientUnblock,
  kClientTracking,
  kClientTrackinginfo,
  // Connection state.
  kMulti,
  kExec,
  kDiscard,
  kWatch,
  kUnwatch,
  kBlocking,  // BLPOP & co, WAIT, and XREAD/XREADGROUP with BLOCK
  kSubscribe,
  kUnsubscribe,
  kMonitor,
  // Forwarded with a twist.
  kInfo,       // the reply gets corral's "# Proxy" section
  kConfigGet,  // corral's upstream credentials are blanked in the reply
  kKeyspace,   // keyspace-wide reads: always the primary (SCAN, KEYS, DBSIZE, RANDOMKEY)
  kBusy,       // meant for a busy server (SCRIPT KILL, FUNCTION KILL/STATS, SHUTDOWN): sent on a
               // connection of its own, never queued behind a running script
  kRefuse,     // refused by corral (replication and cluster commands, CLIENT PAUSE, ...)
};

// The kind of a command (cmd may be nullptr: kUnknown). Only commands whose flags say they may
// be special are looked up, so GET/SET never pay for it (the nullptr test was there before
// kUnknown: it only moved). Commands learnt from the server (id kLearntId) are classified by
// their flags: blocking and pub/sub ones are refused (they would hold or change a shared
// connection), WAITAOF blocks like WAIT, the rest are forwarded.
CommandKind classifySpecial(const commands::CommandInfo* cmd,
                            const std::vector<std::string_view>& args);
inline constexpr uint32_t kMaybeSpecial = commands::kConnState | commands::kTransaction |
                                          commands::kBlocking | commands::kPubSub |
                                          commands::kNoKey;
inline CommandKind classify(const commands::CommandInfo* cmd,
                            const std::vector<std::string_view>& args) {
  if (cmd == nullptr) [[unlikely]] {
    return CommandKind::kUnknown;
  }
  if ((cmd->flags & kMaybeSpecial) == 0) [[likely]] {
    return CommandKind::kForward;
  }
  return classifySpecial(cmd, args);
}

// Redis's error for a command it would not even look at: unknown command, unknown subcommand
// or wrong number of arguments (without '-' and CRLF); empty when the command is well formed.
std::string commandError(const commands::CommandInfo* cmd,
                         const std::vector<std::string_view>& args);

// How long a blocking command may block, in ms: -1 for ever (a zero timeout), 0 when it does
// not block (or the argument is not a number: Redis will answer at once with an error).
int64_t blockMs(std::string_view name, const std::vector<std::string_view>& args);

// A whole decimal integer (an optional '-', then digits only).
bool parseInt(std::string_view s, int64_t& out);

// The command's name as Redis prints it in its own errors ("client|setname", "get"), or the
// client's spelling for an unknown command.
std::string_view fullName(const commands::CommandInfo* cmd,
                          const std::vector<std::string_view>& args);

// "CLIENT PAUSE", "SUBSCRIBE": the command's name as corral's errors spell it.
std::string upperName(const commands::CommandInfo* cmd, const std::vector<std::string_view>& args);

// HELLO's options as Redis 7.0 reads them, from args[j]: AUTH <user> <pass> (3 arguments) and
// SETNAME <name> (2); anything else is Redis's syntax error, and the walk stops there.
enum class HelloOption : uint8_t { kAuth, kSetname, kBad };
HelloOption helloOption(const std::vector<std::string_view>& args, size_t j);
// The (user, password) of each AUTH option a HELLO would try, in order (none when its protocol
// version is not 2 or 3: Redis refuses it before the options).
std::vector<std::pair<std::string_view, std::string_view>> helloCredentials(
    const std::vector<std::string_view>& args);
inline bool helloLogsIn(const std::vector<std::string_view>& args) {
  return !helloCredentials(args).empty();
}

}  // namespace corral::net
