// mergeInfo / mergeInfoText (INFO fanned out to every primary) and its wiring: fanOut's INFO
// row and mergeReplies(Merge::kInfo). The captures are INFO everything of the three primaries
// of a redis-server 7.0.15 cluster (testdata/capture.py --info); expected values are computed
// here from the captures' own lines.
#include "proxy/cluster/info_merge.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/cluster/fanout.h"
#include "proxy/cluster/split.h"
#include "proxy/cluster/test_util.h"
#include "proxy/codec/resp.h"

namespace corral::cluster {
namespace {

using test::fixture;
using Texts = std::vector<std::string_view>;

std::string mergedText(const Texts& texts) {
  std::string out;
  mergeInfoText(texts, &out);
  return out;
}

std::string mergedReply(const Texts& replies) {
  std::string out;
  mergeReplies(Merge::kInfo, replies, &out);
  return out;
}

// The text inside a bulk string reply "$<n>\r\n<text>\r\n".
std::string_view bulkText(std::string_view reply) {
  const size_t hdr = reply.find("\r\n");
  REQUIRE(hdr != std::string_view::npos);
  REQUIRE(reply.size() >= hdr + 4);
  CHECK(std::stoul(std::string(reply.substr(1, hdr - 1))) == reply.size() - hdr - 4);
  return reply.substr(hdr + 2, reply.size() - hdr - 4);
}

// key -> value of every "key:value" line (a test's own reading of INFO).
std::map<std::string, std::string> fields(std::string_view text) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find("\r\n", pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 2;
    const size_t colon = line.find(':');
    if (line.empty() || line[0] == '#' || colon == std::string_view::npos) continue;
    out.emplace(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
  }
  return out;
}

// The section headers, in order.
std::vector<std::string> headers(std::string_view text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = text.find("# ", pos)) != std::string_view::npos) {
    if (pos == 0 || text[pos - 1] == '\n') {
      out.emplace_back(text.substr(pos, text.find("\r\n", pos) - pos));
    }
    pos += 2;
  }
  return out;
}

int64_t num(const std::string& s) { return std::stoll(s); }

// The integer after "name=" in "a=1,name=2".
int64_t sub(const std::string& value, const std::string& name) {
  const size_t at = value.find(name + "=");
  REQUIRE(at != std::string::npos);
  REQUIRE((at == 0 || value[at - 1] == ','));
  return std::stoll(value.substr(at + name.size() + 1));
}

std::string fixed2(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f", v);
  return buf;
}

TEST_CASE("one primary: Redis's own text, plus the merged-primaries line in # Cluster") {
  // Every sum of one value is that value: the *_human fields and usec_per_call recomputed
  // must read as Redis wrote them.
  const std::string r0 = fixture("info_0_resp2.resp");
  const std::string text(bulkText(r0));
  std::string want = text;
  const size_t at = want.find("cluster_enabled:1\r\n");
  REQUIRE(at != std::string::npos);
  want.insert(at + 19, "corral_merged_primaries:1\r\n");
  CHECK(mergedText({text}) == want);
  std::string reply;
  codec::appendBulk(reply, want);
  CHECK(mergedReply({r0}) == reply);
}

TEST_CASE("RESP3: a verbatim txt reply gives a verbatim txt reply") {
  const std::string r3 = fixture("info_0_resp3.resp");
  REQUIRE(r3.starts_with("="));
  const size_t hdr = r3.find("\r\n");
  REQUIRE(r3.substr(hdr + 2, 4) == "txt:");
  const std::string text = r3.substr(hdr + 6, r3.size() - hdr - 8);
  const std::string merged = mergedReply({r3, r3});
  REQUIRE(merged.starts_with("="));
  const size_t mhdr = merged.find("\r\n");
  CHECK(std::stoul(merged.substr(1, mhdr - 1)) == merged.size() - mhdr - 4);
  CHECK(merged.substr(mhdr + 2, 4) == "txt:");
  CHECK(merged.ends_with("\r\n"));
  const std::string mtext = merged.substr(mhdr + 6, merged.size() - mhdr - 8);
  CHECK(mtext == mergedText({text, text}));
  CHECK(fields(mtext).at("corral_merged_primaries") == "2");
  CHECK(fields(mtext).at("connected_clients") ==
        std::to_string(2 * num(fields(text).at("connected_clients"))));
  // A RESP2 reply among them is read too; the type is the first's.
  const std::string r2 = fixture("info_1_resp2.resp");
  CHECK(mergedReply({r3, r2}).starts_with("="));
  CHECK(mergedReply({r2, r3}).starts_with("$"));
}

