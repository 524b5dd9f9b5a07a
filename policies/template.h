// Key templates and the matcher that picks the one policy of a key.
//
//   "user:<id:u64>" --Template::compile--> [lit "user:"][u64]      "glob:sess:*" --> glob
//   Matcher::build(templates) --> trie of literal prefixes (+ globs, checked in order)
//   Matcher::match(key) --> walk the trie along the key: candidates --> precedence --> result
//
// Precedence (docs/policies.md): higher `priority` first, then the longer literal prefix.
// A template is a candidate when its literal prefix is a prefix of the key; a glob only when it
// matches the whole key. Within the first group of equal precedence the candidate that matches
// the whole key wins; when none does, the key is a naming violation of the group's first entry.
// Two entries of equal precedence that could both match one key are a build error.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace corral::policies {

// A placeholder's match: its name (owned by the Template) and bytes of the key (a view into
// the key given to match(); valid while that key is).
struct Capture {
  std::string_view name;
  std::string_view value;
};

// One compiled `match:` value. Immutable once compiled; cheap to move.
class Template {
 public:
  // Compiles a template ("user:<id:u64>", "sess:<sid:hex{32,64}>", "cart:{<uid:u64>}:items",
  // "<kind:enum(a|b)>:<rest:rest>") or a glob ("glob:user:*"). On error returns nullopt and
  // sets *error to one line naming the problem and its byte offset.
  static std::optional<Template> compile(std::string_view text, std::string* error);

  bool isGlob() const;
  // Bytes every matching key starts with: up to the first placeholder (globs: the first
  // wildcard or escape).
  std::string_view literalPrefix() const;
  // Placeholder names in template order (empty for globs).
  const std::vector<std::string>& captureNames() const;
  // The text as written (with "glob:" for globs).
  const std::string& text() const;

  // True when the whole key matches. When caps is not null it is cleared and, on a match,
  // filled with one Capture per placeholder in template order. No allocation when caps has
  // capacity. Linear in the key length (no exponential backtracking).
  bool matches(std::string_view key, std::vector<Capture>* caps) const;

  // True when some key could match both templates (conservative: may say true for templates
  // whose typed value checks, such as u64 range, would in fact keep them apart).
  bool overlaps(const Template& other) const;

  struct Impl;
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;
  ~Template();

 private:
  friend class Matcher;  // walks the compiled segments, skipping the prefix it already checked
  Template();
  std::unique_ptr<Impl> impl_;
};

// Which entry applies to a key.
struct MatchResult {
  int32_t entry = -1;      // index into the entries given to build(); -1 = no entry covers it
  bool violation = false;  // the key falls to `entry` but breaks its template
};

class Matcher {
 public:
  struct Entry {
    Template tmpl;
    int priority = 0;
  };
  // Two entries of equal precedence that overlap (Template::overlaps).
  struct Clash {
    size_t a = 0;  // entry indexes, a < b
    size_t b = 0;
  };
  // Builds the index. On ambiguity returns nullopt and appends every clashing pair to *clashes
  // (the caller names them by policy and file:line:col).
  static std::optional<Matcher> build(std::vector<Entry> entries, std::vector<Clash>* clashes);

  // Cost does not grow with the number of template entries (a trie walk over the key); globs
  // are tried one by one, so keep them few. caps as in Template::matches, for the result entry.
  MatchResult match(std::string_view key, std::vector<Capture>* caps) const;

  size_t size() const;
  const Template& tmpl(size_t entry) const;

  struct Impl;
  Matcher(Matcher&&) noexcept;
  Matcher& operator=(Matcher&&) noexcept;
  ~Matcher();

 private:
  Matcher();
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral::policies
