#include "doctor/doctor.h"

#include <csignal>
#include <cstdio>
#include <thread>

#include "config/values.h"
#include "doctor/server_checks.h"
#include "policies/engine.h"
#include "policies/registry.h"

namespace corral::doctor {

const char* const kSubcommandUsage =
    "       corral doctor [--config FILE | redis[s]://[user:pass@]host:port[/db]]\n"
    "                     [--json] [--scan-keys N] [--scan-time DURATION]\n"
    "                     [--big-value SIZE] [--no-scan] [--timeout DURATION]\n"
    "       corral health [--config FILE] [--ready] [--timeout DURATION]\n";

const char* const kSubcommandHelp =
    "  doctor                  check the upstream Redis against the config's policies and\n"
    "                          print findings (--json: one object); exit 0 healthy, 1 warnings,\n"
    "                          2 errors or unreachable. --scan-keys (default 10000) and\n"
    "                          --scan-time (5s) bound the keyspace sample; --big-value (100KiB)\n"
    "                          is what MEMORY USAGE may show before a value counts as big.\n"
    "                          TLS upstreams are reached with upstream.tls as the proxy does;\n"
    "                          a rediss:// URL trusts the system store (or SSL_CERT_FILE)\n"
    "  health                  GET /health (--ready: /ready) on the config's admin.listen;\n"
    "                          exit 0 on HTTP 200, else 1 (for HEALTHCHECK and exec probes)\n";

namespace {

// Flag parsing shared by both subcommands: "--flag VALUE" or "--flag=VALUE".
class Flags {
 public:
  explicit Flags(const std::vector<std::string>& args) : args_(args) {}
  bool next() { return ++i_ < args_.size(); }
  const std::string& arg() const { return args_[i_]; }
  bool is(const char* flag) const {
    const std::string& a = arg();
    return a == flag || a.rfind(std::string(flag) + "=", 0) == 0;
  }
  bool value(std::string* out, std::string* err) {
    const std::string& a = arg();
    if (auto eq = a.find('='); eq != std::string::npos) {
      *out = a.substr(eq + 1);
      return true;
    }
    if (i_ + 1 >= args_.size()) {
      *err = a + " needs a value";
      return false;
    }
    *out = args_[++i_];
    return true;
  }
  bool duration(std::chrono::milliseconds* out, std::string* err) {
    const std::string flag = arg().substr(0, arg().find('='));
    std::string v, why;
    if (!value(&v, err)) return false;
    auto d = config::detail::durationWithReason(v, &why);
    if (!d || d->count() <= 0) {
      *err = flag + ": " + (d ? std::string("must be more than 0") : why) + " (got " + v + ")";
      return false;
    }
    *out = *d;
    return true;
  }