TEST_CASE("three primaries: counters summed, peaks maxed, settings and text the first's") {
  const std::string r[3] = {fixture("info_0_resp2.resp"), fixture("info_1_resp2.resp"),
                            fixture("info_2_resp2.resp")};
  const std::string_view t[3] = {bulkText(r[0]), bulkText(r[1]), bulkText(r[2])};
  const std::vector<std::map<std::string, std::string>> f = {fields(t[0]), fields(t[1]),
                                                             fields(t[2])};
  const std::string out_reply = mergedReply({r[0], r[1], r[2]});
  const std::string_view out = bulkText(out_reply);
  const auto m = fields(out);
  auto sum = [&](const std::string& k) {
    return std::to_string(num(f[0].at(k)) + num(f[1].at(k)) + num(f[2].at(k)));
  };

  CHECK(headers(out) == headers(t[0]));
  CHECK(m.at("corral_merged_primaries") == "3");
  for (const char* k : {"connected_clients", "used_memory", "used_memory_rss", "used_memory_peak",
                        "total_commands_processed", "total_net_input_bytes", "keyspace_hits",
                        "total_error_replies", "instantaneous_ops_per_sec", "blocked_clients"}) {
    CAPTURE(k);
    CHECK(m.at(k) == sum(k));
  }
  // Rates with decimals: summed, two digits.
  const double kbps = std::stod(f[0].at("instantaneous_input_kbps")) +
                      std::stod(f[1].at("instantaneous_input_kbps")) +
                      std::stod(f[2].at("instantaneous_input_kbps"));
  CHECK(m.at("instantaneous_input_kbps") == fixed2(kbps));
  // One node's peak: the largest, not the sum.
  int64_t most = 0;
  for (const auto& x : f) most = std::max(most, num(x.at("client_recent_max_input_buffer")));
  CHECK(m.at("client_recent_max_input_buffer") == std::to_string(most));
  CHECK(most > 0);
  // Settings, ratios, strings and whole sections that do not add up: the first primary's.
  for (const char* k : {"maxclients", "total_system_memory", "total_system_memory_human",
                        "maxmemory_human", "mem_fragmentation_ratio", "used_memory_peak_perc",
                        "maxmemory_policy", "run_id", "tcp_port", "uptime_in_seconds", "role",
                        "used_cpu_sys", "rdb_changes_since_last_save", "master_repl_offset"}) {
    CAPTURE(k);
    CHECK(m.at(k) == f[0].at(k));
  }
  // _human from the merged bytes: 1.77M + 1.84M + 1.81M of the capture are 5.42M.
  const double mib = static_cast<double>(num(m.at("used_memory"))) / (1024.0 * 1024.0);
  CHECK(m.at("used_memory_human") == fixed2(mib) + "M");
  CHECK(m.at("used_memory_human") != f[0].at("used_memory_human"));
  // The Server section is the first's, line for line.
  const size_t s0 = t[0].find("\r\n\r\n");
  CHECK(out.substr(0, s0) == t[0].substr(0, s0));

  SUBCASE("# Keyspace: counts summed, avg_ttl weighted by expires") {
    int64_t keys = 0;
    int64_t expires = 0;
    double weighted = 0;
    for (const auto& x : f) {
      keys += sub(x.at("db0"), "keys");
      expires += sub(x.at("db0"), "expires");
      weighted += static_cast<double>(sub(x.at("db0"), "avg_ttl") * sub(x.at("db0"), "expires"));
    }
    CHECK(keys == 300);  // what capture.py wrote
    CHECK(sub(m.at("db0"), "keys") == keys);
    CHECK(sub(m.at("db0"), "expires") == expires);
    CHECK(sub(m.at("db0"), "avg_ttl") ==
          static_cast<int64_t>(weighted / static_cast<double>(expires) + 0.5));
  }
  SUBCASE("# Commandstats: summed per subfield, usec_per_call again, every node's commands") {
    const std::string k = "cmdstat_set";
    int64_t calls = 0;
    int64_t usec = 0;
    int64_t rejected = 0;
    for (const auto& x : f) {
      calls += sub(x.at(k), "calls");
      usec += sub(x.at(k), "usec");
      rejected += sub(x.at(k), "rejected_calls");
    }
    CHECK(m.at(k) ==
          "calls=" + std::to_string(calls) + ",usec=" + std::to_string(usec) +
              ",usec_per_call=" + fixed2(static_cast<double>(usec) / static_cast<double>(calls)) +
              ",rejected_calls=" + std::to_string(rejected) + ",failed_calls=0");
    // ECHO ran on the second primary only: its line as that node wrote it, at the end.
    REQUIRE(f[0].count("cmdstat_echo") == 0);
    CHECK(m.at("cmdstat_echo") == f[1].at("cmdstat_echo"));
    const size_t cs = out.find("# Commandstats");
    const size_t end = out.find("\r\n\r\n", cs);
    CHECK(out.find("cmdstat_echo:", cs) < end);
    CHECK(out.find("cmdstat_echo:", cs) > out.find("cmdstat_ping:", cs));
  }
  SUBCASE("# Errorstats: the first's errors and the others'") {
    CHECK(m.at("errorstat_MOVED") == f[0].at("errorstat_MOVED"));
    REQUIRE(f[0].count("errorstat_ERR") == 0);
    CHECK(m.at("errorstat_ERR") == f[2].at("errorstat_ERR"));
  }
  SUBCASE("# Latencystats: the first's only") {
    CHECK(m.count("latency_percentiles_usec_echo") == 0);
    CHECK(m.at("latency_percentiles_usec_set") == f[0].at("latency_percentiles_usec_set"));
  }
  SUBCASE("reply order does not change the sums") {
    const auto m2 = fields(bulkText(mergedReply({r[2], r[0], r[1]})));
    for (const char* k : {"used_memory", "db0", "cmdstat_set", "errorstat_ERR"}) {
      CAPTURE(k);
      CHECK(m2.at(k) == m.at(k));
    }
  }
}

