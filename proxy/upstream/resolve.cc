#include "proxy/upstream/resolve.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>

namespace corral::upstream {

evdns_base* newResolver(event_base* base) {
  evdns_base* dns =
      evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
  if (dns == nullptr) {
    dns = evdns_base_new(base, 0);
    if (dns != nullptr) evdns_base_load_hosts(dns, nullptr);
  }
  return dns;
}

void freeResolver(event_base* base, evdns_base* dns) {
  if (dns == nullptr) return;
  evdns_base_free(dns, /*fail_requests=*/1);
  event_base_loop(base, EVLOOP_NONBLOCK);
}

bool resolveNow(const config::ListenAddress& addr, SockAddr* out, std::string* err) {
  std::memset(&out->ss, 0, sizeof(out->ss));
  if (addr.kind == config::ListenAddress::Kind::kUnix) {
    auto* un = reinterpret_cast<sockaddr_un*>(&out->ss);
    if (addr.path.size() >= sizeof(un->sun_path)) {
      *err = "unix socket path too long";
      return false;
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, addr.path.c_str(), addr.path.size() + 1);
    out->len = sizeof(sockaddr_un);
    return true;
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out->ss);
  if (inet_pton(AF_INET, addr.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(addr.port);
    out->len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out->ss);
  if (inet_pton(AF_INET6, addr.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(addr.port);
    out->len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

// The request's argument: outlives a cancelled Lookup (evdns may run the callback later), so
// the callback finds `owner` null and only frees it.
struct Lookup::Ticket {
  Lookup* owner;
  Done done;
};

void Lookup::start(evdns_base* dns, const config::ListenAddress& addr, Done done) {
  cancel();
  if (dns == nullptr) {
    done(false, SockAddr{}, "no resolver");
    return;
  }
  evutil_addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  const std::string port = std::to_string(addr.port);
  ticket_ = new Ticket{this, std::move(done)};
  Ticket* t = ticket_;
  evdns_getaddrinfo_request* req =
      evdns_getaddrinfo(dns, addr.host.c_str(), port.c_str(), &hints, &Lookup::onResult, t);
  // A null request means the callback already ran (and cleared ticket_); otherwise it is due.
  if (ticket_ == t) req_ = req;
}

void Lookup::cancel() {
  if (ticket_ == nullptr) return;
  ticket_->owner = nullptr;
  ticket_ = nullptr;
  evdns_getaddrinfo_request* req = req_;
  req_ = nullptr;
  if (req != nullptr) evdns_getaddrinfo_cancel(req);
}

void Lookup::onResult(int result, evutil_addrinfo* res, void* arg) {
  auto* t = static_cast<Ticket*>(arg);
  Lookup* owner = t->owner;
  Done done = std::move(t->done);
  delete t;
  if (owner == nullptr) {
    if (res != nullptr) evutil_freeaddrinfo(res);
    return;
  }
  owner->ticket_ = nullptr;
  owner->req_ = nullptr;
  SockAddr out;
  if (result != 0 || res == nullptr) {
    if (res != nullptr) evutil_freeaddrinfo(res);
    done(false, out, evutil_gai_strerror(result));
    return;
  }
  const evutil_addrinfo* pick = res;
  for (const evutil_addrinfo* a = res; a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      pick = a;
      break;
    }
  }
  std::memcpy(&out.ss, pick->ai_addr, pick->ai_addrlen);
  out.len = static_cast<socklen_t>(pick->ai_addrlen);
  evutil_freeaddrinfo(res);
  done(true, out, {});
}

}  // namespace corral::upstream
