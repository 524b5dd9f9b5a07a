// The Matcher: precedence (priority, literal prefix length), violations, globs, clashes, and
// matching cost that does not grow with the number of templates.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policies/template.h"

namespace corral::policies {
namespace {

Template compileOk(std::string_view text) {
  std::string err;
  auto t = Template::compile(text, &err);
  REQUIRE_MESSAGE(t.has_value(), text, ": ", err);
  return std::move(*t);
}

}  // namespace

namespace {

std::vector<Matcher::Entry> entriesOf(const std::vector<std::pair<const char*, int>>& list) {
  std::vector<Matcher::Entry> out;
  for (const auto& [text, prio] : list) out.push_back({compileOk(text), prio});
  return out;
}

Matcher buildOk(const std::vector<std::pair<const char*, int>>& list) {
  std::vector<Matcher::Clash> clashes;
  auto m = Matcher::build(entriesOf(list), &clashes);
  REQUIRE(m.has_value());
  CHECK(clashes.empty());
  return std::move(*m);
}

struct Want {
  std::string key;
  int32_t entry;
  bool violation;
};

void checkMatches(const Matcher& m, const std::vector<Want>& wants) {
  std::vector<Capture> caps;
  for (const auto& w : wants) {
    const MatchResult r = m.match(w.key, &caps);
    CHECK_MESSAGE(r.entry == w.entry, "key=", w.key);
    CHECK_MESSAGE(r.violation == w.violation, "key=", w.key);
    if (r.entry < 0 || r.violation) CHECK(caps.empty());
  }
}

}  // namespace

TEST_CASE("matcher: longest literal prefix, violations and non-overlapping groups") {
  const Matcher m = buildOk({
      {"user:<id:u64>", 0},           // 0
      {"user:<id:u64>:profile", 0},   // 1: same group as 0, disjoint
      {"user:admin:<name:seg>", 0},   // 2: longer prefix
      {"glob:tmp:*", 0},              // 3
      {"<any:rest>", -1},             // 4: catch-all with the empty prefix
      {"cart:{<uid:u64>}:items", 0},  // 5
  });
  CHECK(m.size() == 6);
  CHECK(m.tmpl(2).text() == "user:admin:<name:seg>");
  checkMatches(m, {
                      {"user:42", 0, false},
                      {"user:42:profile", 1, false},
                      {"user:x", 0, true},  // the group's first entry takes the violation
                      {"user:42:other", 0, true},
                      {"user:", 0, true},
                      {"user:admin:bob", 2, false},
                      {"user:admin:", 2, true},
                      {"user:admin", 0, true},  // "user:admin:" is not a prefix of it
                      {"tmp:x", 3, false},
                      {"other", 4, false},
                      {"", 4, true},  // the catch-all's prefix "" fits, its template does not
                      {"cart:{7}:items", 5, false},
                      {"cart:{7}", 5, true},
                  });
  std::vector<Capture> caps;
  const MatchResult r = m.match("user:42:profile", &caps);
  REQUIRE(r.entry == 1);
  REQUIRE(caps.size() == 1);
  CHECK(caps[0].name == "id");
  CHECK(caps[0].value == "42");
}

TEST_CASE("matcher: priority beats prefix length") {
  const Matcher m = buildOk({
      {"a:b:<x:seg>", 0},  // 0: longer prefix, lower priority
      {"a:<x:u64>", 5},    // 1
  });
  checkMatches(m, {
                      {"a:12", 1, false},
                      {"a:b:c", 1, true},  // 0 would match, but 1 has precedence
                      {"b", -1, false},
                  });
  const Matcher n = buildOk({{"a:b:<x:seg>", 7}, {"a:<x:u64>", 5}});
  checkMatches(n, {{"a:b:c", 0, false}, {"a:12", 1, false}, {"a:b:", 0, true}});
}

TEST_CASE("matcher: globs take part in precedence") {
  const Matcher high = buildOk({{"user:<id:u64>", 0}, {"glob:user:*", 10}});
  checkMatches(high, {{"user:42", 1, false}, {"user:x", 1, false}, {"usr", -1, false}});

  // Same group (priority 0, prefix "user:") and disjoint: whichever matches wins.
  const Matcher same = buildOk({{"user:<id:u64>", 0}, {"glob:user:[a-z]*", 0}});
  checkMatches(same, {
                         {"user:12", 0, false},
                         {"user:abc", 1, false},
                         {"user:ABC", 0, true},  // non-matching globs are no candidates
                     });

  // A glob with a shorter prefix loses to the template group even when the template fails.
  const Matcher low = buildOk({{"user:<id:u64>", 0}, {"glob:*", 0}});
  checkMatches(low, {{"user:x", 0, true}, {"zzz", 1, false}, {"", 1, false}});

  // Longer glob prefix beats the template group.
  const Matcher longer = buildOk({{"user:<id:u64>", 0}, {"glob:user:1*", 0}});
  checkMatches(longer, {{"user:12", 1, false}, {"user:2", 0, false}, {"user:1x", 1, false}});

  // Globs only: the highest precedence matching one wins.
  const Matcher globs = buildOk({{"glob:a*", 0}, {"glob:ab*", 0}, {"glob:*z", 3}});
  checkMatches(globs, {{"abc", 1, false}, {"axc", 0, false}, {"abz", 2, false}, {"q", -1, false}});
}

TEST_CASE("matcher: clashes are reported, all of them") {
  std::vector<Matcher::Clash> clashes{{99, 100}};  // appended to, not replaced
  auto m = Matcher::build(entriesOf({
                              {"user:<id:u64>", 0},    // 0
                              {"user:<n:alnum>", 0},   // 1 overlaps 0 (digits are alnum)
                              {"user:<id:u64>", 0},    // 2 duplicate of 0
                              {"user:<id:u64>", 1},    // 3 other priority: no clash
                              {"glob:user:1*", 0},     // 4 other prefix: no clash
                              {"glob:user:*", 0},      // 5 same group as 0, 1, 2
                              {"post:<id:u64>", 0},    // 6
                              {"post:<id:u64>:x", 0},  // 7 disjoint from 6
                          }),
                          &clashes);
  CHECK(!m.has_value());
  REQUIRE(clashes.size() == 7);
  const std::vector<std::pair<size_t, size_t>> want = {{99, 100}, {0, 1}, {0, 2}, {0, 5},
                                                       {1, 2},    {1, 5}, {2, 5}};
  for (size_t i = 0; i < want.size(); ++i) {
    CHECK(clashes[i].a == want[i].first);
    CHECK(clashes[i].b == want[i].second);
  }
  std::vector<Matcher::Clash> none;
  CHECK(Matcher::build(entriesOf({{"a:<x:u64>", 0}, {"a:<x:u64>", 1}}), &none).has_value());
  CHECK(none.empty());
}

TEST_CASE("matcher: 1000 templates, long keys and capture reuse") {
  std::vector<Matcher::Entry> entries;
  std::vector<std::string> texts;
  for (int i = 0; i < 1000; ++i) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "svc%03d:user:<id:u64>", i);
    entries.push_back({compileOk(buf), 0});
  }
  std::vector<Matcher::Clash> clashes;
  auto m = Matcher::build(std::move(entries), &clashes);
  REQUIRE(m.has_value());
  std::vector<Capture> caps;
  caps.reserve(4);
  const Capture* data = caps.data();
  for (int i : {0, 1, 499, 998, 999}) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "svc%03d:user:%d", i, i * 7);
    const MatchResult r = m->match(buf, &caps);
    CHECK(r.entry == i);
    CHECK(!r.violation);
    REQUIRE(caps.size() == 1);
    CHECK(caps[0].value == std::to_string(i * 7));
  }
  CHECK(caps.data() == data);
  CHECK(m->match("svc123:user:x", &caps).entry == 123);
  CHECK(m->match("svc123:user:x", &caps).violation);
  CHECK(m->match("svc1234:user:1", &caps).entry == -1);
  CHECK(m->match("svc12", &caps).entry == -1);
  const std::string long_key = "svc005:user:" + std::string(600, '1');
  const MatchResult r = m->match(long_key, &caps);
  CHECK(r.entry == 5);
  CHECK(r.violation);  // 600 digits is no u64
}

