// PolicySet::describeJson: the policies in force for the admin endpoint /policies.
#include <cstdio>
#include <string>
#include <vector>

#include "policies/engine.h"
#include "policies/engine_internal.h"

namespace corral::policies {
namespace {

void appendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out.append(buf);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

// A JSON array of strings: ["a","b"].
void appendJsonStrings(std::string& out, const std::vector<std::string>& items) {
  out.push_back('[');
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    appendJsonString(out, items[i]);
  }
  out.push_back(']');
}

// Names of the config enums as the YAML spells them, indexed by the enumerator's value (the
// enums count from 0 in declaration order).
constexpr const char* kModeNames[] = {"enforce", "audit", "off"};
constexpr const char* kReadFromNames[] = {"primary", "replica", "prefer_replica"};
constexpr const char* kOnViolationNames[] = {"fix", "reject", "audit"};
constexpr const char* kUnmatchedNames[] = {"allow", "audit", "reject"};
constexpr const char* kUnknownNames[] = {"forward", "reject"};

template <typename Enum, size_t N>
const char* nameOf(const char* const (&names)[N], Enum v) {
  const auto i = static_cast<size_t>(v);
  return i < N ? names[i] : "?";
}

}  // namespace

std::string PolicySet::describeJson() const {
  std::string o;
  o += "{\"global\":{\"unmatched_keys\":\"";
  o += nameOf(kUnmatchedNames, config_.global.unmatched_keys);
  // The value in force (written, or the default the policies imply).
  o += "\",\"unknown_commands\":\"";
  o += nameOf(kUnknownNames, unknown_commands_);
  o += "\",\"commands\":{\"deny\":";
  appendJsonStrings(o, config_.global.deny_commands);
  o += ",\"audit\":";
  appendJsonStrings(o, config_.global.audit_commands);
  o += "},\"rate_limits\":[";
  auto limit_json = [&o](const config::RateLimitSpec& l) {
    o += "{\"name\":";
    appendJsonString(o, l.name);
    o += ",\"rate\":\"" + std::to_string(l.count) + "/" + std::to_string(l.period.count()) + "ms\"";
    o += ",\"burst\":" + std::to_string(l.burst);
    o += ",\"on_limit\":\"";
    o += l.on_limit == config::OnLimit::kReject ? "reject" : "shadow";
    o += "\",\"scope\":\"";
    if (l.scope == config::LimitScope::kGlobal) {
      o += "global\",\"on_unavailable\":\"";
      o += l.on_unavailable == config::OnUnavailable::kLocalShare ? "local_share"
           : l.on_unavailable == config::OnUnavailable::kAllow    ? "allow"
                                                                  : "deny";
    } else {
      o += "local";
    }
    o += "\",\"commands\":";
    appendJsonStrings(o, l.commands);
    o += ",\"key_by\":[";
    for (size_t i = 0; i < l.key_by.size(); ++i) {
      if (i) o += ',';
      switch (l.key_by[i].kind) {
        case config::KeyByPart::Kind::kClient:
          o += "\"client\"";
          break;
        case config::KeyByPart::Kind::kPolicy:
          o += "\"policy\"";
          break;
        case config::KeyByPart::Kind::kCommand:
          o += "\"command\"";
          break;
        case config::KeyByPart::Kind::kKey:
          o += "\"key\"";
          break;
        case config::KeyByPart::Kind::kCapture:
          appendJsonString(o, "capture:" + l.key_by[i].capture);
          break;
      }
    }
    o += "]}";
  };
  for (size_t i = 0; i < config_.global.rate_limits.size(); ++i) {
    if (i) o += ',';
    limit_json(config_.global.rate_limits[i]);
  }
  o += "]},\"policies\":[";
  for (size_t i = 0; i < policies_.size(); ++i) {
    const config::PolicySpec& p = *policies_[i].spec;
    if (i) o += ',';
    o += "{\"name\":";
    appendJsonString(o, p.name);
    o += ",\"match\":";
    appendJsonString(o, p.match);
    o += ",\"literal_prefix\":";
    appendJsonString(o, matcher_ ? matcher_->tmpl(i).literalPrefix() : std::string_view());
    o += ",\"mode\":\"";
    o += nameOf(kModeNames, p.mode);
    o += "\",\"priority\":" + std::to_string(p.priority);
    o += ",\"source\":";
    appendJsonString(o, whereText(p.where));
    o += ",\"naming\":{\"max_key_bytes\":" + std::to_string(p.max_key_bytes) + "}";
    o += ",\"ttl\":{";
    auto opt_ms = [&o](const char* name, const std::optional<config::Millis>& v) {
      o += '"';
      o += name;
      o += "\":";
      o += v ? std::to_string(v->count()) : std::string("null");
      o += ',';
    };
    opt_ms("default_ms", p.ttl.default_ttl);
    opt_ms("min_ms", p.ttl.min);
    opt_ms("max_ms", p.ttl.max);
    o += "\"require\":";
    o += p.ttl.require ? "true" : "false";
    o += ",\"on_violation\":\"";
    o += nameOf(kOnViolationNames, p.ttl.on_violation);
    o += "\",\"jitter\":" + std::to_string(p.ttl.jitter);
    o += ",\"jitter_client\":";
    o += p.ttl.jitter_client ? "true" : "false";
    o += "},\"routing\":{\"read_from\":";
    if (p.routing.read_from) {
      o += '"';
      o += nameOf(kReadFromNames, *p.routing.read_from);
      o += '"';
    } else {
      o += "null";
    }
    o += ",\"read_your_writes_ms\":" + std::to_string(p.routing.read_your_writes.count());
    o += "},\"rate_limits\":[";
    for (size_t j = 0; j < p.rate_limits.size(); ++j) {
      if (j) o += ',';
      limit_json(p.rate_limits[j]);
    }
    o += "]}";
  }
  o += "],\"files\":";
  appendJsonStrings(o, config_.files);
  o += "}";
  return o;
}

}  // namespace corral::policies