 private:
  const std::vector<std::string>& args_;
  size_t i_ = static_cast<size_t>(-1);
};

// The error finding of a connection that could not be made (check "connect") or was lost on
// the way (check "connection", added to what was found before).
Finding connectionLost(const std::string& check, const std::string& why) {
  Finding f;
  f.check = check;
  f.severity = Severity::kError;
  f.seen = why;
  f.action =
      why.find("TLS") != std::string::npos
          ? "check upstream.tls (ca_file, server_name, cert_file and key_file) and that the "
            "address is Redis's TLS port"
          : "check the address, the credentials (password / password_env, user) and that Redis "
            "is running";
  return f;
}

Report unreachable(const std::string& target, const std::string& why) {
  Report r;
  r.target = target;
  r.add(connectionLost("connect", why));
  return r;
}

int print(const Report& r, bool json) {
  const std::string text = json ? renderJson(r) : renderText(r);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return r.exitCode();
}

bool usesTls(const config::UpstreamConfig& u) {
  bool tls = u.tls.enabled || u.primary.addr.tls;
  for (const auto& r : u.replicas) tls = tls || r.addr.tls;
  if (u.sentinel) {
    for (const auto& s : u.sentinel->addresses) tls = tls || s.tls;
  }
  if (u.cluster) tls = tls || u.cluster->tls;
  return tls;
}

// A single-quoted YAML scalar of s.
std::string yamlQuoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace

bool parseDoctorArgs(const std::vector<std::string>& args, DoctorOptions* o, std::string* err) {
  Flags f(args);
  while (f.next()) {
    std::string v, why;
    if (f.is("--config") || f.arg() == "-c") {
      if (!f.value(&o->config_path, err)) return false;
    } else if (f.arg().rfind("redis://", 0) == 0 || f.arg().rfind("rediss://", 0) == 0) {
      o->url = f.arg();
    } else if (f.arg() == "--json") {
      o->json = true;
    } else if (f.arg() == "--no-scan") {
      o->scan = false;
    } else if (f.is("--scan-keys")) {
      if (!f.value(&v, err)) return false;
      bool overflow = false;
      auto n = config::detail::parseDigits(v, &overflow);
      if (!n || *n == 0) {
        *err = "--scan-keys: must be a whole number above 0 (got " + v + ")";
        return false;
      }
      o->limits.max_keys = *n;
    } else if (f.is("--scan-time")) {
      if (!f.duration(&o->limits.max_time, err)) return false;
    } else if (f.is("--big-value")) {
      if (!f.value(&v, err)) return false;
      auto n = config::detail::sizeWithReason(v, &why);
      if (!n) {
        *err = "--big-value: " + why + " (got " + v + ")";
        return false;
      }
      o->limits.big_value_bytes = *n;
    } else if (f.is("--timeout")) {
      if (!f.duration(&o->timeout, err)) return false;
    } else {
      *err = "doctor: unknown argument: " + config::detail::maskPassword(f.arg());
      return false;
    }
  }
  if (!o->url.empty() && !o->config_path.empty()) {
    *err = "doctor: give --config FILE or a redis:// URL, not both";
    return false;
  }
  return true;
}

int runDoctor(const std::vector<std::string>& args, const std::string& default_config) {
  DoctorOptions o;
  std::string err;
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::printf("usage: corral doctor ...\n%s\n%s", kSubcommandUsage, kSubcommandHelp);
    return 0;
  }
  if (!parseDoctorArgs(args, &o, &err)) {
    std::fprintf(stderr, "corral: %s\n", err.c_str());
    return 2;
  }
  // The proxy's own loader, also for a URL (as the one line of a config), so that a URL means
  // here what it means in upstream.primary, and its errors never show the password.
  config::LoadResult loaded =
      o.url.empty() ? config::loadConfigFile(o.config_path.empty() ? default_config : o.config_path)
                    : config::loadConfigText("upstream:\n  primary: " + yamlQuoted(o.url) + "\n",
                                             "<command line>");
  policies::Registry registry;
  std::vector<config::ConfigError> errors = loaded.errors;
  std::shared_ptr<const policies::PolicySet> set;
  if (loaded.config) set = policies::PolicySet::compile(loaded.config->policy, registry, &errors);
  if (!errors.empty()) {
    for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.format().c_str());
    std::fprintf(stderr, "corral doctor: the config does not load\n");
    return 2;
  }
  const config::Config& cfg = *loaded.config;
  const config::UpstreamConfig& up = cfg.upstream;
  if (!o.url.empty()) set = nullptr;  // a URL brings no policies
  // A server that closes while we write is an error to report, not a SIGPIPE (OpenSSL writes
  // with write(2)); main() ignores it only after the subcommands are dispatched.
  ::signal(SIGPIPE, SIG_IGN);

  // upstream.tls: the SSL_CTX the proxy would build (proxy/tls), made once for every TLS
  // connection of this run (sentinels, the primary, replicas, cluster seeds).
  Dialing dialing;
  dialing.timeout = o.timeout;
  std::unique_ptr<tls::Holder> tls_ctx;
  if (usesTls(up)) {
    tls_ctx = tls::Holder::client(up.tls, &err);
    if (tls_ctx == nullptr) {
      return print(unreachable(up.primary.text, "upstream.tls: " + err), o.json);
    }
    dialing.tls = tls_ctx.get();
    dialing.server_name = up.tls.server_name;
  }

