#include "proxy/cluster/slot_map.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "proxy/codec/resp.h"

namespace corral::cluster {
namespace {

using codec::FrameReader;
using codec::ReplyType;

using Ranges = std::vector<std::pair<uint16_t, uint16_t>>;

bool fail(std::string* err, std::string msg) {
  if (err != nullptr) *err = std::move(msg);
  return false;
}

// A text value: a bulk, simple or verbatim string; a nil bulk or a RESP3 null reads as "".
bool text(FrameReader& rd, std::string_view* out) {
  ReplyType t{};
  if (!rd.peek(&t)) return false;
  *out = {};
  if (t == ReplyType::kNull) return rd.skip();
  if (t == ReplyType::kBulkString) {
    bool nil = false;
    return rd.bulk(out, &nil);
  }
  return rd.string(out);
}

// A number: an integer, or a string of digits (replies have used both for slots and ports).
bool number(FrameReader& rd, int64_t* v) {
  ReplyType t{};
  if (!rd.peek(&t)) return false;
  if (t == ReplyType::kInteger) return rd.integer(v);
  std::string_view s;
  if (!rd.string(&s)) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool port(FrameReader& rd, uint16_t* out) {
  int64_t v = 0;
  if (!number(rd, &v) || v < 0 || v > 65535) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

// The header of a field/value list: a RESP3 map, or a RESP2 flat array of even length.
bool fields(FrameReader& rd, int64_t* pairs) {
  ReplyType t{};
  int64_t n = 0;
  if (!rd.aggregate(&t, &n)) return false;
  if (t == ReplyType::kMap) {
    *pairs = n;
    return true;
  }
  if (t != ReplyType::kArray || n < 0 || n % 2 != 0) return false;
  *pairs = n / 2;
  return true;
}

// The top-level array, or the server's error in *err ("-ERR unknown subcommand ...").
bool topArray(FrameReader& rd, std::string_view what, int64_t* n, std::string* err) {
  ReplyType t{};
  std::string_view e;
  if (rd.peek(&t) && (t == ReplyType::kError || t == ReplyType::kBulkError) && rd.error(&e)) {
    return fail(err, std::string(what) + ": server replied: " + std::string(e));
  }
  if (!rd.array(n) || *n < 0) return fail(err, std::string(what) + ": not an array");
  return true;
}

bool hostUsable(std::string_view endpoint) { return !endpoint.empty() && endpoint != "?"; }

// Records ranges as owned by `shard`; a slot claimed twice is an error.
bool own(SlotMap& map, const Ranges& ranges, size_t shard, std::string_view what,
         std::string* err) {
  if (shard > INT16_MAX) return fail(err, std::string(what) + ": too many shards");
  for (const auto& [first, last] : ranges) {
    for (uint32_t s = first; s <= last; ++s) {
      if (map.owner[s] != -1) {
        return fail(err, std::string(what) + ": slot " + std::to_string(s) + " owned twice");
      }
      map.owner[s] = static_cast<int16_t>(shard);
    }
  }
  return true;
}

bool range(int64_t first, int64_t last, Ranges* out) {
  if (first < 0 || last < first || last >= kSlots) return false;
  out->emplace_back(static_cast<uint16_t>(first), static_cast<uint16_t>(last));
  return true;
}

// ---------------------------------------------------------------------------------------------
// CLUSTER SHARDS: [ {slots: [first, last, ...], nodes: [ {id, port, tls-port, ip, endpoint,
// hostname, role, replication-offset, health}, ... ]}, ... ]

bool shardNode(FrameReader& rd, Node* node, bool* master) {
  int64_t pairs = 0;
  if (!fields(rd, &pairs)) return false;
  std::string_view ip;
  std::string_view endpoint;
  *master = false;
  for (int64_t i = 0; i < pairs; ++i) {
    std::string_view key;
    std::string_view v;
    if (!rd.string(&key)) return false;
    if (key == "id") {
      if (!text(rd, &v)) return false;
      node->id = v;
    } else if (key == "port") {
      if (!port(rd, &node->port)) return false;
    } else if (key == "tls-port") {
      if (!port(rd, &node->tls_port)) return false;
    } else if (key == "ip") {
      if (!text(rd, &ip)) return false;
    } else if (key == "endpoint") {
      if (!text(rd, &endpoint)) return false;
    } else if (key == "hostname") {
      if (!text(rd, &v)) return false;
      node->hostname = v;
    } else if (key == "role") {
      if (!text(rd, &v)) return false;
      *master = v == "master";
    } else if (key == "health") {
      if (!text(rd, &v)) return false;
      node->online = v == "online";
    } else if (!rd.skip()) {
      return false;
    }
  }
  node->host = hostUsable(endpoint) ? endpoint : ip;
  return true;
}

bool shard(FrameReader& rd, Shard* out, Ranges* ranges) {
  int64_t pairs = 0;
  if (!fields(rd, &pairs)) return false;
  for (int64_t i = 0; i < pairs; ++i) {
    std::string_view key;
    int64_t n = 0;
    if (!rd.string(&key)) return false;
    if (key == "slots") {
      if (!rd.array(&n) || n < 0 || n % 2 != 0) return false;
      for (int64_t j = 0; j < n; j += 2) {
        int64_t first = 0;
        int64_t last = 0;
        if (!number(rd, &first) || !number(rd, &last) || !range(first, last, ranges)) return false;
      }
    } else if (key == "nodes") {
      if (!rd.array(&n) || n < 0) return false;
      bool have_primary = false;
      for (int64_t j = 0; j < n; ++j) {
        Node node;
        bool master = false;
        if (!shardNode(rd, &node, &master)) return false;
        // The first "master" leads the shard; another one (a stale view) is kept as a replica.
        node.primary = master && !have_primary;
        have_primary = have_primary || node.primary;
        out->nodes.push_back(std::move(node));
      }
    } else if (!rd.skip()) {
      return false;
    }
  }
  for (size_t j = 1; j < out->nodes.size(); ++j) {
    if (out->nodes[j].primary) {
      // Keep the replicas' order: rotate the primary to the front.
      std::rotate(out->nodes.begin(), out->nodes.begin() + static_cast<ptrdiff_t>(j),
                  out->nodes.begin() + static_cast<ptrdiff_t>(j) + 1);
      break;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// CLUSTER SLOTS: [ [first, last, primary, replica...], ... ], a node being [endpoint, port, id,
// {ip, hostname}] (Redis 7; 6.x stops after the id, older servers after the port).

bool slotsNode(FrameReader& rd, bool tls, Node* node) {
  int64_t n = 0;
  std::string_view endpoint;
  uint16_t p = 0;
  if (!rd.array(&n) || n < 2 || !text(rd, &endpoint) || !port(rd, &p)) return false;
  (tls ? node->tls_port : node->port) = p;
  std::string_view v;
  std::string_view ip;
  if (n >= 3) {
    if (!text(rd, &v)) return false;
    node->id = v;
  }
  if (n >= 4) {
    int64_t pairs = 0;
    // The metadata holds what is not the endpoint: "ip" unless the endpoint is the ip, and
    // "hostname" unless the endpoint is the hostname.
    if (!fields(rd, &pairs)) return false;
    for (int64_t i = 0; i < pairs; ++i) {
      std::string_view key;
      if (!rd.string(&key)) return false;
      if (key == "ip") {
        if (!text(rd, &ip)) return false;
      } else if (key == "hostname") {
        if (!text(rd, &v)) return false;
        node->hostname = v;
      } else if (!rd.skip()) {
        return false;
      }
    }
  }
  for (int64_t i = 4; i < n; ++i) {
    if (!rd.skip()) return false;
  }
  node->host = hostUsable(endpoint) ? endpoint : ip;
  // An endpoint beside an "ip" is the announced hostname (cluster-preferred-endpoint-type
  // hostname), which is what TLS must verify.
  if (node->hostname.empty() && hostUsable(endpoint) && !ip.empty() && endpoint != ip) {
    node->hostname = endpoint;
  }
  return true;
}

bool sameNode(const Node& a, const Node& b) {
  if (!a.id.empty() || !b.id.empty()) return a.id == b.id;
  return a.host == b.host && a.port == b.port && a.tls_port == b.tls_port;
}

}  // namespace

std::optional<SlotMap> parseShards(std::string_view reply, std::string* err) {
  FrameReader rd(reply);
  int64_t n = 0;
  if (!topArray(rd, "CLUSTER SHARDS", &n, err)) return std::nullopt;
  SlotMap map;
  Ranges ranges;
  for (int64_t i = 0; i < n; ++i) {
    Shard s;
    ranges.clear();
    if (!shard(rd, &s, &ranges)) {
      fail(err, "CLUSTER SHARDS: shard " + std::to_string(i) + ": malformed or truncated");
      return std::nullopt;
    }
    if (s.nodes.empty() || !s.nodes[0].primary) continue;  // no primary: serves nothing
    map.shards.push_back(std::move(s));
    if (!own(map, ranges, map.shards.size() - 1, "CLUSTER SHARDS", err)) return std::nullopt;
  }
  if (!rd.atEnd()) {
    fail(err, "CLUSTER SHARDS: bytes after the reply");
    return std::nullopt;
  }
  return map;
}

std::optional<SlotMap> parseSlots(std::string_view reply, std::string* err, bool tls) {
  FrameReader rd(reply);
  int64_t n = 0;
  if (!topArray(rd, "CLUSTER SLOTS", &n, err)) return std::nullopt;
  SlotMap map;
  Ranges ranges;
  for (int64_t i = 0; i < n; ++i) {
    int64_t len = 0;
    int64_t first = 0;
    int64_t last = 0;
    ranges.clear();
    if (!rd.array(&len) || len < 3 || !number(rd, &first) || !number(rd, &last) ||
        !range(first, last, &ranges)) {
      fail(err, "CLUSTER SLOTS: entry " + std::to_string(i) + ": malformed or truncated");
      return std::nullopt;
    }
    Shard entry;
    for (int64_t j = 2; j < len; ++j) {
      Node node;
      node.primary = j == 2;
      if (!slotsNode(rd, tls, &node)) {
        fail(err, "CLUSTER SLOTS: entry " + std::to_string(i) + ": malformed node");
        return std::nullopt;
      }
      entry.nodes.push_back(std::move(node));
    }
    // A primary with several ranges has one entry per range: they make one shard.
    size_t k = 0;
    while (k < map.shards.size() && !sameNode(map.shards[k].nodes[0], entry.nodes[0])) ++k;
    if (k == map.shards.size()) {
      map.shards.push_back(std::move(entry));
    } else {
      std::vector<Node>& nodes = map.shards[k].nodes;
      for (size_t j = 1; j < entry.nodes.size(); ++j) {
        bool known = false;
        for (const Node& m : nodes) known = known || sameNode(m, entry.nodes[j]);
        if (!known) nodes.push_back(std::move(entry.nodes[j]));
      }
    }
    if (!own(map, ranges, k, "CLUSTER SLOTS", err)) return std::nullopt;
  }
  if (!rd.atEnd()) {
    fail(err, "CLUSTER SLOTS: bytes after the reply");
    return std::nullopt;
  }
  return map;
}

bool SlotMap::complete() const {
  if (owner.size() != kSlots) return false;
  for (int16_t o : owner) {
    if (o < 0) return false;
  }
  return true;
}

const Node* SlotMap::primaryOf(uint16_t slot) const {
  if (slot >= owner.size()) return nullptr;
  const int16_t o = owner[slot];
  if (o < 0 || static_cast<size_t>(o) >= shards.size() || shards[o].nodes.empty()) return nullptr;
  return &shards[o].nodes[0];
}

int SlotMap::shardOf(std::string_view host, uint16_t port) const {
  if (port == 0) return -1;
  for (size_t i = 0; i < shards.size(); ++i) {
    for (const Node& n : shards[i].nodes) {
      if ((n.port == port || n.tls_port == port) &&
          (n.host == host || (!n.hostname.empty() && n.hostname == host))) {
        return static_cast<int>(i);
      }
    }
  }
  return -1;
}

namespace {

bool sameAddress(const Node& a, const Node& b) {
  return a.host == b.host && a.hostname == b.hostname && a.port == b.port &&
         a.tls_port == b.tls_port;
}

// Every node of a has a node at the same address in b, and as many nodes.
bool sameNodes(const Shard& a, const Shard& b) {
  if (a.nodes.size() != b.nodes.size()) return false;
  for (const Node& n : a.nodes) {
    bool found = false;
    for (const Node& m : b.nodes) found = found || sameAddress(n, m);
    if (!found) return false;
  }
  return true;
}

}  // namespace

bool sameTopology(const SlotMap& a, const SlotMap& b) {
  if (a.owner.size() != b.owner.size()) return false;
  // Shards that own no slot (a failed primary that lost them) route nothing: not compared.
  std::vector<int> peer(a.shards.size(), -1);  // a's shard i is b's shard peer[i]
  std::vector<bool> b_owns(b.shards.size(), false);
  for (int16_t o : b.owner) {
    if (o >= 0 && static_cast<size_t>(o) < b_owns.size()) b_owns[o] = true;
  }
  for (int16_t o : a.owner) {
    if (o < 0 || static_cast<size_t>(o) >= peer.size() || peer[o] >= 0) continue;
    for (size_t j = 0; j < b.shards.size() && peer[o] < 0; ++j) {
      if (b_owns[j] && !a.shards[o].nodes.empty() && !b.shards[j].nodes.empty() &&
          sameAddress(a.shards[o].nodes[0], b.shards[j].nodes[0]) &&
          sameNodes(a.shards[o], b.shards[j])) {
        peer[o] = static_cast<int>(j);
      }
    }
    if (peer[o] < 0) return false;
  }
  for (size_t s = 0; s < a.owner.size(); ++s) {
    const int16_t oa = a.owner[s];
    const int16_t ob = b.owner[s];
    if (oa < 0 || static_cast<size_t>(oa) >= peer.size()) {
      if (ob >= 0) return false;
    } else if (peer[oa] != ob) {
      return false;
    }
  }
  return true;
}

}  // namespace corral::cluster
