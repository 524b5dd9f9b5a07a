// Connection: what following a Sentinel set needs of a connection (proxy/sentinel decides,
// proxy/net/worker_topology.cc calls these): the ROLE check of the handshake, moving a pooled
// connection to a new primary, the failover fence, and ending a dedicated connection. Kept
// apart from upstream.cc's data path, where only connectNow() (sending ROLE) and flush()
// (holding client bytes until it has answered) read check_role_.
#include "proxy/codec/resp.h"
#include "proxy/upstream/log.h"
#include "proxy/upstream/upstream.h"

namespace corral::upstream {
namespace {}  // namespace

// ROLE's reply: ["master", offset, replicas] for the primary; ["slave", ...] or ["sentinel",
// ...] otherwise. Anything but "master" fails the handshake: such a server never gets a write.
bool Connection::checkPrimaryRole(std::string_view reply) {
  codec::FrameReader rd(reply);
  int64_t n = 0;
  std::string_view role;
  if (rd.array(&n) && n >= 1 && rd.string(&role) && role == "master") return true;
  counters().not_primary.fetch_add(1, std::memory_order_relaxed);
  std::string reason = "not the primary: ROLE says ";
  reason.append(role.empty() ? std::string_view("nothing usable") : role.substr(0, 32));
  fail("unavailable", Then::kBackoff, reason);
  if (ctx_.on_not_primary) ctx_.on_not_primary();
  return false;
}

void Connection::retarget(const config::UpstreamAddress& addr) {
  fail("unavailable", Then::kStay);
  log()->debug("upstream retargeted from={} to={}", addr_.text, addr.text);
  addr_ = addr;
  error_unavailable_ = upstreamError(addr_.text, "unavailable");
  error_timeout_ = upstreamError(addr_.text, "timeout");
  backoff_ms_ = 0;
  failures_ = 0;
  failures_unlogged_ = 0;
  last_reason_.clear();
  down_ = fenced_;
  if (reconnect_) connectNow();
}

void Connection::setFenced(bool on) {
  fenced_ = on;
  // down_ also means "failed since the last handshake"; with no failure it was the fence alone.
  if (on) {
    down_ = true;
  } else if (failures_ == 0) {
    down_ = false;
  }
}

void Connection::drop(std::string_view reason) { fail("unavailable", Then::kBackoff, reason); }

}  // namespace corral::upstream
