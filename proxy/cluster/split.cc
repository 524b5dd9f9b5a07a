#include "proxy/cluster/split.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <numeric>

#include "commands/command_table.h"
#include "proxy/cluster/info_merge.h"
#include "proxy/cluster/slot.h"
#include "proxy/codec/resp.h"

namespace corral::cluster {
namespace {

using codec::FrameReader;
using codec::ReplyType;

// What a splittable command looks like: its merge and the args per key (MSET: key + value).
bool splitKind(std::string_view name, Merge* merge, size_t* step) {
  *step = 1;
  if (commands::isCommandName(name, "mget")) {
    *merge = Merge::kArrayInKeyOrder;
  } else if (commands::isCommandName(name, "mset")) {
    *merge = Merge::kAllOk;
    *step = 2;
  } else if (commands::isCommandName(name, "del") || commands::isCommandName(name, "unlink") ||
             commands::isCommandName(name, "exists") || commands::isCommandName(name, "touch")) {
    *merge = Merge::kSumIntegers;
  } else {
    return false;
  }
  return true;
}

size_t bulkSize(std::string_view s) { return s.size() + 16; }  // "$<len>\r\n" + s + "\r\n"

// Appends arg as a RESP bulk string: its own encoding copied from `frame` when the frame holds
// "$<len>\r\n" right before it and "\r\n" right after (addresses compared as integers: arg
// may not point into frame at all), else encoded afresh.
void appendArg(std::string& out, std::string_view arg, std::string_view frame) {
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof(digits), arg.size());
  const size_t nd = static_cast<size_t>(r.ptr - digits);
  const size_t head = nd + 3;  // '$' digits CR LF
  const auto at = reinterpret_cast<uintptr_t>(arg.data());
  const auto lo = reinterpret_cast<uintptr_t>(frame.data());
  if (!frame.empty() && at >= lo + head && at + arg.size() + 2 <= lo + frame.size()) {
    const char* begin = frame.data() + (at - head - lo);
    const char* tail = frame.data() + (at - lo) + arg.size();
    if (begin[0] == '$' && std::memcmp(begin + 1, digits, nd) == 0 && begin[nd + 1] == '\r' &&
        begin[nd + 2] == '\n' && tail[0] == '\r' && tail[1] == '\n') {
      out.append(begin, head + arg.size() + 2);
      return;
    }
  }
  codec::appendBulk(out, arg);
}

bool isError(std::string_view reply) {
  return !reply.empty() && (reply[0] == '-' || reply[0] == '!');
}

void mergeSum(std::span<const std::string_view> replies, std::string* out) {
  int64_t sum = 0;
  for (std::string_view r : replies) {
    FrameReader rd(r);
    int64_t v = 0;
    if (!rd.integer(&v) || !rd.atEnd()) {
      out->append(kBadFragmentReply);
      return;
    }
    sum += v;
  }
  codec::appendInteger(*out, sum);
}

// The elements of an array reply ("*<n>\r\n" + n elements, nothing after): the bytes after its
// header, and n. False for anything else (a nil array included).
bool arrayBody(std::string_view reply, std::string_view* body, int64_t* n) {
  FrameReader rd(reply);
  if (!rd.array(n) || *n < 0) return false;
  for (int64_t i = 0; i < *n; ++i) {
    if (!rd.skip()) return false;
  }
  if (!rd.atEnd()) return false;
  *body = reply.substr(reply.find("\r\n") + 2);
  return true;
}

void mergeConcat(std::span<const std::string_view> replies, std::string* out) {
  int64_t total = 0;
  size_t bytes = 16;
  for (std::string_view r : replies) {
    std::string_view body;
    int64_t n = 0;
    if (!arrayBody(r, &body, &n)) {
      out->append(kBadFragmentReply);
      return;
    }
    total += n;
    bytes += body.size();
  }
  out->reserve(out->size() + bytes);
  codec::appendArrayHeader(*out, static_cast<size_t>(total));
  for (std::string_view r : replies) out->append(r.substr(r.find("\r\n") + 2));
}

// SCRIPT EXISTS: every reply an array of :0/:1, all of one length.
void mergeAnd(std::span<const std::string_view> replies, std::string* out) {
  int64_t n = -1;
  std::vector<bool> all;
  for (std::string_view r : replies) {
    FrameReader rd(r);
    int64_t len = 0;
    if (!rd.array(&len) || len < 0 || (n >= 0 && len != n)) {
      out->append(kBadFragmentReply);
      return;
    }
    if (n < 0) {
      n = len;
      all.assign(static_cast<size_t>(n), true);
    }
    for (int64_t i = 0; i < n; ++i) {
      int64_t v = 0;
      if (!rd.integer(&v) || (v != 0 && v != 1)) {
        out->append(kBadFragmentReply);
        return;
      }
      if (v == 0) all[static_cast<size_t>(i)] = false;
    }
    if (!rd.atEnd()) {
      out->append(kBadFragmentReply);
      return;
    }
  }
  codec::appendArrayHeader(*out, all.size());
  for (bool b : all) out->append(b ? ":1\r\n" : ":0\r\n");
}

}  // namespace

