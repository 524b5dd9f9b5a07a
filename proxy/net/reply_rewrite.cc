// Client: replies corral changes on the way back: INFO gains a "# Proxy" section, CONFIG GET
// loses corral's upstream secrets (inside EXEC too), EXEC of a transaction corral refused a
// command of answers EXECABORT, EXEC carries corral's answers for its own queued commands, and
// SELECT / CLIENT TRACKING on the dedicated connection are followed when Redis says +OK.
#include "commands/command_table.h"
#include "proxy/loop/clock.h"
#include "proxy/net/client.h"
#include "proxy/net/metrics_table.h"
#include "proxy/net/redact.h"
#include "proxy/net/worker.h"

namespace corral::net {

namespace {

// INFO's text plus corral's section: a bulk string "$<len>\r\n<text>\r\n" (RESP3 may send a
// verbatim "=<len>\r\ntxt:..."). Anything else comes back as it is.
template <typename AppendSection>
std::string withProxySection(std::string_view reply, AppendSection append) {
  if (reply.empty() || (reply[0] != '$' && reply[0] != '=')) return std::string(reply);
  const size_t hdr = reply.find("\r\n");
  if (hdr == std::string_view::npos || reply.size() < hdr + 4) return std::string(reply);
  std::string text(reply.substr(hdr + 2, reply.size() - hdr - 4));
  if (!text.empty()) {
    if (text.back() != '\n') text.append("\r\n");
    text.append("\r\n");
  }
  append(text);
  std::string out;
  out.push_back(reply[0]);
  out.append(std::to_string(text.size()));
  out.append("\r\n");
  out.append(text);
  out.append("\r\n");
  return out;
}

std::string redacted(std::string_view reply) {
  std::string out;
  if (!redactConfigGetReply(reply, out)) out.assign(reply);
  return out;
}

// CLIENT TRACKINGINFO: the value after "redirect" is Redis's id of the redirect target; the
// client knows it by corral's id.
std::string withRedirect(std::string_view reply, int64_t corral_id) {
  constexpr std::string_view kKey = "$8\r\nredirect\r\n:";
  const size_t at = reply.find(kKey);
  if (at == std::string_view::npos) return std::string(reply);
  const size_t from = at + kKey.size();
  const size_t end = reply.find("\r\n", from);
  if (end == std::string_view::npos) return std::string(reply);
  std::string out(reply.substr(0, from));
  out += std::to_string(corral_id);
  out.append(reply.substr(end));
  return out;
}

}  // namespace

std::string Client::rewriteReply(Slot& slot, std::string_view reply) {
  const bool error = !reply.empty() && (reply[0] == '-' || reply[0] == '!');
  switch (slot.rewrite) {
    case Rewrite::kNone:
    case Rewrite::kProtocol:
    case Rewrite::kReauth:
      return std::string(reply);
    case Rewrite::kExecAbort:
      if (error) return std::string(reply);  // DISCARD failed: say so
      return "-EXECABORT Transaction discarded because of previous errors.\r\n";
    case Rewrite::kConfigGet:
      return redacted(reply);
    case Rewrite::kInfo:
      return withProxySection(reply, [this](std::string& text) { appendProxyInfo(text); });
    case Rewrite::kExec:
      if (slot.extra == nullptr || slot.extra->tx == nullptr) return std::string(reply);
      return rewriteExec(*slot.extra->tx, slot.arg, reply);
    case Rewrite::kSelect:
      if (reply.starts_with("+OK")) setDb(static_cast<int>(slot.arg));
      return std::string(reply);
    case Rewrite::kTracking:
      if (reply.starts_with("+OK")) extras().tracking_redirect = slot.arg;
      return std::string(reply);
    case Rewrite::kTrackingInfo:
      if (extras_ == nullptr || extras_->tracking_redirect <= 0) return std::string(reply);
      return withRedirect(reply, extras_->tracking_redirect);
  }
  return std::string(reply);
}

std::string Client::rewriteExec(const TxPlan& plan, int64_t queued, std::string_view reply) {
  // EXEC's array holds one reply per queued command; anything else (nil: a WATCH fired, or an
  // error) means none of them ran, and corral's part does not run either.
  if (reply.empty() || reply[0] != '*') return std::string(reply);
  const size_t hdr = reply.find("\r\n");
  int64_t n = 0;
  if (hdr == std::string_view::npos || !parseInt(reply.substr(1, hdr - 1), n) || n < 0 ||
      n != queued) {
    return std::string(reply);
  }
  std::string out(reply.substr(0, hdr + 2));
  size_t pos = hdr + 2;
  size_t next = 0;  // next plan entry
  // Elements are whole frames from Redis: a parser frames each one, at any depth.
  codec::ReplyParser parser;
  for (int64_t i = 0; i < n; ++i) {
    const codec::ReplyResult r = parser.parse(reply.data() + pos, reply.size() - pos);
    if (r.status != codec::ParseStatus::kComplete) return std::string(reply);
    const std::string_view elem = reply.substr(pos, r.consumed);
    pos += r.consumed;
    if (next >= plan.size() || plan[next].index != static_cast<uint32_t>(i)) {
      out.append(elem);
      continue;
    }
    const TxEntry& e = plan[next++];
    switch (e.kind) {
      case TxEntry::Kind::kLocal: {
        // The PING that held the place ran; corral's command runs now, as Redis would run it.
        std::vector<std::string_view> args(e.args.begin(), e.args.end());
        const commands::CommandInfo* cmd = commands::lookup(args);
        std::string answer;
        if (!runLocal(cmd, classify(cmd, args), args, answer) || answer.empty()) {
          answer = "-ERR corral: internal error\r\n";
        }
        out.append(answer);
        break;
      }
      case TxEntry::Kind::kConfigGet:
        out.append(redacted(elem));
        break;
      case TxEntry::Kind::kInfo:
        out.append(withProxySection(elem, [this](std::string& text) { appendProxyInfo(text); }));
        break;
      case TxEntry::Kind::kSelect:
        if (elem.starts_with("+OK")) setDb(static_cast<int>(e.db));
        out.append(elem);
        break;
    }
  }
  out.append(reply.substr(pos));
  return out;
}

void Client::appendProxyInfo(std::string& text) {
  const SharedState& sh = worker_.shared();
  const Stats& st = sh.stats;
  auto line = [&text](std::string_view k, const std::string& v) {
    text.append(k);
    text.push_back(':');
    text.append(v);
    text.append("\r\n");
  };
  text.append("# Proxy\r\n");
  // What is not a counter; every counter comes from the metrics table below.
  line("corral_version", CORRAL_VERSION);
  line("corral_uptime_in_seconds", std::to_string((loop::monotonicMs() - sh.started_ms) / 1000));
  line("corral_upstream_primary", worker_.primaryText());
  // This worker's view, live (the counters are refreshed by the worker's tick only).
  line("corral_upstream_primary_status",
       worker_.primaryReady() || st.sum(&Stats::Worker::primary_ready) > 0 ? "up" : "down");
  line("corral_upstream_replicas", std::to_string(worker_.replicaCount()));
  line("corral_upstream_connections_ready",
       std::to_string(st.sum(&Stats::Worker::upstreams_ready)) + "/" +
           std::to_string(st.sum(&Stats::Worker::upstreams_total)));
  appendProxyInfoLines(st, text);
}

}  // namespace corral::net
