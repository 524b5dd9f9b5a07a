// What the engine's source files share (not for use outside policies/engine_*.cc).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "commands/command_table.h"
#include "policies/decision.h"
#include "policies/engine.h"
#include "policies/registry.h"

namespace corral::policies {

// What decide() needs to know about a command, worked out once per command from the command
// table (commandTraits) instead of once per request.
struct CommandTraits {
  int32_t arity = 0;       // the command table's (Redis's) arity
  bool keyed = false;      // may have key arguments (not kNoKey, not pub/sub)
  uint8_t key_at = 0;      // > 0: the one key is always args[key_at] (GET, SET, HSET, ...)
  bool write = false;      // kWrite: TTL rules apply
  bool read_only = false;  // kRead without kWrite: read_from applies
  bool may_write = false;  // may write its keys (writes; scripts but the _RO forms): revokes fills
  bool hitmiss = false;    // a single-key read whose reply tells a hit from a miss
  bool get = false;        // GET (fill.commands: get)
  bool mget = false;       // MGET (fill.commands: mget)
  bool hgetall = false;    // HGETALL (fill.commands: hgetall)
  bool hget = false;       // HGET (fill.commands: hget)
};

// cmd's traits, worked out from the command table (PolicySet::compile keeps them per top-level
// command; subcommands get theirs on the spot).
CommandTraits commandTraits(const commands::CommandInfo& cmd);

// True when nargs satisfies an arity (commands::arityOk, inline).
inline bool arityFits(int32_t arity, size_t nargs) {
  return arity >= 0 ? nargs == static_cast<size_t>(arity)
                    : nargs >= static_cast<size_t>(-static_cast<int64_t>(arity));
}

// Whether limit l's command list covers cmd (PolicySet::limitApplies' slow path).
bool limitMatchesCommand(const CompiledLimit& l, const commands::CommandInfo* cmd);

struct PolicySet::Request {
  const commands::CommandInfo* cmd = nullptr;
  int64_t top = -1;  // commands::topLevelIndex(cmd); -1: a subcommand or an unknown command
  const CommandTraits& traits;
  std::span<const std::string_view> args;
  const RequestContext& ctx;
  Registry& reg;
};

struct PolicySet::CommandEntry {
  CommandTraits traits;
  bool denied = false;   // global.commands.deny
  bool audited = false;  // global.commands.audit
};

// "config|set" -> the table's entry for CONFIG SET; nullptr when unknown.
const commands::CommandInfo* resolveCommand(const std::string& name);

// True when cmd is `listed` or a subcommand of it (deny "config" covers CONFIG SET).
bool sameOrChild(const commands::CommandInfo* listed, const commands::CommandInfo* cmd);

// "file:line:col" of a config position.
std::string whereText(const config::Where& w);

// A key (or any client bytes) for an error line: capped, non-printables as \xNN, quotes
// escaped, so a reply stays one line whatever the key holds.
void appendEscaped(std::string& out, std::string_view s);

}  // namespace corral::policies
