// Client: AUTH checked by Redis (auth mode passthrough; passthrough.h has the worker's side).
//
//   AUTH / HELLO ... AUTH ──dispatch──> credentialsReady(): every verdict known?
//       from this request's earlier check, or the cache (auth_cache.h)
//       no:  AuthChecks::check(); the request waits, unparsed, and is parsed again when
//            onAuthVerdict() brings the verdict (and every earlier reply is in)
//       yes: the request runs as any other (session.h: AUTH and HELLO are answered by corral),
//            and authenticatePassthrough() applies each verdict:
//              +OK   the client's shared connections become its user's pool (UserPools), a
//                    dedicated connection logs in again, CLIENT LIST shows the user
//              else  Redis's reply, word for word (WRONGPASS ..., or the no-password error)
//
// A client has at most one check running, so the checks waiting on a worker are bounded by its
// clients; clients giving the same credentials share one check. Replies stay in order: the
// AUTH is answered where it stands, after every earlier reply.
#include "commands/command_table.h"
#include "proxy/net/client.h"
#include "proxy/net/log.h"
#include "proxy/net/worker.h"

namespace corral::net {
namespace {

constexpr std::string_view kOk = "+OK\r\n";

// More AUTH options in one HELLO than this are not checked (the first ones decide long before
// in any real client); the rest get an error instead of a verdict.
constexpr size_t kMaxHelloAuths = 4;

struct Credentials {
  bool one_arg = false;
  std::string_view user;
  std::string_view password;
};

// The credentials a request would try, in order.
std::vector<Credentials> credentialsOf(CommandKind kind, const std::vector<std::string_view>& a) {
  std::vector<Credentials> out;
  if (kind == CommandKind::kAuth) {
    if (a.size() == 2) out.push_back({true, {}, a[1]});
    if (a.size() == 3) out.push_back({false, a[1], a[2]});
  } else if (kind == CommandKind::kHello) {
    for (const auto& [user, password] : helloCredentials(a)) {
      if (out.size() == kMaxHelloAuths) break;
      out.push_back({false, user, password});
    }
  }
  return out;
}

}  // namespace

bool Client::credentialsReady(CommandKind kind, const std::vector<std::string_view>& args,
                              bool* logs_in) {
  const SharedState& sh = worker_.shared();
  const std::vector<Credentials> all = credentialsOf(kind, args);
  *logs_in = !all.empty();
  for (const Credentials& c : all) {
    const Sha256Digest key = sh.credential_keys.key(c.one_arg, c.user, c.password);
    std::vector<std::pair<Sha256Digest, std::string>>& known = extras().verdicts;
    const std::string* verdict = nullptr;
    for (const auto& [k, v] : known) {
      if (k == key) verdict = &v;
    }
    if (verdict == nullptr) {
      std::string cached;
      if (sh.verdicts->find(key, worker_.nowMs(), &cached)) {
        worker_.stats().auth_cache_hits.add();
        known.emplace_back(key, std::move(cached));
        verdict = &known.back().second;
      }
    }
    if (verdict == nullptr) {
      if (checking_) return false;  // its verdict is on the way
      std::string error;
      if (!worker_.authChecks().check(key, c.one_arg, c.user, c.password, this, &error)) {
        known.emplace_back(key, std::move(error));  // Redis cannot be asked: that is the answer
        return true;
      }
      checking_ = true;
      ++inflight_refs_;  // the check holds this client until it answers
      return false;
    }
    if (*verdict != kOk) return true;  // the request stops at this refusal: nothing more to ask
  }
  return true;
}

void Client::onAuthVerdict(const Sha256Digest& key, std::string_view reply) {
  if (!closed()) extras().verdicts.emplace_back(key, std::string(reply));
  onWaitOver();
}

void Client::onWaitOver() {
  checking_ = false;
  --inflight_refs_;
  if (closed()) {
    if (inflight_refs_ == 0) worker_.clientClosed(this);
    return;
  }
  worker_.markDirty(this);  // maybeResume() parses the waiting request again
}

bool Client::adminPermitted(CommandKind kind, std::string* denial) {
  if (checking_) return false;
  const AdminCommand cmd =
      kind == CommandKind::kClientKill ? AdminCommand::kClientKill : AdminCommand::kClientList;
  if (worker_.userPools().permitted(*user_pool_, cmd, db_, this, denial, worker_.nowMs()) ==
      UserPools::Verdict::kWait) {
    checking_ = true;
    ++inflight_refs_;  // the probe holds this client until it answers
    return false;
  }
  return true;
}

bool Client::authenticatePassthrough(bool one_arg, std::string_view user, std::string_view password,
                                     std::string& out) {
  const Sha256Digest key = worker_.shared().credential_keys.key(one_arg, user, password);
  const std::string* verdict = nullptr;
  if (extras_ != nullptr) {
    for (const auto& [k, v] : extras_->verdicts) {
      if (k == key) verdict = &v;
    }
  }
  if (verdict == nullptr) {
    // Only a HELLO with more AUTH options than are checked gets here.
    codec::appendError(out, "ERR corral: too many AUTH options in one HELLO");
    return false;
  }
  if (*verdict != kOk) {
    if (verdict->starts_with("-WRONGPASS")) worker_.stats().auth_failures.add();
    log()->debug("auth refused by the upstream client={} peer={}", id_, peer_);  // no credentials
    if (!verdict->empty() && (*verdict)[0] == '-') {
      out.append(*verdict);
    } else {
      codec::appendError(out, "ERR corral: unexpected reply of the upstream to AUTH");
    }
    return false;
  }
  UserPools::Pool* pool =
      worker_.userPools().acquire(key, one_arg, user, password, worker_.nowMs());
  if (pool == nullptr) {
    codec::appendError(out,
                       "ERR corral: too many users logged in at once "
                       "(auth.passthrough.max_users)");
    return false;
  }
  dropUserPool();  // the previous user's (after acquire: the same user keeps its pool open)
  user_pool_ = pool;
  extras().user.assign(one_arg ? kDefaultUser : user);
  authenticated_ = true;
  parser_.setAuthRequired(false);
  bindShared();
  if (dedicated_ != nullptr) {
    // What the client sends next on its dedicated connection runs as the new user too: log it
    // in there before anything else goes (the session waited for it to be idle).
    sendDedicatedRaw(authRequest(one_arg, user, password), kHidden | kOnDedicated, Rewrite::kReauth,
                     0, 0, 1);
  }
  return true;
}

void Client::dropUserPool() {
  if (user_pool_ == nullptr) return;
  worker_.userPools().release(user_pool_, worker_.nowMs());
  user_pool_ = nullptr;
  if (!closed()) bindShared();
}

}  // namespace corral::net
