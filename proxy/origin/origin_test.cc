// HttpOrigin against an in-process evhttp server on the same event_base. The loop is driven in
// short slices up to a deadline (runUntil), never unbounded, so a hung request fails the test
// instead of hanging it.
#include "proxy/origin/origin.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <list>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace corral::origin {
namespace {

using policies::OriginResult;
using Clock = std::chrono::steady_clock;

int64_t msSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// Runs the loop until pred() holds or max_ms pass; returns pred().
bool runUntil(event_base* base, const std::function<bool()>& pred, int64_t max_ms) {
  auto start = Clock::now();
  while (!pred()) {
    int64_t left = max_ms - msSince(start);
    if (left <= 0) return false;
    timeval tv{0, static_cast<suseconds_t>(std::min<int64_t>(left, 10) * 1000)};
    event_base_loopexit(base, &tv);
    event_base_loop(base, 0);
  }
  return true;
}

void runFor(event_base* base, int64_t ms) {
  runUntil(
      base, [] { return false; }, ms);
}

// The origin under test's counterpart. Routes on how the target ends:
//   .../ok 200 "hello"; .../missing 404; .../fail 503; .../slow 200 "slow" after slow_ms;
//   .../big 200 with 1 MiB; .../huge 200 with 64 MiB + 1; .../close 200 "bye" and closes;
//   anything else 200 with the target as the body (an echo).
class TestServer {
 public:
  explicit TestServer(event_base* base) : base_(base), http_(evhttp_new(base)) {
    REQUIRE(http_ != nullptr);
    evhttp_set_gencb(http_, &TestServer::onRequest, this);
    evhttp_bound_socket* bound = evhttp_bind_socket_with_handle(http_, "127.0.0.1", 0);
    REQUIRE(bound != nullptr);
    sockaddr_in sin{};
    socklen_t len = sizeof sin;
    REQUIRE(getsockname(evhttp_bound_socket_get_fd(bound), reinterpret_cast<sockaddr*>(&sin),
                        &len) == 0);
    port_ = ntohs(sin.sin_port);
  }
  ~TestServer() {
    evhttp_free(http_);  // frees every connection; onClose marks their slow replies dead
    for (auto& p : slow_) event_free(p->timer);
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  uint16_t port() const { return port_; }
  std::string url(const std::string& prefix = "") const {
    return "http://127.0.0.1:" + std::to_string(port_) + prefix;
  }

  int slow_ms = 300;
  std::vector<std::string> targets;       // every request target, in arrival order
  std::vector<std::string> last_headers;  // "Name: value" of the last request
  size_t connections_seen = 0;            // distinct TCP connections that sent a request

 private:
  struct Slow {
    TestServer* server = nullptr;
    evhttp_request* req = nullptr;
    evhttp_connection* conn = nullptr;
    event* timer = nullptr;
    bool dead = false;  // the connection went away; libevent freed req
  };

  static bool endsWith(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  }

  static void reply(evhttp_request* req, int code, const std::string& body) {
    evbuffer* out = evbuffer_new();
    evbuffer_add(out, body.data(), body.size());
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Not OK", out);
    evbuffer_free(out);
  }

  static void onClose(evhttp_connection* conn, void* arg) {
    auto* self = static_cast<TestServer*>(arg);
    self->live_.erase(conn);
    for (auto& p : self->slow_) {
      if (p->conn == conn) p->dead = true;
    }
  }

  static void onSlow(evutil_socket_t, short, void* arg) {
    auto* p = static_cast<Slow*>(arg);
    if (p->dead) return;
    p->dead = true;
    reply(p->req, 200, "slow");
  }

  static void onRequest(evhttp_request* req, void* arg) {
    auto* self = static_cast<TestServer*>(arg);
    std::string target = evhttp_request_get_uri(req);
    self->targets.push_back(target);
    self->last_headers.clear();
    for (evkeyval* h = evhttp_request_get_input_headers(req)->tqh_first; h != nullptr;
         h = h->next.tqe_next) {
      self->last_headers.push_back(std::string(h->key) + ": " + h->value);
    }
    // Pointer identity alone could count a new connection allocated where a closed one was;
    // the close callback takes a connection out of the live set, so each one counts once.
    evhttp_connection* conn = evhttp_request_get_connection(req);
    if (self->live_.insert(conn).second) {
      ++self->connections_seen;
      evhttp_connection_set_closecb(conn, &TestServer::onClose, self);
    }

    if (endsWith(target, "/ok")) {
      reply(req, 200, "hello");
    } else if (endsWith(target, "/missing")) {
      reply(req, 404, "no such thing");
    } else if (endsWith(target, "/fail")) {
      reply(req, 503, "try later");
    } else if (endsWith(target, "/slow")) {
      auto p = std::make_unique<Slow>();
      p->server = self;
      p->req = req;
      p->conn = conn;
      p->timer = evtimer_new(self->base_, &TestServer::onSlow, p.get());
      timeval tv{self->slow_ms / 1000, static_cast<suseconds_t>((self->slow_ms % 1000) * 1000)};
      evtimer_add(p->timer, &tv);
      self->slow_.push_back(std::move(p));
    } else if (endsWith(target, "/etag")) {
      // A 304 when the request carries the ETag (or a Last-Modified date) it was given.
      evkeyvalq* in = evhttp_request_get_input_headers(req);
      evkeyvalq* out = evhttp_request_get_output_headers(req);
      const char* inm = evhttp_find_header(in, "If-None-Match");
      const char* ims = evhttp_find_header(in, "If-Modified-Since");
      evhttp_add_header(out, "Cache-Control", "max-age=60");
      evhttp_add_header(out, "cache-control", "stale-if-error=5");  // a second line
      evhttp_add_header(out, "Age", "7");
      if ((inm != nullptr && std::string(inm) == "\"v1\"") ||
          (ims != nullptr && std::string(ims) == "Sun, 06 Nov 1994 08:49:37 GMT")) {
        evhttp_send_reply(req, 304, "Not Modified", nullptr);
      } else {
        evhttp_add_header(out, "ETag", "\"v1\"");
        evhttp_add_header(out, "Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT");
        reply(req, 200, "tagged");
      }
    } else if (endsWith(target, "/big")) {
      reply(req, 200, std::string(1u << 20, 'b'));
    } else if (endsWith(target, "/huge")) {
      reply(req, 200, std::string((64u << 20) + 1, 'h'));
    } else if (endsWith(target, "/close")) {
      evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
      reply(req, 200, "bye");
    } else {
      reply(req, 200, target);
    }
  }

  event_base* base_;
  evhttp* http_;
  uint16_t port_ = 0;
  std::set<evhttp_connection*> live_;
  std::list<std::unique_ptr<Slow>> slow_;
};

struct Fixture {
  Fixture() : base(event_base_new()) {
    // A client that closes early makes the server's write fail; that must not kill the test
    // binary (corral's main ignores SIGPIPE too).
    std::signal(SIGPIPE, SIG_IGN);
    REQUIRE(base != nullptr);
    server = std::make_unique<TestServer>(base);
  }
  ~Fixture() {
    server.reset();
    event_base_free(base);
  }
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  config::OriginSpec spec(const std::string& prefix = "", int64_t timeout_ms = 1000,
                          uint32_t max_in_flight = 8) const {
    config::OriginSpec s;
    s.name = "test";
    s.base_url = server->url(prefix);
    s.timeout = config::Millis{timeout_ms};
    s.max_in_flight = max_in_flight;
    return s;
  }

