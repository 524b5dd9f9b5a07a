// The Matcher: which policy a key falls to (contract in template.h).
//
//   build(entries) --> clash check per precedence group (Template::overlaps) --> build trie
//       --> radix tree: path-compressed labels, children found by a 256-bit bitmap and ranks
//   match(key) --> one walk down the tree (deepest terminal of the highest priority)
//       --> globs in precedence order --> the group's templates (Template::Impl::matchFrom)
#include <algorithm>
#include <array>
#include <bit>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "policies/template.h"
#include "policies/template_internal.h"

namespace corral::policies {
using namespace tmpl;  // NOLINT(google-build-using-namespace): the template files' own helpers

namespace {

// std::popcount is a library call on x86-64 without -mpopcnt (which we do not assume): this is
// the same count in a dozen inline instructions.
uint32_t bitCount(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ULL);
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
  return static_cast<uint32_t>((x * 0x0101010101010101ULL) >> 56);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Matcher

struct Matcher::Impl {
  // A radix-tree node. The edge into a node is one selecting byte (a bit in the parent's
  // `kids`) followed by `label`. A node's children are consecutive in `nodes`, so the child for
  // byte b is child_base + (number of kids bits below b): no search, no branch on position.
  // A node is terminal when some templates have exactly the path's bytes as literal prefix; it
  // keeps only its highest-priority group, since a lower group at one node can never win.
  struct Node {
    std::array<uint64_t, 4> kids{};
    std::array<uint16_t, 4> rank{};  // kids bits in the words before each word
    uint32_t child_base = 0;
    uint32_t label_off = 0;
    uint32_t label_len = 0;
    uint32_t group_off = 0;
    uint32_t group_len = 0;  // 0: not terminal
    int top_priority = 0;
  };
  struct GroupEntry {
    const Template::Impl* tmpl = nullptr;
    uint32_t entry = 0;
  };
  struct GlobRef {
    int priority = 0;
    uint32_t entry = 0;
    std::string_view prefix;
    const Template::Impl* tmpl = nullptr;
  };

  std::vector<Entry> entries;
  std::vector<Node> nodes;
  std::string labels;
  std::vector<GroupEntry> group_entries;  // ascending entry index within a group
  std::vector<GlobRef> globs;             // by priority desc, prefix length desc, index asc
  // The root's child for each first byte, as an index into nodes plus one (0: none).
  std::array<uint32_t, 256> root_child{};
  // First bytes of the globs' literal prefixes, and whether a glob has none: a key whose first
  // byte no glob can start with skips the globs altogether.
  ByteSet glob_first;
  bool glob_unanchored = false;
};

namespace {

// Build-time trie (one node per prefix byte) that flattens into the radix tree.
struct BuildTrie {
  struct TNode {
    std::map<uint8_t, uint32_t> kids;
    std::vector<Matcher::Impl::GroupEntry> entries;  // ascending
  };
  std::vector<TNode> t{TNode{}};

  void insert(std::string_view prefix, Matcher::Impl::GroupEntry entry) {
    uint32_t cur = 0;
    for (char c : prefix) {
      const auto b = static_cast<uint8_t>(c);
      auto it = t[cur].kids.find(b);
      if (it == t[cur].kids.end()) {
        t.emplace_back();
        const auto id = static_cast<uint32_t>(t.size() - 1);
        t[cur].kids.emplace(b, id);
        cur = id;
      } else {
        cur = it->second;
      }
    }
    t[cur].entries.push_back(entry);
  }

