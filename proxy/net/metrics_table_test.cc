// The metrics table's two renderings over a Stats with two worker blocks: sums, subcommand
// rows, and every row present in both.
#include "proxy/net/metrics_table.h"

#include <doctest/doctest.h>

#include <initializer_list>
#include <set>
#include <span>
#include <string>
#include <string_view>

#include "commands/command_table.h"

namespace corral::net {
namespace {

const commands::CommandInfo* command(std::initializer_list<std::string_view> args) {
  const commands::CommandInfo* c = commands::lookup(std::span(args.begin(), args.size()));
  REQUIRE(c != nullptr);
  return c;
}

// Two workers: what each renderer shows must be the sum of both.
struct TwoWorkers {
  Stats stats{2};
  Stats::Worker& a = *stats.blocks[0];
  Stats::Worker& b = *stats.blocks[1];

  TwoWorkers() {
    a.requests.add(3);
    b.requests.add(4);
    a.clients.add(1);
    b.clients.add(2);
    a.upstreams_ready.add(2);
    b.upstreams_ready.add(2);
    const commands::CommandInfo* setname = command({"CLIENT", "setname", "x"});
    const commands::CommandInfo* get = command({"get", "k"});
    CHECK(a.countCommand(setname) == setname->id);
    b.countCommand(setname);
    const uint16_t slot = b.countCommand(setname);
    b.per_command_errors[slot].add();  // as Client::replyError does with the slot
    a.countCommand(get);
    CHECK(a.countCommand(nullptr) == Stats::kNoCommand);
    a.observeLatency(50);       // first bucket (le 0.0001)
    b.observeLatency(2000000);  // above every bound
  }

  std::string prometheus() const {
    std::string out;
    PromWriter w(out);
    writePrometheus(stats, w);
    return out;
  }
  std::string info() const {
    std::string out;
    appendProxyInfoLines(stats, out);
    return out;
  }
};

bool hasLine(const std::string& text, std::string_view line) {
  return ("\n" + text).find("\n" + std::string(line) + "\n") != std::string::npos;
}

TEST_CASE("Prometheus rendering: sums over workers, subcommands labelled apart") {
  const std::string m = TwoWorkers().prometheus();
  CAPTURE(m);
  CHECK(hasLine(m, "# HELP corral_requests_total Requests parsed."));
  CHECK(hasLine(m, "# TYPE corral_requests_total counter"));
  CHECK(hasLine(m, "corral_requests_total 7"));
  CHECK(hasLine(m, "# TYPE corral_clients gauge"));
  CHECK(hasLine(m, "corral_clients 3"));
  // Labelled by address (upstream_gauges.h), so not a row of the table.
  CHECK(m.find("corral_upstream_connections_ready") == std::string::npos);
  CHECK(hasLine(m, "corral_command_requests_total{command=\"client|setname\"} 3"));
  CHECK(hasLine(m, "corral_command_errors_total{command=\"client|setname\"} 1"));
  CHECK(hasLine(m, "corral_command_requests_total{command=\"get\"} 1"));
  // A command with calls is listed in the errors family too, with 0.
  CHECK(hasLine(m, "corral_command_errors_total{command=\"get\"} 0"));
  // Neither the container nor an uncalled command is listed.
  CHECK(m.find("command=\"client\"") == std::string::npos);
  CHECK(m.find("command=\"set\"") == std::string::npos);
  CHECK(hasLine(m, "# TYPE corral_request_duration_seconds histogram"));
  CHECK(hasLine(m, "corral_request_duration_seconds_bucket{le=\"0.0001\"} 1"));
  CHECK(hasLine(m, "corral_request_duration_seconds_bucket{le=\"1\"} 1"));
  CHECK(hasLine(m, "corral_request_duration_seconds_bucket{le=\"+Inf\"} 2"));
  CHECK(hasLine(m, "corral_request_duration_seconds_sum 2.000050"));
  CHECK(hasLine(m, "corral_request_duration_seconds_count 2"));
}

TEST_CASE("INFO rendering: the same sums, cmdstat lines per command and subcommand") {
  const std::string i = TwoWorkers().info();
  CAPTURE(i);
  CHECK(i.find("\r\n") != std::string::npos);  // INFO's line ends
  CHECK(hasLine(i, "corral_requests:7\r"));
  CHECK(hasLine(i, "corral_connected_clients:3\r"));
  CHECK(hasLine(i, "corral_request_duration:count=2,usec=2000050\r"));
  CHECK(hasLine(i, "corral_cmdstat_client|setname:calls=3,failed_calls=1\r"));
  CHECK(hasLine(i, "corral_cmdstat_get:calls=1,failed_calls=0\r"));
  CHECK(i.find("corral_cmdstat_set:") == std::string::npos);
  CHECK(i.find("corral_cmdstat_client:") == std::string::npos);
  // Shown by Client::appendProxyInfo as "ready/configured", not by the table.
  CHECK(i.find("corral_upstream_connections_ready") == std::string::npos);
  // Commands come after the plain counters, as Redis's cmdstat lines end its INFO.
  CHECK(i.find("corral_requests:") < i.find("corral_cmdstat_"));
  CHECK(hasLine(i, "corral_near_hit_ratio:0.0000\r"));  // no near read yet
  TwoWorkers near;
  near.a.near_hits.set(3);
  near.b.near_hits.set(5);
  near.b.near_misses.set(2);
  CHECK(hasLine(near.info(), "corral_near_hit_ratio:0.8000\r"));  // 8 of 10, over both workers
}

TEST_CASE("every row shows in both renderings, once, under its own name") {
  const TwoWorkers w;
  const std::string m = w.prometheus();
  const std::string i = w.info();
  std::set<std::string_view> names;
  std::set<std::string_view> infos;
  for (const MetricRow& r : metricRows()) {
    CAPTURE(r.name);
    CHECK(names.insert(r.name).second);
    const int fields =
        (r.counter != nullptr) + (r.per_command != nullptr) + (r.histogram != nullptr);
    CHECK(fields == 1);
    CHECK((r.type == MetricType::kHistogram) == (r.histogram != nullptr));
    CHECK(hasLine(m, "# TYPE " + std::string(r.name) +
                         (r.type == MetricType::kCounter ? " counter"
                          : r.type == MetricType::kGauge ? " gauge"
                                                         : " histogram")));
    if (r.counter != nullptr) CHECK(m.find("\n" + std::string(r.name) + " ") != std::string::npos);
    if (r.info.empty()) continue;
    CHECK(infos.insert(r.info).second);
    if (r.per_command != nullptr) {
      // A key of the cmdstat lines: "name:calls=1,failed_calls=0".
      const std::string key = std::string(r.info) + "=";
      CHECK((i.find(":" + key) != std::string::npos || i.find("," + key) != std::string::npos));
    } else {
      CHECK(("\n" + i).find("\n" + std::string(r.info) + ":") != std::string::npos);
    }
  }
}

}  // namespace
}  // namespace corral::net
