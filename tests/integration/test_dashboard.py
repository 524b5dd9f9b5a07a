"""/dashboard on the admin port (proxy/admin/dashboard.html, embedded at build time) in Debian's
headless Chromium, against a real corral, redis-server and HTTP origin with traffic: a fill
policy whose concurrent misses single-flight coalesces, a rate limit that trips, a near cache.

After the traffic stops, the page's numbers (data-metric / data-value attributes, filled by its
own JavaScript from /metrics and /policies) must equal /metrics read just before and just after
Chromium ran; the rates the page computed between its polls must be 0. With traffic flowing,
rates and the last interval's latency must show, and a screenshot is kept as a test artifact
($CORRAL_DASHBOARD_PNG, default build/test-logs/dashboard.png). The /policies token (read from
the URL fragment, sent as a Bearer header) is checked against a gatekeeper in front of corral's
admin port. Chromium always loads the page through that gatekeeper (a plain relay otherwise): it
holds the page's last bytes back a few seconds, so the page polls in real time before the load
event at which Chromium dumps the DOM or takes the screenshot.

Chromium is a test dependency (scripts/deps.sh test): when it is missing these tests fail.
corral-only. Every wait is bounded; every server listens on 127.0.0.1."""

import base64
import hashlib
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chromium import chromium, page_numbers, png_size_and_pixels
from harness import RespConn, RespError, admin_request, corral_config, to_yaml, wait_until
from sample_origin import SampleOrigin

pytestmark = pytest.mark.single_node("one corral and one redis-server; the page is the subject")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PAGE_FILE = os.path.join(ROOT, "proxy", "admin", "dashboard.html")
SCREENSHOT = os.environ.get("CORRAL_DASHBOARD_PNG",
                            os.path.join(ROOT, "build", "test-logs", "dashboard.png"))
SECRET = "dashboard-test-fill-secret-0123456789"
TOKEN = "s3cr3t-t0ken"


def dashboard_config(redis_port: int, origin_url: str) -> str:
    cfg = corral_config(redis_port)
    cfg["global"] = {"fill_secret": SECRET}
    cfg["origins"] = {"users": {"base_url": origin_url, "timeout": "2s"}}
    cfg["policies"] = [
        {"name": "user", "match": "user:<id:u64>", "ttl": {"default": "60s"},
         "fill": {"origin": "users", "path": "/v1/users/<id>"},
         "stampede": {"single_flight": "local"}},
        {"name": "session", "match": "session:<id:slug>", "ttl": {"default": "30m"},
         "rate_limits": [{"name": "session-writes", "rate": "5/s", "burst": 5,
                          "commands": ["SET"]}]},
        {"name": "product", "match": "product:<id:u64>", "ttl": {"default": "60s"},
         "near_cache": {"max_age": "10s"}},
    ]
    return to_yaml(cfg) + "\n"


# ---------------------------------------------------------------------------------------------
# Chromium and the DOM it dumps


def find(items, metric, **labels):
    got = [i for i in items if i["metric"] == metric
           and all(i.get(k) == v for k, v in labels.items())]
    assert len(got) == 1, f"{metric} {labels}: {len(got)} elements on the page: {got}"
    return got[0]


def fmt_int(v: float) -> str:
    return f"{int(v):,}"


