// HttpOrigin: policies::Origin over libevent 2.1's evhttp client.
//
//   fetch(path, done)
//     bad path / bad base_url ............................. done(kError) at once
//     in flight == max_in_flight .......................... done(kError "overloaded") at once
//     idle Conn? take the most recently used : new Conn (evhttp_connection + deadline timer)
//     evhttp_make_request(GET prefix/path) + evtimer(spec.timeout)
//        |
//        +-- onResponse(req)   200 -> kValue, 304 -> kNotModified (both with the caching
//        |                     headers), 404 -> kNotFound, else "status <n>";
//        |                     the Conn goes back to the idle list (keep-alive)
//        +-- onError + onResponse(NULL) / onResponse(code 0): "connect failed", "timeout", ...;
//        |                     the Conn is retired (evhttp_connection freed from the reaper)
//        +-- onDeadline        "timeout"; the evhttp_connection is freed at once (we are in our
//                              own timer callback, so no libevent frame is using it)
//
// Every path removes the Conn's request state before calling done, and done is the last thing
// each path does: done may call fetch again (even on the same keep-alive connection).
//
// Lifetimes (libevent 2.1.12, checked against http.c):
// - evhttp frees an outgoing evhttp_request itself after its callback (success), or before
//   the callbacks (evhttp_connection_fail_: error_cb(err) then cb(NULL)). A refused or timed
//   out connect instead calls cb(req) with response code 0, without error_cb. We never keep
//   a request pointer past the callback.
// - evhttp_connection_free frees queued requests without calling them, so freeing a connection
//   from our timer or the destructor drops its request silently. It must not run inside a
//   callback of that same connection (http.c keeps using evcon after calling us), which is why
//   failed connections go to a graveyard freed by a separate event (reaper_).
#include "proxy/origin/origin.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <strings.h>

#include <cerrno>
#include <chrono>
#include <vector>

#include "config/logging.h"
#include "proxy/origin/header_values.h"
#include "proxy/tls/context.h"
#include "proxy/tls/stream.h"

namespace corral::origin {
namespace {

using policies::OriginResult;

// A body over this is an error, not a value: it would be copied into Redis and into every
// waiting client's reply. Checked by libevent against Content-Length before reading, and while
// reading chunked or read-until-close bodies.
constexpr size_t kMaxBodyBytes = 64u << 20;
constexpr size_t kMaxHeaderBytes = 64u << 10;
// libevent's own timeout is an inactivity timeout per read/write, not a deadline for the whole
// request; our evtimer is the deadline. libevent's is set a little later so that it never races
// ours (two timers at the same instant made the error text depend on heap order). It also
// closes a kept-alive connection after this much idleness: keep it below the origin's own
// keep-alive timeout to avoid sending on a connection the origin is closing.
constexpr std::chrono::milliseconds kLibeventTimeoutMargin{1000};
constexpr int64_t kWarnIntervalMs = 1000;

const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = logging::get("origin");
  return logger;
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

timeval toTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

// base_url, split. The config loader has validated and normalized it (scheme lower-cased, no
// trailing '/'); this parse is still defensive, since a bad URL must not crash a worker.
struct BaseUrl {
  bool tls = false;  // https://
  std::string host;  // for connect: no brackets around an IPv6 literal
  uint16_t port = 80;
  std::string host_header;  // "host[:port]", brackets kept
  std::string prefix;       // "" or "/api/v2", never ending in '/'
};

bool parseBaseUrl(std::string_view url, BaseUrl& out, std::string& why) {
  constexpr std::string_view kHttp = "http://";
  constexpr std::string_view kHttps = "https://";
  auto starts = [url](std::string_view scheme) {
    return url.size() >= scheme.size() &&
           strncasecmp(url.data(), scheme.data(), scheme.size()) == 0;
  };
  out.tls = starts(kHttps);
  if (!out.tls && !starts(kHttp)) {
    why = "not an http:// or https:// URL";
    return false;
  }
  out.port = out.tls ? 443 : 80;
  std::string_view rest = url.substr(out.tls ? kHttps.size() : kHttp.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view prefix = slash == std::string_view::npos ? "" : rest.substr(slash);
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  std::string_view host;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      why = "unterminated IPv6 literal";
      return false;
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        why = "junk after IPv6 literal";
        return false;
      }
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (host.empty()) {
    why = "no host";
    return false;
  }
  if (!port.empty()) {
    uint32_t p = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || p > 65535) {
        why = "bad port";
        return false;
      }
      p = p * 10 + static_cast<uint32_t>(c - '0');
    }
    if (p == 0 || p > 65535) {
      why = "bad port";
      return false;
    }
    out.port = static_cast<uint16_t>(p);
  }
  out.host = std::string(host);
  out.host_header = std::string(authority);
  // Host: the default port is left out, as browsers and curl do.
  if (out.port == (out.tls ? 443 : 80) && !port.empty()) {
    out.host_header = std::string(authority.substr(0, authority.size() - port.size() - 1));
  }
  out.prefix = std::string(prefix);
  return true;
}

