#include "policies/template.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <random>
#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace corral::policies {
namespace {

Template compileOk(std::string_view text) {
  std::string err;
  auto t = Template::compile(text, &err);
  REQUIRE_MESSAGE(t.has_value(), "template: ", text, " error: ", err);
  return std::move(*t);
}

std::string compileError(std::string_view text) {
  std::string err;
  auto t = Template::compile(text, &err);
  CHECK_MESSAGE(!t.has_value(), "compiled but should not: ", text);
  return err;
}

struct MatchCase {
  const char* tmpl;
  std::vector<std::string> yes;
  std::vector<std::string> no;
};

void checkTable(const std::vector<MatchCase>& table) {
  for (const auto& c : table) {
    const Template t = compileOk(c.tmpl);
    for (const auto& k : c.yes) {
      std::vector<Capture> caps;
      CHECK_MESSAGE(t.matches(k, &caps), c.tmpl, " should match ", k);
      CHECK_MESSAGE(t.matches(k, nullptr), c.tmpl, " should match ", k);
      CHECK(caps.size() == t.captureNames().size());
    }
    for (const auto& k : c.no) {
      std::vector<Capture> caps{{"stale", "stale"}};
      CHECK_MESSAGE(!t.matches(k, &caps), c.tmpl, " should not match ", k);
      CHECK(caps.empty());
    }
  }
}

std::vector<std::pair<std::string, std::string>> capsOf(const Template& t, std::string_view key) {
  std::vector<Capture> caps;
  std::vector<std::pair<std::string, std::string>> out;
  if (!t.matches(key, &caps)) return {{"<no match>", ""}};
  for (const auto& c : caps) out.emplace_back(std::string(c.name), std::string(c.value));
  return out;
}

using Caps = std::vector<std::pair<std::string, std::string>>;

}  // namespace

TEST_CASE("template: numeric types (u64, int)") {
  checkTable({
      {"n:<v:u64>",
       {"n:0", "n:7", "n:1234567890", "n:18446744073709551615", "n:10000000000000000000"},
       {"n:", "n:01", "n:00", "n:-1", "n:+1", "n: 1", "n:1a", "n:18446744073709551616",
        "n:99999999999999999999", "n:123456789012345678901", "n:0x1", "x:1", "n:1:"}},
      {"n:<v:int>",
       {"n:0", "n:-1", "n:42", "n:-42", "n:9223372036854775807", "n:-9223372036854775808"},
       {"n:", "n:-", "n:-0", "n:007", "n:-01", "n:1-", "n:--1", "n:+5", "n:9223372036854775808",
        "n:-9223372036854775809", "n:18446744073709551615", "n:1.5"}},
  });
}

TEST_CASE("template: uuid, hex, alnum, slug, seg, rest") {
  checkTable({
      {"u:<id:uuid>",
       {"u:123e4567-e89b-12d3-a456-426614174000", "u:123E4567-E89B-12D3-A456-426614174000"},
       {"u:123e4567e89b12d3a456426614174000", "u:123e4567-e89b-12d3-a456-42661417400",
        "u:123e4567-e89b-12d3-a456-4266141740000", "u:123g4567-e89b-12d3-a456-426614174000",
        "u:123e4567-e89b-12d3-a4566-26614174000", "u:{123e4567-e89b-12d3-a456-426614174000}",
        "u:"}},
      {"h:<v:hex>", {"h:0", "h:deadBEEF", "h:0123456789abcdefABCDEF"}, {"h:", "h:xyz", "h:de ad"}},
      {"a:<v:alnum>", {"a:Abc123", "a:Z"}, {"a:", "a:abc_1", "a:a-b", "a:a.b", "a:\xc3\xa9"}},
      {"s:<v:slug>", {"s:my-post_1.2", "s:a", "s:..."}, {"s:", "s:My-post", "s:a b", "s:a:b"}},
      {"s:<v>:x", {"s:any thing!:x", "s:{}:x", "s:\x01\xff:x"}, {"s::x", "s:a:b:x", "s:a:x:"}},
      {"s:<v:seg>", {"s:a", "s:a b"}, {"s:", "s:a:"}},
      {"r:<v:rest>", {"r:a", "r:a:b:c", "r::", std::string("r:\0\n", 4)}, {"r:", "r", ""}},
  });
}