TEST_CASE("fields and subfields that do not read as numbers keep the first's value") {
  const std::string a =
      "# Stats\r\nn:1\r\nbig:9223372036854775807\r\nword:abc\r\nonly_first:5\r\n"
      "odd:1\r\ninstantaneous_x:0.50\r\ninstantaneous_y:2\r\n";
  const std::string b =
      "# Stats\r\nn:2\r\nbig:1\r\nword:abd\r\nodd:x\r\ninstantaneous_x:1.25\r\n"
      "instantaneous_y:3\r\nonly_second:7\r\n";
  CHECK(mergedText({a, b}) ==
        "# Stats\r\nn:3\r\nbig:9223372036854775807\r\nword:abc\r\nonly_first:5\r\n"
        "odd:1\r\ninstantaneous_x:1.75\r\ninstantaneous_y:5\r\n");
}

TEST_CASE("# Keyspace: avg_ttl leaves out primaries that have not measured it") {
  const std::string a = "# Keyspace\r\ndb0:keys=10,expires=4,avg_ttl=1000\r\n";
  const std::string b = "# Keyspace\r\ndb0:keys=5,expires=1,avg_ttl=0\r\n";
  const std::string c = "# Keyspace\r\ndb0:keys=5,expires=4,avg_ttl=3000\r\n";
  CHECK(mergedText({a, b, c}) == "# Keyspace\r\ndb0:keys=20,expires=9,avg_ttl=2000\r\n");
  const std::string none = "# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\n";
  CHECK(mergedText({none, none}) == "# Keyspace\r\ndb0:keys=6,expires=0,avg_ttl=0\r\n");
  // A db only some primaries have: after the first's, summed over those that have it.
  const std::string empty = "# Keyspace\r\n";
  const std::string d1 = "# Keyspace\r\ndb1:keys=2,expires=0,avg_ttl=0\r\n";
  CHECK(mergedText({empty, d1, a + "db1:keys=1,expires=1,avg_ttl=50\r\n"}) ==
        "# Keyspace\r\ndb1:keys=3,expires=1,avg_ttl=50\r\ndb0:keys=10,expires=4,avg_ttl=1000\r\n");
  // A subfield one primary lacks keeps the first's value; the others still add up.
  const std::string odd = "# Keyspace\r\ndb0:keys=1,avg_ttl=9\r\n";
  CHECK(mergedText({a, odd}) == "# Keyspace\r\ndb0:keys=11,expires=4,avg_ttl=1000\r\n");
}

TEST_CASE("# Commandstats: usec_per_call of no calls, and subfields Redis may add later") {
  const std::string a =
      "# Commandstats\r\ncmdstat_get:calls=0,usec=0,usec_per_call=0.00,newfield=1,label=x\r\n";
  const std::string b =
      "# Commandstats\r\ncmdstat_get:calls=0,usec=0,usec_per_call=0.00,newfield=2,label=y\r\n";
  CHECK(mergedText({a, b}) ==
        "# Commandstats\r\ncmdstat_get:calls=0,usec=0,usec_per_call=0.00,newfield=3,label=x\r\n");
  const std::string c = "# Commandstats\r\ncmdstat_get:calls=3,usec=10,usec_per_call=3.33\r\n";
  CHECK(mergedText({a, c}) ==
        "# Commandstats\r\ncmdstat_get:calls=3,usec=10,usec_per_call=3.33,newfield=1,label=x\r\n");
}