// The request target: prefix and path joined by exactly one '/'. The path is used as given:
// buildFillPath has percent-encoded it, and decoding here would change what the origin sees.
std::string joinTarget(const std::string& prefix, std::string_view path) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  std::string target;
  target.reserve(prefix.size() + 1 + path.size());
  target.append(prefix).push_back('/');
  target.append(path);
  return target;
}

// Bytes that would break the request line ("GET <target> HTTP/1.1\r\n"): a CR/LF would inject
// headers, a space would end the target early.
bool pathSafe(std::string_view path) {
  for (char c : path) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  return true;
}

OriginResult errorResult(std::string reason) {
  OriginResult r;
  r.kind = OriginResult::Kind::kError;
  r.error = std::move(reason);
  return r;
}

}  // namespace

struct HttpOrigin::Impl {
  // One evhttp_connection and at most one request on it (libevent queues further requests on a
  // connection behind the first; we never do, so a slow response cannot delay another fill).
  struct Conn {
    Impl* owner = nullptr;
    evhttp_connection* evcon = nullptr;
    event* deadline = nullptr;  // evtimer, armed while busy
    bool busy = false;
    // The request in progress (valid while busy).
    std::function<void(OriginResult)> done;
    int64_t started_ms = 0;
    bool headers_seen = false;
    bool have_error = false;
    evhttp_request_error error = EVREQ_HTTP_EOF;
    int error_errno = 0;
    std::chrono::milliseconds timeout{0};  // of the request in progress
  };

  event_base* base = nullptr;
  evdns_base* dns = nullptr;             // host names, without blocking the worker
  std::unique_ptr<tls::Holder> tls_ctx;  // https: the system's CAs or the origin's ca_file
  std::string name;
  std::chrono::milliseconds timeout{1000};
  size_t max_in_flight = 64;
  bool valid = false;
  BaseUrl url;
  std::unique_ptr<RequestHeaders> headers;  // User-Agent, Accept and origins.<name>.headers

  std::vector<std::unique_ptr<Conn>> conns;  // every live Conn, busy or idle
  std::vector<Conn*> idle;                   // most recently used last
  size_t in_flight = 0;
  // Retired Conns whose evhttp_connection may still be on libevent's stack; freed by reaper.
  std::vector<std::unique_ptr<Conn>> graveyard;
  event* reaper = nullptr;

  int64_t last_warn_ms = 0;
  uint64_t warns_suppressed = 0;

  ~Impl();

  // validator: "" (a plain GET), "E<etag>" (If-None-Match) or "L<date>" (If-Modified-Since).
  void fetch(const std::string& path, const std::string& validator,
             std::chrono::milliseconds deadline, std::function<void(OriginResult)> done);
  Conn* newConn();
  void finish(Conn* c, OriginResult result, bool keep);
  void retire(Conn* c, bool free_now);
  void warn(const std::string& elapsed, const std::string& reason);

  static void onResponse(evhttp_request* req, void* arg);
  static void onError(evhttp_request_error err, void* arg);
  static int onHeaders(evhttp_request* req, void* arg);
  static void onDeadline(evutil_socket_t, short, void* arg);
  static void onReap(evutil_socket_t, short, void* arg);
};

namespace {

void freeConn(HttpOrigin::Impl::Conn& c) {
  if (c.deadline != nullptr) {
    event_free(c.deadline);
    c.deadline = nullptr;
  }
  if (c.evcon != nullptr) {
    // Frees a queued request without calling it (http.c: evhttp_request_free_ on each).
    evhttp_connection_free(c.evcon);
    c.evcon = nullptr;
  }
}

}  // namespace

