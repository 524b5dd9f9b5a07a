// COMMAND (or COMMAND INFO) replies, as a server sends them, read into the descriptions the
// learnt overlay is built from (commands/overlay.h). Pure: no I/O, no logging; fuzzed
// (tests/fuzz/fuzz_command_reply.cc).
//
//   reply bytes --parseCommandReply--> ParsedCommands{[CommandDesc], malformed, truncated}
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "commands/overlay.h"

namespace corral::net {

// What a COMMAND (or COMMAND INFO) reply holds, read with codec::FrameReader.
struct ParsedCommands {
  std::vector<commands::CommandDesc> commands;
  size_t malformed = 0;    // entries that were not a command's description (left out)
  bool truncated = false;  // more entries than kMaxReplyEntries (the rest left out)
};

// Entries of a reply read at most: a server reports a few hundred commands; the overlay keeps
// at most commands::kMaxLearntCommands of them anyway.
inline constexpr size_t kMaxReplyEntries = commands::kMaxLearntCommands;

// Parses one complete reply frame (RESP2 or RESP3). False when it is not an array of entries
// (an error reply, another type, or bytes after the frame); then *out holds nothing. Each entry
// is read on its own: a malformed one is counted and left out, never read past its end. Values
// are copied, capped in size (names, flags, specs and subcommands beyond the overlay's bounds
// are cut), so a hostile reply costs memory proportional to the bounds, not to its claims.
bool parseCommandReply(std::string_view reply, ParsedCommands* out);

}  // namespace corral::net
