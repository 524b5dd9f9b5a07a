// Micro-benchmark of Matcher::match (not a test: it prints a markdown table).
//
//   templates (10 / 100 / 1000, 8 shapes per service) + 5 globs --> Matcher::build
//   100k keys: ~60% matching, ~25% naming violations, ~15% unmatched or glob-only
//   5 runs x 5 passes over the keys, steady_clock; report the median ns per key
//
// Build it in release: cmake -DCMAKE_BUILD_TYPE=Release -DCORRAL_BUILD_TESTS=OFF.
// The checksum of the results is printed so the compiler cannot drop the loop.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "policies/template.h"

namespace {

using corral::policies::Capture;
using corral::policies::Matcher;
using corral::policies::MatchResult;
using corral::policies::Template;

constexpr int kShapes = 8;
constexpr size_t kKeys = 100'000;
constexpr int kRuns = 5;
constexpr int kPassesPerRun = 5;

const char* const kGlobs[] = {"glob:tmp:*", "glob:lock:*:owner", "glob:debug:[a-z]*", "glob:q:?:*",
                              "glob:legacy*"};

std::string templateText(int i) {
  const int svc = i / kShapes;
  char buf[128];
  switch (i % kShapes) {
    case 0:
      std::snprintf(buf, sizeof(buf), "svc%03d:user:<id:u64>", svc);
      break;
    case 1:
      std::snprintf(buf, sizeof(buf), "svc%03d:user:<id:u64>:profile", svc);
      break;
    case 2:
      std::snprintf(buf, sizeof(buf), "svc%03d:sess:<sid:hex{32,64}>", svc);
      break;
    case 3:
      std::snprintf(buf, sizeof(buf), "svc%03d:cart:{<uid:u64>}:items", svc);
      break;
    case 4:
      std::snprintf(buf, sizeof(buf), "svc%03d:org:<org:slug>:member:<uid:uuid>", svc);
      break;
    case 5:
      std::snprintf(buf, sizeof(buf), "svc%03d:feed:<kind:enum(home|trending|new)>:<page:int>",
                    svc);
      break;
    case 6:
      std::snprintf(buf, sizeof(buf), "svc%03d:cache:<path:rest>", svc);
      break;
    default:
      std::snprintf(buf, sizeof(buf), "svc%03d:tok:<t:alnum{6,12}>", svc);
      break;
  }
  return buf;
}

std::string hex(std::mt19937_64& rng, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s(n, '0');
  for (auto& c : s) c = kDigits[rng() % 16];
  return s;
}

std::string uuid(std::mt19937_64& rng) {
  return hex(rng, 8) + "-" + hex(rng, 4) + "-" + hex(rng, 4) + "-" + hex(rng, 4) + "-" +
         hex(rng, 12);
}

// A key for template i: matching, or (violation) with the right prefix and a broken value.
std::string keyFor(int i, bool violation, std::mt19937_64& rng) {
  char svc[16];
  std::snprintf(svc, sizeof(svc), "svc%03d:", i / kShapes);
  const std::string id = std::to_string(rng() % 100'000'000);
  const std::string bad = "x" + id;
  switch (i % kShapes) {
    case 0:
      return svc + std::string("user:") + (violation ? bad : id);
    case 1:
      return svc + std::string("user:") + id + (violation ? ":profil" : ":profile");
    case 2:
      return svc + std::string("sess:") + hex(rng, violation ? 20 : 32 + rng() % 33);
    case 3:
      return svc + std::string("cart:{") + (violation ? bad : id) + "}:items";
    case 4:
      return svc + std::string("org:acme-") + std::to_string(rng() % 1000) +
             ":member:" + (violation ? hex(rng, 36) : uuid(rng));
    case 5:
      return svc + std::string("feed:") + (violation ? "old" : "trending") + ":" + id;
    case 6:
      return svc + std::string("cache:") + (violation ? "" : "/v1/items/" + id);
    default:
      return svc + std::string("tok:") + (violation ? "ab" : hex(rng, 10));
  }
}

struct Row {
  int templates = 0;
  size_t keys = 0;
  double build_ms = 0;
  double ns_per_key = 0;
  double matched = 0, violations = 0, unmatched = 0;  // shares of the keys
  uint64_t checksum = 0;
};

Row bench(int templates) {
  using Clock = std::chrono::steady_clock;
  Row row;
  row.templates = templates;

  std::vector<Matcher::Entry> entries;
  for (int i = 0; i < templates; ++i) {
    std::string err;
    auto t = Template::compile(templateText(i), &err);
    if (!t) {
      std::fprintf(stderr, "compile %s: %s\n", templateText(i).c_str(), err.c_str());
      std::exit(1);
    }
    entries.push_back({std::move(*t), 0});
  }
  for (const char* g : kGlobs) entries.push_back({std::move(*Template::compile(g, nullptr)), 0});
  std::vector<Matcher::Clash> clashes;
  const auto b0 = Clock::now();
  auto matcher = Matcher::build(std::move(entries), &clashes);
  row.build_ms = std::chrono::duration<double, std::milli>(Clock::now() - b0).count();
  if (!matcher) {
    std::fprintf(stderr, "build: %zu clashes\n", clashes.size());
    std::exit(1);
  }

  std::mt19937_64 rng(42);
  std::vector<std::string> keys;
  keys.reserve(kKeys);
  for (size_t k = 0; k < kKeys; ++k) {
    const auto roll = rng() % 100;
    const int i = static_cast<int>(rng() % static_cast<uint64_t>(templates));
    if (roll < 60) {
      keys.push_back(keyFor(i, false, rng));
    } else if (roll < 85) {
      keys.push_back(keyFor(i, true, rng));
    } else if (roll < 92) {
      keys.push_back("other:" + std::to_string(rng()));
    } else if (roll < 96) {
      keys.push_back("tmp:" + hex(rng, 16));
    } else {
      keys.push_back("svc999x:user:" + std::to_string(rng() % 1000));
    }
  }
  row.keys = keys.size();

  std::vector<Capture> caps;
  caps.reserve(8);
  uint64_t checksum = 0;
  for (const auto& k : keys) {  // warm-up pass, also the result mix
    const MatchResult r = matcher->match(k, &caps);
    if (r.entry < 0) {
      row.unmatched += 1;
    } else if (r.violation) {
      row.violations += 1;
    } else {
      row.matched += 1;
    }
  }
  const auto n = static_cast<double>(keys.size());
  row.matched /= n;
  row.violations /= n;
  row.unmatched /= n;

  std::vector<double> runs;
  for (int run = 0; run < kRuns; ++run) {
    const auto t0 = Clock::now();
    for (int pass = 0; pass < kPassesPerRun; ++pass) {
      for (const auto& k : keys) {
        const MatchResult r = matcher->match(k, &caps);
        checksum = checksum * 31 + static_cast<uint64_t>(r.entry + 1) * 2 + (r.violation ? 1 : 0) +
                   caps.size();
      }
    }
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
    runs.push_back(ns / (n * kPassesPerRun));
  }
  std::sort(runs.begin(), runs.end());
  row.ns_per_key = runs[runs.size() / 2];
  row.checksum = checksum;
  return row;
}

}  // namespace

int main() {
  std::vector<Row> rows;
  for (int templates : {10, 100, 1000}) rows.push_back(bench(templates));
  std::printf(
      "| templates | globs | keys | build ms | ns/key (median of %d) | matched | "
      "violations | unmatched |\n",
      kRuns);
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  uint64_t checksum = 0;
  for (const auto& r : rows) {
    std::printf("| %d | %zu | %zu | %.1f | %.1f | %.0f%% | %.0f%% | %.0f%% |\n", r.templates,
                std::size(kGlobs), r.keys, r.build_ms, r.ns_per_key, r.matched * 100,
                r.violations * 100, r.unmatched * 100);
    checksum ^= r.checksum;
  }
  std::printf("\nchecksum %016llx\n", static_cast<unsigned long long>(checksum));
  return 0;
}