// Matcher::match has its own path for the most common shape (a literal prefix, then one class
// placeholder to the end of the key). It must decide exactly as Template::matches does, with
// the same captures, on keys that are right, too short, too long, or wrong at any byte.
TEST_CASE("matcher: the prefix-and-one-placeholder path agrees with Template::matches") {
  const char* const kTemplates[] = {
      "key:<n:hex{12}>", "user:<id:u64>",   "n:<v:int>",           "s:<sid:hex{32,64}>",
      "lb:<b:slug>",     "lock:<name:seg>", "p:<sku:alnum{6,12}>", "i:<v:int{3}>",
      "<v:u64>",         "x:<v:hex{1}>",    "y:<v:slug{4,}>",
  };
  std::mt19937 rng(7);
  const std::string alphabet = "0123456789abcdefABZ-_.:x";
  const std::string digits = "0123456789abcdef";
  int checked = 0;
  int matched = 0;
  for (const char* text : kTemplates) {
    std::vector<Matcher::Entry> entries;
    entries.push_back({compileOk(text), 0});
    std::vector<Matcher::Clash> clashes;
    const auto m = Matcher::build(std::move(entries), &clashes);
    REQUIRE(m.has_value());
    const Template t = compileOk(text);
    const std::string prefix(t.literalPrefix());
    std::vector<Capture> want;
    std::vector<Capture> got;
    for (int i = 0; i < 4000; ++i) {
      std::string key = prefix;
      if (rng() % 2 == 0) {
        const size_t len = rng() % 70;
        for (size_t j = 0; j < len; ++j) key.push_back(alphabet[rng() % alphabet.size()]);
      } else {
        // Mostly valid-looking values (hex digits, no leading zero), so that matches are
        // frequent; sometimes one byte is spoiled.
        const size_t len = 1 + rng() % 66;
        key.push_back(digits[1 + rng() % 9]);
        for (size_t j = 1; j < len; ++j) key.push_back(digits[rng() % digits.size()]);
        if (rng() % 4 == 0) key[prefix.size() + rng() % len] = alphabet[rng() % alphabet.size()];
      }
      const bool should = t.matches(key, &want);
      const MatchResult r = m->match(key, &got);
      CHECK_MESSAGE((r.entry == 0 && !r.violation) == should, text, " key=", key);
      if (should) {
        ++matched;
        REQUIRE(got.size() == want.size());
        for (size_t c = 0; c < got.size(); ++c) {
          CHECK(got[c].name == want[c].name);
          CHECK(got[c].value == want[c].value);
        }
      } else {
        CHECK(got.empty());
      }
      ++checked;
    }
  }
  CHECK(checked == 44000);
  CHECK(matched > 5000);
}

}  // namespace corral::policies