def quantile(q, bs):
    """Prometheus's histogram_quantile over cumulative [(le, count)], as the page computes it."""
    bs = sorted(bs)
    if not bs or bs[-1][1] <= 0:
        return None
    rank = q * bs[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in bs:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le


def buckets(m: dict, family: str, extra: str = "") -> list:
    out = []
    pat = re.compile(re.escape(family) + r"_bucket\{" + re.escape(extra) + r'le="([^"]+)"\}$')
    for k, v in m.items():
        mm = pat.match(k)
        if mm:
            out.append((float(mm.group(1)), v))
    return out


# ---------------------------------------------------------------------------------------------
# HTTP helpers


class Gatekeeper:
    """An HTTP server standing for an admin port whose /policies needs `Bearer TOKEN` (as with
    admin.token_env): /dashboard and /metrics are corral's own, /policies is corral's only with
    the token (401 without). It records what each request carried. extra_metrics is appended to
    corral's /metrics (series a corral of this build may not export); metrics_delay holds each
    /metrics answer back that long before reading corral's. hold_page: /dashboard goes out up to
    its closing </body> at once, the rest that many seconds later, so the page's script runs and
    polls (every 2 s) before the load event that Chromium waits for. token=None: /policies is
    open, and the gatekeeper is a plain relay."""

    def __init__(self, admin_port: int, extra_metrics: str = "", metrics_delay: float = 0.0,
                 token=TOKEN, hold_page: float = 3.5):
        self.admin_port = admin_port
        self.extra_metrics = extra_metrics.encode()
        self.metrics_delay = metrics_delay
        self.token = token
        self.hold_page = hold_page
        self.seen = []  # (path, Authorization header or None)
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 (http.server's naming)
                auth = self.headers.get("Authorization")
                gate.seen.append((self.path, auth))
                if self.path == "/metrics" and gate.metrics_delay:
                    time.sleep(gate.metrics_delay)
                if self.path == "/policies" and gate.token and auth != f"Bearer {gate.token}":
                    status, hdrs, body = 401, {"content-type": "text/plain"}, b"token required\n"
                else:
                    status, hdrs, body = admin_request(gate.admin_port, self.path)
                    if self.path == "/metrics":
                        body += gate.extra_metrics
                self.send_response(status)
                for k in ("content-type", "content-security-policy"):
                    if k in hdrs:
                        self.send_header(k, hdrs[k])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = body.rfind(b"</body>") if self.path == "/dashboard" else -1
                if gate.hold_page and cut > 0:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    time.sleep(gate.hold_page)
                    body = body[cut:]
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# ---------------------------------------------------------------------------------------------
# Traffic


def drive_traffic(c, redis_server, origin):
    """Hits and misses, a fill with concurrent misses, a limit that trips, near cache hits."""
    origin.set(latency_ms=300)  # the first miss's fill is still out when the others arrive
    conns = [RespConn(c.port) for _ in range(6)]
    try:
        for cl in conns:
            cl.send_cmd("GET", "user:42")
        replies = [cl.read_reply() for cl in conns]
    finally:
        for cl in conns:
            cl.close()
    assert all(isinstance(r, bytes) and b'"42"' in r for r in replies), replies
    with c.client() as cl:
        for _ in range(3):
            assert b'"42"' in cl.cmd("GET", "user:42")  # hits
        got = cl.pipeline([("SET", f"session:s{i}", "v") for i in range(12)])
        assert any(isinstance(r, RespError) and r.startswith("RATELIMITED") for r in got), got
        assert cl.cmd("GET", "session:s0") == b"v"  # a hit (GETs are not limited)
        assert cl.cmd("GET", "session:none") is None  # a miss
        assert cl.cmd("SET", "product:1", "p1") == "OK"
        for _ in range(5):
            assert cl.cmd("GET", "product:1") == b"p1"
        assert cl.cmd("GET", "unmatched-key") is None
    assert origin.calls("/v1/users/42") == 1


# The metrics the page shows as plain totals: (data-metric, data attrs, /metrics sample name).
def pooled(m):
    """m plus the pool totals the page shows: corral_upstream_connections{,_ready} summed over
    their addr/role series."""
    for name in ("corral_upstream_connections_ready", "corral_upstream_connections"):
        m[name] = sum(v for k, v in m.items() if k.startswith(name + "{"))
    return m


def exact_totals(policies, limits, fill_policies, near_policies):
    rows = [("corral_requests_total", {}, "corral_requests_total"),
            ("corral_requests_forwarded_total", {}, "corral_requests_forwarded_total"),
            ("corral_connections_accepted_total", {}, "corral_connections_accepted_total"),
            ("corral_clients", {}, "corral_clients"),
            ("corral_pending_requests", {}, "corral_pending_requests"),
            ("corral_upstream_errors_total", {}, "corral_upstream_errors_total"),
            ("corral_upstream_handshake_failures_total", {},
             "corral_upstream_handshake_failures_total"),
            ("corral_upstream_connections_ready", {}, "corral_upstream_connections_ready"),
            ("corral_upstream_connections", {}, "corral_upstream_connections"),
            ("corral_near_hits_total", {}, "corral_near_hits_total"),
            ("corral_near_misses_total", {}, "corral_near_misses_total"),
            ("corral_near_entries", {}, "corral_near_entries"),
            ("corral_near_invalidations_total", {}, "corral_near_invalidations_total"),
            ("corral_near_evictions_total", {}, "corral_near_evictions_total")]
    for p in policies:
        lab = f'policy="{p}"'
        rows += [("corral_policy_requests_total", {"policy": p},
                  f"corral_policy_requests_total{{{lab}}}"),
                 ("corral_policy_reads_total:hit", {"policy": p},
                  f'corral_policy_reads_total{{{lab},result="hit"}}'),
                 ("corral_policy_reads_total:miss", {"policy": p},
                  f'corral_policy_reads_total{{{lab},result="miss"}}')]
    for name in limits:
        for result in ("admitted", "rejected", "shadowed"):
            rows.append((f"corral_ratelimit_requests_total:{result}", {"limit": name},
                         f'corral_ratelimit_requests_total{{limit="{name}",result="{result}"}}'))
    for p in fill_policies:
        for ev in ("fills", "fill_errors", "coalesced", "lease_losses", "stale_served",
                   "negative_hits"):
            rows.append((f"corral_fill_events_total:{ev}", {"policy": p},
                         f'corral_fill_events_total{{policy="{p}",event="{ev}"}}'))
    for p in near_policies:
        for ev in ("hit", "miss", "invalidation", "eviction"):
            rows.append((f"corral_policy_near_total:{ev}", {"policy": p},
                         f'corral_policy_near_total{{policy="{p}",event="{ev}"}}'))
    return rows


def test_dashboard_page_and_headers(redis_server, corral_factory):
    """The page served is dashboard.html byte for byte, as text/html, under a CSP that allows no
    other origin and exactly the page's own inline script and style (by their SHA-256)."""
    c = corral_factory(to_yaml(corral_config(redis_server.port)) + "\n")
    status, hdrs, body = admin_request(c.admin_port, "/dashboard")
    assert status == 200, (status, body[:200])
    with open(PAGE_FILE, "rb") as f:
        assert body == f.read(), "served page differs from proxy/admin/dashboard.html"
    assert hdrs["content-type"].startswith("text/html"), hdrs
    csp = {d.split()[0]: d.split()[1:] for d in hdrs["content-security-policy"].split(";") if d.strip()}
    assert csp["default-src"] == ["'none'"], csp
    assert csp["connect-src"] == ["'self'"], csp
    for tag in ("script", "style"):
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>".encode(), body, re.S)
        assert len(blocks) == 1, f"{tag}: {len(blocks)} blocks"
        digest = base64.b64encode(hashlib.sha256(blocks[0]).digest()).decode()
        assert csp[f"{tag}-src"] == [f"'sha256-{digest}'"], csp
    assert "unsafe-inline" not in hdrs["content-security-policy"]
    # Nothing the page refers to lives elsewhere: no URL with a scheme or a network path.
    text = body.decode()
    assert not re.search(r"""(src|href|action)\s*=|url\(|@import|https?://|["']//""", text), \
        re.search(r"""(src|href|action)\s*=|url\(|@import|https?://|["']//.{0,40}""", text)
    assert admin_request(c.admin_port, "/dashboard/x")[0] == 404


def test_dashboard_numbers_match_metrics(redis_server, corral_factory):
    with SampleOrigin() as origin:
        c = corral_factory(dashboard_config(redis_server.port, origin.url))
        drive_traffic(c, redis_server, origin)

        def settled():
            m = c.metrics()
            near = [m.get(f'corral_policy_near_total{{policy="product",event="{e}"}}', 0)
                    for e in ("hit", "miss")]
            # The near cache's counters reach /metrics on each worker's tick.
            return (m.get('corral_fill_events_total{policy="user",event="fills"}') == 1
                    and sum(near) == 5 and m.get("corral_near_hits_total") == near[0]
                    and m.get("corral_near_misses_total") == near[1]
                    and m.get("corral_clients") == 0 and m.get("corral_pending_requests") == 0)
        wait_until(settled, 5, what="the fill and the near cache reads counted, clients gone")
        before = pooled(c.metrics())
        with Gatekeeper(c.admin_port, token=None) as gate:  # a relay: the page polls twice
            dom = chromium(f"http://127.0.0.1:{gate.port}/dashboard", "--dump-dom")
        after = pooled(c.metrics())
        policies_doc = json.loads(c.http_get("/policies")[1])

    # The scenario did what the page is meant to show.
    assert before['corral_fill_events_total{policy="user",event="coalesced"}'] >= 1, before
    assert before['corral_ratelimit_requests_total{limit="session-writes",result="rejected"}'] > 0
    assert before['corral_policy_near_total{policy="product",event="hit"}'] >= 1

    page = page_numbers(dom)
    items = page.items
    assert int(find(items, "dashboard_polls")["value"]) >= 2, "the page polled fewer than twice"

    # Totals equal /metrics (which did not move while Chromium ran).
    policies = [p["name"] for p in policies_doc["policies"]]
    assert policies == ["user", "session", "product"], policies
    rows = exact_totals(policies, ["session-writes"], ["user"], ["product"])
    for metric, attrs, sample in rows:
        assert before[sample] == after[sample], f"{sample} moved: {before[sample]} -> {after[sample]}"
        e = find(items, metric, **attrs)
        assert e["value"] != "" and float(e["value"]) == before[sample], (e, sample, before[sample])
        assert e["text"] == fmt_int(before[sample]), (e, sample)
    shown = [i["policy"] for i in items if i["metric"] == "corral_policy_requests_total"]
    assert shown == policies, shown  # the policies in force, in /policies' order

    # Derived numbers.
    fill = 'corral_fill_events_total{policy="user",event="%s"}'
    saved = before[fill % "coalesced"] + before[fill % "lease_losses"]
    e = find(items, "fill_origin_calls_saved", policy="user")
    assert float(e["value"]) == saved and e["text"] == fmt_int(saved), e
    count = before['corral_fill_origin_duration_seconds_count{policy="user"}']
    total = before['corral_fill_origin_duration_seconds_sum{policy="user"}']
    assert float(find(items, "corral_fill_origin_duration_seconds:avg", policy="user")["value"]) \
        == pytest.approx(total / count)
    for p in policies:
        hits = before[f'corral_policy_reads_total{{policy="{p}",result="hit"}}']
        misses = before[f'corral_policy_reads_total{{policy="{p}",result="miss"}}']
        e = find(items, "corral_policy_hit_ratio", policy=p)
        if hits + misses == 0:
            assert e["value"] == "" and e["text"] == "—", e
        else:
            assert float(e["value"]) == pytest.approx(hits / (hits + misses)), (p, e)
            assert e["text"] == f"{hits / (hits + misses) * 100:.1f}", e
    ratio = before['corral_policy_near_hit_ratio{policy="product"}']
    assert float(find(items, "corral_policy_near_hit_ratio", policy="product")["value"]) == ratio
    lat = buckets(before, "corral_request_duration_seconds")
    assert lat and buckets(after, "corral_request_duration_seconds") == lat
    for q, name in ((0.5, "latency_p50_total"), (0.99, "latency_p99_total")):
        assert float(find(items, name)["value"]) == pytest.approx(quantile(q, lat)), name
    # Over the last interval nothing happened: no latency, and every rate is 0.
    for name in ("latency_p50", "latency_p99"):
        assert find(items, name)["value"] == "", name
    rates = [i for i in items if i["metric"].endswith(":rate")]
    assert len(rates) >= 8, rates
    for r in rates:
        assert r["value"] == "0" and r["text"] == "0", r
    # The limit tripped before, not now.
    state = find(items, "ratelimit_state", limit="session-writes")
    assert (state["value"], state["text"]) == ("tripped", "tripped earlier"), state

    # Upstream state: per upstream when corral exports corral_upstream_up, else the pool gauges.
    ups = {k: v for k, v in before.items() if k.startswith("corral_upstream_up{")}
    shown_ups = [i for i in items if i["metric"] == "corral_upstream_up"]
    assert len(shown_ups) == len(ups), (shown_ups, ups)
    for i in shown_ups:
        key = f'corral_upstream_up{{addr="{i["upstream"]}",role="{i["role"]}"}}'
        assert key in ups and float(i["value"]) == ups[key], (i, ups)
        assert i["text"] == ("UP" if ups[key] >= 1 else "DOWN"), i
    if not ups:
        assert before["corral_upstream_connections_ready"] == before["corral_upstream_connections"]
        state = find(items, "upstream_state")
        assert (state["value"], state["text"]) == ("up", "UP"), state

    # Header: version, uptime between the two reads, memory when exported.
    version = [k for k in before if k.startswith("corral_build_info{")][0]
    assert find(items, "corral_build_info")["value"] == re.search(r'version="([^"]*)"',
                                                                   version).group(1)
    up = float(find(items, "corral_uptime_seconds")["value"])
    assert before["corral_uptime_seconds"] <= up <= after["corral_uptime_seconds"]
    rss = find(items, "process_resident_memory_bytes")
    if "process_resident_memory_bytes" in before:
        assert float(rss["value"]) > 1e6, rss
    else:
        assert rss["value"] == "" and rss["text"] == "n/a", rss
    assert find(items, "policies_status")["text"] == ""  # /policies answered
    assert page.ids["poll-status"].startswith("updated "), page.ids["poll-status"]


class Traffic:
    """Clients sending pipelines until stopped (while Chromium watches)."""

    def __init__(self, port: int, clients: int = 2):
        self.stop = threading.Event()
        self.errors = []
        self.threads = [threading.Thread(target=self._run, args=(port,)) for _ in range(clients)]

    def _run(self, port):
        try:
            with RespConn(port) as cl:
                i = 0
                while not self.stop.is_set():
                    cl.pipeline([("GET", f"user:{i % 20}"), ("GET", "product:1"),
                                 ("SET", f"session:t{i}", "v"), ("GET", "session:s0")] * 2)
                    i += 1
                    time.sleep(0.005)  # steady, not flat out: the machine is shared
        except Exception as e:  # noqa: BLE001 (reported by the test)
            self.errors.append(repr(e))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)
        assert not any(t.is_alive() for t in self.threads), "traffic threads did not stop"
        assert not self.errors, self.errors


def test_dashboard_live_screenshot(redis_server, corral_factory):
    """The page while traffic flows: rates and interval latency appear, a limit tripping now is
    shown so. The screenshot is the test's artifact.

    The load event comes 5 s on (Gatekeeper hold_page), after about three polls 2 s apart: the
    rates shown are real."""
    with SampleOrigin() as origin:
        c = corral_factory(dashboard_config(redis_server.port, origin.url))
        drive_traffic(c, redis_server, origin)
        origin.set(latency_ms=0)
        os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
        if os.path.exists(SCREENSHOT):
            os.unlink(SCREENSHOT)
        with Traffic(c.port):
            wait_until(lambda: c.metrics().get("corral_requests_total", 0) > 500, 10,
                       what="traffic flowing")
            with Gatekeeper(c.admin_port, token=None, hold_page=5.0) as gate:
                dom = chromium(f"http://127.0.0.1:{gate.port}/dashboard", "--dump-dom",
                               f"--screenshot={SCREENSHOT}", "--window-size=1280,1600",
                               "--hide-scrollbars")
        wait_until(lambda: c.metrics().get("corral_clients") == 0, 5, what="clients gone")

    items = page_numbers(dom).items
    assert int(find(items, "dashboard_polls")["value"]) >= 2
    assert float(find(items, "corral_requests_total:rate")["value"]) > 0
    assert float(find(items, "corral_policy_requests_total:rate", policy="session")["value"]) > 0
    assert float(find(items, "latency_p50")["value"]) > 0
    assert float(find(items, "latency_p99")["value"]) >= float(find(items, "latency_p50")["value"])
    state = find(items, "ratelimit_state", limit="session-writes")
    assert (state["value"], state["text"]) == ("tripping", "TRIPPING"), state

    width, height, pixels = png_size_and_pixels(SCREENSHOT)
    assert (width, height) == (1280, 1600), (width, height)
    # A blank or single-colour page compresses to almost nothing and has few byte values.
    assert os.path.getsize(SCREENSHOT) > 20000, os.path.getsize(SCREENSHOT)
    assert len(set(pixels)) > 64, len(set(pixels))


UPSTREAMS = """corral_upstream_up{addr="10.0.0.1:6379",role="primary"} 1
corral_upstream_up{addr="10.0.0.2:6379",role="replica"} 0
"""


def test_dashboard_policies_token_and_upstreams(redis_server, corral_factory):
    """The /policies token goes from the fragment to the Bearer header, never into a request's
    path; without it the page says so and still shows the metrics. Per-upstream series
    (corral_upstream_up{addr,role}) are shown one card each, a down replica as DOWN."""
    with SampleOrigin() as origin:
        c = corral_factory(dashboard_config(redis_server.port, origin.url))
        drive_traffic(c, redis_server, origin)
        wait_until(lambda: c.metrics().get("corral_clients") == 0, 5, what="clients gone")
        requests_total = c.metrics()["corral_requests_total"]
        with Gatekeeper(c.admin_port, UPSTREAMS) as gate:
            base = f"http://127.0.0.1:{gate.port}/dashboard"
            dom = chromium(base, "--dump-dom")
            page = page_numbers(dom)
            items = page.items
            assert find(items, "policies_status")["text"] == "policies: token required"
            assert float(find(items, "corral_requests_total")["value"]) == requests_total
            assert page.ids["policies-note"] == "from /metrics (/policies unavailable)"
            assert page.ids["poll-status"].startswith("updated "), page.ids["poll-status"]
            assert all(auth is None for _, auth in gate.seen), gate.seen
            up = {(i["upstream"], i["role"]): (i["value"], i["text"])
                  for i in items if i["metric"] == "corral_upstream_up"}
            # corral's own series for its Redis, and the two the relay added
            assert up == {("10.0.0.1:6379", "primary"): ("1", "UP"),
                          ("10.0.0.2:6379", "replica"): ("0", "DOWN"),
                          (f"127.0.0.1:{redis_server.port}", "primary"): ("1", "UP")}, up
            assert not [i for i in items if i["metric"] == "upstream_state"]
            assert page.ids["upstream-note"] == "1 of 3 down", page.ids["upstream-note"]

            gate.seen.clear()
            dom = chromium(f"{base}#token={TOKEN}", "--dump-dom")
            page = page_numbers(dom)
            items = page.items
            assert find(items, "policies_status")["text"] == ""
            assert re.fullmatch(r"from /policies(; \d+ policy file\(s\))?",
                                page.ids["policies-note"]), page.ids
            assert float(find(items, "corral_requests_total")["value"]) == requests_total
            policy_calls = [auth for path, auth in gate.seen if path == "/policies"]
            assert len(policy_calls) >= 2 and all(a == f"Bearer {TOKEN}" for a in policy_calls)
            assert not any(TOKEN in path for path, _ in gate.seen), gate.seen

            gate.seen.clear()
            gate.hold_page = 1.0  # one poll is enough
            dom = chromium(f"{base}#token=wrong", "--dump-dom")
            assert find(page_numbers(dom).items, "policies_status")["text"] == \
                "policies: token refused"