TEST_CASE("*_human: recomputed from a merged base, the first's otherwise") {
  const std::string a =
      "# Memory\r\nused_memory:1000\r\nused_memory_human:1000B\r\nmaxmemory:1048576\r\n"
      "maxmemory_human:1.00M\r\nlonely_human:7B\r\nused_memory_peak_human:1.00K\r\n"
      "used_memory_peak:1024\r\nneg:-5\r\nneg_human:x\r\nrss:524288\r\nrss_human:512.00K\r\n";
  const std::string b =
      "# Memory\r\nused_memory:48\r\nused_memory_human:48B\r\nmaxmemory:1048576\r\n"
      "maxmemory_human:1.00M\r\nlonely_human:8B\r\nused_memory_peak_human:1.50G\r\n"
      "used_memory_peak:1610612736\r\nneg:1\r\nneg_human:y\r\nrss:524288\r\nrss_human:512.00K\r\n";
  CHECK(mergedText({a, b}) ==
        "# Memory\r\nused_memory:1048\r\nused_memory_human:1.02K\r\nmaxmemory:1048576\r\n"
        "maxmemory_human:1.00M\r\nlonely_human:7B\r\nused_memory_peak_human:1.50G\r\n"
        "used_memory_peak:1610613760\r\nneg:-4\r\nneg_human:x\r\nrss:1048576\r\n"
        "rss_human:1.00M\r\n");
}

TEST_CASE("layout: the first's sections and stray lines, LF-only input, empty texts") {
  const std::string a = "stray\r\n# Server\r\nv:1\r\nno colon here\r\n\r\n# Clients\r\nc:1\r\n";
  const std::string b = "# Clients\nc:2\nextra:1\n\n# Server\nv:2\n";
  CHECK(mergedText({a, b}) ==
        "stray\r\n\r\n# Server\r\nv:1\r\nno colon here\r\n\r\n# Clients\r\nc:3\r\n");
  CHECK(mergedText({b, a}) == "# Clients\r\nc:3\r\nextra:1\r\n\r\n# Server\r\nv:2\r\n");
  // INFO proxy: Redis has no such section and answers "" on every node.
  CHECK(mergedText({"", ""}) == "");
  CHECK(mergedReply({"$0\r\n\r\n", "$0\r\n\r\n"}) == "$0\r\n\r\n");
  CHECK(mergedText({"# Cluster\r\ncluster_enabled:1\r\n", ""}) ==
        "# Cluster\r\ncluster_enabled:1\r\ncorral_merged_primaries:2\r\n");
  CHECK(mergedText({}) == "");
}

TEST_CASE("mergeReplies(kInfo): errors win, other shapes are corral's error") {
  const std::string_view ok = "$16\r\n# Clients\r\nc:1\r\n\r\n";
  REQUIRE(mergedReply({ok, ok}) == "$16\r\n# Clients\r\nc:2\r\n\r\n");
  CHECK(mergedReply({ok, "-LOADING Redis is loading\r\n", "-ERR x\r\n"}) ==
        "-LOADING Redis is loading\r\n");
  CHECK(mergedReply({"!5\r\nERR x\r\n", ok}) == "!5\r\nERR x\r\n");
  CHECK(mergedReply({ok, "$-1\r\n"}) == kBadFragmentReply);
  CHECK(mergedReply({ok, ":1\r\n"}) == kBadFragmentReply);
  CHECK(mergedReply({ok, "*1\r\n$1\r\na\r\n"}) == kBadFragmentReply);
  CHECK(mergedReply({ok, "$3\r\nabc\r\nx"}) == kBadFragmentReply);  // bytes after the frame
  CHECK(mergedReply({"$5\r\nab"}) == kBadFragmentReply);            // cut short
  CHECK(mergedReply({}) == kBadFragmentReply);
  std::string direct;
  mergeInfo({}, &direct);
  CHECK(direct == kBadFragmentReply);
}

TEST_CASE("fanOut: INFO, with or without sections, goes to every primary") {
  for (const std::vector<std::string_view>& args : std::vector<std::vector<std::string_view>>{
           {"INFO"}, {"info", "keyspace"}, {"Info", "server", "clients"}, {"INFO", "everything"}}) {
    Merge m = Merge::kArrayInKeyOrder;
    CAPTURE(args.size());
    REQUIRE(fanOut(args, &m));
    CHECK(m == Merge::kInfo);
  }
  Merge m = Merge::kArrayInKeyOrder;
  CHECK_FALSE(fanOut(std::vector<std::string_view>{"INFOX"}, &m));
  CHECK_FALSE(fanOut(std::vector<std::string_view>{"CLUSTER", "INFO"}, &m));
}

}  // namespace
}  // namespace corral::cluster
