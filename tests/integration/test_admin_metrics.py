"""The admin endpoint's operator metrics (issue 14) and HEAD: the standard process_* metrics,
per-upstream series with addr and role labels, the config reload gauges, the latency histogram
without blocking commands, and HEAD on every path. corral-only."""

import http.client
import os
import re
import socket
import time

import pytest

from harness import RedisServer, corral_config, to_yaml, wait_until


def samples(c, name: str) -> dict:
    """{labels text: value} of one family's samples ('' for a sample without labels)."""
    out = {}
    for key, value in c.metrics().items():
        if key == name:
            out[""] = value
        elif key.startswith(name + "{"):
            out[key[len(name) + 1:-1]] = value
    return out


def types_of(body: str) -> dict:
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", body, re.M))


def test_process_metrics_match_the_process(redis_server, corral_factory):
    t0 = time.time()
    c = corral_factory(corral_config(redis_server.port))
    t1 = time.time()
    status, body = c.http_get("/metrics")
    assert status == 200
    kinds = types_of(body)
    assert kinds["process_cpu_seconds_total"] == "counter", kinds
    for g in ("process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
              "process_max_fds", "process_start_time_seconds"):
        assert kinds.get(g) == "gauge", (g, kinds)
    m = c.metrics()
    # Against what the kernel says of corral's pid, read here independently.
    rss = c.rss_kib() * 1024
    assert 0.7 * rss <= m["process_resident_memory_bytes"] <= 1.3 * rss, (rss, m)
    assert m["process_virtual_memory_bytes"] >= m["process_resident_memory_bytes"]
    fds = len(os.listdir(f"/proc/{c.pid}/fd"))
    assert abs(m["process_open_fds"] - fds) <= 3, (fds, m["process_open_fds"])
    with open(f"/proc/{c.pid}/limits") as f:
        soft = next(line.split()[3] for line in f if line.startswith("Max open files"))
    assert m["process_max_fds"] == (float(2**64 - 1) if soft == "unlimited" else float(soft))
    # The kernel counts start time in clock ticks after boot: within a tick or two of launch.
    assert t0 - 1 <= m["process_start_time_seconds"] <= t1 + 1, (t0, t1, m)
    # CPU time only grows; some work makes it grow.
    cpu0 = m["process_cpu_seconds_total"]
    assert cpu0 >= 0
    with c.client() as cl:
        for _ in range(20):
            assert cl.pipeline([("SET", "k", "v" * 1000)] * 500) == ["OK"] * 500
    wait_until(lambda: c.metrics()["process_cpu_seconds_total"] > cpu0, 5,
               what="process_cpu_seconds_total to grow after traffic")


@pytest.mark.single_node("a replica of its own next to the one redis-server")
def test_upstream_series_tell_a_dead_replica_apart(redis_server, corral_factory):
    with RedisServer() as replica:
        c = corral_factory(corral_config(redis_server.port, workers=2, upstream={
            "pool_size": 2, "replicas": [f"127.0.0.1:{replica.port}"]}))
        p = f'addr="127.0.0.1:{redis_server.port}",role="primary"'
        r = f'addr="127.0.0.1:{replica.port}",role="replica"'

        def state():
            return (samples(c, "corral_upstream_up"),
                    samples(c, "corral_upstream_connections_ready"),
                    samples(c, "corral_upstream_connections"))

        # Two workers with two connections each, to each address.
        wait_until(lambda: state() == ({p: 1, r: 1}, {p: 4, r: 4}, {p: 4, r: 4}), 5,
                   what="every connection ready")
        replica.kill()
        wait_until(lambda: state() == ({p: 1, r: 0}, {p: 4, r: 0}, {p: 4, r: 4}), 5,
                   what="the replica down, the primary still up")
        assert c.http_get("/ready")[0] == 200  # the primary is what /ready follows
        replica.start()
        wait_until(lambda: state()[0] == {p: 1, r: 1}, 5, what="the replica back")
        redis_server.kill()
        wait_until(lambda: state()[0] == {p: 0, r: 1}, 5, what="the primary down")
        redis_server.start()
        wait_until(lambda: state()[0] == {p: 1, r: 1}, 5, what="the primary back")


def test_reload_gauges_follow_the_last_load(redis_server, corral_factory):
    cfg = corral_config(redis_server.port)
    t0 = time.time()
    c = corral_factory(cfg)
    m = c.metrics()
    assert m["corral_config_last_reload_success"] == 1
    start = m["corral_config_last_reload_success_timestamp_seconds"]
    assert t0 - 2 <= start <= time.time() + 1, (t0, start)
    assert m["corral_config_reload_failures_total"] == 0

    c.write_config(to_yaml(cfg) + "\nlimits: {max_clients: zero}\n")
    c.signal(1)  # SIGHUP
    wait_until(lambda: c.metrics()["corral_config_reload_failures_total"] == 1, 5,
               what="the refused reload counted")
    m = c.metrics()
    assert m["corral_config_last_reload_success"] == 0
    assert m["corral_config_last_reload_success_timestamp_seconds"] == start  # still startup's

    time.sleep(0.05)  # a later timestamp than startup's, at the clock's millisecond resolution
    c.write_config(to_yaml(cfg) + "\n")
    c.signal(1)
    wait_until(lambda: c.metrics()["corral_config_last_reload_success"] == 1, 5,
               what="the valid reload applied")
    m = c.metrics()
    assert m["corral_config_last_reload_success_timestamp_seconds"] > start
    assert m["corral_config_reload_failures_total"] == 1