HttpOrigin::Impl::~Impl() {
  // Pending requests are dropped: their done never runs (see origin.h). Nothing of ours is on
  // the stack here, as long as the owner does not destroy the origin from inside a done.
  for (auto& c : conns) freeConn(*c);
  for (auto& c : graveyard) freeConn(*c);
  if (reaper != nullptr) event_free(reaper);
}

HttpOrigin::Impl::Conn* HttpOrigin::Impl::newConn() {
  bufferevent* bev = nullptr;  // null: evhttp makes a plain one
  if (url.tls) {
    SSL* ssl = SSL_new(tls_ctx->current()->get());
    if (ssl == nullptr) return nullptr;
    tls::expectServer(ssl, url.host, /*verify=*/true);
    SSL_set_read_ahead(ssl, 0);  // bufferevent_openssl reads record by record
    // The bufferevent owns the SSL from here (BEV_OPT_CLOSE_ON_FREE frees both).
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev == nullptr) {
      SSL_free(ssl);
      return nullptr;
    }
    // A response delimited by the end of the connection is complete without close_notify.
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
  }
  evhttp_connection* evcon =
      evhttp_connection_base_bufferevent_new(base, dns, bev, url.host.c_str(), url.port);
  if (evcon == nullptr) {
    if (bev != nullptr) bufferevent_free(bev);
    return nullptr;
  }
  auto c = std::make_unique<Conn>();
  c->owner = this;
  c->evcon = evcon;
  c->deadline = evtimer_new(base, &Impl::onDeadline, c.get());
  if (c->deadline == nullptr) {
    freeConn(*c);
    return nullptr;
  }
  timeval tv = toTimeval(timeout + kLibeventTimeoutMargin);
  evhttp_connection_set_timeout_tv(evcon, &tv);
  evhttp_connection_set_retries(evcon, 0);
  evhttp_connection_set_max_body_size(evcon, static_cast<ev_ssize_t>(kMaxBodyBytes));
  evhttp_connection_set_max_headers_size(evcon, static_cast<ev_ssize_t>(kMaxHeaderBytes));
  conns.push_back(std::move(c));
  return conns.back().get();
}

void HttpOrigin::Impl::fetch(const std::string& path, const std::string& validator,
                             std::chrono::milliseconds deadline,
                             std::function<void(OriginResult)> done) {
  if (!valid) return done(errorResult("bad base_url"));
  if (!pathSafe(path)) return done(errorResult("bad path"));
  if (in_flight >= max_in_flight) return done(errorResult("overloaded"));

  Conn* c = nullptr;
  if (!idle.empty()) {
    c = idle.back();  // the most recently used is the likeliest to be still open
    idle.pop_back();
  } else {
    c = newConn();
    if (c == nullptr) return done(errorResult("out of memory"));
  }

  evhttp_request* req = evhttp_request_new(&Impl::onResponse, c);
  if (req == nullptr) {
    idle.push_back(c);
    return done(errorResult("out of memory"));
  }
  evhttp_request_set_error_cb(req, &Impl::onError);
  evhttp_request_set_header_cb(req, &Impl::onHeaders);
  evkeyvalq* out = evhttp_request_get_output_headers(req);
  evhttp_add_header(out, "Host", url.host_header.c_str());
  evhttp_add_header(out, "Connection", "keep-alive");
  headers->apply(out, nowMs());
  addValidator(out, validator);

  // State first: evhttp_make_request may call onResponse before it returns (a failed DNS
  // lookup or immediate connect error does).
  c->busy = true;
  c->done = std::move(done);
  c->started_ms = nowMs();
  c->headers_seen = false;
  c->have_error = false;
  ++in_flight;
  c->timeout = deadline;
  timeval tv = toTimeval(deadline);
  evtimer_add(c->deadline, &tv);

  std::string target = joinTarget(url.prefix, path);
  SPDLOG_LOGGER_TRACE(log(), "origin fetch name={} target={}", name, target);
  if (evhttp_make_request(c->evcon, req, EVHTTP_REQ_GET, target.c_str()) != 0) {
    // Only when the connection could not even start (no callback ran). libevent unqueued the
    // request but did not free it.
    evhttp_request_free(req);
    finish(c, errorResult("connect failed"), /*keep=*/false);
  }
  // c may be gone here (a synchronous callback retired it): do not touch it.
}