  event_base* base;
  std::unique_ptr<TestServer> server;
};

// Results collected by done callbacks.
struct Results {
  std::vector<OriginResult> got;
  std::function<void(OriginResult)> sink() {
    return [this](OriginResult r) { got.push_back(std::move(r)); };
  }
};

// One fetch, run to completion (or 2 s).
OriginResult fetchOne(Fixture& f, HttpOrigin& o, const std::string& path) {
  Results res;
  o.fetch(path, res.sink());
  REQUIRE(runUntil(
      f.base, [&] { return !res.got.empty(); }, 2000));
  REQUIRE(res.got.size() == 1);
  return res.got[0];
}

bool hasHeader(const std::vector<std::string>& headers, const std::string& line) {
  for (const auto& h : headers) {
    if (h == line) return true;
  }
  return false;
}

TEST_CASE("origin: caching headers come back; validators make conditional GETs; 304") {
  Fixture f;
  HttpOrigin o(f.base, nullptr, f.spec());
  OriginResult first = fetchOne(f, o, "/v1/etag");
  CHECK(first.kind == OriginResult::Kind::kValue);
  CHECK(first.body == "tagged");
  CHECK(first.headers.cache_control == "max-age=60, stale-if-error=5");
  CHECK(first.headers.etag == "\"v1\"");
  CHECK(first.headers.last_modified == "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(first.headers.age == "7");
  for (const auto& h : f.server->last_headers) {
    CHECK(h.rfind("If-", 0) != 0);  // a plain fetch is unconditional
  }
  for (const std::string validator : {"E\"v1\"", "LSun, 06 Nov 1994 08:49:37 GMT"}) {
    Results res;
    o.fetchConditional("/v1/etag", validator, res.sink());
    REQUIRE(runUntil(
        f.base, [&] { return !res.got.empty(); }, 2000));
    CHECK(res.got[0].kind == OriginResult::Kind::kNotModified);
    CHECK(res.got[0].body.empty());
    CHECK(res.got[0].headers.cache_control == "max-age=60, stale-if-error=5");
  }
  CHECK(hasHeader(f.server->last_headers, "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT"));
  Results stale;
  o.fetchConditional("/v1/etag", "E\"v0\"", stale.sink());
  REQUIRE(runUntil(
      f.base, [&] { return !stale.got.empty(); }, 2000));
  CHECK(stale.got[0].kind == OriginResult::Kind::kValue);
  CHECK(hasHeader(f.server->last_headers, "If-None-Match: \"v0\""));
}

TEST_CASE("origin: 200 is a value, 404 not found, anything else an error") {
  Fixture f;
  HttpOrigin o(f.base, nullptr, f.spec());

  OriginResult ok = fetchOne(f, o, "/v1/ok");
  CHECK(ok.kind == OriginResult::Kind::kValue);
  CHECK(ok.body == "hello");
  CHECK(hasHeader(f.server->last_headers, "Host: 127.0.0.1:" + std::to_string(f.server->port())));
  CHECK(hasHeader(f.server->last_headers, std::string("User-Agent: corral/") + CORRAL_VERSION));
  CHECK(hasHeader(f.server->last_headers, "Connection: keep-alive"));

  OriginResult missing = fetchOne(f, o, "/v1/missing");
  CHECK(missing.kind == OriginResult::Kind::kNotFound);
  CHECK(missing.body.empty());

  OriginResult fail = fetchOne(f, o, "/v1/fail");
  CHECK(fail.kind == OriginResult::Kind::kError);
  CHECK(fail.error == "status 503");

  CHECK(o.inFlight() == 0);
  CHECK(f.server->targets == std::vector<std::string>{"/v1/ok", "/v1/missing", "/v1/fail"});
}

TEST_CASE("origin: prefix and path are joined with exactly one slash") {
  Fixture f;
  {
    HttpOrigin o(f.base, nullptr, f.spec("/api"));
    CHECK(fetchOne(f, o, "/v1/a").body == "/api/v1/a");
    CHECK(fetchOne(f, o, "v1/b").body == "/api/v1/b");
  }
  {
    HttpOrigin o(f.base, nullptr, f.spec("/api/v2/"));  // the loader strips it; be safe anyway
    CHECK(fetchOne(f, o, "/v1/c").body == "/api/v2/v1/c");
    CHECK(fetchOne(f, o, "v1/d").body == "/api/v2/v1/d");
  }
  {
    HttpOrigin o(f.base, nullptr, f.spec());
    CHECK(fetchOne(f, o, "v1/e").body == "/v1/e");
    CHECK(fetchOne(f, o, "/v1/f").body == "/v1/f");
  }
}

TEST_CASE("origin: a percent-encoded path reaches the origin unchanged") {
  Fixture f;
  HttpOrigin o(f.base, nullptr, f.spec("/api"));
  const std::string path = "/v1/users/a%2Fb%20c%3F%25d?x=1";
  OriginResult r = fetchOne(f, o, path);
  CHECK(r.kind == OriginResult::Kind::kValue);
  CHECK(r.body == "/api" + path);

  SUBCASE("bytes that would break the request line are refused, synchronously") {
    for (const std::string& bad :
         std::vector<std::string>{"/a b", "/a\r\nX-Evil: 1", std::string("/a\0b", 4)}) {
      Results res;
      o.fetch(bad, res.sink());
      REQUIRE(res.got.size() == 1);
      CHECK(res.got[0].kind == OriginResult::Kind::kError);
      CHECK(res.got[0].error == "bad path");
    }
    CHECK(o.inFlight() == 0);
  }
}

TEST_CASE("origin: a slow origin times out once, within the deadline") {
  Fixture f;
  f.server->slow_ms = 500;
  HttpOrigin o(f.base, nullptr, f.spec("", /*timeout_ms=*/100));
  Results res;
  auto start = Clock::now();
  int64_t elapsed = -1;
  o.fetch("/slow", [&](OriginResult r) {
    elapsed = msSince(start);
    res.got.push_back(std::move(r));
  });
  CHECK(o.inFlight() == 1);
  REQUIRE(runUntil(
      f.base, [&] { return !res.got.empty(); }, 2000));
  CHECK(res.got[0].kind == OriginResult::Kind::kError);
  CHECK(res.got[0].error == "timeout");
  CHECK(elapsed >= 85);  // libevent's coarse monotonic clock may be up to a tick behind ours
  CHECK(elapsed < 100 + 150);
  CHECK(o.inFlight() == 0);
  CHECK(o.connections() == 0);  // a timed-out connection is not reused

  // Past the moment the origin answers: done must not run again.
  runFor(f.base, 600);
  CHECK(res.got.size() == 1);

  // The origin is usable afterwards, on a new connection.
  CHECK(fetchOne(f, o, "/ok").body == "hello");
  CHECK(f.server->connections_seen == 2);
}

TEST_CASE("origin: max_in_flight is a bulkhead") {
  Fixture f;
  f.server->slow_ms = 150;
  HttpOrigin o(f.base, nullptr, f.spec("", /*timeout_ms=*/2000, /*max_in_flight=*/2));
  Results res;
  o.fetch("/slow", res.sink());
  o.fetch("/slow", res.sink());
  CHECK(res.got.empty());
  CHECK(o.inFlight() == 2);
  o.fetch("/slow", res.sink());  // over the limit: answered before fetch returns
  REQUIRE(res.got.size() == 1);
  CHECK(res.got[0].kind == OriginResult::Kind::kError);
  CHECK(res.got[0].error == "overloaded");
  CHECK(o.inFlight() == 2);

  REQUIRE(runUntil(
      f.base, [&] { return res.got.size() == 3; }, 2000));
  CHECK(res.got[1].kind == OriginResult::Kind::kValue);
  CHECK(res.got[1].body == "slow");
  CHECK(res.got[2].kind == OriginResult::Kind::kValue);
  CHECK(res.got[2].body == "slow");
  CHECK(o.inFlight() == 0);
  CHECK(o.connections() == 2);
  CHECK(f.server->targets.size() == 2);  // the overloaded one never reached the origin

  // Capacity is back.
  CHECK(fetchOne(f, o, "/ok").kind == OriginResult::Kind::kValue);
}

TEST_CASE("origin: sequential requests reuse one keep-alive connection") {
  Fixture f;
  HttpOrigin o(f.base, nullptr, f.spec());
  for (int i = 0; i < 3; ++i) CHECK(fetchOne(f, o, "/ok").body == "hello");

  // Two more, each started from the previous one's done (re-entrant fetch while libevent is
  // still inside the finished request's callback).
  Results res;
  o.fetch("/ok", [&](OriginResult r) {
    res.got.push_back(std::move(r));
    o.fetch("/ok", res.sink());
  });
  REQUIRE(runUntil(
      f.base, [&] { return res.got.size() == 2; }, 2000));
  CHECK(res.got[0].body == "hello");
  CHECK(res.got[1].body == "hello");

  CHECK(f.server->targets.size() == 5);
  CHECK(f.server->connections_seen == 1);
  CHECK(o.connections() == 1);
  CHECK(o.inFlight() == 0);
}

TEST_CASE("origin: an origin that closes after each response still works") {
  Fixture f;
  HttpOrigin o(f.base, nullptr, f.spec());
  CHECK(fetchOne(f, o, "/close").body == "bye");
  CHECK(fetchOne(f, o, "/close").body == "bye");
  CHECK(f.server->connections_seen == 2);
  CHECK(o.connections() == 1);  // the same evhttp_connection reconnects
}

TEST_CASE("origin: a refused connection is an error") {
  Fixture f;
  // Bound but not listening: the kernel answers a connect with RST, and the port stays ours.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
  socklen_t len = sizeof sin;
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) == 0);

