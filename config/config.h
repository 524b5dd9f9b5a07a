// Typed configuration of corral, with in-class defaults. The YAML contract is
// docs/policies.md (policies) and config/README.md (every key).
//
//   YAML file --> loadConfigFile() --> Config (or every error as file:line:col: key.path: rule)
//
// Each module receives only its own slice (UpstreamConfig, Limits, ...).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/policy_config.h"

namespace corral::config {

// "host:port", "[::1]:port", "unix:/path", or "tls://host:port" (a listener of `tls:`).
struct ListenAddress {
  enum class Kind : uint8_t { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  bool tls = false;   // listen: tls://; upstream: rediss:// (or upstream.tls.enabled)
  std::string host;   // kTcp: numeric address or name
  uint16_t port = 0;  // kTcp: 0 = pick a free port (reported on startup)
  std::string path;   // kUnix
  std::string text;   // as written, for logs
};

// An upstream Redis: "host:port", "unix:/path" or "redis://[user[:password]@]host:port[/db]".
struct UpstreamAddress {
  ListenAddress addr;
  std::string user;      // ACL user ("" = default user)
  std::string password;  // never logged or shown to clients
  int db = 0;
  std::string text;  // as written, with any password replaced by "***", for logs and errors
};

enum class ReadFrom : uint8_t { kPrimary, kReplica, kPreferReplica };

enum class TlsVersion : uint8_t { k12, k13 };

// `tls:` at the root: what the tls:// listeners present to apps. Files are read at startup and
// re-read on SIGHUP and when they change; a bad new file keeps the old certificate.
struct TlsServerConfig {
  std::string cert_file;       // PEM chain, leaf first (required when a tls:// listener exists)
  std::string key_file;        // PEM private key
  std::string client_ca_file;  // "" = no client certificates asked for
  enum class ClientCerts : uint8_t { kNone, kOptional, kRequired };
  ClientCerts client_certs = ClientCerts::kNone;  // default kRequired when client_ca_file is set
  TlsVersion min_version = TlsVersion::k12;
  Millis handshake_timeout{10000};  // a peer that has not finished its handshake by then is closed
  // Niceness added to the handshake thread (0-19): at 19 the kernel runs the workers, and so
  // the established clients, first whenever both want the CPU; lower it when new connections
  // matter more than the latency of the established ones.
  int handshake_nice = 19;
};

// `upstream.tls:`: how corral connects to Redis over TLS (every upstream when enabled, or one
// written as rediss://). Verification is on unless `insecure: true` (tests only).
struct TlsClientConfig {
  bool enabled = false;
  std::string ca_file;      // "" = the system's trust store
  std::string server_name;  // SNI and the name checked in the certificate; "" = the host
  std::string cert_file;    // client certificate, for servers with tls-auth-clients yes
  std::string key_file;
  bool insecure = false;  // no certificate or name checks; --check-config refuses it
  TlsVersion min_version = TlsVersion::k12;
};

// upstream.sentinel: the primary and its replicas are asked of Redis Sentinel (proxy/sentinel)
// instead of being written in the file.
struct SentinelConfig {
  std::string master;                    // the name the sentinels monitor the primary under
  std::vector<ListenAddress> addresses;  // the sentinels, at least one, no duplicates
  std::string user;                      // ACL user on the sentinels ("" = the default user)
  std::string password;                  // for the sentinels; never logged (or password_env)
  std::string password_env;
  Millis poll_interval{1000};  // every sentinel is asked this often, events or not
};

// upstream.cluster: a Redis Cluster behind corral. Apps keep one plain connection to corral;
// corral learns the slot map from the seeds (CLUSTER SHARDS) and routes each command by slot.
// After loading every field is final: credentials already fall back to upstream.user/password.
struct ClusterConfig {
  // The nodes the slot map is first asked of, at least one, no duplicates; TCP only, db 0, no
  // credentials in the URL; each completed with user, password and tls below.
  std::vector<UpstreamAddress> seeds;
  std::string user;          // ACL user on every node: upstream.cluster.user, else upstream.user
  std::string password;      // cluster.password (or its password_env), else upstream.password
  std::string password_env;  // the variable cluster.password came from ("" = none)
  bool tls = false;  // every node over TLS: cluster.tls, a rediss:// seed or upstream.tls.enabled
  std::optional<ReadFrom> read_from;  // unset: upstream.read_from applies
  Millis refresh_interval{5000};      // CLUSTER SHARDS asked this often, MOVED or not
  int max_refreshes_per_second = 5;   // refreshes (periodic, MOVED, failures) are capped at this
  // Answer CLUSTER SLOTS/SHARDS/NODES with corral as the only node holding every slot, for
  // clients that insist on cluster mode (off: corral does not present itself as a cluster).
  bool expose = false;
};

struct UpstreamConfig {
  // Required unless `sentinel` or `cluster` is set. With either it is a template: no address
  // (empty host), text "sentinel:<master>" or "cluster", and the credentials, db and (cluster)
  // tls of every data connection.
  UpstreamAddress primary;
  std::vector<UpstreamAddress> replicas;  // empty with Sentinel or Cluster (they report them)
  std::optional<SentinelConfig> sentinel;
  std::optional<ClusterConfig> cluster;  // not with primary, replicas or sentinel; db must be 0
  ReadFrom read_from = ReadFrom::kPrimary;
  Millis connect_timeout{500};
  Millis command_timeout{1000};  // from send to reply
  int pool_size = 1;
  // Dedicated connections per worker for clients whose commands hold state on the connection
  // (MULTI/EXEC, WATCH, blocking commands); one more is refused with an error.
  int max_dedicated = 256;  // pipelined connections per upstream per worker
  // Credentials applied to every upstream that does not carry its own in the URL.
  std::string user;
  std::string password;  // or from the env var named by password_env
  std::string password_env;
  int db = 0;
  Millis reconnect_min{50};  // jittered exponential backoff between connect attempts
  Millis reconnect_max{2000};
  TlsClientConfig tls;
};

// When /ready answers 200 (admin.ready_when).
enum class ReadyWhen {
  kUpstream,  // every worker has a ready primary connection (and, with Sentinel, a settled primary)
  kServing,   // the listeners are up and the workers run, whatever Redis's state
};

struct AdminConfig {
  std::optional<ListenAddress> listen;  // unset = no admin endpoint
  // admin.token_env: the variable it names holds the bearer token /policies requires. The token
  // itself is a secret: never logged, never quoted in an error.
  std::string token_env;
  std::string token;  // read from token_env at load; empty = /policies is open
  ReadyWhen ready_when = ReadyWhen::kUpstream;
};

// Per-client and per-process bounds: memory is bounded by configuration, not by traffic.
struct Limits {
  uint32_t max_clients = 10000;  // per process; over it: -ERR max number of clients reached
  uint64_t max_request_bytes = 64ull << 20;  // one request frame
  uint32_t max_args = 1024 * 1024;           // elements of one request
  uint64_t max_bulk_bytes = 512ull << 20;    // one bulk argument
  uint32_t max_inline_bytes = 64 << 10;      // one inline command line
  uint32_t max_pending = 1024;               // requests in flight per client before we stop reading
  uint64_t max_output_bytes = 64ull << 20;   // queued reply bytes per client before we stop reading
  // Bytes of a client's requests sent upstream and not yet answered before we stop reading it
  // (until they are answered): a stalled Redis must not make corral hold a client's pipeline.
  uint64_t max_pending_bytes = 64ull << 20;
  // One upstream reply. Past it the reply is dropped as it arrives and its request answered
  // "-ERR corral: reply too large (limits.max_reply_bytes)"; the connection stays in step.
  // 512MiB = Redis's proto-max-bulk-len, so a GET of any string Redis can hold still passes.
  uint64_t max_reply_bytes = 512ull << 20;
  // Deprecated and ignored: replies are framed at any depth Redis produces. Still accepted so
  // that existing files load.
  uint32_t max_reply_depth = 128;
  // A subscriber (any client on its own connection: pub/sub, MONITOR, tracking, RESP3) whose
  // queued output passes the hard limit, or stays above the soft limit for soft_time, is
  // disconnected: Redis's client-output-buffer-limit pubsub (defaults 32mb 8mb 60).
  uint64_t pubsub_hard_bytes = 32ull << 20;
  uint64_t pubsub_soft_bytes = 8ull << 20;
  Millis pubsub_soft_time{60000};
};

// One client login, from auth.users[i]. Exactly one of password, password_sha256 and
// password_env was written. The loader does no hashing (config/ depends on no other corral
// module): a plain password stays in `password` and the authenticator (proxy/net/auth.h) hashes
// it once at startup. Secrets here are never logged or echoed in errors.
struct AuthUser {
  std::string name;                  // non-empty, no spaces or control bytes; "default" = AUTH <pw>
  std::string password;              // from `password` or the env var; empty when has_sha
  std::array<uint8_t, 32> sha256{};  // decoded `password_sha256`, valid when has_sha
  bool has_sha = false;
  std::string password_env;  // name of the variable the password came from ("" = none), for logs
};

// Who checks a client's AUTH (README "The app's own credentials").
enum class AuthMode : uint8_t {
  kPassthrough,  // Redis: corral asks it, then runs the client's commands as that user
  kUsers,        // corral, against auth.users
  kOff,          // nobody: corral answers AUTH as a Redis without passwords would
};

// What a client that has not (yet) authenticated may do in passthrough mode.
enum class Unauthenticated : uint8_t {
  kUpstream,  // its commands run on corral's own upstream credentials (as before passthrough)
  kRefuse,    // -NOAUTH until it authenticates, as Redis with requirepass answers
};

// auth.passthrough: bounds and timings of checking clients' credentials against Redis. Every
// count is per worker except cache_entries (process-wide).
struct PassthroughConfig {
  Unauthenticated unauthenticated = Unauthenticated::kUpstream;
  Millis cache_ttl{10000};         // how long a verdict of Redis is reused (0: never)
  uint32_t cache_entries = 10000;  // accepted and refused verdicts each, process-wide
  uint32_t max_users = 64;         // credentials with shared connections of their own, per worker
  int pool_size = 1;               // shared connections per credential and db, per worker
  Millis idle_timeout{60000};  // a credential's connections close this long after its last client
  uint32_t max_checks = 16;    // AUTH checks in flight per worker; more wait in order
};

// Client authentication. The mode defaults to kUsers when users are listed, else kPassthrough.
struct AuthConfig {
  AuthMode mode = AuthMode::kPassthrough;
  std::vector<AuthUser> users;  // names unique, in file order; only with mode kUsers
  PassthroughConfig passthrough;
};

struct LogConfig {
  std::string level = "info";   // trace, debug, info, warn, error, critical, off
  std::string format = "text";  // text or json (config/logging.h shows both)
};

struct Config {
  std::string source;                 // file it was loaded from
  std::vector<ListenAddress> listen;  // default: 127.0.0.1:6380
  int workers = 1;
  UpstreamConfig upstream;
  AdminConfig admin;
  TlsServerConfig tls;  // for the tls:// listeners
  AuthConfig auth;
  Limits limits;
  LogConfig log;
  Millis shutdown_timeout{5000};  // SIGTERM: how long in-flight replies may take
  // origins, global, defaults (merged), policies and the files of policy_files: reloadable.
  PolicyConfig policy;
};

// One validation problem, already formatted as "file:line:col: key.path: rule (got x)".
struct ConfigError {
  std::string file;
  int line = 0;      // 1-based; 0 when unknown
  int col = 0;       // 1-based
  std::string path;  // e.g. "upstream.connect_timeout"
  std::string message;
  std::string format() const;
};

struct LoadResult {
  std::optional<Config> config;     // set only when errors is empty
  std::vector<ConfigError> errors;  // every error found, in file order
  // What the policy compiler should check, also when errors is not empty, so that one run
  // (--check-config) reports its errors with the loader's. With no errors: config->policy.
  // Otherwise: the origins and global rules; the global rate limits without errors; each policy
  // without errors (its own or inherited from defaults) in full; a policy with errors reduced
  // to its name, match and priority, so its template is still compiled (only if those three
  // are valid). Nothing from a file that could not be parsed.
  PolicyConfig policy;
  // Every file read, the main file first, then each policy file: the order errors sort in.
  std::vector<std::string> files;
  // Settings corral runs with but --check-config refuses (upstream.tls.insecure: true).
  std::vector<ConfigError> refused_by_check;
};

// Sorts errors as the loader does, so that errors found later (by the policy compiler) merge
// into the loader's: by file in the order of `files` (files not in it last, by name), then by
// line and column. Stable: errors at one position keep their order.
void sortErrors(std::vector<ConfigError>& errors, const std::vector<std::string>& files);

// Loads and validates a YAML file (or text, for tests), and the files its policy_files name
// (relative paths are relative to the directory of path / source_name). Never throws.
LoadResult loadConfigFile(const std::string& path);
LoadResult loadConfigText(const std::string& text, const std::string& source_name);

// An error at a recorded position, formatted like the loader's own, for checks that run after
// loading (the policy compiler): configError(spec.match_where, "policies[2].match", "overlaps ...",
// spec.match).format() == "file:line:col: policies[2].match: overlaps ... (got user:<id>)".
// got is the offending value as written: it is escaped and capped at 80 bytes, as the loader does.
ConfigError configError(const Where& where, std::string path, std::string rule,
                        std::optional<std::string> got = std::nullopt);

// An address as a client dials it: "host:port", "[v6]:port" or "unix:/path"; never a scheme or
// credentials, whatever form it was written in.
std::string endpointText(const ListenAddress& a);

// The resolved addresses of a config, one per line, "ROLE ADDRESS" with ADDRESS as
// endpointText() gives it: each `listen` (the default included), `admin` if set, `primary`, each
// `replica`, or with Sentinel each `sentinel`, or with Cluster each `seed`. An upstream corral
// sends a password to has a third word, "password" (never the password itself), and one over TLS
// a last word "tls". For scripts: `corral --print-addresses FILE`.
std::string addressLines(const Config& cfg);

}  // namespace corral::config