TEST_CASE("template: enum") {
  checkTable({
      {"e:<v:enum(red|green|blue)>:x",
       {"e:red:x", "e:green:x", "e:blue:x"},
       {"e:redd:x", "e:Red:x", "e::x", "e:re:x", "e:red", "e:redgreen:x"}},
      {"<kind:enum(a|b)>:<rest:rest>", {"a:x", "b:x:y"}, {"c:x", "a:", "ab:x"}},
      {"e:<v:enum(a|ab|abc)>", {"e:a", "e:ab", "e:abc"}, {"e:", "e:abcd", "e:b"}},
      {"e:<v:enum(a|ab|abc){2,}>", {"e:ab", "e:abc"}, {"e:a"}},
  });
  const Template t = compileOk("e:<v:enum(a|ab)>b:<w>");
  CHECK(capsOf(t, "e:ab:q") == Caps{{"v", "a"}, {"w", "q"}});
  CHECK(capsOf(t, "e:abb:q") == Caps{{"v", "ab"}, {"w", "q"}});
}

TEST_CASE("template: length forms") {
  std::string long_alnum(100, 'a');
  checkTable({
      {"l:<v:alnum{3}>", {"l:abc"}, {"l:ab", "l:abcd", "l:"}},
      {"l:<v:alnum{2,4}>", {"l:ab", "l:abc", "l:abcd"}, {"l:a", "l:abcde"}},
      {"l:<v:alnum{2,}>", {"l:ab", "l:" + long_alnum}, {"l:a"}},
      {"l:<v:alnum{3}>:x", {"l:abc:x"}, {"l:ab:x", "l:abcd:x"}},
      {"l:<v:alnum{2,4}>:x", {"l:ab:x", "l:abcd:x"}, {"l:a:x", "l:abcde:x"}},
      {"s:<sid:hex{32,64}>",
       {"s:" + std::string(32, 'f'), "s:" + std::string(64, '0')},
       {"s:" + std::string(31, 'f'), "s:" + std::string(65, 'f')}},
      {"n:<v:u64{3}>", {"n:100", "n:999"}, {"n:10", "n:1000", "n:012"}},
      {"n:<v:int{1,2}>", {"n:5", "n:-5", "n:55"}, {"n:-55", "n:555"}},
      {"d:<v{2,3}>", {"d:ab", "d:abc"}, {"d:a", "d:abcd"}},
      {"u:<v:uuid{36}>", {"u:123e4567-e89b-12d3-a456-426614174000"}, {"u:x"}},
      {"r:<v:rest{3,5}>", {"r:abc", "r:a:b:c"}, {"r:ab", "r:abcdef"}},
  });
}

TEST_CASE("template: fixed lengths check every byte, at the end of a key and inside it") {
  // The fast matcher checks a fixed-length value four bytes at a time: a bad byte at any
  // position, in any of the groups or the remainder, must fail the match.
  const std::string ok = "0123456789abcdef0123";  // 20 hex digits
  std::vector<std::string> bad_end;
  std::vector<std::string> bad_mid;
  for (size_t i = 0; i < ok.size(); ++i) {
    std::string k = ok;
    k[i] = 'g';
    bad_end.push_back("h:" + k);
    bad_mid.push_back("h:" + k + ":x");
  }
  bad_end.push_back("h:" + ok.substr(1));
  bad_end.push_back("h:" + ok + "0");
  bad_mid.push_back("h:" + ok.substr(1) + ":x");
  checkTable({
      {"h:<v:hex{20}>", {"h:" + ok}, bad_end},
      {"h:<v:hex{20}>:x", {"h:" + ok + ":x"}, bad_mid},
      {"h:<v:hex{1}>", {"h:a"}, {"h:g", "h:", "h:ab"}},
      {"h:<v:slug{5}>", {"h:a-b_c"}, {"h:a-b_C", "h:A-b_c"}},
      // A first byte of its own class (int: '-' or a digit), then digits only.
      {"i:<v:int{6}>", {"i:-12345", "i:123456"}, {"i:12-345", "i:12345-", "i:-1234", "i:a12345"}},
  });
}