  // The node to check: the primary, the one Sentinel names, or the first cluster seed that
  // answers.
  ServerContext ctx;
  std::vector<Endpoint> candidates;
  Endpoint primary{up.primary.addr, up.primary.user, up.primary.password, up.primary.db};
  if (up.sentinel) {
    ctx.via_sentinel = true;
    auto addr = askSentinels(*up.sentinel, dialing, &err);
    if (!addr) return print(unreachable("sentinel:" + up.sentinel->master, err), o.json);
    primary.addr = *addr;
    primary.addr.tls = up.tls.enabled;  // as the proxy reaches the primary a sentinel names
    candidates.push_back(primary);
  } else if (up.cluster) {
    ctx.via_cluster = true;
    for (const auto& s : up.cluster->seeds) {
      candidates.push_back({s.addr, up.cluster->user, up.cluster->password, 0});
    }
  } else {
    candidates.push_back(primary);
  }
  std::unique_ptr<Connection> conn;
  std::string target, why;
  for (const Endpoint& e : candidates) {
    target = config::endpointText(e.addr);
    conn = Connection::open(e, dialing, &err);
    if (conn) break;
    why += (why.empty() ? "" : "; ") + err;
  }
  if (!conn) return print(unreachable(target, why), o.json);

  Report report;
  report.target = target;
  if (up.primary.db != 0) report.facts.emplace_back("db", std::to_string(up.primary.db));
  report.facts.emplace_back("policies", set ? std::to_string(set->size()) : "none (no config)");
  if (const std::string v = conn->tlsVersion(); !v.empty()) {
    report.facts.emplace_back("tls", v + (up.tls.insecure ? ", certificate not checked" : ""));
  }
  if (tls_ctx != nullptr && up.tls.insecure) {
    Finding f;
    f.check = "tls";
    f.severity = Severity::kWarning;
    f.seen = "upstream.tls.insecure: true: Redis's certificate and name are not checked";
    f.action =
        "give upstream.tls.ca_file (or rely on the system store) and drop insecure; "
        "--check-config refuses it";
    report.add(std::move(f));
  }
  PolicyMix mix = set ? mixOf(cfg.policy.policies) : PolicyMix{};
  ctx.mix = &mix;
  auto lost = [&](const std::string& reason) {
    report.add(connectionLost("connection", reason));
    return print(report, o.json);
  };
  InfoSample first, second;
  if (!takeInfo(*conn, &first, &err) || !checkServer(*conn, first, ctx, report, &err)) {
    return lost(err);
  }
  if (first.info.text("redis_mode") == "sentinel") return print(report, o.json);

  if (o.scan) {
    // The sample runs on a replica when the config names one that answers.
    Connection* sample = conn.get();
    std::unique_ptr<Connection> replica;
    for (const auto& r : up.replicas) {
      std::string rerr;
      replica = Connection::open({r.addr, r.user, r.password, r.db}, dialing, &rerr);
      if (replica) break;
      Finding f;
      f.check = "replica";
      f.severity = Severity::kWarning;
      f.seen = rerr;
      f.action = "check upstream.replicas: corral sends reads there";
      report.add(std::move(f));
    }
    if (replica) sample = replica.get();
    KeyspaceTally tally;
    tally.where =
        sample->address() + (up.primary.db != 0 ? " db " + std::to_string(up.primary.db) : "");
    if (ctx.via_cluster) tally.where += " (this cluster node only)";
    if (!sampleKeyspace(*sample, set.get(), o.limits, &tally, &err)) return lost(err);
    addKeyspaceFindings(tally, report);
  }
  // The second INFO sample: at least a second after the first, so rates mean something.
  std::this_thread::sleep_until(first.at + std::chrono::seconds(1));
  if (!takeInfo(*conn, &second, &err)) return lost(err);
  checkRates(first, second, mix, report);
  return print(report, o.json);
}

}  // namespace corral::doctor