  // Fills m.nodes[at] from trie node `id` (reached through `label`), then its subtree.
  void fill(Matcher::Impl& m, uint32_t at, uint32_t id, const std::string& label) {
    {
      Matcher::Impl::Node& nd = m.nodes[at];
      nd.label_off = static_cast<uint32_t>(m.labels.size());
      nd.label_len = static_cast<uint32_t>(label.size());
      m.labels += label;
      const auto& es = t[id].entries;
      if (!es.empty()) {
        int top = std::numeric_limits<int>::min();
        for (const auto& e : es) top = std::max(top, m.entries[e.entry].priority);
        nd.top_priority = top;
        nd.group_off = static_cast<uint32_t>(m.group_entries.size());
        for (const auto& e : es) {
          if (m.entries[e.entry].priority == top) m.group_entries.push_back(e);
        }
        nd.group_len = static_cast<uint32_t>(m.group_entries.size()) - nd.group_off;
      }
    }
    // Children, path-compressed: single-child, non-terminal chains become one label.
    std::vector<std::pair<uint32_t, std::string>> kids;
    uint16_t count = 0;
    Matcher::Impl::Node& nd = m.nodes[at];
    for (const auto& [b, kid] : t[id].kids) {
      nd.kids[b >> 6] |= uint64_t{1} << (b & 63);
      std::string sub;
      uint32_t cur = kid;
      while (t[cur].entries.empty() && t[cur].kids.size() == 1) {
        sub.push_back(static_cast<char>(t[cur].kids.begin()->first));
        cur = t[cur].kids.begin()->second;
      }
      kids.emplace_back(cur, std::move(sub));
    }
    for (size_t w = 0; w < 4; ++w) {
      nd.rank[w] = count;
      count = static_cast<uint16_t>(count + std::popcount(nd.kids[w]));
    }
    const auto base = static_cast<uint32_t>(m.nodes.size());
    nd.child_base = base;
    m.nodes.resize(m.nodes.size() + kids.size());  // invalidates nd
    for (size_t j = 0; j < kids.size(); ++j) {
      fill(m, base + static_cast<uint32_t>(j), kids[j].first, kids[j].second);
    }
  }
};

}  // namespace

Matcher::Matcher() = default;
Matcher::Matcher(Matcher&&) noexcept = default;
Matcher& Matcher::operator=(Matcher&&) noexcept = default;
Matcher::~Matcher() = default;

std::optional<Matcher> Matcher::build(std::vector<Entry> entries, std::vector<Clash>* clashes) {
  // Clashes: a group is (priority, literal prefix bytes); only entries of one group can ever
  // compete for one key (equal prefix lengths of prefixes of one key are equal prefixes).
  std::map<std::pair<int, std::string_view>, std::vector<size_t>> groups;
  for (size_t i = 0; i < entries.size(); ++i) {
    groups[{entries[i].priority, entries[i].tmpl.literalPrefix()}].push_back(i);
  }
  std::vector<std::optional<Nfa>> nfas(entries.size());
  auto nfaOf = [&](size_t i) -> const Nfa& {
    if (!nfas[i]) nfas[i] = entries[i].tmpl.impl_->buildNfa();
    return *nfas[i];
  };
  std::vector<Clash> found;
  for (const auto& [key, members] : groups) {
    for (size_t x = 0; x < members.size(); ++x) {
      for (size_t y = x + 1; y < members.size(); ++y) {
        if (nfaIntersect(nfaOf(members[x]), nfaOf(members[y]))) {
          found.push_back({members[x], members[y]});
        }
      }
    }
  }
  if (!found.empty()) {
    std::sort(found.begin(), found.end(), [](const Clash& l, const Clash& r) {
      return std::tie(l.a, l.b) < std::tie(r.a, r.b);
    });
    if (clashes != nullptr) clashes->insert(clashes->end(), found.begin(), found.end());
    return std::nullopt;
  }

  Matcher m;
  m.impl_ = std::make_unique<Impl>();
  Impl& im = *m.impl_;
  im.entries = std::move(entries);
  BuildTrie trie;
  for (size_t i = 0; i < im.entries.size(); ++i) {
    const Template& t = im.entries[i].tmpl;
    if (t.isGlob()) {
      im.globs.push_back(
          {im.entries[i].priority, static_cast<uint32_t>(i), t.literalPrefix(), t.impl_.get()});
      if (t.literalPrefix().empty()) {
        im.glob_unanchored = true;
      } else {
        im.glob_first.add(static_cast<uint8_t>(t.literalPrefix()[0]));
      }
    } else {
      trie.insert(t.literalPrefix(), {t.impl_.get(), static_cast<uint32_t>(i)});
    }
  }
  im.nodes.resize(1);
  trie.fill(im, 0, 0, "");
  const Impl::Node& root = im.nodes[0];
  for (int b = 0; b < 256; ++b) {
    const uint64_t word = root.kids[static_cast<size_t>(b >> 6)];
    const uint64_t bit = uint64_t{1} << (b & 63);
    if ((word & bit) == 0) continue;
    im.root_child[static_cast<size_t>(b)] =
        root.child_base + root.rank[static_cast<size_t>(b >> 6)] + bitCount(word & (bit - 1)) + 1;
  }
  std::sort(im.globs.begin(), im.globs.end(), [](const Impl::GlobRef& l, const Impl::GlobRef& r) {
    if (l.priority != r.priority) return l.priority > r.priority;
    if (l.prefix.size() != r.prefix.size()) return l.prefix.size() > r.prefix.size();
    return l.entry < r.entry;
  });
  return m;
}

MatchResult Matcher::match(std::string_view key, std::vector<Capture>* caps) const {
  if (caps != nullptr) caps->clear();
  const Impl& m = *impl_;
  const auto* k = reinterpret_cast<const uint8_t*>(key.data());
  const size_t n = key.size();

  // 1. Walk the radix tree: the best template group is the highest priority, then the deepest.
  // The root's children are found by the key's first byte in one load (most keys branch there).
  const Impl::Node* best = nullptr;
  size_t best_len = 0;
  auto visit = [&best, &best_len](const Impl::Node* x, size_t at) {
    if (x->group_len != 0 && (best == nullptr || x->top_priority >= best->top_priority)) {
      best = x;
      best_len = at;
    }
  };
  visit(m.nodes.data(), 0);
  const Impl::Node* nd = nullptr;
  size_t pos = 1;
  if (n > 0 && m.root_child[k[0]] != 0) nd = &m.nodes[m.root_child[k[0]] - 1];
  while (nd != nullptr) {
    if (n - pos < nd->label_len ||
        !bytesEqual(k + pos, m.labels.data() + nd->label_off, nd->label_len)) {
      break;
    }
    pos += nd->label_len;
    visit(nd, pos);
    if (pos == n) break;
    const uint8_t b = k[pos];
    const uint64_t word = nd->kids[b >> 6];
    const uint64_t bit = uint64_t{1} << (b & 63);
    if ((word & bit) == 0) break;
    nd = &m.nodes[nd->child_base + nd->rank[b >> 6] + bitCount(word & (bit - 1))];
    ++pos;
  }

  // 2. Globs in precedence order, down to the template group's precedence: the first one that
  // matches is the best glob candidate (and the lowest index of its group).
  const Impl::GlobRef* glob = nullptr;
  const bool try_globs = m.glob_unanchored || (n > 0 && m.glob_first.has(k[0]));
  for (const auto& g :
       try_globs ? std::span<const Impl::GlobRef>(m.globs) : std::span<const Impl::GlobRef>()) {
    if (best != nullptr && (g.priority < best->top_priority ||
                            (g.priority == best->top_priority && g.prefix.size() < best_len))) {
      break;
    }
    if (g.prefix.size() <= n && bytesEqual(k, g.prefix.data(), g.prefix.size()) &&
        g.tmpl->glob_pattern.matches(key)) {
      glob = &g;
      break;
    }
  }
  if (glob != nullptr &&
      (best == nullptr || glob->priority > best->top_priority || glob->prefix.size() > best_len)) {
    return {static_cast<int32_t>(glob->entry), false};
  }
  if (best == nullptr) return {};

  // 3. The template group (plus the glob when it has the same precedence).
  const Impl::GroupEntry* group = m.group_entries.data() + best->group_off;
  for (uint32_t i = 0; i < best->group_len; ++i) {
    const Impl::GroupEntry& ge = group[i];
    if (glob != nullptr && glob->entry < ge.entry) break;
    const Template::Impl& t = *ge.tmpl;
    if (t.tail_class >= 0) {
      // Prefix, then one class placeholder to the end: the rest of the key is its value. This
      // is what matchFast decides for such a template, without its loop over ops.
      const Op& op = t.ops[static_cast<size_t>(t.tail_class)];
      const size_t len = n - best_len;
      if (len >= op.min_len && len <= op.max_len &&
          classRun(k + best_len, len, op.first_mask, op.tail_mask) &&
          (!op.check_value || valueOk(op.kind, k + best_len, len))) {
        if (caps != nullptr) caps->push_back({op.name, key.substr(best_len)});
        return {static_cast<int32_t>(ge.entry), false};
      }
      continue;
    }
    if (t.matchFrom(key, t.firstSegmentAfterPrefix(), best_len, caps)) {
      return {static_cast<int32_t>(ge.entry), false};
    }
  }
  if (caps != nullptr) caps->clear();
  if (glob != nullptr) return {static_cast<int32_t>(glob->entry), false};
  return {static_cast<int32_t>(group[0].entry), true};
}

size_t Matcher::size() const { return impl_->entries.size(); }
const Template& Matcher::tmpl(size_t entry) const { return impl_->entries[entry].tmpl; }

}  // namespace corral::policies
