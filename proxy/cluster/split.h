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
  kSumIntegers,      // DEL UNLINK EXISTS TOUCH; fan-out DBSIZE
  // Fan-out merges (fanout.h): the command went to every primary, one reply each.
  kConcatArrays,  // KEYS
  kSameReply,     // SCRIPT LOAD (the sha), FUNCTION LOAD (the library name)
  kAndArrays,     // SCRIPT EXISTS
  kInfo,          // INFO (info_merge.h)
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
// `frame`: the client's request bytes when args point into them (a multibulk request): each
// argument's own "$<len>\r\n...\r\n" is copied from there instead of being encoded again.
bool splitBySlot(std::span<const std::string_view> args, SplitPlan* plan,
                 std::string_view frame = {});
// True for the commands splitBySlot splits (MGET MSET DEL UNLINK EXISTS TOUCH; any case).
bool splittable(std::string_view name);

// True when a command's keys (their indexes into args, from commands::extractKeys) do not all
// hash to one slot. No allocation.
bool crossSlot(std::span<const std::string_view> args, std::span<const uint32_t> key_indexes);

inline constexpr std::string_view kCrossSlotError =
    "-CROSSSLOT Keys in request don't hash to the same slot\r\n";

// replies[i]: the raw reply bytes of fragments[i] (complete RESP frames, RESP2 or RESP3).
// Appends the client's reply to *out:
//   kArrayInKeyOrder: "*<keys>\r\n" then each element in the client's key order (copied
//     verbatim: a RESP3 null "_\r\n" stays as Redis wrote it);
//   any other kind: as the overload below.
// For kArrayInKeyOrder, a fragment that answered an error ("-..." or RESP3 "!...") makes the
// reply that error, verbatim (the first in fragment order). A reply of the wrong shape (or a
// count of replies that is not the plan's) gives kBadFragmentReply.
void mergeReplies(const SplitPlan& plan, std::span<const std::string_view> replies,
                  std::string* out);

// The merges that need no plan: fan-out commands (fanout.h: one reply per primary, in any order)
// and the split kinds kAllOk and kSumIntegers. Appends the client's reply to *out:
//   kAllOk: "+OK\r\n" when every reply is +OK, else the first other reply verbatim;
//   kSumIntegers: ":<sum>\r\n";
//   kConcatArrays: one "*" array of every element of every reply (verbatim), in reply order;
//   kSameReply: the first reply when all are byte-identical, else the first error reply, else
//     kRepliesDifferError;
//   kAndArrays: replies are arrays of :0/:1 of one length; element i is :1 when every reply
//     has :1 at i;
//   kInfo: bulk (or RESP3 verbatim) INFO texts merged section by section (info_merge.h).
// For kSumIntegers, kConcatArrays, kAndArrays and kInfo an error reply ("-..." or RESP3 "!...") is
// the answer, verbatim (the first in reply order). No replies, a reply of the wrong shape (arrays
// of different lengths for kAndArrays) or kArrayInKeyOrder (it needs the plan): kBadFragmentReply.
void mergeReplies(Merge merge, std::span<const std::string_view> replies, std::string* out);

inline constexpr std::string_view kBadFragmentReply =
    "-ERR corral: unexpected reply from a cluster node to a split command\r\n";

inline constexpr std::string_view kRepliesDifferError =
    "-ERR corral: the cluster's primaries answered differently\r\n";

}  // namespace corral::cluster