TEST_CASE("template: hash-tag braces, escapes and literal-only templates") {
  checkTable({
      {"cart:{<uid:u64>}:items",
       {"cart:{42}:items", "cart:{0}:items"},
       {"cart:42:items", "cart:{42}:item", "cart:{x}:items", "cart:{}:items", "cart:{42}:items:"}},
      {"{<a:alnum>}", {"{x}"}, {"{}", "x"}},
      {"a\\<b\\>c\\\\<v:u64>", {"a<b>c\\5"}, {"a\\<b\\>c\\\\5", "a<b>c5"}},
      {"config:global", {"config:global"}, {"config:globa", "config:global2", ""}},
  });
  const Template t = compileOk("cart:{<uid:u64>}:items");
  CHECK(t.literalPrefix() == "cart:{");
  CHECK(t.captureNames() == std::vector<std::string>{"uid"});
  CHECK(t.text() == "cart:{<uid:u64>}:items");
  CHECK(!t.isGlob());
  CHECK(capsOf(t, "cart:{42}:items") == Caps{{"uid", "42"}});
  CHECK(compileOk("a\\<b\\>c\\\\<v:u64>").literalPrefix() == "a<b>c\\");
  CHECK(compileOk("config:global").literalPrefix() == "config:global");
  CHECK(compileOk("<a:u64>:x").literalPrefix().empty());
}

TEST_CASE("template: captures content and reuse without allocation") {
  const Template t = compileOk("svc:<kind:enum(user|team)>:<id:u64>:<tail:rest>");
  CHECK(t.captureNames() == std::vector<std::string>{"kind", "id", "tail"});
  std::vector<Capture> caps;
  caps.reserve(8);
  const Capture* data = caps.data();
  const std::string key = "svc:team:77:a:b";
  REQUIRE(t.matches(key, &caps));
  REQUIRE(caps.size() == 3);
  CHECK(caps[0].name == "kind");
  CHECK(caps[0].value == "team");
  CHECK(caps[1].value == "77");
  CHECK(caps[2].value == "a:b");
  CHECK(caps[2].value.data() == key.data() + 12);  // a view into the key
  CHECK(caps.data() == data);
  CHECK(!t.matches("svc:team:x:a", &caps));
  CHECK(caps.empty());
  CHECK(caps.capacity() >= 8);

  const Template range = compileOk("range:<lo:int>-<hi:int>");
  CHECK(capsOf(range, "range:-5--3") == Caps{{"lo", "-5"}, {"hi", "-3"}});
  CHECK(capsOf(range, "range:10-20") == Caps{{"lo", "10"}, {"hi", "20"}});
}

TEST_CASE("template: ambiguous templates use leftmost-longest captures") {
  const Template t = compileOk("<a:seg>-<b:seg>");
  CHECK(capsOf(t, "x-y-z") == Caps{{"a", "x-y"}, {"b", "z"}});
  CHECK(capsOf(t, "x-y") == Caps{{"a", "x"}, {"b", "y"}});
  CHECK(!t.matches("x-", nullptr));
  CHECK(!t.matches("-x", nullptr));
  CHECK(t.matches("--x", nullptr));  // a = "-"

  // Typed checks decide the split: "01" is not a canonical u64.
  const Template nums = compileOk("<a:u64><b:u64>");
  CHECK(capsOf(nums, "0123") == Caps{{"a", "0"}, {"b", "123"}});
  CHECK(capsOf(nums, "1234") == Caps{{"a", "123"}, {"b", "4"}});
  CHECK(capsOf(nums, "120") == Caps{{"a", "12"}, {"b", "0"}});
  CHECK(capsOf(nums, "100") == Caps{{"a", "10"}, {"b", "0"}});  // "1" + "00" is not canonical
  CHECK(!nums.matches("1", nullptr));
  CHECK(!nums.matches("1a", nullptr));
}

