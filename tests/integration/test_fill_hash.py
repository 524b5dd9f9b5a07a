"""Hash fills and fill.decode through the real corral binary, a real redis-server and an HTTP
origin of this file (each path answers a body, a status and a delay the test chose):
HGETALL of a missing key fills a hash from a JSON object (one origin call per storm of 50
clients, RESP2 and RESP3, replies byte for byte what Redis answers for the stored hash
afterwards), fields and TTL; HGET fills then answers the field; a client write racing the fill
leaves no stale hash; 404s are remembered; a body that is not a JSON object is a fill error
and stores nothing; fill.decode json-field stores one member as a string. corral-only.

Every wait is bounded; everything listens on 127.0.0.1."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import harness
from fill_keys import negative_key
from harness import RespConn, RespError, corral_config, to_yaml, wait_until
from raw_resp import RawConn

SECRET = "integration-fill-hash-secret-0123456789"

# The replies are compared byte for byte with one redis-server's over direct connections.
pytestmark = pytest.mark.single_node("compares with direct connections to one redis-server")


class JsonOrigin:
    """An origin whose answer per path the test sets: route(path, body, status, delay_s).
    Unknown paths answer 404. Counts calls per path."""

    def __init__(self):
        self.lock = threading.Lock()
        self.routes = {}
        self.counts = {}
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self):  # noqa: N802 (http.server's name)
                with origin.lock:
                    origin.counts[self.path] = origin.counts.get(self.path, 0) + 1
                    status, body, delay = origin.routes.get(self.path, (404, b"", 0.0))
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def route(self, path, body, status=200, delay=0.0):
        if not isinstance(body, bytes):
            body = (body if isinstance(body, str) else json.dumps(body)).encode()
        with self.lock:
            self.routes[path] = (status, body, delay)

    def calls(self, path=None):
        with self.lock:
            return sum(self.counts.values()) if path is None else self.counts.get(path, 0)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def origin():
    o = JsonOrigin()
    try:
        yield o
    finally:
        o.stop()


HASH_POLICY = {"name": "user", "match": "user:<id:u64>", "ttl": {"default": "60s"},
               "fill": {"origin": "users", "path": "/v1/users/<id>",
                        "commands": ["HGETALL", "HGET"], "on_error": "error"},
               "negative": {"ttl": "5s"}, "stampede": {"single_flight": "local"}}


def config(redis_port, origin_url, policies, **overrides):
    cfg = corral_config(redis_port, **overrides)
    cfg.setdefault("global", {})["fill_secret"] = SECRET
    cfg["origins"] = {"users": {"base_url": origin_url, "timeout": "2s"}}
    cfg["policies"] = policies
    return to_yaml(cfg) + "\n"


def hash_policy(**changes):
    p = json.loads(json.dumps(HASH_POLICY))
    p.update(changes)
    return p


# A body with every JSON type; the fields it becomes (strings as-is, the rest as JSON text).
DOC = {"name": "Ann \"A\" Lee", "age": 42, "score": 1.5, "admin": False, "manager": None,
       "tags": ["a", "b"], "address": {"city": "Lyon", "zip": "69001"}, "empty": ""}
DOC_TEXT = json.dumps(DOC)  # Python writes ", " and ": " between items: kept as written
FIELDS = {b"name": b'Ann "A" Lee', b"age": b"42", b"score": b"1.5", b"admin": b"false",
          b"manager": b"null", b"tags": b'["a", "b"]',
          b"address": b'{"city": "Lyon", "zip": "69001"}', b"empty": b""}


def hgetall_dict(reply):
    """A RespConn HGETALL reply (RESP2 flat list, RESP3 dict) as a dict."""
    if isinstance(reply, dict):
        return reply
    assert isinstance(reply, list) and len(reply) % 2 == 0, reply
    return dict(zip(reply[::2], reply[1::2]))


def raw_hello3(conn):
    assert conn.cmd("HELLO", "3").startswith(b"%")


def storm(port, n, cmd, resp3):
    """n connections (HELLO 3 first when resp3) send cmd at once; every raw reply."""
    conns = [RawConn(port, timeout=10) for _ in range(n)]
    try:
        if resp3:
            for c in conns:
                raw_hello3(c)
        out = b"*%d\r\n" % len(cmd) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in cmd))
        for c in conns:
            c.sock.sendall(out)
        return [c.read() for c in conns]
    finally:
        for c in conns:
            c.sock.close()


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2], ids=["1worker", "2workers"])
@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
@pytest.mark.parametrize("single_flight", ["local", "distributed"])
def test_hgetall_storm_fills_once_and_answers_like_redis(redis_server, corral_factory, origin,
                                                         resp3, single_flight, workers):
    origin.route("/v1/users/9", DOC_TEXT, delay=0.3)
    c = corral_factory(config(redis_server.port, origin.url,
                              [hash_policy(stampede={"single_flight": single_flight})],
                              workers=workers))
    replies = storm(c.port, 50, ["HGETALL", "user:9"], resp3)
    assert origin.calls("/v1/users/9") == 1
    # What Redis itself answers for the stored hash, in the same protocol.
    with RawConn(redis_server.port) as direct:
        if resp3:
            raw_hello3(direct)
        expect = direct.cmd("HGETALL", "user:9")
    assert expect.startswith(b"%8\r\n" if resp3 else b"*16\r\n"), expect
    assert all(r == expect for r in replies), (replies[0], expect)
    assert hgetall_dict(redis_server.cmd("HGETALL", "user:9")) == FIELDS
    pttl = redis_server.cmd("PTTL", "user:9")
    assert 54000 - 500 <= pttl <= 60000, pttl  # ttl.default 60s, jitter 10%
    assert redis_server.cmd("TYPE", "user:9") == "hash"
    assert redis_server.cmd("KEYS", "__corral:*") == []  # no lease left behind
    # A hit: Redis answers, the origin is not asked again; the same bytes.
    with RawConn(c.port) as cl:
        if resp3:
            raw_hello3(cl)
        assert cl.cmd("HGETALL", "user:9") == expect
    assert origin.calls() == 1
    m = c.metrics()
    assert m['corral_fill_events_total{policy="user",event="fills"}'] == 1


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_hget_fills_the_hash_then_answers_the_field(redis_server, corral_factory, origin, resp3):
    origin.route("/v1/users/11", DOC_TEXT)
    origin.route("/v1/users/12", DOC_TEXT)
    c = corral_factory(config(redis_server.port, origin.url, [hash_policy()]))
    with RawConn(c.port) as cl, RawConn(redis_server.port) as direct:
        if resp3:
            raw_hello3(cl)
            raw_hello3(direct)
        nil = b"_\r\n" if resp3 else b"$-1\r\n"
        assert cl.cmd("HGET", "user:11", "address") == b'$32\r\n{"city": "Lyon", "zip": "69001"}\r\n'
        assert origin.calls("/v1/users/11") == 1
        assert hgetall_dict(redis_server.cmd("HGETALL", "user:11")) == FIELDS
        # The hash is there now: a field it lacks is nil without asking the origin.
        assert cl.cmd("HGET", "user:11", "nosuch") == nil
        assert cl.cmd("HGET", "user:11", "age") == b"$2\r\n42\r\n"
        assert origin.calls("/v1/users/11") == 1
        # A missing hash and a field its object lacks: filled, then nil.
        assert cl.cmd("HGET", "user:12", "nosuch") == nil
        assert origin.calls("/v1/users/12") == 1
        assert redis_server.cmd("HLEN", "user:12") == len(FIELDS)
        # Both answers are what Redis gives for the stored hash.
        assert cl.cmd("HGET", "user:12", "name") == direct.cmd("HGET", "user:12", "name")
        assert cl.cmd("HGETALL", "user:12") == direct.cmd("HGETALL", "user:12")
        # Other reads of the policy's keys do not fill.
        assert cl.cmd("HLEN", "user:13") == b":0\r\n"
        assert origin.calls("/v1/users/13") == 0


@pytest.mark.parametrize("write", [("HSET", "user:5", "mine", "1"), ("DEL", "user:5")],
                         ids=["hset", "del"])
@pytest.mark.parametrize("single_flight", ["local", "distributed"])
def test_a_write_racing_the_fill_leaves_no_stale_hash(redis_server, corral_factory, origin,
                                                      write, single_flight):
    origin.route("/v1/users/5", {"stale": "yes", "n": 1}, delay=0.8)
    c = corral_factory(config(redis_server.port, origin.url,
                              [hash_policy(stampede={"single_flight": single_flight})]))
    reader = RespConn(c.port, timeout=5)
    try:
        reader.send_cmd("HGETALL", "user:5")
        wait_until(lambda: origin.calls("/v1/users/5") == 1, timeout=3.0,
                   what="the fill's origin call")
        with c.client() as w:
            w.cmd(*write)  # while the origin is still answering
        # The waiting reader still gets what the origin said...
        assert hgetall_dict(reader.read_reply()) == {b"stale": b"yes", b"n": b"1"}
    finally:
        reader.close()
    time.sleep(0.1)  # a commit (were one sent) would have run by now
    # ...but it was not stored: the write's result stands.
    expect = {b"mine": b"1"} if write[0] == "HSET" else {}
    assert hgetall_dict(redis_server.cmd("HGETALL", "user:5")) == expect
    assert redis_server.cmd("KEYS", "__corral:*") == []
    assert c.metrics()['corral_fill_events_total{policy="user",event="not_stored"}'] == 1


def test_distributed_write_through_another_corral_revokes(redis_server, corral_factory, origin):
    origin.route("/v1/users/6", {"stale": "yes"}, delay=0.8)
    pol = [hash_policy(stampede={"single_flight": "distributed"})]
    a = corral_factory(config(redis_server.port, origin.url, pol))
    b = corral_factory(config(redis_server.port, origin.url, pol))
    reader = RespConn(a.port, timeout=5)
    try:
        reader.send_cmd("HGETALL", "user:6")
        wait_until(lambda: origin.calls("/v1/users/6") == 1, timeout=3.0,
                   what="the fill's origin call")
        with b.client() as w:
            assert w.cmd("HSET", "user:6", "other", "2") == 1  # deletes a's lease
        assert hgetall_dict(reader.read_reply()) == {b"stale": b"yes"}
    finally:
        reader.close()
    wait_until(lambda: a.metrics()['corral_fill_events_total{policy="user",event="not_stored"}']
               == 1, timeout=3.0, what="a's commit refused")
    assert hgetall_dict(redis_server.cmd("HGETALL", "user:6")) == {b"other": b"2"}


def test_not_found_is_remembered_and_reads_empty(redis_server, corral_factory, origin):
    c = corral_factory(config(redis_server.port, origin.url, [hash_policy()]))
    with RawConn(c.port) as cl:
        assert cl.cmd("HGETALL", "user:404") == b"*0\r\n"
        assert cl.cmd("HGET", "user:404", "x") == b"$-1\r\n"  # the negative entry answers
        raw_hello3(cl)
        assert cl.cmd("HGETALL", "user:404") == b"%0\r\n"
    assert origin.calls("/v1/users/404") == 1
    assert redis_server.cmd("EXISTS", "user:404") == 0
    assert redis_server.cmd("EXISTS", negative_key(SECRET, "user:404")) == 1
    # An empty object is no hash either: as a 404.
    origin.route("/v1/users/405", "{}")
    with c.client() as cl:
        assert cl.cmd("HGETALL", "user:405") == []
        assert cl.cmd("HGETALL", "user:405") == []
    assert origin.calls("/v1/users/405") == 1


@pytest.mark.parametrize("body,reason", [
    ("[1, 2]", "body is not a JSON object"),
    ('"text"', "body is not a JSON object"),
    ("<html>oops</html>", "body is not JSON (expected a value at byte 0)"),
    ('{"a": 1,}', "body is not JSON (expected '\"' at byte 8)"),
    ('{"a": 1, "a": 2}', "body has a duplicate member 'a'"),
])
def test_a_body_that_is_not_a_json_object_is_a_fill_error(redis_server, corral_factory, origin,
                                                          body, reason):
    origin.route("/v1/users/3", body)
    c = corral_factory(config(redis_server.port, origin.url, [hash_policy()]))
    with c.client() as cl:
        r = cl.cmd("HGETALL", "user:3")
        assert r == RespError(f"FILLERR users {reason}"), r
        r = cl.cmd("HGET", "user:3", "a")
        assert r == RespError(f"FILLERR users {reason}"), r
    assert origin.calls("/v1/users/3") == 2  # nothing remembered: each miss asks again
    assert redis_server.cmd("KEYS", "*") == []  # nothing stored, no lease, no negative entry
    assert c.metrics()['corral_fill_events_total{policy="user",event="fill_errors"}'] == 2


def test_a_large_hash_is_stored_whole(redis_server, corral_factory, origin):
    big = {f"f{i}": i for i in range(3000)}  # HSET in chunks inside the commit script
    origin.route("/v1/users/77", big)
    c = corral_factory(config(redis_server.port, origin.url, [hash_policy()]))
    with c.client() as cl:
        got = hgetall_dict(cl.cmd("HGETALL", "user:77"))
    want = {k.encode(): str(v).encode() for k, v in big.items()}
    assert got == want
    assert hgetall_dict(redis_server.cmd("HGETALL", "user:77")) == want
    assert redis_server.cmd("PTTL", "user:77") > 50000


def test_json_field_decode_stores_one_member(redis_server, corral_factory, origin):
    pol = {"name": "price", "match": "price:<id:u64>", "ttl": {"default": "60s"},
           "fill": {"origin": "users", "path": "/v1/prices/<id>", "on_error": "error",
                    "decode": {"json-field": "price"}}}
    origin.route("/v1/prices/1", {"price": "9.90", "currency": "EUR"})
    origin.route("/v1/prices/2", '{"price": {"eur": 9.9, "usd": 10.7}}')
    origin.route("/v1/prices/3", {"cost": 1})
    origin.route("/v1/prices/4", "9.90")
    c = corral_factory(config(redis_server.port, origin.url, [pol]))
    with c.client() as cl:
        assert cl.cmd("GET", "price:1") == b"9.90"
        assert redis_server.cmd("GET", "price:1") == b"9.90"
        assert 54000 - 500 <= redis_server.cmd("PTTL", "price:1") <= 60000
        assert cl.cmd("GET", "price:2") == b'{"eur": 9.9, "usd": 10.7}'
        r = cl.cmd("GET", "price:3")
        assert r == RespError("FILLERR users body has no member 'price'"), r
        r = cl.cmd("GET", "price:4")
        assert r == RespError("FILLERR users body is not a JSON object"), r
        assert cl.cmd("GET", "price:1") == b"9.90"
    assert redis_server.cmd("EXISTS", "price:3", "price:4") == 0
    assert origin.calls("/v1/prices/1") == 1


def test_hash_and_string_commands_in_one_policy_are_refused(tmp_path, redis_server, origin):
    bad = hash_policy(fill={"origin": "users", "path": "/v1/users/<id>",
                            "commands": ["HGETALL", "GET"]})
    path = tmp_path / "bad.yaml"
    path.write_text(config(redis_server.port, origin.url, [bad]))
    r = harness.run_corral_cli(["--check-config", str(path)])
    assert r.returncode == 1
    assert b"policies[0].fill.commands: mixes get with HGETALL/HGET" in r.stdout + r.stderr


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_pipelined_fills_keep_reply_order(redis_server, corral_factory, origin, resp3):
    origin.route("/v1/users/21", {"a": "1"}, delay=0.2)
    origin.route("/v1/users/22", {"b": "2"})
    c = corral_factory(config(redis_server.port, origin.url, [hash_policy()]))
    with RawConn(c.port) as cl:
        if resp3:
            raw_hello3(cl)
        got = cl.pipeline([("HGETALL", "user:21"), ("SET", "plain", "x"), ("HGET", "user:22", "b"),
                           ("GET", "plain"), ("HGETALL", "user:22"), ("PING",),
                           # a write of the key right before: the read sees it, no fill
                           ("HSET", "user:23", "mine", "1"), ("HGETALL", "user:23")])
    if resp3:
        assert got == [b"%1\r\n$1\r\na\r\n$1\r\n1\r\n", b"+OK\r\n", b"$1\r\n2\r\n", b"$1\r\nx\r\n",
                       b"%1\r\n$1\r\nb\r\n$1\r\n2\r\n", b"+PONG\r\n", b":1\r\n",
                       b"%1\r\n$4\r\nmine\r\n$1\r\n1\r\n"]
    else:
        assert got == [b"*2\r\n$1\r\na\r\n$1\r\n1\r\n", b"+OK\r\n", b"$1\r\n2\r\n", b"$1\r\nx\r\n",
                       b"*2\r\n$1\r\nb\r\n$1\r\n2\r\n", b"+PONG\r\n", b":1\r\n",
                       b"*2\r\n$4\r\nmine\r\n$1\r\n1\r\n"]
    assert origin.calls() == 2
    assert origin.calls("/v1/users/23") == 0
