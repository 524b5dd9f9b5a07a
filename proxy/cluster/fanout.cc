#include "proxy/cluster/fanout.h"

#include "commands/command_table.h"

namespace corral::cluster {
namespace {

struct FanOutCommand {
  std::string_view name;        // lower case
  std::string_view subcommand;  // lower case; "" for a command without one
  Merge merge;
};

constexpr FanOutCommand kFanOut[] = {
    {"dbsize", "", Merge::kSumIntegers},     {"keys", "", Merge::kConcatArrays},
    {"flushall", "", Merge::kAllOk},         {"flushdb", "", Merge::kAllOk},
    {"script", "load", Merge::kSameReply},   {"script", "flush", Merge::kAllOk},
    {"script", "exists", Merge::kAndArrays}, {"function", "load", Merge::kSameReply},
    {"function", "flush", Merge::kAllOk},    {"function", "delete", Merge::kAllOk},
    {"function", "restore", Merge::kAllOk},  {"config", "set", Merge::kAllOk},
    {"config", "resetstat", Merge::kAllOk},  {"info", "", Merge::kInfo},
};

}  // namespace

bool fanOut(std::span<const std::string_view> args, Merge* merge) {
  if (args.empty()) return false;
  for (const FanOutCommand& c : kFanOut) {
    if (!commands::isCommandName(args[0], c.name)) continue;
    if (!c.subcommand.empty() &&
        (args.size() < 2 || !commands::isCommandName(args[1], c.subcommand))) {
      continue;
    }
    *merge = c.merge;
    return true;
  }
  return false;
}

}  // namespace corral::cluster