// The general matcher must agree with a backtracking regex engine (ECMAScript greedy groups
// give the same leftmost-longest captures) on every short key over a small alphabet.
TEST_CASE("template: differential check against std::regex on random keys") {
  const std::vector<std::pair<const char*, const char*>> pairs = {
      {"<a:seg>-<b:seg>", "([^:]+)-([^:]+)"},
      {"<a:seg><b:seg>", "([^:]+)([^:]+)"},
      {"<a:seg>ab<b:seg>", "([^:]+)ab([^:]+)"},
      {"<a:slug>-<b:alnum>", "([a-z0-9_.-]+)-([A-Za-z0-9]+)"},
      {"<a:alnum>-<b:alnum>", "([A-Za-z0-9]+)-([A-Za-z0-9]+)"},
      {"<a:hex{1,3}><b:hex>", "([0-9a-fA-F]{1,3})([0-9a-fA-F]+)"},
      {"<a:seg>:<b:rest>", "([^:]+):([\\s\\S]+)"},
      {"x<a:enum(a|ab|b)><b:enum(ba|b)>", "x(ab|a|b)(ba|b)"},
      {"<a:seg{2}><b:seg{1,2}>-<c:rest>", "([^:]{2})([^:]{1,2})-([\\s\\S]+)"},
      {"a<a:alnum>a<b:seg>", "a([A-Za-z0-9]+)a([^:]+)"},
      {"<a:seg>-<b:slug{2,3}>-<c:seg>", "([^:]+)-([a-z0-9_.-]{2,3})-([^:]+)"},
  };
  std::mt19937 rng(12345);
  const std::string alphabet = "ab-:0xA";
  int checked = 0;
  int matched = 0;
  // (no structured bindings here: clang 14 cannot capture them in the check macros' lambdas)
  for (const auto& entry : pairs) {
    const auto& tmpl = entry.first;
    const auto& re_text = entry.second;
    const Template t = compileOk(tmpl);
    const std::regex re(re_text);
    for (int i = 0; i < 3000; ++i) {
      std::string key(rng() % 10, ' ');
      for (auto& c : key) c = alphabet[rng() % alphabet.size()];
      std::smatch m;
      const bool want = std::regex_match(key, m, re);
      std::vector<Capture> caps;
      const bool got = t.matches(key, &caps);
      REQUIRE_MESSAGE(got == want, tmpl, " key=", key);
      ++checked;
      if (!want) continue;
      ++matched;
      REQUIRE(caps.size() == m.size() - 1);
      for (size_t g = 1; g < m.size(); ++g) {
        REQUIRE_MESSAGE(caps[g - 1].value == m[g].str(), tmpl, " key=", key, " group ", g);
      }
    }
  }
  CHECK(checked == 33000);
  CHECK(matched > 1000);  // the alphabet is chosen so that many keys do match
}

TEST_CASE("template: empty key and long keys") {
  for (const char* text : {"<a:seg>", "<a:rest>", "x", "<a:seg>-<b:seg>", "<a:enum(a|b)>"}) {
    CHECK(!compileOk(text).matches("", nullptr));
  }
  const Template rest = compileOk("blob:<v:rest>");
  const std::string big = "blob:" + std::string(600, 'z');
  std::vector<Capture> caps;
  REQUIRE(rest.matches(big, &caps));
  CHECK(caps[0].value.size() == 600);
  CHECK(!compileOk("blob:<v:alnum{1,512}>").matches(big, nullptr));
  CHECK(compileOk("blob:<v:alnum{1,600}>").matches(big, nullptr));

  // The ambiguous path on a key too long for its stack bitmap.
  const Template amb = compileOk("<a:seg>-<b:seg>");
  std::string key(5000, 'x');
  key[10] = '-';
  key[4000] = '-';
  REQUIRE(amb.matches(key, &caps));
  CHECK(caps[0].value.size() == 4000);
  CHECK(caps[1].value.size() == 999);

  // No exponential blow-up: many '-' with several ambiguous placeholders.
  const Template four = compileOk("<a:seg>-<b:seg>-<c:seg>-<d:seg>:end");
  const std::string dashes(20000, '-');
  CHECK(four.matches(dashes + ":end", nullptr));
  CHECK(!four.matches(dashes + ":enD", nullptr));
  CHECK(!four.matches(dashes + "x", nullptr));
}

