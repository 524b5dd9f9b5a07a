#include "proxy/net/upstream_gauges.h"

#include <algorithm>

namespace corral::net {

std::string_view roleName(UpstreamRole r) {
  return r == UpstreamRole::kPrimary ? "primary" : "replica";
}

void addressLabel(const config::ListenAddress& a, std::string* out) {
  out->clear();
  if (a.kind == config::ListenAddress::Kind::kUnix) {
    out->append("unix:");
    out->append(a.path);
    return;
  }
  const bool v6 = a.host.find(':') != std::string::npos;
  if (v6) out->push_back('[');
  out->append(a.host);
  if (v6) out->push_back(']');
  out->push_back(':');
  out->append(std::to_string(a.port));
}

void UpstreamGauges::report(size_t i, std::string_view addr, UpstreamRole role, uint64_t ready,
                            uint64_t configured) {
  if (i >= kMaxNodes) return;
  if (i >= round_.size()) {
    round_.resize(i + 1);
    changed_ = true;
  }
  Node& n = round_[i];
  if (n.addr != addr || n.role != role) {
    n.addr.assign(addr);
    n.role = role;
    changed_ = true;
  }
  n.ready = ready;
  n.configured = configured;
}

void UpstreamGauges::finish(size_t count) {
  count = std::min(count, kMaxNodes);
  if (count != published_count_) changed_ = true;
  auto store = [this, count] {
    for (size_t i = 0; i < count; ++i) {
      counts_[i].ready.store(round_[i].ready, std::memory_order_relaxed);
      counts_[i].configured.store(round_[i].configured, std::memory_order_relaxed);
    }
  };
  if (!changed_) {
    store();
    return;
  }
  // The names and the counts that go with them change together, so a scrape never pairs one
  // address with another's count.
  std::lock_guard<std::mutex> lock(mu_);
  names_.assign(round_.begin(), round_.begin() + static_cast<std::ptrdiff_t>(count));
  store();
  published_count_ = count;
  changed_ = false;
}

std::vector<UpstreamGauges::Node> UpstreamGauges::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Node> out = names_;
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].ready = counts_[i].ready.load(std::memory_order_relaxed);
    out[i].configured = counts_[i].configured.load(std::memory_order_relaxed);
  }
  return out;
}

std::vector<UpstreamTotals> sumUpstreams(
    const std::vector<std::vector<UpstreamGauges::Node>>& workers) {
  std::vector<UpstreamTotals> out;
  for (const auto& nodes : workers) {
    for (const UpstreamGauges::Node& n : nodes) {
      auto it = std::find_if(out.begin(), out.end(), [&n](const UpstreamTotals& t) {
        return t.addr == n.addr && t.role == n.role;
      });
      if (it == out.end()) {
        out.push_back(UpstreamTotals{.addr = n.addr, .role = n.role});
        it = out.end() - 1;
      }
      it->ready += n.ready;
      it->configured += n.configured;
      ++it->workers;
      if (n.ready > 0) ++it->workers_ready;
    }
  }
  return out;
}

void writeUpstreamMetrics(const std::vector<UpstreamTotals>& totals, PromWriter& w) {
  w.header("corral_upstream_up", MetricType::kGauge,
           "1 when every worker keeping connections to the upstream has one ready (connected, "
           "handshake done), else 0.");
  for (const UpstreamTotals& t : totals) {
    w.sample("corral_upstream_up", {{"addr", t.addr}, {"role", roleName(t.role)}},
             uint64_t{t.up() ? 1u : 0u});
  }
  w.header("corral_upstream_connections_ready", MetricType::kGauge,
           "Upstream connections connected and past their handshake, all workers.");
  for (const UpstreamTotals& t : totals) {
    w.sample("corral_upstream_connections_ready", {{"addr", t.addr}, {"role", roleName(t.role)}},
             t.ready);
  }
  w.header("corral_upstream_connections", MetricType::kGauge,
           "Upstream connections kept (configured pool_size per worker), all workers.");
  for (const UpstreamTotals& t : totals) {
    w.sample("corral_upstream_connections", {{"addr", t.addr}, {"role", roleName(t.role)}},
             t.configured);
  }
}

}  // namespace corral::net
