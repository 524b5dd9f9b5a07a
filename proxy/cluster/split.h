// Multi-key commands whose keys span several slots: split per slot, merge the replies.
//
//   MGET a b c  --> splitBySlot --> [slot(a,c): "MGET a c", positions {0,2}]
//                                   [slot(b):   "MGET b",   positions {1}]
//   replies per fragment --> mergeReplies --> "*3" + a's, b's, c's elements, in the client's order
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace corral::cluster {

enum class Merge : uint8_t {
  kArrayInKeyOrder,  // MGET
  kAllOk,            // MSET
  kSumIntegers,      // DEL UNLINK EXISTS TOUCH
};

struct Fragment {
  uint16_t slot = 0;
  // RESP multibulk bytes: the command name as the client wrote it + this slot's keys (MSET: key
  // value pairs), in the client's order. Owned: it outlives the client's buffer.
  std::string request;
  // kArrayInKeyOrder only: the index of each of this fragment's keys in the client's key order.
  std::vector<uint32_t> positions;
};

struct SplitPlan {
  Merge merge = Merge::kArrayInKeyOrder;
  size_t keys = 0;  // keys in the client's request (MSET: pairs)
  std::vector<Fragment> fragments;
};

// args: the request's arguments (args[0] the command name, any case). Returns true and fills
// *plan when the command is one of MGET MSET DEL UNLINK EXISTS TOUCH and its keys span more than
// one slot; false otherwise (one slot, not a splittable command, or an arity Redis refuses,
// which is best left to Redis to answer), with *plan untouched. Fragments are ordered by first
// appearance of their slot. A one-slot request costs one keySlot per key and no allocation.
bool splitBySlot(std::span<const std::string_view> args, SplitPlan* plan);

// True when a command's keys (their indexes into args, from commands::extractKeys) do not all
// hash to one slot. No allocation.
bool crossSlot(std::span<const std::string_view> args, std::span<const uint32_t> key_indexes);

inline constexpr std::string_view kCrossSlotError =
    "-CROSSSLOT Keys in request don't hash to the same slot\r\n";

// replies[i]: the raw reply bytes of fragments[i] (complete RESP frames, RESP2 or RESP3).
// Appends the client's reply to *out:
//   kArrayInKeyOrder: "*<keys>\r\n" then each element in the client's key order (copied
//     verbatim: a RESP3 null "_\r\n" stays as Redis wrote it);
//   kAllOk: "+OK\r\n" when every fragment answered +OK, else the first non-OK reply verbatim;
//   kSumIntegers: ":<sum>\r\n".
// For kArrayInKeyOrder and kSumIntegers, a fragment that answered an error ("-..." or RESP3
// "!...") makes the reply that error, verbatim (the first in fragment order). A reply of the
// wrong shape (or a count of replies that is not the plan's) gives kBadFragmentReply.
void mergeReplies(const SplitPlan& plan, std::span<const std::string_view> replies,
                  std::string* out);

inline constexpr std::string_view kBadFragmentReply =
    "-ERR corral: unexpected reply from a cluster node to a split command\r\n";

}  // namespace corral::cluster