TEST_CASE("template: compile errors name the problem and its byte offset") {
  const std::vector<std::pair<const char*, const char*>> table = {
      {"", "empty template at offset 0"},
      {"usr:<id:u46>", "unknown placeholder type 'u46' at offset 8"},
      {"user:<id:u64", "unterminated '<' at offset 5"},
      {"user:<id", "unterminated '<' at offset 5"},
      {"user:<", "unterminated '<' at offset 5"},
      {"user:<:u64>", "empty placeholder name at offset 6"},
      {"user:<>", "empty placeholder name at offset 6"},
      {"<1x>", "bad placeholder name: unexpected '1' at offset 1"},
      {"<id:>", "missing placeholder type at offset 4"},
      {"<id:u64 >", "unexpected ' ' in placeholder (expected '>') at offset 7"},
      {"a:<id>:<id>", "duplicate placeholder name 'id' at offset 8"},
      {"a:<v:hex{5,2}>", "bad length: min is greater than max at offset 8"},
      {"a:<v:hex{0}>", "bad length: a placeholder has at least 1 byte at offset 8"},
      {"a:<v:hex{x}>", "bad length: expected a number at offset 9"},
      {"a:<v:hex{3,x}>", "bad length: expected a number at offset 11"},
      {"a:<v:hex{3;4}>", "bad length: expected ',' or '}' at offset 10"},
      {"a:<v:hex{3,4>", "bad length: expected '}' at offset 12"},
      {"a:<v:hex{3", "unterminated '{' at offset 8"},
      {"a:<v:hex{99999999999}>", "bad length: number too large at offset 9"},
      {"<n:u64{21,30}>", "bad length: u64 values have at most 20 bytes at offset 6"},
      {"<n:int{21}>", "bad length: int values have at most 20 bytes at offset 6"},
      {"<k:uuid{10}>", "bad length: a uuid has 36 bytes at offset 7"},
      {"<k:enum(ab|cd){3}>", "bad length: no enum alternative has that length at offset 14"},
      {"a:<r:rest>:b", "placeholder type 'rest' must end the template at offset 2"},
      {"a:<r:rest><s:seg>", "placeholder type 'rest' must end the template at offset 2"},
      {"a>b", "unexpected '>' (write \\> for a literal '>') at offset 1"},
      {"a\\qb", "unknown escape '\\q' (only \\<, \\> and \\\\) at offset 1"},
      {"ab\\", "trailing '\\' (write \\\\ for a backslash) at offset 2"},
      {"<k:enum(a||b)>", "empty enum alternative at offset 10"},
      {"<k:enum()>", "empty enum alternative at offset 8"},
      {"<k:enum(a|b>", "unterminated enum '(' (expected ')') at offset 7"},
      {"<k:enum(a|b", "unterminated enum '(' at offset 7"},
      {"<k:enum(a<b)>", "character '<' not allowed in an enum alternative at offset 9"},
      {"<k:enum>", "enum needs alternatives: enum(a|b) at offset 7"},
      {"glob:", "empty glob pattern at offset 5"},
  };
  // (no structured bindings here: clang 14 cannot capture them in the check macros' lambdas)
  for (const auto& entry : table) {
    const auto& text = entry.first;
    const auto& want = entry.second;
    CHECK_MESSAGE(compileError(text) == want, "template: ", text);
  }
  CHECK(!Template::compile("a:<v:bogus>", nullptr).has_value());  // error pointer is optional
}

