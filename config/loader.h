// Private to config/: the Loader, which walks one YAML tree (and the policy files it names)
// into a Config, collecting every error. Its methods live in the file of the part they walk:
//
//   loader.cc          entry points (loadConfigText/File), the root key table, walkMap (known
//                      keys, duplicates, "did you mean"), typed leaves, error formatting, sorting
//   proxy_sections.cc  listen, upstream, limits, auth (admin and log are small: in walkRoot)
//   sentinel_section.cc, cluster_section.cc  upstream.sentinel, upstream.cluster
//   cross_check.cc     rules between proxy keys; credentials copied into each address
//   policy_sections.cc origins, global, rate limits, defaults, policies, policy_files entries
//   origin_fields.cc   origins.<name>.headers, .retry, .breaker
//   policy_fields.cc   the table of policy fields: how each is parsed and merged
//   policy_files.cc    reading each policy_files entry (a file, or a directory of *.yaml)
//   policy_merge.cc    defaults merged into each policy; rules between fields; required fields
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/values.h"

namespace corral::config::detail {

// Byte limits below 1KiB are almost certainly a forgotten unit ("max_request_bytes: 64").
inline constexpr uint64_t kMinByteLimit = 1024;

// ---- error text -------------------------------------------------------------------------------

// Escapes control bytes and caps the length (80 bytes, cut at a UTF-8 boundary, then "...").
std::string quoteForError(std::string_view s);
// A yaml-cpp message made safe to print ("syntax error" when it is empty).
std::string escapeMessage(std::string_view s);
// Optimal string alignment distance, for "unknown key (did you mean ...?)".
size_t editDistance(std::string_view a, std::string_view b);
std::string joinPath(const std::string& prefix, std::string_view name);  // "a" + "b" -> "a.b"
std::string indexPath(const std::string& path, size_t i);                // "a", 2 -> "a[2]"
std::string formatMillis(Millis d);                                      // "1500ms"
std::string formatWhere(const Where& w);                                 // "file:line:col"

// Reads a whole file (at most 16MiB) into *text. On failure returns the reason: "cannot read
// (No such file or directory)" or "is larger than 16MiB".
std::optional<std::string> readWholeFile(const std::string& path, std::string* text);

// A value with where it was written, for checks that run after the walk.
template <typename T>
struct Located {
  T value;
  YAML::Mark mark;
  std::string path;
};

// One policy field (ttl.min, fill.origin, ...) as written in one layer.
struct Written {
  Where where;       // of the value
  std::string text;  // the value as written, for messages
  std::string path;  // the full key path: "policies[2].ttl.min", "defaults.ttl.min"
};

// One layer of policy fields: a policy, a policy file's `defaults:` or the main `defaults:`.
// Layers are parsed on their own and merged field by field afterwards (Loader::apply), which is
// the YAML deep merge: nested mappings merge key by key, lists and scalars replace. Each value
// is checked once, in the layer that wrote it, so an error in `defaults:` is reported once, at
// its own position, however many policies inherit it.
struct PolicyBody {
  PolicySpec spec;
  std::string prefix = "defaults";  // error path of the mapping: "policies[2]", "defaults"
  Where where;                      // of the mapping
  int file_defaults = -1;           // policies: index of their file's defaults, -1 = none
  // Errors reported in this layer (its walk and its checks) and, after apply(), in the layers
  // merged into it: a policy with none is passed to the compiler whole (finishPolicies).
  size_t errors = 0;
  std::map<std::string, Written, std::less<>> set;  // field -> where, for valid values
  std::set<std::string, std::less<>> written;       // every field written, valid or not