// Ends the request on c: stops the deadline, returns c to the idle list (keep) or retires it,
// then calls done last.
void HttpOrigin::Impl::finish(Conn* c, OriginResult result, bool keep) {
  if (!c->busy) return;  // already finished (the deadline won; see onDeadline)
  c->busy = false;
  --in_flight;
  evtimer_del(c->deadline);
  auto done = std::move(c->done);
  c->done = nullptr;
  if (result.kind == OriginResult::Kind::kError) {
    warn(std::to_string(nowMs() - c->started_ms) + "ms", result.error);
  }
  if (keep) {
    idle.push_back(c);
  } else {
    retire(c, /*free_now=*/false);
  }
  done(std::move(result));
}

// Removes c from the pool. free_now: we are not inside a callback of c->evcon, so it can be
// freed at once (dropping its request silently); otherwise the reaper frees it after the
// current callback returns.
void HttpOrigin::Impl::retire(Conn* c, bool free_now) {
  for (auto it = idle.begin(); it != idle.end(); ++it) {
    if (*it == c) {
      idle.erase(it);
      break;
    }
  }
  for (auto it = conns.begin(); it != conns.end(); ++it) {
    if (it->get() == c) {
      if (free_now && c->evcon != nullptr) {
        evhttp_connection_free(c->evcon);
        c->evcon = nullptr;
      }
      graveyard.push_back(std::move(*it));
      conns.erase(it);
      break;
    }
  }
  event_active(reaper, EV_TIMEOUT, 1);
}

void HttpOrigin::Impl::warn(const std::string& elapsed, const std::string& reason) {
  // Environment errors are rate-limited (docs/contributing.md, "Errors and logging"); the fill
  // engine counts every one.
  int64_t now = nowMs();
  if (now - last_warn_ms < kWarnIntervalMs) {
    ++warns_suppressed;
    return;
  }
  log()->warn("origin fetch failed name={} err={} elapsed={} suppressed={}", name, reason, elapsed,
              warns_suppressed);
  last_warn_ms = now;
  warns_suppressed = 0;
}

int HttpOrigin::Impl::onHeaders(evhttp_request* /*req*/, void* arg) {
  static_cast<Conn*>(arg)->headers_seen = true;
  return 0;
}

void HttpOrigin::Impl::onError(evhttp_request_error err, void* arg) {
  // Always followed by onResponse(NULL) (we never cancel), which finishes the request; here we
  // only remember why. errno is the socket error, restored by libevent for this callback.
  auto* c = static_cast<Conn*>(arg);
  c->have_error = true;
  c->error = err;
  c->error_errno = errno;
}

void HttpOrigin::Impl::onResponse(evhttp_request* req, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  Impl* self = c->owner;
  int code = req == nullptr ? 0 : evhttp_request_get_response_code(req);
  if (code == 0) {
    std::string reason = "connect failed";  // a refused or timed-out connect: cb(req), code 0
    if (c->have_error) {
      switch (c->error) {
        case EVREQ_HTTP_TIMEOUT:
          reason = "timeout";
          break;
        case EVREQ_HTTP_DATA_TOO_LONG:
          reason = c->headers_seen ? "body too large" : "headers too large";
          break;
        case EVREQ_HTTP_INVALID_HEADER:
          reason = "bad response";
          break;
        case EVREQ_HTTP_EOF:
        case EVREQ_HTTP_BUFFER_ERROR:
        case EVREQ_HTTP_REQUEST_CANCEL:
        default:
          switch (c->error_errno) {
            case ECONNREFUSED:
            case EHOSTUNREACH:
            case ENETUNREACH:
            case ENETDOWN:
            case EADDRNOTAVAIL:
              reason = "connect failed";
              break;
            case ECONNRESET:
            case EPIPE:
              reason = "connection reset";
              break;
            default:
              reason = c->headers_seen ? "connection closed mid-body" : "connection closed";
          }
          if (!c->headers_seen && c->evcon != nullptr) {
            bufferevent* bev = evhttp_connection_get_bufferevent(c->evcon);
            if (bev != nullptr && bufferevent_socket_get_dns_error(bev) != 0) {
              reason = "resolve failed";
            } else if (bev != nullptr && self->url.tls) {
              if (const unsigned long e = bufferevent_get_openssl_error(bev); e != 0) {
                const char* r = ERR_reason_error_string(e);
                reason = std::string("TLS: ") + (r != nullptr ? r : "error");
              }
            }
          }
      }
    }
    // libevent has reset the connection; free it rather than reconnect it (a new one starts
    // from a known state), from the reaper since we are inside its callback.
    self->finish(c, errorResult(std::move(reason)), /*keep=*/false);
    return;
  }
  OriginResult r;
  if (code == 200) {
    r.kind = OriginResult::Kind::kValue;
    evbuffer* in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    r.body.resize(n);
    if (n > 0) evbuffer_copyout(in, r.body.data(), n);
    r.headers = readCacheHeaders(evhttp_request_get_input_headers(req));
  } else if (code == 304) {
    r.kind = OriginResult::Kind::kNotModified;
    r.headers = readCacheHeaders(evhttp_request_get_input_headers(req));
  } else if (code == 404) {
    r.kind = OriginResult::Kind::kNotFound;
  } else {
    r = errorResult("status " + std::to_string(code));
  }
  // The connection is idle (or reset if the origin said "Connection: close"; libevent then
  // reconnects on the next request): either way it can take the next request.
  self->finish(c, std::move(r), /*keep=*/true);
}

