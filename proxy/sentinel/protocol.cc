#include "proxy/sentinel/protocol.h"

#include <array>
#include <charconv>

#include "proxy/codec/resp.h"

namespace corral::sentinel {
namespace {

// Hosts as sentinels give them: an IPv4/IPv6 literal or (with resolve-hostnames) a name.
bool plausibleHost(std::string_view h) {
  if (h.empty() || h.size() > 255) return false;
  for (char c : h) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '/' || c == '@' || c == '[' || c == ']') return false;
  }
  return true;
}

bool parsePort(std::string_view s, uint16_t* out) {
  uint32_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || v == 0 || v > 65535) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

bool node(std::string_view host, std::string_view port, config::ListenAddress* out) {
  uint16_t p = 0;
  if (!plausibleHost(host) || !parsePort(port, &p)) return false;
  *out = makeNode(host, p);
  return true;
}

// One scalar of a field/value reply: a string, or an integer (RESP3 may send numbers so).
bool scalar(codec::FrameReader& rd, std::string_view* out, std::string* scratch) {
  codec::ReplyType t{};
  if (!rd.peek(&t)) return false;
  if (t == codec::ReplyType::kInteger) {
    int64_t v = 0;
    if (!rd.integer(&v)) return false;
    *scratch = std::to_string(v);
    *out = *scratch;
    return true;
  }
  return rd.string(out);
}

// Calls each(field, value) for every pair of a flat field/value array or a map; false on
// anything else, or as soon as each returns false.
template <typename Each>
bool eachField(codec::FrameReader& rd, Each each) {
  codec::ReplyType t{};
  int64_t n = 0;
  if (!rd.aggregate(&t, &n)) return false;
  int64_t pairs = 0;
  if (t == codec::ReplyType::kArray && n >= 0 && n % 2 == 0) {
    pairs = n / 2;
  } else if (t == codec::ReplyType::kMap && n >= 0) {
    pairs = n;
  } else {
    return false;
  }
  std::string ks;
  std::string vs;
  for (int64_t i = 0; i < pairs; ++i) {
    std::string_view k;
    std::string_view v;
    if (!scalar(rd, &k, &ks) || !scalar(rd, &v, &vs)) return false;
    if (!each(k, v)) return false;
  }
  return true;
}

// "master,s_down,failover_in_progress" has flag?
bool hasFlag(std::string_view flags, std::string_view flag) {
  while (!flags.empty()) {
    const size_t comma = flags.find(',');
    if (flags.substr(0, comma) == flag) return true;
    if (comma == std::string_view::npos) break;
    flags.remove_prefix(comma + 1);
  }
  return false;
}

// Splits on single spaces into at most N words; returns how many.
template <size_t N>
size_t words(std::string_view s, std::array<std::string_view, N>* out) {
  size_t n = 0;
  while (!s.empty() && n < N) {
    const size_t sp = s.find(' ');
    (*out)[n++] = s.substr(0, sp);
    if (sp == std::string_view::npos) break;
    s.remove_prefix(sp + 1);
  }
  return n;
}

}  // namespace

