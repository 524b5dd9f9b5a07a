// Rules that need several proxy keys at once, checked after the walk: listen clashes, the
// admin address, the required primary (or sentinel, or cluster), replicas that are the primary
// or corral itself, password vs password_env, reconnect_backoff min <= max. Then each upstream
// address is made self-contained: what its URL carries wins field by field, upstream.user/
// password/db fill in.
#include <vector>

#include "config/loader.h"

namespace corral::config::detail {

namespace {

constexpr const char* kDefaultListen = "127.0.0.1:6380";

}  // namespace

void Loader::crossCheck() {
  // listen: default when absent; clashes between our own addresses.
  if (!listen_seen_) {
    // The default takes part in the clash checks below like a written address.
    listen_.push_back(Located<ListenAddress>{*listenWithReason(kDefaultListen, true, nullptr),
                                             YAML::Mark::null_mark(), "listen (default)"});
    cfg_.listen.push_back(listen_.back().value);
  } else {
    for (size_t i = 0; i < listen_.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        // Port 0 asks the kernel for a free port, so two of them never clash.
        if (listen_[i].value.port != 0 && sameEndpoint(listen_[i].value, listen_[j].value)) {
          fail(listen_[i].mark, listen_[i].path, "duplicate of " + listen_[j].path,
               quoteForError(listen_[i].value.text));
          break;
        }
      }
      cfg_.listen.push_back(listen_[i].value);
    }
  }
  if (admin_listen_) {
    for (const auto& l : listen_) {
      if (admin_listen_->value.port != 0 && sameEndpoint(admin_listen_->value, l.value)) {
        fail(admin_listen_->mark, admin_listen_->path, "is the same address as " + l.path,
             quoteForError(admin_listen_->value.text));
        break;
      }
    }
    cfg_.admin.listen = admin_listen_->value;
  }

  UpstreamConfig& u = cfg_.upstream;
  if (!primary_seen_ && !sentinel_mark_ && !cluster_mark_ && !upstream_unusable_) {
    fail(upstream_mark_.value_or(root_mark_), "upstream.primary",
         "is required (or upstream.sentinel, or upstream.cluster): the Redis server to proxy "
         "to, like 127.0.0.1:6379");
  }
  if (u.read_from == ReadFrom::kReplica && replicas_.empty() && !sentinel_mark_ && !cluster_mark_ &&
      read_from_mark_) {
    fail(*read_from_mark_, "upstream.read_from", "needs at least one upstream.replicas entry",
         "replica");
  }

  // Every upstream, primary first; each must be a distinct server and none may be ourselves.
  std::vector<Located<ParsedUpstream>*> all;
  if (primary_) all.push_back(&*primary_);
  for (auto& r : replicas_) all.push_back(&r);
  for (size_t i = 0; i < all.size(); ++i) {
    const Located<ParsedUpstream>& a = *all[i];
    bool reported = false;
    for (size_t j = 0; j < i && !reported; ++j) {
      if (sameEndpoint(a.value.addr.addr, all[j]->value.addr.addr)) {
        fail(a.mark, a.path, "is the same server as " + all[j]->path,
             quoteForError(a.value.addr.text));
        reported = true;
      }
    }
    for (size_t j = 0; j < listen_.size() && !reported; ++j) {
      if (sameEndpoint(a.value.addr.addr, listen_[j].value)) {
        fail(a.mark, a.path,
             "is corral's own address " + listen_[j].path + "; corral would proxy to itself",
             quoteForError(a.value.addr.text));
        reported = true;
      }
    }
  }

  // Credentials: password and password_env are two ways to say one thing.
  resolvePasswordEnv(password_mark_, password_env_, "upstream.password", &u.password);

  // Report at whichever bound was written (max when both were): the other one is a default.
  if (u.reconnect_min > u.reconnect_max) {
    if (reconnect_max_) {
      fail(reconnect_max_->mark, reconnect_max_->path,
           "must not be less than reconnect_backoff.min (" + formatMillis(u.reconnect_min) + ")",
           quoteForError(reconnect_max_->value));
    } else if (reconnect_min_) {
      fail(reconnect_min_->mark, reconnect_min_->path,
           "must not be more than reconnect_backoff.max (" + formatMillis(u.reconnect_max) + ")",
           quoteForError(reconnect_min_->value));
    }
  }

  // Make each address self-contained: URL credentials win field by field, upstream.* fills in.
  auto complete = [&](const ParsedUpstream& p) {
    UpstreamAddress a = p.addr;
    if (!p.has_user) a.user = u.user;
    if (!p.has_password) a.password = u.password;
    if (!p.has_db) a.db = u.db;
    if (u.tls.enabled) a.addr.tls = true;  // upstream.tls.enabled: every upstream, rediss:// or not
    return a;
  };
  if (primary_) u.primary = complete(primary_->value);
  for (const auto& r : replicas_) u.replicas.push_back(complete(r.value));
  crossCheckSentinel();  // sentinel_section.cc
  crossCheckCluster();   // cluster_section.cc
  crossCheckTls();
}

}  // namespace corral::config::detail