TEST_CASE("template: globs match like Redis stringmatchlen") {
  checkTable({
      {"glob:user:*", {"user:", "user:1", "user:a:b"}, {"use", "user", "xuser:1", ""}},
      {"glob:*", {"", "a", "anything at all"}, {}},
      {"glob:a?c", {"abc", "a-c"}, {"ac", "abbc"}},
      {"glob:[abc]x", {"ax", "cx"}, {"dx", "x", "abx"}},
      {"glob:[^a]x", {"bx", "\xffx"}, {"ax"}},
      {"glob:[a-c]", {"a", "b", "c"}, {"d", "-"}},
      {"glob:[c-a]", {"a", "b", "c"}, {"d"}},  // Redis swaps backwards ranges
      {"glob:[a\\]]", {"a", "]"}, {"\\"}},
      {"glob:a\\*b", {"a*b"}, {"axb", "ab"}},
      {"glob:[ab", {"a", "b"}, {"[ab", "c"}},  // unterminated class runs to the end
      {"glob:ab\\", {"ab\\"}, {"ab"}},         // trailing '\' is literal
      {"glob:*a*b*c", {"abc", "xxaxxbxxc", "aaaaaaaaaabbbbbbbbbbbc"}, {"acb", "aaaaaaaab"}},
      {"glob:a*", {"a", "ab"}, {"", "ba"}},
  });
  const Template g = compileOk("glob:user:*:x");
  CHECK(g.isGlob());
  CHECK(g.literalPrefix() == "user:");
  CHECK(g.captureNames().empty());
  CHECK(g.text() == "glob:user:*:x");
  CHECK(compileOk("glob:a\\*b").literalPrefix() == "a");
  CHECK(compileOk("glob:ab[c]").literalPrefix() == "ab");
  CHECK(compileOk("glob:plain").literalPrefix() == "plain");
  std::vector<Capture> caps{{"x", "y"}};
  CHECK(g.matches("user:1:x", &caps));
  CHECK(caps.empty());

  // Star backtracking stays polynomial: a long key that almost matches.
  const Template stars = compileOk("glob:*a*a*a*a*a*b");
  CHECK(!stars.matches(std::string(5000, 'a'), nullptr));
  CHECK(stars.matches(std::string(5000, 'a') + "b", nullptr));
}

TEST_CASE("template: overlaps") {
  const std::vector<std::pair<const char*, const char*>> overlapping = {
      {"user:<id:u64>", "user:<name:alnum>"},
      {"user:<id:u64>", "user:<id:u64>"},
      {"a:<x:seg>", "a:<y:rest>"},
      {"<k:enum(a|b)>:x", "a:<v:seg>"},
      {"u:<id:uuid>", "u:<h:seg>"},
      {"u:<x:hex{4}>", "u:<y:u64>"},
      {"x:<a:int>", "x:-<b:u64>"},
      {"<a:seg>-<b:seg>", "x-<c:alnum>"},
      {"k:<a:slug>", "k:<b:alnum{3}>"},
      {"glob:user:*", "user:<id:u64>"},
      {"glob:*", "anything:<x:seg>"},
      {"glob:user:[0-9]*", "user:<id:u64>"},
      {"glob:a*", "glob:*b"},
      // Conservative: 99999999999999999999 is no u64, but the class says digits.
      {"a:<x:u64{20}>", "a:<y:enum(99999999999999999999)>"},
  };
  // (no structured bindings here: clang 14 cannot capture them in the check macros' lambdas)
  for (const auto& entry : overlapping) {
    const auto& a = entry.first;
    const auto& b = entry.second;
    CHECK_MESSAGE(compileOk(a).overlaps(compileOk(b)), a, " vs ", b);
    CHECK_MESSAGE(compileOk(b).overlaps(compileOk(a)), b, " vs ", a);
  }
  const std::vector<std::pair<const char*, const char*>> disjoint = {
      {"user:<id:u64>", "user:<id:u64>:profile"},
      {"a:<x:u64>", "a:<y:enum(foo|bar)>"},
      {"a:<x:hex{4}>", "a:<y:hex{5,8}>"},
      {"u:<id:uuid>", "u:<x:hex>"},
      {"<a:alnum>:x", "<a:alnum>:y"},
      {"a:<x:slug>", "a:<y:alnum{2,}>X"},
      {"user:<id:u64>", "post:<id:u64>"},
      {"config:global", "config:globals"},
      {"glob:a*", "b:<x:seg>"},
      {"glob:user:[a-z]*", "user:<id:u64>"},
      {"glob:user:*:x", "user:<id:u64>"},
      {"glob:a*", "glob:b*"},
      {"e:<v:enum(a|b)>", "e:<w:enum(c|d)>"},
  };
  // (no structured bindings here: clang 14 cannot capture them in the check macros' lambdas)
  for (const auto& entry : disjoint) {
    const auto& a = entry.first;
    const auto& b = entry.second;
    CHECK_MESSAGE(!compileOk(a).overlaps(compileOk(b)), a, " vs ", b);
    CHECK_MESSAGE(!compileOk(b).overlaps(compileOk(a)), b, " vs ", a);
  }
}

}  // namespace corral::policies