bool splittable(std::string_view name) {
  Merge merge{};
  size_t step = 1;
  return splitKind(name, &merge, &step);
}

bool splitBySlot(std::span<const std::string_view> args, SplitPlan* plan, std::string_view frame) {
  Merge merge{};
  size_t step = 1;
  if (args.size() < 2 || !splitKind(args[0], &merge, &step)) return false;
  if ((args.size() - 1) % step != 0) return false;
  const size_t keys = (args.size() - 1) / step;
  auto key = [&](size_t k) { return args[1 + k * step]; };

  // The common case, one slot, allocates nothing; slots before the first other one are known.
  const uint16_t first_slot = keySlot(key(0));
  size_t other = 1;
  while (other < keys && keySlot(key(other)) == first_slot) ++other;
  if (other == keys) return false;

  // Scratch of this thread, kept between calls: a warm split allocates only what its plan
  // has not held before.
  thread_local std::vector<uint16_t> slot;
  thread_local std::vector<uint32_t> order;
  thread_local std::vector<std::pair<size_t, size_t>> groups;  // [begin, end) in order
  thread_local std::vector<uint16_t> group_slot;               // few slots: per group
  thread_local std::vector<uint32_t> group_of;                 // few slots: per key
  slot.assign(keys, first_slot);
  for (size_t k = other; k < keys; ++k) slot[k] = keySlot(key(k));
  // Keys grouped by slot, each group in the client's order, the groups in the order of their
  // first key. Few slots (the usual case): each key finds its group by a scan of the groups so
  // far, then a counting pass places them; many: a sort, n log n however many slots there are.
  constexpr size_t kScannedGroups = 32;
  group_slot.clear();
  group_of.resize(keys);
  bool few = true;
  for (size_t k = 0; k < keys && few; ++k) {
    size_t g = 0;
    while (g < group_slot.size() && group_slot[g] != slot[k]) ++g;
    if (g == group_slot.size()) {
      few = g < kScannedGroups;
      group_slot.push_back(slot[k]);
    }
    group_of[k] = static_cast<uint32_t>(g);
  }
  order.resize(keys);
  groups.clear();
  if (few) {
    groups.assign(group_slot.size(), {0, 0});
    for (size_t k = 0; k < keys; ++k) ++groups[group_of[k]].second;  // sizes first
    size_t at = 0;
    for (auto& [begin, end] : groups) {
      const size_t n = end;
      begin = end = at;
      at += n;
    }
    for (size_t k = 0; k < keys; ++k)
      order[groups[group_of[k]].second++] = static_cast<uint32_t>(k);
  } else {
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      return slot[a] != slot[b] ? slot[a] < slot[b] : a < b;
    });
    for (size_t i = 0; i < keys; ++i) {
      if (i == 0 || slot[order[i]] != slot[order[i - 1]]) groups.emplace_back(i, i);
      groups.back().second = i + 1;
    }
    std::sort(groups.begin(), groups.end(),
              [&](const auto& a, const auto& b) { return order[a.first] < order[b.first]; });
  }

  plan->merge = merge;
  plan->keys = keys;
  plan->fragments.resize(groups.size());  // fragments already there keep their buffers
  for (size_t g = 0; g < groups.size(); ++g) {
    const size_t begin = groups[g].first;
    const size_t end = groups[g].second;
    Fragment& f = plan->fragments[g];
    f.request.clear();
    f.positions.clear();
    f.slot = slot[order[begin]];
    size_t bytes = 16 + bulkSize(args[0]);
    for (size_t i = begin; i < end; ++i) {
      for (size_t j = 0; j < step; ++j) bytes += bulkSize(args[1 + order[i] * step + j]);
    }
    f.request.reserve(bytes);
    codec::appendArrayHeader(f.request, 1 + (end - begin) * step);
    appendArg(f.request, args[0], frame);
    for (size_t i = begin; i < end; ++i) {
      for (size_t j = 0; j < step; ++j) appendArg(f.request, args[1 + order[i] * step + j], frame);
    }
    if (merge == Merge::kArrayInKeyOrder) {
      f.positions.assign(order.begin() + begin, order.begin() + end);
    }
  }
  return true;
}

