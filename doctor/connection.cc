#include "doctor/connection.h"

#include <sys/time.h>

namespace corral::doctor {

namespace {

timeval toTimeval(std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  return tv;
}

std::vector<const char*> argvOf(const std::vector<std::string>& args, std::vector<size_t>& lens) {
  std::vector<const char*> argv;
  lens.clear();
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return argv;
}

}  // namespace

std::string replyText(const redisReply* r) {
  if (r == nullptr) return "";
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
      r->type == REDIS_REPLY_ERROR) {
    return std::string(r->str, r->len);
  }
  return "";
}

std::unique_ptr<Connection> Connection::open(const Endpoint& e, std::chrono::milliseconds timeout,
                                             std::string* err) {
  const std::string address = config::endpointText(e.addr);
  const timeval tv = toTimeval(timeout);
  redisContext* ctx = e.addr.kind == config::ListenAddress::Kind::kUnix
                          ? redisConnectUnixWithTimeout(e.addr.path.c_str(), tv)
                          : redisConnectWithTimeout(e.addr.host.c_str(), e.addr.port, tv);
  if (ctx == nullptr) {
    *err = address + ": out of memory";
    return nullptr;
  }
  if (ctx->err != 0) {
    *err = address + ": cannot connect: " + ctx->errstr;
    redisFree(ctx);
    return nullptr;
  }
  redisSetTimeout(ctx, tv);
  std::unique_ptr<Connection> c(new Connection(ctx, address));
  auto step = [&](const std::vector<std::string>& args, const char* what) {
    Reply r = c->command(args, err);
    if (!r) return false;
    if (r->type == REDIS_REPLY_ERROR) {
      *err = address + ": " + what + " refused: " + replyText(r.get());
      return false;
    }
    return true;
  };
  if (!e.password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!e.user.empty()) auth.push_back(e.user);
    auth.push_back(e.password);
    if (!step(auth, "AUTH")) return nullptr;
  }
  if (e.db != 0 && !step({"SELECT", std::to_string(e.db)}, "SELECT")) return nullptr;
  return c;
}

Connection::~Connection() { redisFree(ctx_); }

Reply Connection::command(const std::vector<std::string>& args, std::string* err) {
  append(args);
  return read(err);
}

void Connection::append(const std::vector<std::string>& args) {
  std::vector<size_t> lens;
  std::vector<const char*> argv = argvOf(args, lens);
  redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data());
}

Reply Connection::read(std::string* err) {
  void* raw = nullptr;
  if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
    *err = address_ + ": " + (ctx_->err != 0 ? ctx_->errstr : "no reply");
    return nullptr;
  }
  return Reply(static_cast<redisReply*>(raw));
}

std::optional<config::ListenAddress> askSentinels(const config::SentinelConfig& s,
                                                  std::chrono::milliseconds timeout,
                                                  std::string* err) {
  std::string why;
  for (const config::ListenAddress& a : s.addresses) {
    Endpoint e{a, s.user, s.password, 0};
    std::string one;
    std::unique_ptr<Connection> c = Connection::open(e, timeout, &one);
    Reply r;
    if (c) r = c->command({"SENTINEL", "get-master-addr-by-name", s.master}, &one);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
      config::ListenAddress out;
      out.host = replyText(r->element[0]);
      const std::string port = replyText(r->element[1]);
      out.port = static_cast<uint16_t>(std::strtoul(port.c_str(), nullptr, 10));
      out.text = out.host + ":" + port;
      return out;
    }
    if (r)
      one =
          config::endpointText(a) + ": " +
          (r->type == REDIS_REPLY_ERROR ? replyText(r.get()) : "does not know master " + s.master);
    why += (why.empty() ? "" : "; ") + one;
  }
  *err = "no sentinel named the primary of " + s.master + ": " + why;
  return std::nullopt;
}

}  // namespace corral::doctor
