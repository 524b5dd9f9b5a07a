// fanOut (which commands go to every primary, with which merge) and the fan-out merges of
// mergeReplies: kConcatArrays, kSameReply, kAndArrays, and kSumIntegers/kAllOk without a plan.
#include "proxy/cluster/fanout.h"

#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/cluster/split.h"

extern std::atomic<uint64_t> g_allocations;  // slot_test.cc

namespace corral::cluster {
namespace {

using namespace std::string_view_literals;
using Args = std::vector<std::string_view>;
using Replies = std::vector<std::string_view>;

std::string merged(Merge merge, const Replies& replies) {
  std::string out;
  mergeReplies(merge, replies, &out);
  return out;
}

TEST_CASE("fanOut: every row, in any case") {
  struct Row {
    Args args;
    Merge merge;
  };
  const std::vector<Row> rows = {
      {{"DBSIZE"}, Merge::kSumIntegers},
      {{"dbsize"}, Merge::kSumIntegers},
      {{"KEYS", "user:*"}, Merge::kConcatArrays},
      {{"kEyS", "*"}, Merge::kConcatArrays},
      {{"FLUSHALL"}, Merge::kAllOk},
      {{"flushall", "ASYNC"}, Merge::kAllOk},
      {{"FlushDB", "sync"}, Merge::kAllOk},
      {{"FLUSHDB"}, Merge::kAllOk},
      {{"SCRIPT", "LOAD", "return 1"}, Merge::kSameReply},
      {{"script", "load", "return 1"}, Merge::kSameReply},
      {{"SCRIPT", "FLUSH"}, Merge::kAllOk},
      {{"Script", "Flush", "ASYNC"}, Merge::kAllOk},
      {{"SCRIPT", "EXISTS", "a", "b"}, Merge::kAndArrays},
      {{"script", "exists", "a"}, Merge::kAndArrays},
      {{"FUNCTION", "LOAD", "#!lua name=lib\n"}, Merge::kSameReply},
      {{"function", "load", "REPLACE", "#!lua name=lib\n"}, Merge::kSameReply},
      {{"FUNCTION", "FLUSH"}, Merge::kAllOk},
      {{"function", "delete", "lib"}, Merge::kAllOk},
      {{"FUNCTION", "RESTORE", "payload"}, Merge::kAllOk},
      {{"CONFIG", "SET", "maxmemory", "1mb"}, Merge::kAllOk},
      {{"config", "resetstat"}, Merge::kAllOk},
  };
  for (const Row& r : rows) {
    CAPTURE(r.args[0]);
    CAPTURE(r.args.size() > 1 ? r.args[1] : std::string_view());
    Merge m = Merge::kArrayInKeyOrder;
    REQUIRE(fanOut(r.args, &m));
    CHECK(m == r.merge);
  }
}

TEST_CASE("fanOut: other commands and subcommands stay on one node, *merge untouched") {
  const std::vector<Args> none = {
      {},
      {"GET", "k"},
      {"SCAN", "0"},
      {"RANDOMKEY"},
      {"MGET", "a", "b"},
      {"DEL", "a", "b"},
      {"KEYSX", "*"},
      {"DBSIZ"},
      {"FLUSHALLX"},
      {"SCRIPT"},          // no subcommand: Redis answers the arity error
      {"SCRIPT", "KILL"},  // the script runs on one node
      {"SCRIPT", "LOADX", "x"},
      {"FUNCTION", "LIST"},
      {"FUNCTION", "DUMP"},
      {"FUNCTION", "STATS"},
      {"CONFIG", "GET", "maxmemory"},
      {"CONFIG", "REWRITE"},
      {"CONFIG"},
      {"EVAL", "return 1", "0"},
      {"LOAD", "x"},  // a subcommand name alone is not a command
      {"SET", "FLUSHALL", "x"},
  };
  for (const Args& a : none) {
    CAPTURE(a.empty() ? std::string_view() : a[0]);
    Merge m = Merge::kArrayInKeyOrder;
    CHECK_FALSE(fanOut(a, &m));
    CHECK(m == Merge::kArrayInKeyOrder);
  }
}

TEST_CASE("fanOut allocates nothing") {
  const Args yes = {"function", "RESTORE", "payload"};
  const Args no = {"CONFIG", "GET", "x"};
  Merge m{};
  int hits = 0;
  const uint64_t before = g_allocations.load();
  for (int i = 0; i < 100; ++i) hits += int{fanOut(yes, &m)} + int{fanOut(no, &m)};
  CHECK(g_allocations.load() == before);
  CHECK(hits == 100);
}

TEST_CASE("kConcatArrays (KEYS): every element of every reply, in reply order") {
  CHECK(merged(Merge::kConcatArrays,
               {"*2\r\n$1\r\na\r\n$1\r\nb\r\n", "*0\r\n", "*1\r\n$3\r\nxyz\r\n"}) ==
        "*3\r\n$1\r\na\r\n$1\r\nb\r\n$3\r\nxyz\r\n");
  CHECK(merged(Merge::kConcatArrays, {"*0\r\n", "*0\r\n"}) == "*0\r\n");
  // Elements verbatim, binary bytes and CRLF inside a key included.
  CHECK(merged(Merge::kConcatArrays, {"*1\r\n$4\r\nk\r\nv\r\n", "*1\r\n$1\r\n\x00\r\n"sv}) ==
        "*2\r\n$4\r\nk\r\nv\r\n$1\r\n\x00\r\n"sv);
  // A reply with ten or more elements: the header is more than one digit long.
  std::string ten = "*10\r\n";
  for (int i = 0; i < 10; ++i) ten += "$1\r\n" + std::to_string(i) + "\r\n";
  std::string expect = "*11\r\n$1\r\nz\r\n" + ten.substr(5);
  CHECK(merged(Merge::kConcatArrays, {"*1\r\n$1\r\nz\r\n", ten}) == expect);
}

TEST_CASE("kConcatArrays: the first error verbatim; bad shapes give corral's error") {
  CHECK(merged(Merge::kConcatArrays, {"*1\r\n$1\r\na\r\n", "-LOADING busy\r\n",
                                      "-ERR other\r\n"}) == "-LOADING busy\r\n");
  CHECK(merged(Merge::kConcatArrays, {"!7\r\nERR big\r\n", "*0\r\n"}) == "!7\r\nERR big\r\n");
  const std::vector<Replies> bad = {
      {"*1\r\n$1\r\na\r\n", ":1\r\n"},   // not an array
      {"*1\r\n$1\r\na\r\n", "*-1\r\n"},  // a nil array
      {"*2\r\n$1\r\na\r\n"},             // truncated
      {"*1\r\n$1\r\na\r\n+x\r\n"},       // trailing bytes
      {},                                // no primary answered
  };
  for (const Replies& r : bad) CHECK(merged(Merge::kConcatArrays, r) == kBadFragmentReply);
}

TEST_CASE("kSameReply (SCRIPT LOAD, FUNCTION LOAD)") {
  constexpr std::string_view sha = "$40\r\ne0e1f9fabfc9d4800c877a703b823ac0578ff8db\r\n";
  CHECK(merged(Merge::kSameReply, {sha, sha, sha}) == sha);
  CHECK(merged(Merge::kSameReply, {"$3\r\nlib\r\n"}) == "$3\r\nlib\r\n");
  // Identical errors are that error; otherwise the first error wins over agreement elsewhere.
  CHECK(merged(Merge::kSameReply, {"-ERR x\r\n", "-ERR x\r\n"}) == "-ERR x\r\n");
  CHECK(merged(Merge::kSameReply, {sha, "-ERR Library 'lib' already exists\r\n", sha,
                                   "-OOM no\r\n"}) == "-ERR Library 'lib' already exists\r\n");
  CHECK(merged(Merge::kSameReply, {sha, "!5\r\nERR x\r\n"}) == "!5\r\nERR x\r\n");
  CHECK(merged(Merge::kSameReply, {sha, "$3\r\nlib\r\n"}) == kRepliesDifferError);
  CHECK(merged(Merge::kSameReply, {"$3\r\nlib\r\n", "+lib\r\n"}) == kRepliesDifferError);
  CHECK(kRepliesDifferError == "-ERR corral: the cluster's primaries answered differently\r\n");
  CHECK(merged(Merge::kSameReply, {}) == kBadFragmentReply);
}

TEST_CASE("kAndArrays (SCRIPT EXISTS): 1 only where every primary has the script") {
  CHECK(merged(Merge::kAndArrays, {"*3\r\n:1\r\n:1\r\n:0\r\n", "*3\r\n:1\r\n:0\r\n:0\r\n",
                                   "*3\r\n:1\r\n:1\r\n:1\r\n"}) == "*3\r\n:1\r\n:0\r\n:0\r\n");
  CHECK(merged(Merge::kAndArrays, {"*2\r\n:1\r\n:1\r\n", "*2\r\n:1\r\n:1\r\n"}) ==
        "*2\r\n:1\r\n:1\r\n");
  CHECK(merged(Merge::kAndArrays, {"*1\r\n:0\r\n"}) == "*1\r\n:0\r\n");
  CHECK(merged(Merge::kAndArrays, {"*0\r\n", "*0\r\n"}) == "*0\r\n");
  CHECK(merged(Merge::kAndArrays, {"*1\r\n:1\r\n", "-NOPERM no\r\n", "-ERR x\r\n"}) ==
        "-NOPERM no\r\n");
  const std::vector<Replies> bad = {
      {"*2\r\n:1\r\n:1\r\n", "*1\r\n:1\r\n"},        // lengths differ
      {"*1\r\n:1\r\n", "*2\r\n:1\r\n:1\r\n"},        // lengths differ, the other way
      {"*2\r\n:1\r\n:1\r\n", "*3\r\n:1\r\n:1\r\n"},  // lengths differ, the longer cut short
      {"*1\r\n:2\r\n", "*1\r\n:1\r\n"},              // not 0/1
      {"*1\r\n$1\r\n1\r\n"},                         // not an integer
      {"*1\r\n:1\r\n", ":1\r\n"},                    // not an array
      {"*-1\r\n"},                                   // nil
      {"*2\r\n:1\r\n"},                              // truncated
      {"*1\r\n:1\r\n:1\r\n"},                        // trailing bytes
      {},
  };
  for (const Replies& r : bad) CHECK(merged(Merge::kAndArrays, r) == kBadFragmentReply);
}

TEST_CASE("kSumIntegers (DBSIZE) and kAllOk (FLUSHALL...) without a plan") {
  CHECK(merged(Merge::kSumIntegers, {":10\r\n", ":0\r\n", ":32\r\n"}) == ":42\r\n");
  CHECK(merged(Merge::kSumIntegers, {":1\r\n", "-LOADING x\r\n"}) == "-LOADING x\r\n");
  CHECK(merged(Merge::kSumIntegers, {":1\r\n", "+OK\r\n"}) == kBadFragmentReply);
  CHECK(merged(Merge::kSumIntegers, {}) == kBadFragmentReply);
  CHECK(merged(Merge::kAllOk, {"+OK\r\n", "+OK\r\n", "+OK\r\n"}) == "+OK\r\n");
  CHECK(merged(Merge::kAllOk, {"+OK\r\n", "-READONLY x\r\n", "-ERR y\r\n"}) == "-READONLY x\r\n");
  CHECK(merged(Merge::kAllOk, {}) == kBadFragmentReply);
  // kArrayInKeyOrder needs the plan's positions.
  CHECK(merged(Merge::kArrayInKeyOrder, {"*1\r\n$1\r\na\r\n"}) == kBadFragmentReply);
}

TEST_CASE("merging appends to what *out holds") {
  std::string out = "+first\r\n";
  const Replies r = {"*1\r\n$1\r\na\r\n", "*1\r\n$1\r\nb\r\n"};
  mergeReplies(Merge::kConcatArrays, r, &out);
  CHECK(out == "+first\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");
}

}  // namespace
}  // namespace corral::cluster