bool crossSlot(std::span<const std::string_view> args, std::span<const uint32_t> key_indexes) {
  if (key_indexes.size() < 2) return false;
  uint16_t first = 0;
  bool have = false;
  for (uint32_t i : key_indexes) {
    if (i >= args.size()) continue;
    const uint16_t s = keySlot(args[i]);
    if (!have) {
      first = s;
      have = true;
    } else if (s != first) {
      return true;
    }
  }
  return false;
}

void mergeReplies(const SplitPlan& plan, std::span<const std::string_view> replies,
                  std::string* out) {
  if (replies.size() != plan.fragments.size()) {
    out->append(kBadFragmentReply);
    return;
  }
  if (plan.merge != Merge::kArrayInKeyOrder) {
    mergeReplies(plan.merge, replies, out);
    return;
  }
  for (std::string_view r : replies) {
    if (isError(r)) {
      out->append(r);
      return;
    }
  }
  // kArrayInKeyOrder: each fragment's elements go back to their keys' places.
  thread_local std::vector<std::string_view> elements;
  elements.assign(plan.keys, std::string_view());
  for (size_t i = 0; i < replies.size(); ++i) {
    const Fragment& f = plan.fragments[i];
    FrameReader rd(replies[i]);
    int64_t n = 0;
    if (!rd.array(&n) || n != static_cast<int64_t>(f.positions.size())) {
      out->append(kBadFragmentReply);
      return;
    }
    for (uint32_t pos : f.positions) {
      if (pos >= elements.size() || !rd.skip(&elements[pos])) {
        out->append(kBadFragmentReply);
        return;
      }
    }
    if (!rd.atEnd()) {
      out->append(kBadFragmentReply);
      return;
    }
  }
  for (std::string_view e : elements) {
    if (e.empty()) {  // a position no fragment filled: the plan was not splitBySlot's
      out->append(kBadFragmentReply);
      return;
    }
  }
  codec::appendArrayHeader(*out, plan.keys);
  for (std::string_view e : elements) out->append(e);
}

void mergeReplies(Merge merge, std::span<const std::string_view> replies, std::string* out) {
  if (replies.empty() || merge == Merge::kArrayInKeyOrder) {
    out->append(kBadFragmentReply);
    return;
  }
  if (merge == Merge::kAllOk) {
    for (std::string_view r : replies) {
      if (r != "+OK\r\n") {
        out->append(r);
        return;
      }
    }
    out->append("+OK\r\n");
    return;
  }
  if (merge == Merge::kSameReply) {
    // A primary that refused (OOM, FUNCTION LOAD of a library it already holds) must not pass
    // for success: the client sees that error, or ours when the primaries only disagree.
    if (std::all_of(replies.begin(), replies.end(),
                    [&](std::string_view r) { return r == replies[0]; })) {
      out->append(replies[0]);
    } else if (auto e = std::find_if(replies.begin(), replies.end(), isError); e != replies.end()) {
      out->append(*e);
    } else {
      out->append(kRepliesDifferError);
    }
    return;
  }
  for (std::string_view r : replies) {
    if (isError(r)) {
      out->append(r);
      return;
    }
  }
  if (merge == Merge::kSumIntegers) {
    mergeSum(replies, out);
  } else if (merge == Merge::kConcatArrays) {
    mergeConcat(replies, out);
  } else if (merge == Merge::kInfo) {
    mergeInfo(replies, out);
  } else {
    mergeAnd(replies, out);
  }
}

}  // namespace corral::cluster
