// Keyspace-wide commands in a cluster: sent to every primary, the replies merged.
//
//   DBSIZE / KEYS p / FLUSHALL / SCRIPT LOAD s / INFO / ... --> fanOut --> Merge kind
//      --> the same request to each primary --> one reply each --> mergeReplies(merge, replies)
#pragma once

#include <span>
#include <string_view>

#include "proxy/cluster/split.h"

namespace corral::cluster {

// args: the request's arguments (args[0] the command name, args[1] a subcommand; any case).
// True, with *merge set, when the command must go to every primary:
//   DBSIZE                                        kSumIntegers
//   KEYS                                          kConcatArrays
//   FLUSHALL FLUSHDB                              kAllOk
//   SCRIPT LOAD, FUNCTION LOAD                    kSameReply
//   SCRIPT EXISTS                                 kAndArrays
//   SCRIPT FLUSH, FUNCTION FLUSH|DELETE|RESTORE,
//   CONFIG SET|RESETSTAT                          kAllOk
//   INFO (any sections)                           kInfo
// Decided by name only (arity is Redis's to check). False otherwise, *merge untouched. No
// allocation.
bool fanOut(std::span<const std::string_view> args, Merge* merge);

}  // namespace corral::cluster
