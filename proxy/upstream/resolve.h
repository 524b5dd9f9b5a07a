// Upstream addresses to socket addresses without blocking the worker: numeric addresses and
// unix paths at once, host names through libevent's evdns (/etc/hosts, then the resolv.conf
// name servers), again on every reconnect, so a managed service that moves is followed.
#pragma once

#include <event2/dns.h>
#include <sys/socket.h>

#include <functional>
#include <string>

#include "config/config.h"

namespace corral::upstream {

struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
};

// A loop's resolver: /etc/hosts and resolv.conf's name servers, or /etc/hosts alone when
// resolv.conf is unusable. freeResolver() fails the lookups still in flight and runs the
// callbacks evdns defers for them, so nothing of theirs leaks: call it when nothing else of
// the caller's is left on the loop, before freeing the loop.
evdns_base* newResolver(event_base* base);
void freeResolver(event_base* base, evdns_base* dns);

// Fills `out` when `addr` needs no lookup (an IP address or a unix path): true. False when it
// is a host name (or on an error: *err set, nothing to look up).
bool resolveNow(const config::ListenAddress& addr, SockAddr* out, std::string* err);

// One lookup in flight; cancel() (or destroying it) guarantees the callback is not called.
class Lookup {
 public:
  using Done = std::function<void(bool ok, const SockAddr& addr, const std::string& err)>;
  Lookup() = default;
  ~Lookup() { cancel(); }
  Lookup(const Lookup&) = delete;
  Lookup& operator=(const Lookup&) = delete;

  // Starts resolving addr.host (an IPv4 address is preferred when the name has both: Redis
  // servers commonly listen on IPv4 only). `done` may run before start() returns.
  void start(evdns_base* dns, const config::ListenAddress& addr, Done done);
  void cancel();
  bool active() const { return ticket_ != nullptr; }

 private:
  struct Ticket;
  static void onResult(int result, evutil_addrinfo* res, void* arg);
  Ticket* ticket_ = nullptr;  // owned by the request until its callback runs
  evdns_getaddrinfo_request* req_ = nullptr;
};

}  // namespace corral::upstream