  bool has(std::string_view field) const { return set.find(field) != set.end(); }
  // Written but invalid: already reported, so checks that need the field stay quiet.
  bool bad(std::string_view field) const {
    return written.find(field) != written.end() && !has(field);
  }
};

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)), cur_file_(file_) {}

  // Parses and validates text. May throw (yaml-cpp, bad_alloc): the caller catches.
  void run(const std::string& text);

  // Adds one error; used by the caller for exceptions and file errors too.
  void fail(const YAML::Mark& mark, std::string path, std::string rule,
            std::optional<std::string> got = std::nullopt);

  LoadResult finish();

 private:
  using Handler =
      std::function<void(const YAML::Node& key, const YAML::Node& value, const std::string& path)>;
  struct Key {
    std::string_view name;
    Handler handle;
  };

  // Where to point at a value: an empty value's own mark is the next token, so use the key's.
  static YAML::Mark where(const YAML::Node& key, const YAML::Node& value) {
    return value.IsNull() ? key.Mark() : value.Mark();
  }
  static std::string describe(const YAML::Node& v);
  // Like describe(), but a scalar is described by its size only: the value is a secret.
  static std::string describeSecret(const YAML::Node& v);
  void failValue(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                 std::string rule) {
    fail(where(key, value), path, std::move(rule), describe(value));
  }

  // Visits node's keys in file order: a known key runs its handler; a duplicate or unknown key
  // is an error (with "did you mean" for a near miss). False when node is neither a mapping nor
  // empty (an empty value is an empty mapping).
  bool walkMap(const YAML::Node& node, const std::string& prefix, const std::vector<Key>& keys);
  // The part of walkMap that knows no key names, for mappings whose keys are chosen by the
  // operator (origins): reports keys that are not scalars and duplicates, visits the rest.
  // node must be a mapping.
  void eachKey(const YAML::Node& node, const std::string& prefix, const Handler& visit);

  // Typed leaves. Each reports its own error and leaves *out untouched on failure.
  const std::string* scalar(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                            const char* rule);
  bool duration(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                bool allow_zero, Millis* out);
  void integer(const YAML::Node& key, const YAML::Node& value, const std::string& path, int64_t min,
               int64_t max, const std::function<void(int64_t)>& set);
  void size(const YAML::Node& key, const YAML::Node& value, const std::string& path, uint64_t min,
            uint64_t max, const std::function<void(uint64_t)>& set);
  void string(const YAML::Node& key, const YAML::Node& value, const std::string& path,
              std::string* out);
  std::optional<Located<ListenAddress>> listenAddress(const YAML::Node& key,
                                                      const YAML::Node& value,
                                                      const std::string& path);
  std::optional<Located<ParsedUpstream>> upstreamAddress(const YAML::Node& key,
                                                         const YAML::Node& value,
                                                         const std::string& path);

  void walkRoot(const YAML::Node& root);
  void walkListen(const YAML::Node& key, const YAML::Node& value, const std::string& path);
  bool walkUpstream(const YAML::Node& value, const std::string& path);
  void walkLimits(const YAML::Node& value, const std::string& path);
  void walkAuth(const YAML::Node& value, const std::string& path);
  void walkAdmin(const YAML::Node& value, const std::string& path);  // admin_section.cc
  void walkSentinel(const YAML::Node& key, const YAML::Node& value, const std::string& path);
  // The rules of upstream.sentinel that need other keys; false when it is not set.
  bool crossCheckSentinel();
  void walkCluster(const YAML::Node& key, const YAML::Node& value, const std::string& path);
  // The rules of upstream.cluster that need other keys, and the seeds and primary template
  // completed with the credentials; false when it is not set.
  bool crossCheckCluster();
  // upstream.read_from and upstream.cluster.read_from: primary, replica or prefer_replica.
  bool readFrom(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                ReadFrom* out);
  // password vs password_env, read from the environment: upstream.*, upstream.sentinel.* and
  // upstream.cluster.*.
  void resolvePasswordEnv(const std::optional<YAML::Mark>& password_mark,
                          const std::optional<Located<std::string>>& env, const char* other,
                          std::string* password);
  void walkAuthUser(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                    std::map<std::string, std::string>* names);
  void walkPassthrough(const YAML::Node& value, const std::string& path);
  bool users_failed_ = false;  // an auth.users entry had errors (and was left out)
  void crossCheck();
  void crossCheckTls();
  void walkTlsServer(const YAML::Node& value, const std::string& path);
  void walkTlsClient(const YAML::Node& value, const std::string& path);
  bool tlsVersion(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                  TlsVersion* out);
  void tlsFile(const YAML::Node& key, const YAML::Node& value, const std::string& path,
               std::string* out);

  // ---- policies: origins, global, defaults, policies, policy_files ----
  using ParseFn = bool (*)(Loader&, PolicySpec&, const YAML::Node& key, const YAML::Node& value,
                           const std::string& path);
  using CopyFn = void (*)(PolicySpec& to, const PolicySpec& from);
  // Every field of a policy, declared once: how to parse it, how to merge it.
  struct PolicyField {
    std::string_view path;  // "mode", "ttl.min": section.key
    ParseFn parse;
    CopyFn copy;
    const char* not_in_defaults = nullptr;  // set: refused under defaults:, for this reason
  };
  static const std::vector<PolicyField>& policyFields();

  Where whereOf(const YAML::Mark& mark) const;
  void failAt(const Where& where, std::string path, std::string rule,
              std::optional<std::string> got = std::nullopt);
  bool boolean(const YAML::Node& key, const YAML::Node& value, const std::string& path, bool* out);
  // One of the given words; the rule lists them.
  template <typename E>
  bool choice(const YAML::Node& key, const YAML::Node& value, const std::string& path,
              std::initializer_list<std::pair<std::string_view, E>> options, E* out) {
    std::string rule = "must be one of ";
    for (const auto& o : options) {
      if (&o != options.begin()) rule += ", ";
      rule += o.first;
    }
    const std::string* s = scalar(key, value, path, rule.c_str());
    if (s == nullptr) return false;
    for (const auto& o : options) {
      if (*s == o.first) {
        *out = o.second;
        return true;
      }
    }
    failValue(key, value, path, rule);
    return false;
  }
  template <typename E>
  bool choiceOpt(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                 std::initializer_list<std::pair<std::string_view, E>> options,
                 std::optional<E>* out) {
    E e{};
    if (!choice(key, value, path, options, &e)) return false;
    *out = e;
    return true;
  }
  bool durationOpt(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                   std::optional<Millis>* out);
  bool integerOk(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                 int64_t min, int64_t max, int64_t* out);
  bool sizeOk(const YAML::Node& key, const YAML::Node& value, const std::string& path, uint64_t min,
              uint64_t max, uint64_t* out);
  bool jitter(const YAML::Node& key, const YAML::Node& value, const std::string& path, double* out);
  bool positiveNumber(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                      double* out);
  // A name unique within *seen (name -> "path at file:line:col" of its first use).
  bool uniqueName(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                  std::map<std::string, std::string>* seen, std::string* out);
  bool commandList(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                   bool allow_categories, std::vector<std::string>* out,
                   std::vector<Located<std::string>>* located = nullptr);
  bool fillCommands(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                    std::vector<std::string>* out);
  bool keyBy(const YAML::Node& key, const YAML::Node& value, const std::string& path, bool global,
             std::vector<KeyByPart>* out);
  bool rateLimits(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                  bool global, std::vector<RateLimitSpec>* out);
  void walkRateLimit(const YAML::Node& key, const YAML::Node& node, const std::string& path,
                     bool global, std::vector<RateLimitSpec>* out);
  void walkOrigins(const YAML::Node& key, const YAML::Node& value, const std::string& path);
  // origins.<name>.headers, .retry and .breaker (origin_fields.cc).
  void originHeaders(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                     std::vector<OriginHeader>* out);
  void originRetry(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                   OriginRetrySpec* out);
  void originBreaker(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                     OriginBreakerSpec* out);
  void walkGlobal(const YAML::Node& value, const std::string& path);
  void walkDefaults(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                    PolicyBody* body);
  void walkPolicyBody(const YAML::Node& node, const std::string& prefix, bool is_defaults,
                      PolicyBody* body);
  void walkPolicies(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                    int file_defaults);
  void walkPolicyFiles(const YAML::Node& key, const YAML::Node& value, const std::string& path);
  void readPolicyFiles();
  void readPolicyFile(const std::string& name, const Located<std::string>& entry,
                      std::map<std::string, std::string>* read);
  static void apply(PolicyBody* merged, const PolicyBody& top);
  void checkLayer(const PolicyBody& body, const std::set<std::string, std::less<>>& origins);
  void checkConsistency(const PolicyBody& merged, const PolicyBody& top);
  void checkComplete(const PolicyBody& merged, const PolicyBody& top);
  void finishPolicies();

  std::string file_;      // the main config file
  std::string cur_file_;  // the file being walked: file_ or a policy file; marks refer to it
  std::vector<ConfigError> errors_;
  Config cfg_;

  // Policies, collected during the walk; merged and checked by finishPolicies().
  PolicyBody main_defaults_;
  std::vector<PolicyBody> file_defaults_;  // one per policy file read (empty if it has none)
  std::vector<PolicyBody> policy_bodies_;  // inline ones first, then files in reading order
  std::vector<Located<std::string>> policy_file_entries_;
  std::map<std::string, std::string> policy_names_;  // name -> "path at file:line:col"
  std::map<std::string, std::string> limit_names_;   // across global and every policy
  std::vector<size_t> bad_global_limits_;  // indexes in global.rate_limits of limits with errors
  bool policies_finished_ = false;         // finishPolicies() ran: cfg_.policy is checkable

  // Collected during the walk for crossCheck().
  YAML::Mark root_mark_ = YAML::Mark::null_mark();
  std::optional<YAML::Mark> upstream_mark_;
  // The root or upstream was not a mapping: already reported, so "primary is required" is noise.
  bool upstream_unusable_ = false;
  bool listen_seen_ = false;
  std::vector<Located<ListenAddress>> listen_;
  std::optional<Located<ListenAddress>> admin_listen_;
  bool primary_seen_ = false;
  std::optional<Located<ParsedUpstream>> primary_;
  std::vector<Located<ParsedUpstream>> replicas_;
  std::optional<YAML::Mark> read_from_mark_;
  std::optional<YAML::Mark> password_mark_;
  std::optional<Located<std::string>> password_env_;
  std::optional<Located<std::string>> reconnect_min_;  // as written, when given and valid
  std::optional<Located<std::string>> reconnect_max_;
  // upstream.sentinel (sentinel_section.cc)
  std::optional<YAML::Mark> sentinel_mark_;  // the key, when written
  bool sentinel_ok_ = false;                 // a mapping with master and addresses
  std::vector<Located<ListenAddress>> sentinel_addresses_;
  std::optional<YAML::Mark> sentinel_password_mark_;
  std::optional<Located<std::string>> sentinel_password_env_;
  std::optional<Located<int64_t>> db_;  // upstream.db, when written and valid
  // upstream.cluster (cluster_section.cc)
  std::optional<YAML::Mark> cluster_mark_;  // the key, when written
  std::vector<Located<ParsedUpstream>> cluster_seeds_;
  bool cluster_user_seen_ = false;
  bool cluster_password_seen_ = false;  // password or password_env written (valid or not)
  std::optional<YAML::Mark> cluster_password_mark_;
  std::optional<Located<std::string>> cluster_password_env_;
  std::optional<Located<bool>> cluster_tls_;  // upstream.cluster.tls as written
  std::optional<YAML::Mark> cluster_read_from_mark_;
  std::optional<YAML::Mark> tls_server_mark_;
  std::optional<Located<std::string>> client_certs_;  // tls.client_certs, when written
  std::vector<Located<std::string>> tls_files_;       // every TLS file named: checked readable
  std::vector<ConfigError> refused_by_check_;
};

}  // namespace corral::config::detail