def test_blocking_commands_stay_out_of_the_latency_histogram(redis_server, corral_factory):
    c = corral_factory(corral_config(redis_server.port))
    with c.client() as cl:
        t = time.monotonic()
        assert cl.cmd("BLPOP", "empty-list", "1") is None  # waits the whole second
        assert time.monotonic() - t >= 0.9
        # XREAD with BLOCK blocks (and is counted); without BLOCK it is a plain read.
        assert cl.cmd("XREAD", "BLOCK", "300", "STREAMS", "empty-stream", "$") is None
        assert cl.cmd("XREAD", "STREAMS", "empty-stream", "0") is None
        for i in range(10):
            assert cl.cmd("GET", f"k{i}") is None
    h = samples(c, "corral_request_duration_seconds_bucket")
    count = samples(c, "corral_request_duration_seconds_count")[""]
    total = samples(c, "corral_request_duration_seconds_sum")[""]
    m = c.metrics()
    assert m["corral_blocking_requests_total"] == 2, m
    # The GETs and the plain XREAD landed; nothing waited past 0.25 s (the bucket below 0.5 s):
    # the BLPOP's second and the XREAD's 300 ms are not in any bucket.
    assert count == 11, h
    assert h['le="+Inf"'] == 11 and h['le="0.25"'] == 11, h
    assert total < 0.5, total
    assert m['corral_command_requests_total{command="blpop"}'] == 1
    assert m['corral_command_requests_total{command="xread"}'] == 2


def head_and_get(port: int, path: str):
    """HEAD then GET of path on one keep-alive HTTP/1.1 connection: a body sent after the HEAD
    reply would be read as the GET's status line and fail it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        conn.request("HEAD", path)
        head = conn.getresponse()
        head_body = head.read()  # http.client reads nothing for HEAD, whatever was sent
        conn.request("GET", path)
        get = conn.getresponse()
        get_body = get.read()
        return head, head_body, get, get_body
    finally:
        conn.close()


def test_head_on_every_endpoint(redis_server, corral_factory):
    c = corral_factory(corral_config(redis_server.port))
    wait_until(lambda: c.http_get("/ready")[0] == 200, 5, what="/ready 200")
    for path in ("/health", "/ready", "/metrics", "/policies", "/dashboard", "/nope"):
        head, head_body, get, get_body = head_and_get(c.admin_port, path)
        assert head_body == b"", path
        assert head.status == get.status, (path, head.status, get.status)
        for h in ("Content-Type", "Content-Security-Policy"):
            assert head.getheader(h) == get.getheader(h), (path, h)
        length = int(head.getheader("Content-Length"))
        if path == "/metrics":  # the values move between two scrapes
            assert length > 1000 and abs(length - len(get_body)) < 2000, (length, len(get_body))
        else:
            assert length == len(get_body) > 0, (path, length, get_body)
    # The body really is not on the wire: a raw HTTP/1.0 HEAD ends right after the headers.
    with socket.create_connection(("127.0.0.1", c.admin_port), timeout=3) as s:
        s.sendall(b"HEAD /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0], data
    assert rest == b"", data
    # Other methods are still refused.
    conn = http.client.HTTPConnection("127.0.0.1", c.admin_port, timeout=3)
    try:
        conn.request("POST", "/metrics", body=b"x")
        assert conn.getresponse().status == 405
    finally:
        conn.close()


def test_upstream_series_per_cluster_node(redis_cluster, corral_factory):
    """In a cluster, one series per node the workers connect to, its role from the slot map:
    every shard's primary, and replicas once reads went there (read_from: replica)."""
    cfg = corral_config(0, workers=2)
    up = dict(cfg["upstream"])
    del up["primary"]
    up["cluster"] = {"seeds": redis_cluster.seeds()[:2], "refresh_interval": "1s"}
    up["read_from"] = "replica"
    cfg["upstream"] = up
    c = corral_factory(cfg)
    primaries = {f"127.0.0.1:{p}" for p in redis_cluster.primaries()}
    replicas = {f"127.0.0.1:{p}" for p in redis_cluster.replicas()}

    def series():
        out = {}
        for labels, v in samples(c, "corral_upstream_up").items():
            addr = re.search(r'addr="([^"]*)"', labels).group(1)
            role = re.search(r'role="([^"]*)"', labels).group(1)
            out[(addr, role)] = v
        return out

    def read_everywhere():
        with c.client() as cl:
            for i in range(60):  # keys of every shard, from both workers' connections
                cl.cmd("GET", f"k:{i}")
        s = series()
        return (s and {a for a, r in s if r == "primary"} == primaries
                and {a for a, r in s if r == "replica"} == replicas and all(s.values()))

    wait_until(read_everywhere, 15, interval=0.2,
               what=f"up series for primaries {sorted(primaries)} and replicas {sorted(replicas)}")