config::ListenAddress makeNode(std::string_view host, uint16_t port) {
  config::ListenAddress a;
  a.kind = config::ListenAddress::Kind::kTcp;
  a.host = std::string(host);
  a.port = port;
  const bool v6 = host.find(':') != std::string_view::npos;
  a.text = (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(port);
  return a;
}

bool sameNode(const config::ListenAddress& a, const config::ListenAddress& b) {
  return a.kind == b.kind && a.host == b.host && a.port == b.port && a.path == b.path;
}

bool parseMasterAddr(std::string_view reply, config::ListenAddress* out) {
  codec::FrameReader rd(reply);
  int64_t n = 0;
  std::string_view host;
  std::string_view port;
  if (!rd.array(&n) || n != 2 || !rd.string(&host) || !rd.string(&port) || !rd.atEnd()) {
    return false;
  }
  return node(host, port, out);
}

bool parseMasterState(std::string_view reply, MasterState* out) {
  codec::FrameReader rd(reply);
  MasterState m;
  std::string ip;
  std::string port;
  const bool ok = eachField(rd, [&](std::string_view k, std::string_view v) {
    if (k == "ip") {
      ip = std::string(v);
    } else if (k == "port") {
      port = std::string(v);
    } else if (k == "config-epoch") {
      const auto r = std::from_chars(v.data(), v.data() + v.size(), m.config_epoch);
      return r.ec == std::errc() && r.ptr == v.data() + v.size();
    }
    if (k == "flags") {
      m.failover_in_progress = hasFlag(v, "failover_in_progress");
      m.down = hasFlag(v, "s_down") || hasFlag(v, "o_down");
    } else if (k == "failover-timeout") {
      int64_t t = 0;
      const auto r = std::from_chars(v.data(), v.data() + v.size(), t);
      if (r.ec == std::errc() && t >= 0) m.failover_timeout_ms = t;
    }
    return true;
  });
  if (!ok || !rd.atEnd() || !node(ip, port, &m.addr)) return false;
  *out = std::move(m);
  return true;
}

bool parseReplicas(std::string_view reply, std::vector<config::ListenAddress>* out) {
  codec::FrameReader rd(reply);
  int64_t n = 0;
  if (!rd.array(&n) || n < 0) return false;
  std::vector<config::ListenAddress> fit;
  for (int64_t i = 0; i < n; ++i) {
    std::string ip;
    std::string port;
    bool role_slave = false;
    bool link_ok = false;
    bool down = false;
    const bool ok = eachField(rd, [&](std::string_view k, std::string_view v) {
      if (k == "ip") {
        ip = std::string(v);
      } else if (k == "port") {
        port = std::string(v);
      } else if (k == "flags") {
        down = hasFlag(v, "s_down") || hasFlag(v, "o_down") || hasFlag(v, "disconnected");
      } else if (k == "role-reported") {
        role_slave = v == "slave";
      } else if (k == "master-link-status") {
        link_ok = v == "ok";
      }
      return true;
    });
    if (!ok) return false;
    config::ListenAddress a;
    if (role_slave && link_ok && !down && node(ip, port, &a)) fit.push_back(std::move(a));
  }
  if (!rd.atEnd()) return false;
  *out = std::move(fit);
  return true;
}

namespace {

// Every channel corral subscribes to, and what it means.
struct EventRow {
  std::string_view channel;
  EventKind kind;
};
constexpr EventRow kEvents[] = {
    {"+switch-master", EventKind::kSwitchMaster},
    // From the first step of a failover to the last before the switch: the old primary must take
    // nothing new, or a write it acknowledges after the promotion is lost.
    {"+try-failover", EventKind::kFailoverStarted},
    {"+elected-leader", EventKind::kFailoverStarted},
    {"+failover-state-select-slave", EventKind::kFailoverStarted},
    {"+selected-slave", EventKind::kFailoverStarted},
    {"+failover-state-send-slaveof-noone", EventKind::kFailoverStarted},
    {"+failover-state-wait-promotion", EventKind::kFailoverStarted},
    {"+promoted-slave", EventKind::kFailoverStarted},
    {"+failover-state-reconf-slaves", EventKind::kFailoverStarted},
    {"+failover-detected", EventKind::kFailoverStarted},
    {"-failover-abort-not-elected", EventKind::kFailoverAborted},
    {"-failover-abort-no-good-slave", EventKind::kFailoverAborted},
    {"-failover-abort-slave-timeout", EventKind::kFailoverAborted},
    {"+failover-end-for-timeout", EventKind::kFailoverAborted},
    {"+failover-end", EventKind::kReplicasChanged},
    {"+slave", EventKind::kReplicasChanged},
    {"+sdown", EventKind::kReplicasChanged},
    {"-sdown", EventKind::kReplicasChanged},
    {"+convert-to-slave", EventKind::kReplicasChanged},
    {"+slave-reconf-done", EventKind::kReplicasChanged},
    {"+reboot", EventKind::kReplicasChanged},
    {"-role-change", EventKind::kReplicasChanged},
    {"+role-change", EventKind::kReplicasChanged},
    {"+reset-master", EventKind::kReplicasChanged},
};

}  // namespace

EventKind classifyEvent(std::string_view channel) {
  for (const EventRow& r : kEvents) {
    if (r.channel == channel) return r.kind;
  }
  return EventKind::kOther;
}

const std::vector<std::string_view>& subscribedChannels() {
  static const std::vector<std::string_view> kChannels = [] {
    std::vector<std::string_view> v;
    for (const EventRow& r : kEvents) v.push_back(r.channel);
    return v;
  }();
  return kChannels;
}

bool eventMaster(std::string_view payload, std::string_view* name, config::ListenAddress* addr) {
  std::array<std::string_view, 12> w{};
  const size_t n = words(payload, &w);
  if (n >= 4 && w[0] == "master") {
    *name = w[1];
    return node(w[2], w[3], addr);
  }
  for (size_t i = 0; i + 3 < n; ++i) {
    if (w[i] == "@") {
      *name = w[i + 1];
      return node(w[i + 2], w[i + 3], addr);
    }
  }
  return false;
}

bool parseSwitchMaster(std::string_view payload, SwitchMaster* out) {
  std::array<std::string_view, 6> w{};
  if (words(payload, &w) != 5) return false;
  SwitchMaster s;
  s.name = w[0];
  if (!node(w[1], w[2], &s.from) || !node(w[3], w[4], &s.to)) return false;
  *out = std::move(s);
  return true;
}

PubsubMessage parsePubsub(std::string_view frame) {
  PubsubMessage m;
  codec::FrameReader rd(frame);
  int64_t n = 0;
  std::string_view kind;
  if (!rd.array(&n) || n < 2 || !rd.string(&kind)) return m;
  if (kind == "message" && n == 3) {
    if (rd.string(&m.channel) && rd.string(&m.payload) && rd.atEnd()) {
      m.kind = PubsubMessage::Kind::kMessage;
    }
  } else if (kind == "subscribe" && n == 3) {
    m.kind = PubsubMessage::Kind::kConfirmation;
  } else if (kind == "pong") {
    m.kind = PubsubMessage::Kind::kPong;
  }
  return m;
}

}  // namespace corral::sentinel
