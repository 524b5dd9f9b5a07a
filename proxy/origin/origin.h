// HTTP origins for cache-aside fills: policies::Origin over libevent's evhttp client.
//
//   FillEngine --fetch(path)--> HttpOrigin --(free keep-alive connection | new one, up to
//   max_in_flight)--> GET base_url+path --> 200 body | 404 | error/timeout --> done(result)
//
// One HttpOrigin per origin per worker thread, on that worker's event_base; not thread-safe.
// Retries and the circuit breaker wrap it (policies::GuardedOrigin, through attempt()).
#pragma once

#include <event2/dns.h>
#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "config/policy_config.h"
#include "policies/fill.h"
#include "policies/origin_guard.h"

namespace corral::origin {

class HttpOrigin final : public policies::Origin, public policies::AttemptOrigin {
 public:
  // spec.base_url was validated by the config loader (http://host[:port][/prefix]).
  // A base_url that does not parse is logged and every fetch then fails with "bad base_url".
  // dns: the worker's resolver for the origin's host name (null: libevent's blocking lookup).
  HttpOrigin(event_base* base, evdns_base* dns, const config::OriginSpec& spec);
  // Frees every connection. Requests in flight are dropped silently: their done never runs
  // (calling it would hand a fill a result while the worker is being torn down). So destroy an
  // origin only at worker shutdown, after the fill engine, and never from inside a done.
  ~HttpOrigin() override;
  HttpOrigin(const HttpOrigin&) = delete;
  HttpOrigin& operator=(const HttpOrigin&) = delete;

  // GET base_url + path with spec.timeout; at most spec.max_in_flight at once, more get
  // OriginResult{kError, "overloaded"} at once (a bulkhead: a slow origin cannot absorb every
  // worker's memory). 200 -> kValue, 304 -> kNotModified (each with its caching headers),
  // 404 -> kNotFound, anything else -> kError ("status 503",
  // "timeout", "connect failed", "body too large"). done runs on this loop's thread.
  void fetch(const std::string& path, std::function<void(policies::OriginResult)> done) override;
  // fetch() with If-None-Match / If-Modified-Since from the validator; 304 -> kNotModified.
  void fetchConditional(const std::string& path, const std::string& validator,
                        std::function<void(policies::OriginResult)> done) override;
  // fetchConditional with a shorter deadline for this request (policies::GuardedOrigin's
  // retries give each attempt the time left of the fill); capped at spec.timeout.
  void attempt(const std::string& path, const std::string& validator, int64_t timeout_ms,
               std::function<void(policies::OriginResult)> done) override;

  size_t inFlight() const;     // requests started and not yet answered
  size_t connections() const;  // connection objects kept for reuse, busy or idle (an idle one
                               // the origin closed reconnects on its next request)

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral::origin
