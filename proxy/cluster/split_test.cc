// splitBySlot / mergeReplies / crossSlot. Expected slots come from keySlot, itself checked
// against redis-server in slot_test.cc; fragments are read back with the codec's RequestParser.
#include "proxy/cluster/split.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/cluster/slot.h"
#include "proxy/codec/resp.h"

extern std::atomic<uint64_t> g_allocations;  // slot_test.cc

namespace corral::cluster {
namespace {

using Args = std::vector<std::string_view>;

// Keys in three different slots (CLUSTER KEYSLOT: foo 12182, bar 5061, hello 866).
constexpr std::string_view kFoo = "foo";
constexpr std::string_view kBar = "bar";
constexpr std::string_view kHello = "hello";

// The args of a fragment's request, as Redis would read them.
std::vector<std::string> argsOf(const Fragment& f) {
  codec::RequestParser p;
  codec::Request req;
  const codec::ParseResult r = p.parse(f.request.data(), f.request.size(), req);
  REQUIRE(r.status == codec::ParseStatus::kComplete);
  CHECK(r.consumed == f.request.size());
  return {req.args.begin(), req.args.end()};
}

TEST_CASE("the test keys are in three slots") {
  CHECK(keySlot(kFoo) == 12182);
  CHECK(keySlot(kBar) == 5061);
  CHECK(keySlot(kHello) == 866);
}

TEST_CASE("MGET across three slots keeps the client's key order, a repeated key included") {
  const Args args = {"mGet", kFoo, kBar, kFoo, kHello, "{foo}x"};
  SplitPlan plan;
  REQUIRE(splitBySlot(args, &plan));
  CHECK(plan.merge == Merge::kArrayInKeyOrder);
  CHECK(plan.keys == 5);
  REQUIRE(plan.fragments.size() == 3);
  // Ordered by first appearance: foo's slot, bar's, hello's.
  CHECK(plan.fragments[0].slot == 12182);
  CHECK(argsOf(plan.fragments[0]) == std::vector<std::string>{"mGet", "foo", "foo", "{foo}x"});
  CHECK(plan.fragments[0].positions == std::vector<uint32_t>{0, 2, 4});
  CHECK(plan.fragments[1].slot == 5061);
  CHECK(argsOf(plan.fragments[1]) == std::vector<std::string>{"mGet", "bar"});
  CHECK(plan.fragments[1].positions == std::vector<uint32_t>{1});
  CHECK(plan.fragments[2].slot == 866);
  CHECK(argsOf(plan.fragments[2]) == std::vector<std::string>{"mGet", "hello"});
  CHECK(plan.fragments[2].positions == std::vector<uint32_t>{3});

  const std::vector<std::string_view> replies = {"*3\r\n$2\r\nf1\r\n$2\r\nf2\r\n$-1\r\n",
                                                 "*1\r\n$1\r\nb\r\n", "*1\r\n$5\r\nhello\r\n"};
  std::string out = "prefix:";
  mergeReplies(plan, replies, &out);
  CHECK(out == "prefix:*5\r\n$2\r\nf1\r\n$1\r\nb\r\n$2\r\nf2\r\n$5\r\nhello\r\n$-1\r\n");
}

TEST_CASE("MGET: RESP3 nulls and other element types are copied verbatim") {
  const Args args = {"MGET", kBar, kFoo};
  SplitPlan plan;
  REQUIRE(splitBySlot(args, &plan));
  const std::vector<std::string_view> replies = {"*1\r\n_\r\n", "*1\r\n$3\r\nxyz\r\n"};
  std::string out;
  mergeReplies(plan, replies, &out);
  CHECK(out == "*2\r\n_\r\n$3\r\nxyz\r\n");
}

TEST_CASE("fragments copied from the client's frame equal fragments encoded afresh") {
  // A real multibulk request: args point into it. A wrong frame (another buffer, an inline
  // request's bytes) must fall back to encoding, never copy what is not the argument.
  const std::string frame =
      "*7\r\n$4\r\nMSET\r\n$3\r\nfoo\r\n$1\r\n1\r\n$3\r\nbar\r\n$10\r\n0123456789\r\n"
      "$5\r\nhello\r\n$0\r\n\r\n";
  codec::RequestParser p;
  codec::Request req;
  REQUIRE(p.parse(frame.data(), frame.size(), req).status == codec::ParseStatus::kComplete);
  const Args args(req.args.begin(), req.args.end());
  SplitPlan copied;
  SplitPlan encoded;
  SplitPlan wrong;
  REQUIRE(splitBySlot(args, &copied, frame));
  REQUIRE(splitBySlot(args, &encoded));
  const std::string other = "$3\r\nxyz\r\n" + frame;  // args do not point into it
  REQUIRE(splitBySlot(args, &wrong, other));
  REQUIRE(copied.fragments.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(copied.fragments[i].request == encoded.fragments[i].request);
    CHECK(wrong.fragments[i].request == encoded.fragments[i].request);
  }
  CHECK(argsOf(copied.fragments[1]) == std::vector<std::string>{"MSET", "bar", "0123456789"});
  CHECK(argsOf(copied.fragments[2]) == std::vector<std::string>{"MSET", "hello", ""});
  CHECK(splittable("mget"));
  CHECK(splittable("Del"));
  CHECK_FALSE(splittable("rename"));
}

TEST_CASE("MSET keeps each key with its value") {
  const Args args = {"MSET", kFoo, "1", kBar, "2", "{bar}y", "3", kHello, "4"};
  SplitPlan plan;
  REQUIRE(splitBySlot(args, &plan));
  CHECK(plan.merge == Merge::kAllOk);
  CHECK(plan.keys == 4);
  REQUIRE(plan.fragments.size() == 3);
  CHECK(argsOf(plan.fragments[0]) == std::vector<std::string>{"MSET", "foo", "1"});
  CHECK(argsOf(plan.fragments[1]) == std::vector<std::string>{"MSET", "bar", "2", "{bar}y", "3"});
  CHECK(argsOf(plan.fragments[2]) == std::vector<std::string>{"MSET", "hello", "4"});
  CHECK(plan.fragments[1].positions.empty());

  std::string out;
  const std::vector<std::string_view> ok = {"+OK\r\n", "+OK\r\n", "+OK\r\n"};
  mergeReplies(plan, ok, &out);
  CHECK(out == "+OK\r\n");
  out.clear();
  const std::vector<std::string_view> failed = {"+OK\r\n", "-OOM command not allowed\r\n",
                                                "-ERR other\r\n"};
  mergeReplies(plan, failed, &out);
  CHECK(out == "-OOM command not allowed\r\n");
}

TEST_CASE("MSET with a value missing is left to Redis") {
  const Args args = {"MSET", kFoo, "1", kBar};
  SplitPlan plan;
  CHECK_FALSE(splitBySlot(args, &plan));
  CHECK(plan.fragments.empty());
}

TEST_CASE("DEL UNLINK EXISTS TOUCH sum the integers; duplicate keys count each time") {
  for (std::string_view name : {"del", "UNLINK", "Exists", "touch"}) {
    CAPTURE(name);
    const Args args = {name, kFoo, kBar, kFoo, kHello};
    SplitPlan plan;
    REQUIRE(splitBySlot(args, &plan));
    CHECK(plan.merge == Merge::kSumIntegers);
    CHECK(plan.keys == 4);
    REQUIRE(plan.fragments.size() == 3);
    CHECK(argsOf(plan.fragments[0]) == std::vector<std::string>{std::string(name), "foo", "foo"});
    // EXISTS foo foo counts foo twice in Redis: the fragment says 2, the sum keeps it.
    const std::vector<std::string_view> replies = {":2\r\n", ":0\r\n", ":1\r\n"};
    std::string out;
    mergeReplies(plan, replies, &out);
    CHECK(out == ":3\r\n");
  }
}

TEST_CASE("an error from any fragment is the reply, verbatim") {
  const Args del = {"DEL", kFoo, kBar};
  SplitPlan plan;
  REQUIRE(splitBySlot(del, &plan));
  std::string out;
  const std::vector<std::string_view> replies = {":1\r\n", "-MOVED 5061 127.0.0.1:7001\r\n"};
  mergeReplies(plan, replies, &out);
  CHECK(out == "-MOVED 5061 127.0.0.1:7001\r\n");

  const Args mget = {"MGET", kFoo, kBar};
  REQUIRE(splitBySlot(mget, &plan));
  out.clear();
  const std::vector<std::string_view> r3 = {"*1\r\n$1\r\na\r\n", "!9\r\nERR bulky\r\n"};
  mergeReplies(plan, r3, &out);
  CHECK(out == "!9\r\nERR bulky\r\n");
  out.clear();
  const std::vector<std::string_view> both = {"-ERR first\r\n", "-ERR second\r\n"};
  mergeReplies(plan, both, &out);
  CHECK(out == "-ERR first\r\n");
}

TEST_CASE("replies of the wrong shape give corral's error") {
  const Args mget = {"MGET", kFoo, kBar, kFoo};
  SplitPlan plan;
  REQUIRE(splitBySlot(mget, &plan));
  const std::vector<std::vector<std::string_view>> bad = {
      {"*1\r\n$1\r\na\r\n", "*1\r\n$1\r\nb\r\n"},                   // foo's fragment needs 2
      {"*2\r\n$1\r\na\r\n$1\r\nc\r\n", ":1\r\n"},                   // not an array
      {"*2\r\n$1\r\na\r\n$1\r\nc\r\n", "*1\r\n$1\r\nb"},            // truncated
      {"*2\r\n$1\r\na\r\n$1\r\nc\r\n", "*1\r\n$1\r\nb\r\n+x\r\n"},  // trailing bytes
      {"*2\r\n$1\r\na\r\n$1\r\nc\r\n"},                             // a reply missing
  };
  for (const auto& replies : bad) {
    std::string out;
    mergeReplies(plan, replies, &out);
    CHECK(out == kBadFragmentReply);
  }
  const Args del = {"DEL", kFoo, kBar};
  REQUIRE(splitBySlot(del, &plan));
  std::string out;
  const std::vector<std::string_view> not_int = {":1\r\n", "+OK\r\n"};
  mergeReplies(plan, not_int, &out);
  CHECK(out == kBadFragmentReply);
}

TEST_CASE("one slot, hash tags, other commands: no split") {
  SplitPlan plan;
  const std::vector<Args> none = {
      {"MGET", kFoo},
      {"MGET", kFoo, kFoo, "{foo}bar"},
      {"MSET", "{u1}a", "1", "{u1}b", "2"},
      {"DEL", "{tag}x", "{tag}y", "tag"},
      {"GET", kFoo},
      {"SUNION", kFoo, kBar},  // not split: crossSlot's job
      {"MGET"},
      {"mgetx", kFoo, kBar},
  };
  for (const Args& a : none) {
    CAPTURE(a.size());
    CHECK_FALSE(splitBySlot(a, &plan));
  }
  CHECK(plan.fragments.empty());
  const Args tagged = {"MGET", "{a}1", "b", "{a}2", "x{a}y"};
  REQUIRE(splitBySlot(tagged, &plan));
  REQUIRE(plan.fragments.size() == 2);
  CHECK(argsOf(plan.fragments[0]) == std::vector<std::string>{"MGET", "{a}1", "{a}2", "x{a}y"});
  CHECK(plan.fragments[0].positions == std::vector<uint32_t>{0, 2, 3});
}

TEST_CASE("a one-slot request and crossSlot allocate nothing") {
  const Args args = {"MGET", "{u}1", "{u}2", "{u}3", "{u}4", "{u}5", "{u}6", "{u}7", "{u}8"};
  const std::vector<uint32_t> keys = {1, 2, 3, 4, 5, 6, 7, 8};
  SplitPlan plan;
  const uint64_t before = g_allocations.load();
  bool any = false;
  for (int i = 0; i < 100; ++i) any = any || splitBySlot(args, &plan) || crossSlot(args, keys);
  CHECK(g_allocations.load() == before);
  CHECK_FALSE(any);
}

TEST_CASE("a plan is reused: the second split replaces the first") {
  SplitPlan plan;
  const Args first = {"MGET", kFoo, kBar, kHello};
  REQUIRE(splitBySlot(first, &plan));
  const Args second = {"DEL", kBar, kFoo};
  REQUIRE(splitBySlot(second, &plan));
  CHECK(plan.merge == Merge::kSumIntegers);
  CHECK(plan.keys == 2);
  REQUIRE(plan.fragments.size() == 2);
  CHECK(plan.fragments[0].slot == 5061);
  CHECK(plan.fragments[0].positions.empty());
}

TEST_CASE("many keys in many slots") {
  std::vector<std::string> keys;
  for (int i = 0; i < 2000; ++i) keys.push_back("k" + std::to_string(i));
  Args args = {"MGET"};
  for (const std::string& k : keys) args.push_back(k);
  SplitPlan plan;
  REQUIRE(splitBySlot(args, &plan));
  std::vector<int> seen(keys.size(), 0);
  std::vector<bool> slot_seen(kSlots, false);
  uint32_t last_first = 0;
  for (const Fragment& f : plan.fragments) {
    CHECK_FALSE(slot_seen[f.slot]);  // one fragment per slot
    slot_seen[f.slot] = true;
    CHECK(f.positions.front() >= last_first);  // ordered by first appearance
    last_first = f.positions.front();
    const std::vector<std::string> a = argsOf(f);
    REQUIRE(a.size() == f.positions.size() + 1);
    for (size_t i = 0; i < f.positions.size(); ++i) {
      CHECK(a[i + 1] == keys[f.positions[i]]);
      CHECK(keySlot(a[i + 1]) == f.slot);
      if (i > 0) CHECK(f.positions[i] > f.positions[i - 1]);
      ++seen[f.positions[i]];
    }
  }
  for (int s : seen) CHECK(s == 1);
}

TEST_CASE("few slots and many: the same grouping either way (around the scan's limit)") {
  for (int tags = 2; tags <= 40; ++tags) {
    // Each tag three times, interleaved: tag 0, 1, ..., n-1, 0, 1, ...
    std::vector<std::string> keys;
    for (int round = 0; round < 3; ++round) {
      for (int t = 0; t < tags; ++t)
        keys.push_back("{t" + std::to_string(t) + "}:" + std::to_string(round));
    }
    Args args = {"MGET"};
    for (const std::string& k : keys) args.push_back(k);
    SplitPlan plan;
    REQUIRE(splitBySlot(args, &plan));
    std::vector<uint16_t> distinct;
    for (const std::string& k : keys) {
      if (std::find(distinct.begin(), distinct.end(), keySlot(k)) == distinct.end()) {
        distinct.push_back(keySlot(k));
      }
    }
    REQUIRE(plan.fragments.size() == distinct.size());
    for (size_t g = 0; g < distinct.size(); ++g) {
      const Fragment& f = plan.fragments[g];
      CHECK(f.slot == distinct[g]);  // in the order of each slot's first key
      for (size_t i = 0; i < f.positions.size(); ++i) {
        CHECK(keySlot(keys[f.positions[i]]) == f.slot);
        if (i > 0) CHECK(f.positions[i] > f.positions[i - 1]);
      }
      const std::vector<std::string> a = argsOf(f);
      REQUIRE(a.size() == f.positions.size() + 1);
      for (size_t i = 0; i < f.positions.size(); ++i) CHECK(a[i + 1] == keys[f.positions[i]]);
    }
  }
}

TEST_CASE("crossSlot") {
  const Args args = {"SUNION", kFoo, kBar, "{foo}z"};
  const std::vector<uint32_t> all = {1, 2, 3};
  const std::vector<uint32_t> same = {1, 3};
  const std::vector<uint32_t> one = {2};
  CHECK(crossSlot(args, all));
  CHECK_FALSE(crossSlot(args, same));
  CHECK_FALSE(crossSlot(args, one));
  CHECK_FALSE(crossSlot(args, {}));
  CHECK(kCrossSlotError == "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
}

}  // namespace
}  // namespace corral::cluster