  config::OriginSpec spec = f.spec();
  spec.base_url = "http://127.0.0.1:" + std::to_string(ntohs(sin.sin_port));
  HttpOrigin o(f.base, nullptr, spec);
  OriginResult r = fetchOne(f, o, "/ok");
  CHECK(r.kind == OriginResult::Kind::kError);
  CHECK(r.error == "connect failed");
  CHECK(o.inFlight() == 0);
  runFor(f.base, 20);  // let the reaper free the connection
  CHECK(o.connections() == 0);
  close(fd);
}

TEST_CASE("origin: bodies up to the cap are values, larger ones errors") {
  Fixture f;
  HttpOrigin o(f.base, nullptr, f.spec("", /*timeout_ms=*/5000));
  OriginResult big = fetchOne(f, o, "/big");
  CHECK(big.kind == OriginResult::Kind::kValue);
  CHECK(big.body == std::string(1u << 20, 'b'));

  Results res;
  o.fetch("/huge", res.sink());
  REQUIRE(runUntil(
      f.base, [&] { return !res.got.empty(); }, 5000));
  CHECK(res.got[0].kind == OriginResult::Kind::kError);
  CHECK(res.got[0].error == "body too large");
  runFor(f.base, 20);
  CHECK(o.connections() == 0);  // /huge reused /big's connection, and a failed one is freed

  CHECK(fetchOne(f, o, "/ok").body == "hello");
}

TEST_CASE("origin: destroying the origin with a request in flight drops it") {
  Fixture f;
  f.server->slow_ms = 150;
  int calls = 0;
  {
    HttpOrigin o(f.base, nullptr, f.spec());
    o.fetch("/slow", [&](OriginResult) { ++calls; });
    o.fetch("/ok", [&](OriginResult) { ++calls; });
    REQUIRE(runUntil(
        f.base, [&] { return f.server->targets.size() == 2 && calls == 1; }, 2000));
    CHECK(o.inFlight() == 1);
  }
  // The origin's slow reply now goes to a closed connection; nothing of ours may run.
  runFor(f.base, 300);
  CHECK(calls == 1);
}

TEST_CASE("origin: a bad base_url fails every fetch") {
  Fixture f;
  config::OriginSpec spec = f.spec();
  for (const char* bad :
       {"ftp://127.0.0.1", "http://", "http://h:0", "http://h:99999", "http://[::1"}) {
    spec.base_url = bad;
    HttpOrigin o(f.base, nullptr, spec);
    Results res;
    o.fetch("/ok", res.sink());
    REQUIRE(res.got.size() == 1);
    CHECK(res.got[0].error == "bad base_url");
  }
}

}  // namespace
}  // namespace corral::origin
