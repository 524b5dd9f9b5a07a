"""ttl.from_origin through the real corral binary, a real redis-server and a scripted HTTP origin
(started here): the origin's Cache-Control / Expires / Age set each filled value's TTL within
ttl.min / ttl.max; no-store and private answers are served but not stored; no-cache answers are
stored stale and revalidated; ETag validators make background refreshes conditional, a 304
moves no body and extends the TTL of the value (and its validator) without rewriting it; a
write between the validation and the 304 is not extended. See policies/fill_freshness.h,
policies/http_freshness.h and README "Cache-aside fill". corral-only.

Every wait is bounded; everything listens on 127.0.0.1."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fill_keys import meta_key
from harness import corral_config, to_yaml, wait_until

SECRET = "integration-fill-secret-0123456789"


class ScriptedOrigin:
    """GET /v1/items/<id>: the answer scripted for <id> in `routes` (headers, body, 304 delay).
    With an `etag` route, a request whose If-None-Match names it gets 304 (after delay_304 s).
    Counts per id: requests, 200s, 304s, body bytes sent, conditional requests."""

    def __init__(self):
        self.routes = {}
        self.lock = threading.Lock()
        self.stats = {}
        self.seen_304 = threading.Event()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                item = self.path.rsplit("/", 1)[-1]
                route = origin.routes.get(item)
                st = origin._stats(item)
                inm = self.headers.get("If-None-Match")
                with origin.lock:
                    st["requests"] += 1
                    st["conditional"] += 1 if inm else 0
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                etag = route.get("etag")
                if etag and inm == etag:
                    origin.seen_304.set()
                    time.sleep(route.get("delay_304", 0))
                    self.send_response(304)
                    for name, value in route.get("headers", []):
                        self.send_header(name, value)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    with origin.lock:
                        st["not_modified"] += 1
                    return
                body = route.get("body", b"x" * 1000)
                self.send_response(200)
                for name, value in route.get("headers", []):
                    self.send_header(name, value)
                if etag:
                    self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with origin.lock:
                    st["ok"] += 1
                    st["bytes"] += len(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _stats(self, item):
        with self.lock:
            return self.stats.setdefault(item, {"requests": 0, "ok": 0, "not_modified": 0,
                                                "bytes": 0, "conditional": 0})

    def stat(self, item, field):
        with self.lock:
            return self.stats.get(item, {}).get(field, 0)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def origin():
    o = ScriptedOrigin()
    try:
        yield o
    finally:
        o.close()


def config(redis_port, origin_url, ttl=None, freshness=None):
    pol = {"name": "item", "match": "item:<id:slug>",
           "ttl": {"default": "30s", "min": "5s", "max": "120s", "jitter": 0,
                   "from_origin": True, **(ttl or {})},
           "fill": {"origin": "items", "path": "/v1/items/<id>"},
           "stampede": {"single_flight": "distributed"}}
    if freshness:
        pol["freshness"] = freshness
    cfg = corral_config(redis_port)
    cfg.setdefault("global", {})["fill_secret"] = SECRET
    cfg["origins"] = {"items": {"base_url": origin_url, "timeout": "2s"}}
    cfg["policies"] = [pol]
    return to_yaml(cfg) + "\n"


def fill_event(c, event):
    return c.metrics().get(f'corral_fill_events_total{{policy="item",event="{event}"}}', 0)


def origin_bytes(c):
    return c.metrics().get('corral_fill_origin_bytes_total{policy="item"}', 0)


def http_date(t):
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(t))


# (id, headers, expected TTL in ms): each lands within ttl.min 5 s .. ttl.max 120 s.
CASES = [
    ("maxage", [("Cache-Control", "max-age=60")], 60000),
    ("smaxage", [("Cache-Control", "max-age=60, s-maxage=20")], 20000),
    ("upper", [("Cache-Control", "MAX-AGE=\"86400\"")], 120000),   # clamped to ttl.max
    ("lower", [("Cache-Control", "max-age=1")], 5000),             # raised to ttl.min
    ("aged", [("Cache-Control", "max-age=60"), ("Age", "45")], 15000),
    ("overaged", [("Cache-Control", "max-age=60"), ("Age", "600")], 5000),
    ("twice", [("Cache-Control", "max-age=60"), ("Cache-Control", "max-age=90")], 5000),
    ("bad", [("Cache-Control", "max-age=soon")], 5000),
    ("none", [], 30000),                                           # ttl.default
    ("public", [("Cache-Control", "public")], 30000),
]


def test_ttls_from_cache_control_land_within_the_clamps(redis_server, corral_factory, origin):
    for item, headers, _ in CASES:
        origin.routes[item] = {"headers": headers}
    now = time.time()
    origin.routes["expires"] = {"headers": [("Date", http_date(now)),
                                            ("Expires", http_date(now + 40))]}
    origin.routes["expired"] = {"headers": [("Expires", http_date(now - 3600))]}
    c = corral_factory(config(redis_server.port, origin.url))
    expected = [(item, ttl) for item, _, ttl in CASES] + [("expires", 40000), ("expired", 5000)]
    with c.client() as cl:
        for item, ttl in expected:
            assert cl.cmd("GET", f"item:{item}") == b"x" * 1000, item
            pttl = redis_server.cmd("PTTL", f"item:{item}")
            # HTTP dates have 1 s resolution: the Expires case may lose up to a second.
            slack = 2000 if item == "expires" else 500
            assert ttl - slack <= pttl <= ttl, (item, pttl, ttl)
    assert fill_event(c, "fills") == len(expected)
    assert origin_bytes(c) == 1000 * len(expected)


@pytest.mark.parametrize("cc", ["no-store", "private, max-age=60", "No-Store"])
def test_no_store_and_private_are_served_not_stored(redis_server, corral_factory, origin, cc):
    origin.routes["secret"] = {"headers": [("Cache-Control", cc)], "body": b"s3cret"}
    c = corral_factory(config(redis_server.port, origin.url))
    with c.client() as cl:
        assert cl.cmd("GET", "item:secret") == b"s3cret"
        assert redis_server.cmd("EXISTS", "item:secret") == 0
        assert cl.cmd("GET", "item:secret") == b"s3cret"
    assert origin.stat("secret", "requests") == 2
    assert redis_server.cmd("KEYS", "__corral:*") == []  # no lease left, no validator
    assert fill_event(c, "not_stored") == 2


def test_no_cache_is_stored_stale_and_each_hit_revalidates(redis_server, corral_factory, origin):
    origin.routes["nc"] = {"headers": [("Cache-Control", "no-cache")], "etag": '"nc1"',
                           "body": b"n" * 500}
    c = corral_factory(config(redis_server.port, origin.url,
                              freshness={"stale_while_revalidate": "10s"}))
    with c.client() as cl:
        assert cl.cmd("GET", "item:nc") == b"n" * 500
        pttl = redis_server.cmd("PTTL", "item:nc")
        assert 9000 <= pttl <= 10000, pttl  # zero freshness + the 10 s window
        time.sleep(0.5)
        before = redis_server.cmd("PTTL", "item:nc")
        assert cl.cmd("GET", "item:nc") == b"n" * 500  # served at once, revalidated behind
        wait_until(lambda: fill_event(c, "revalidated") == 1, 3, what="a 304 revalidation")
        assert redis_server.cmd("PTTL", "item:nc") > before + 300
    assert origin.stat("nc", "ok") == 1
    assert origin.stat("nc", "not_modified") == 1
    assert origin.stat("nc", "conditional") == 1
    assert origin_bytes(c) == 500


def test_etag_304_refresh_moves_no_body_and_extends_the_ttl(redis_server, corral_factory,
                                                            origin):
    body = b"e" * 4000
    origin.routes["hot"] = {"headers": [("Cache-Control", "max-age=1")], "etag": '"v1"',
                            "body": body}
    c = corral_factory(config(redis_server.port, origin.url, ttl={"min": "1s"},
                              freshness={"stale_while_revalidate": "30s"}))
    meta = meta_key(SECRET, "item:hot")
    with c.client() as cl:
        assert cl.cmd("GET", "item:hot") == body
        assert redis_server.cmd("KEYS", "__corral:val:*") == [meta.encode()]
        stored_meta = redis_server.cmd("GET", meta)
        # sha1 of the value, then the windows (the policy's) and the ETag
        assert stored_meta[40:] == b'30000:0:E"v1"', stored_meta
        for period in range(1, 4):
            time.sleep(1.1)  # past the 1 s soft TTL: the next hit refreshes in the background
            low = redis_server.cmd("PTTL", "item:hot")
            assert low < 30000, low
            assert cl.cmd("GET", "item:hot") == body
            wait_until(lambda: fill_event(c, "revalidated") == period, 3,
                       what=f"304 number {period}")
            assert redis_server.cmd("PTTL", "item:hot") > 30000  # 1 s + the 30 s window
            assert abs(redis_server.cmd("PTTL", meta) - redis_server.cmd("PTTL", "item:hot")) < 50
            assert redis_server.cmd("GET", "item:hot") == body
            assert redis_server.cmd("GET", meta) == stored_meta
    assert origin.stat("hot", "ok") == 1  # the body crossed the wire once
    assert origin.stat("hot", "bytes") == len(body)
    assert origin.stat("hot", "not_modified") == 3
    assert origin_bytes(c) == len(body)
    assert fill_event(c, "refreshes") == 3


def test_origin_windows_replace_the_policys(redis_server, corral_factory, origin):
    # The policy has no freshness window; the origin gives its answer one.
    origin.routes["win"] = {"headers": [("Cache-Control",
                                         "max-age=1, Stale-While-Revalidate=\"3\"")],
                            "etag": '"w1"', "body": b"w" * 100}
    c = corral_factory(config(redis_server.port, origin.url, ttl={"min": "1s"}))
    with c.client() as cl:
        assert cl.cmd("GET", "item:win") == b"w" * 100
        pttl = redis_server.cmd("PTTL", "item:win")
        assert 3500 <= pttl <= 4000, pttl  # 1 s + the origin's 3 s window
        time.sleep(1.2)
        assert cl.cmd("GET", "item:win") == b"w" * 100  # stale, served, refreshed behind
        wait_until(lambda: fill_event(c, "revalidated") == 1, 3, what="a 304 revalidation")
        assert redis_server.cmd("PTTL", "item:win") > 3500
    assert fill_event(c, "stale_served") == 1
    assert origin.stat("win", "conditional") == 1


def test_a_client_write_through_corral_drops_the_validator(redis_server, corral_factory,
                                                         origin):
    origin.routes["w"] = {"headers": [("Cache-Control", "max-age=1")], "etag": '"c1"',
                          "body": b"origin"}
    c = corral_factory(config(redis_server.port, origin.url, ttl={"min": "1s"},
                              freshness={"stale_while_revalidate": "5s"}))
    meta = meta_key(SECRET, "item:w")
    with c.client() as cl:
        assert cl.cmd("GET", "item:w") == b"origin"
        assert redis_server.cmd("EXISTS", meta) == 1
        assert cl.cmd("SET", "item:w", "client", "PX", "1500") == "OK"
        wait_until(lambda: redis_server.cmd("EXISTS", meta) == 0, 2, what="validator deleted")
        time.sleep(1.1)  # the client's value is past its soft TTL under the policy's window
        assert cl.cmd("GET", "item:w") == b"client"
        wait_until(lambda: redis_server.cmd("GET", "item:w") == b"origin", 3,
                   what="the refresh's 200")
    assert origin.stat("w", "conditional") == 0  # the client's value was never "validated"
    assert origin.stat("w", "ok") == 2


def test_a_write_between_validation_and_304_is_not_extended(redis_server, corral_factory,
                                                            origin):
    origin.routes["raced"] = {"headers": [("Cache-Control", "max-age=1")], "etag": '"r1"',
                              "body": b"origin", "delay_304": 0.5}
    c = corral_factory(config(redis_server.port, origin.url, ttl={"min": "1s"},
                              freshness={"stale_while_revalidate": "5s"}))
    with c.client() as cl:
        assert cl.cmd("GET", "item:raced") == b"origin"
        time.sleep(1.1)
        assert cl.cmd("GET", "item:raced") == b"origin"  # starts the conditional refresh
        assert origin.seen_304.wait(3)
        # Another app writes Redis directly while the 304 is on its way (KEEPTTL: the TTL
        # stays where it was, below the soft TTL).
        assert redis_server.cmd("SET", "item:raced", "mine", "KEEPTTL") == "OK"
        wait_until(lambda: origin.stat("raced", "not_modified") == 1, 3, what="the 304")
        time.sleep(0.3)
        assert redis_server.cmd("GET", "item:raced") == b"mine"
        assert redis_server.cmd("PTTL", "item:raced") < 5000  # not extended
        assert fill_event(c, "revalidated") == 0
        # The next refresh validates nothing (the validator no longer matches the value): a
        # plain GET whose 200 replaces the value.
        assert cl.cmd("GET", "item:raced") == b"mine"
        wait_until(lambda: redis_server.cmd("GET", "item:raced") == b"origin", 3,
                   what="the unconditional refresh")
    assert origin.stat("raced", "conditional") == 1
    assert origin.stat("raced", "ok") == 2