void HttpOrigin::Impl::onDeadline(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  Impl* self = c->owner;
  if (!c->busy) return;
  c->busy = false;
  --self->in_flight;
  auto done = std::move(c->done);
  c->done = nullptr;
  // We are in our own timer callback: nothing of libevent's http code is using the connection,
  // so free it now, which drops the request without calling onResponse.
  const std::string elapsed = std::to_string(c->timeout.count()) + "ms";
  self->retire(c, /*free_now=*/true);
  self->warn(elapsed, "timeout");
  done(errorResult("timeout"));
}

void HttpOrigin::Impl::onReap(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Impl*>(arg);
  auto dead = std::move(self->graveyard);
  self->graveyard.clear();
  for (auto& c : dead) freeConn(*c);
}

HttpOrigin::HttpOrigin(event_base* base, evdns_base* dns, const config::OriginSpec& spec)
    : impl_(std::make_unique<Impl>()) {
  impl_->base = base;
  impl_->dns = dns;
  impl_->name = spec.name;
  impl_->timeout = spec.timeout;
  impl_->max_in_flight = spec.max_in_flight;
  impl_->headers = std::make_unique<RequestHeaders>(spec.headers);
  impl_->reaper = event_new(base, -1, 0, &Impl::onReap, impl_.get());
  std::string why;
  impl_->valid = impl_->reaper != nullptr && parseBaseUrl(spec.base_url, impl_->url, why);
  if (impl_->valid && impl_->url.tls) {
    config::TlsClientConfig tls_cfg;
    tls_cfg.ca_file = spec.ca_file;
    impl_->tls_ctx = tls::Holder::client(tls_cfg, &why);
    impl_->valid = impl_->tls_ctx != nullptr;
  }
  if (!impl_->valid) {
    log()->error("origin disabled name={} base_url={} err={}", spec.name, spec.base_url,
                 why.empty() ? "out of memory" : why);
  }
}

HttpOrigin::~HttpOrigin() = default;

void HttpOrigin::fetch(const std::string& path, std::function<void(policies::OriginResult)> done) {
  impl_->fetch(path, {}, impl_->timeout, std::move(done));
}

void HttpOrigin::fetchConditional(const std::string& path, const std::string& validator,
                                  std::function<void(policies::OriginResult)> done) {
  impl_->fetch(path, validator, impl_->timeout, std::move(done));
}

void HttpOrigin::attempt(const std::string& path, const std::string& validator, int64_t timeout_ms,
                         std::function<void(policies::OriginResult)> done) {
  // Never longer than the origin's timeout: libevent's own timeout (timeout + margin, set per
  // connection) must stay the later one.
  impl_->fetch(
      path, validator,
      std::min(impl_->timeout, std::chrono::milliseconds(std::max<int64_t>(1, timeout_ms))),
      std::move(done));
}

size_t HttpOrigin::inFlight() const { return impl_->in_flight; }

size_t HttpOrigin::connections() const { return impl_->conns.size(); }

}  // namespace corral::origin
