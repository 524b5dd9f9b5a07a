"""TLS on both sides (issue "Managed and highly available Redis", TLS part). corral-only.

Client side: tls:// listeners, required and optional client certificates, refused peers (an
unknown CA, an expired certificate, plaintext to the TLS port, a peer that never sends its
ClientHello), certificate rotation with connections open.
Upstream side: rediss:// to a redis-server with --tls-port and tls-auth-clients yes: the name in
the certificate checked (a SAN mismatch is refused and says so), an ACL user over TLS, reconnect
after a restart (with session resumption), insecure refused by --check-config.
Certificates come from the openssl command line (tests/support/certs.py).
"""

import json
import os
import shutil
import ssl
import subprocess
import threading
import time

import pytest

from certs import Certs
from harness import (EOF, RedisServer, RespConn, RespError, corral_config, corral_bin, free_port,
                     wait_until)


@pytest.fixture(scope="module")
def certs():
    c = Certs()
    yield c
    shutil.rmtree(c.dir, ignore_errors=True)


def client_ctx(certs, ca="ca", cert=None):
    ctx = ssl.create_default_context(cafile=certs.path(ca))
    if cert is not None:
        ctx.load_cert_chain(certs.path(cert), certs.path(cert, "key"))
    return ctx


def tls_redis(certs, cert="server", auth_clients="no", extra=None):
    """A redis-server with its plain port (for the test's own checks) and a TLS port."""
    tls_port = free_port()
    args = ["--tls-port", str(tls_port), "--tls-cert-file", certs.path(cert),
            "--tls-key-file", certs.path(cert, "key"), "--tls-ca-cert-file", certs.path("ca"),
            "--tls-auth-clients", auth_clients] + list(extra or [])
    r = RedisServer(extra_args=args)
    r.tls_port = tls_port
    return r


def tls_listener_config(redis_port, certs, **tls):
    cfg = corral_config(redis_port, listen=["127.0.0.1:0", "tls://127.0.0.1:0"])
    cfg["tls"] = {"cert_file": certs.path("server"), "key_file": certs.path("server", "key"),
                  **tls}
    return cfg


def handshake_refused(port, ctx, hostname="localhost"):
    """True when a TLS connection with ctx cannot be used: the handshake fails, or (TLS 1.3,
    where the server checks the client certificate after the client's handshake is done) the
    first command gets the connection closed."""
    try:
        c = RespConn(port, tls=ctx, server_hostname=hostname, timeout=3)
    except (ssl.SSLError, ConnectionError):
        return True
    with c:
        try:
            return c.cmd("PING") is EOF
        except (ssl.SSLError, ConnectionError):
            return True


# ---- client side

def test_tls_listener_serves_like_the_plain_one(redis_server, corral_factory, certs):
    c = corral_factory(tls_listener_config(redis_server.port, certs))
    plain_port, tls_port = c.listen_ports
    with RespConn(tls_port, tls=client_ctx(certs), server_hostname="localhost") as t, \
            RespConn(plain_port) as p:
        assert t.cmd("SET", "tls:k", "v1") == "OK"
        assert p.cmd("GET", "tls:k") == b"v1"
        # A pipeline of many commands and a value of several TLS records (16 KiB each) in both
        # directions: replies complete and in order.
        big = os.urandom(1 << 20)
        cmds = [("SET", f"tls:{i}", str(i)) for i in range(500)] + [("SET", "tls:big", big)]
        cmds += [("GET", f"tls:{i}") for i in range(500)] + [("GET", "tls:big")]
        replies = t.pipeline(cmds)
        assert replies[:501] == ["OK"] * 501
        assert replies[501:1001] == [str(i).encode() for i in range(500)]
        assert replies[1001] == big
        assert redis_server.cmd("GET", "tls:big") == big
    m = c.metrics()
    assert m["corral_tls_handshakes_total"] == 1
    assert m["corral_tls_failures_total"] == 0


@pytest.mark.parametrize("mode", ["required", "optional"])
def test_client_certificates(redis_server, corral_factory, certs, mode):
    c = corral_factory(tls_listener_config(redis_server.port, certs,
                                           client_ca_file=certs.path("ca"), client_certs=mode))
    port = c.listen_ports[1]
    with RespConn(port, tls=client_ctx(certs, cert="client"), server_hostname="localhost") as t:
        assert t.cmd("PING") == "PONG"
    # No certificate: refused when required, served when optional.
    if mode == "required":
        assert handshake_refused(port, client_ctx(certs))
    else:
        with RespConn(port, tls=client_ctx(certs), server_hostname="localhost") as t:
            assert t.cmd("PING") == "PONG"
    # A certificate corral cannot trust is refused either way: another CA's, an expired one.
    assert handshake_refused(port, client_ctx(certs, cert="other_server"))
    assert handshake_refused(port, client_ctx(certs, cert="expired"))
    wait_until(lambda: c.metrics()["corral_tls_failures_total"] >= 2 + (mode == "required"), 3,
               what="TLS failures counted")
    with RespConn(c.listen_ports[0]) as p:  # and corral goes on serving
        assert p.cmd("PING") == "PONG"


def test_client_refuses_corral_with_an_unknown_ca(redis_server, corral_factory, certs):
    """The other direction of 'wrong CA': an app that trusts another CA refuses corral."""
    c = corral_factory(tls_listener_config(redis_server.port, certs))
    with pytest.raises(ssl.SSLCertVerificationError):
        RespConn(c.listen_ports[1], tls=client_ctx(certs, ca="other_ca"),
                 server_hostname="localhost")


def test_plaintext_to_the_tls_port_is_refused(redis_server, corral_factory, certs):
    c = corral_factory(tls_listener_config(redis_server.port, certs))
    with RespConn(c.listen_ports[1], timeout=3) as p:
        p.send_cmd("PING")
        assert p.expect_eof(timeout=3), "corral answered a plaintext client on its TLS port"
    wait_until(lambda: c.metrics()["corral_tls_failures_total"] == 1, 3, what="failure counted")
    assert "wrong version number" in c.stderr_text()


def test_a_peer_that_never_says_hello_is_closed(redis_server, corral_factory, certs):
    c = corral_factory(tls_listener_config(redis_server.port, certs, handshake_timeout="1s"))
    with RespConn(c.listen_ports[1], timeout=5) as silent:
        start = time.monotonic()
        assert silent.expect_eof(timeout=4.5)
        waited = time.monotonic() - start
    # The handshake thread's own timer: closed at 1 s (counted by the worker just after).
    assert 0.9 <= waited <= 3.0, waited
    wait_until(lambda: c.metrics()["corral_tls_handshake_timeouts_total"] == 1, 3,
               what="the timeout counted")
    with RespConn(c.listen_ports[1], tls=client_ctx(certs), server_hostname="localhost") as t:
        assert t.cmd("PING") == "PONG"


def thread_niceness(pid):
    """{thread name: niceness} of a process's threads (/proc/<pid>/task/<tid>/stat field 19)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            stat = f.read()
        # "tid (comm) state ...": comm may hold spaces; the fields after it are space-separated.
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        out[name] = int(stat[stat.rindex(")") + 2:].split()[16])
    return out


@pytest.mark.parametrize("nice", [None, 0, 5])
def test_handshakes_run_on_a_niced_thread_of_their_own(redis_server, corral_factory, certs, nice):
    """The handshake thread (corral-tls) runs tls.handshake_nice (default 19) nicer than the
    workers, which stay at the process's niceness."""
    tls = {} if nice is None else {"handshake_nice": nice}
    c = corral_factory(tls_listener_config(redis_server.port, certs, **tls))
    # The threads name themselves once running (a slow start, e.g. under ASan, is still
    # naming them when corral already accepts connections).
    wait_until(lambda: {"corral-w0", "corral-tls"} <= set(thread_niceness(c.proc.pid)), 10,
               what="corral's threads named")
    threads = thread_niceness(c.proc.pid)
    assert threads.get("corral-w0") == 0, threads
    assert threads.get("corral-tls") == (19 if nice is None else nice), threads
    with RespConn(c.listen_ports[1], tls=client_ctx(certs), server_hostname="localhost") as t:
        assert t.cmd("PING") == "PONG"
    assert c.metrics()["corral_tls_handshakes_total"] == 1


def test_no_handshake_thread_without_tls_listeners(redis_server, corral_factory):
    c = corral_factory(corral_config(redis_server.port))
    assert "corral-tls" not in thread_niceness(c.proc.pid)


def test_many_handshakes_while_a_plain_client_runs(redis_server, corral_factory, certs):
    """Handshakes run on their own thread: 300 TLS clients connecting at once all get served,
    and a plain client's commands go on meanwhile. (Its latency is measured by
    tests/bench/tls_bench.sh, not here.)"""
    c = corral_factory(tls_listener_config(redis_server.port, certs))
    plain_port, tls_port = c.listen_ports
    ctx = client_ctx(certs)
    errors = []
    done = []

    def connect_many(n):
        for _ in range(n):
            try:
                with RespConn(tls_port, tls=ctx, server_hostname="localhost", timeout=10) as t:
                    if t.cmd("PING") != "PONG":
                        errors.append("no PONG")
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(e))
        done.append(n)

    threads = [threading.Thread(target=connect_many, args=(75,)) for _ in range(4)]
    for t in threads:
        t.start()
    served = 0
    with RespConn(plain_port) as p:
        while len(done) < len(threads):
            assert p.cmd("INCR", "tls:plain") == served + 1
            served += 1
    for t in threads:
        t.join(30)
    assert errors == []
    assert served > 0
    assert c.metrics()["corral_tls_handshakes_total"] == 300


def test_certificate_rotation_keeps_connections(redis_server, corral_factory, certs, tmp_path):
    cert = tmp_path / "tls.crt"
    key = tmp_path / "tls.key"
    shutil.copy(certs.path("server"), cert)
    shutil.copy(certs.path("server", "key"), key)
    cfg = corral_config(redis_server.port, listen=["127.0.0.1:0", "tls://127.0.0.1:0"])
    cfg["tls"] = {"cert_file": str(cert), "key_file": str(key)}
    c = corral_factory(cfg)
    port = c.listen_ports[1]
    old_conn = RespConn(port, tls=client_ctx(certs), server_hostname="localhost")
    stop = threading.Event()
    failures = []
    count = [0]

    def load():
        with RespConn(port, tls=client_ctx(certs), server_hostname="localhost") as t:
            while not stop.is_set():
                r = t.cmd("INCR", "tls:rot")
                if not isinstance(r, int):
                    failures.append(r)
                    return
                count[0] += 1

    th = threading.Thread(target=load)
    th.start()
    try:
        # A new certificate from another CA: new connections get it within the 1 s poll.
        def swap(src):
            for name, kind in ((cert, "crt"), (key, "key")):
                tmp = str(name) + ".new"
                shutil.copy(certs.path(src, kind), tmp)
                os.replace(tmp, name)

        swap("other_server")
        wait_until(lambda: c.metrics()["corral_tls_reloads_total"] == 1, 5, what="reload")
        with RespConn(port, tls=client_ctx(certs, ca="other_ca"), server_hostname="localhost") as n:
            assert n.cmd("PING") == "PONG"
        # A broken file is refused: the last good certificate stays in force.
        with open(cert, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        wait_until(lambda: c.metrics()["corral_tls_reload_failures_total"] == 1, 5,
                   what="refused reload")
        with RespConn(port, tls=client_ctx(certs, ca="other_ca"), server_hostname="localhost") as n:
            assert n.cmd("PING") == "PONG"
        # The connection opened before the rotation still works.
        assert old_conn.cmd("PING") == "PONG"
    finally:
        stop.set()
        th.join(10)
        old_conn.close()
    assert failures == []
    assert count[0] > 0
    assert "TLS reload refused, old certificate kept" in c.stderr_text()


# ---- upstream side

def upstream_tls_config(redis, certs, primary=None, **tls):
    cfg = corral_config(redis.port)
    cfg["upstream"]["primary"] = primary or f"rediss://localhost:{redis.tls_port}"
    cfg["upstream"]["tls"] = {"ca_file": certs.path("ca"), **tls}
    return cfg


def test_upstream_over_tls_with_acl_user_and_client_certificate(corral_factory, certs):
    with tls_redis(certs, auth_clients="yes") as r:
        r.cmd("ACL", "SETUSER", "app", "on", ">app-pass", "~app:*", "+@all")
        cfg = upstream_tls_config(r, certs, primary=f"rediss://app:app-pass@localhost:{r.tls_port}",
                                  cert_file=certs.path("client"),
                                  key_file=certs.path("client", "key"))
        c = corral_factory(cfg)
        with RespConn(c.port) as p:
            assert p.cmd("ACL", "WHOAMI") == b"app"
            assert p.cmd("SET", "app:1", "x") == "OK"
            assert p.cmd("SET", "other:1", "x") == RespError(
                "NOPERM this user has no permissions to access one of the keys used as arguments")
        assert r.cmd("GET", "app:1") == b"x"
        # The app's own user (passthrough AUTH) gets its own connections, over TLS too.
        r.cmd("ACL", "SETUSER", "other", "on", ">other-pass", "~other:*", "+@all")
        with RespConn(c.port) as q:
            assert q.cmd("AUTH", "other", "other-pass") == "OK"
            assert q.cmd("ACL", "WHOAMI") == b"other"
            assert q.cmd("SET", "other:1", "y") == "OK"
        assert r.cmd("GET", "other:1") == b"y"
        # Every upstream connection of corral came over TLS (the plain port saw only ours).
        tls_clients = [cl for cl in r.client_list() if cl.get("user") == "app"]
        assert tls_clients, r.client_list()
        assert "app-pass" not in c.stderr_text()


def test_upstream_name_mismatch_is_refused_and_said(corral_factory, certs):
    with tls_redis(certs, cert="wrongname") as r:
        c = corral_factory(upstream_tls_config(r, certs))
        with RespConn(c.port) as p:
            reply = p.cmd("GET", "k")
            assert isinstance(reply, RespError) and "unavailable" in str(reply), reply
        wait_until(lambda: "certificate verify failed (hostname mismatch)" in c.stderr_text(), 3,
                   what="the reason logged")
        assert c.metrics()["corral_upstream_tls_failures_total"] >= 1
        assert c.http_get("/ready")[0] == 503
        # Not a reconnect storm: backoff (20 ms..200 ms here) bounds the attempts.
        n0 = c.metrics()["corral_upstream_tls_failures_total"]
        time.sleep(1.0)
        assert c.metrics()["corral_upstream_tls_failures_total"] - n0 <= 12
    # With the name the certificate does carry, the same server is accepted.
    with tls_redis(certs, cert="wrongname") as r:
        c = corral_factory(upstream_tls_config(r, certs, server_name="other.example"))
        with RespConn(c.port) as p:
            assert p.cmd("SET", "k", "v") == "OK"


def test_upstream_with_an_unknown_ca_is_refused(corral_factory, certs):
    with tls_redis(certs, cert="other_server") as r:
        c = corral_factory(upstream_tls_config(r, certs))
        with RespConn(c.port) as p:
            assert isinstance(p.cmd("GET", "k"), RespError)
        wait_until(lambda: "certificate verify failed (unable to get local issuer certificate)"
                   in c.stderr_text(), 3, what="the reason logged")


def test_upstream_reconnects_after_restart_and_resumes(corral_factory, certs):
    with tls_redis(certs) as r:
        c = corral_factory(upstream_tls_config(r, certs))
        with RespConn(c.port) as p:
            assert p.cmd("SET", "k", "1") == "OK"
            # Another connection to the same server resumes the first one's session.
            for _ in range(3):
                assert r.cmd("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") >= 1
                wait_until(lambda: p.cmd("GET", "k") == b"1", 5, what="reconnected")
            wait_until(lambda: c.metrics()["corral_upstream_tls_resumed_total"] >= 1, 3,
                       what="a resumed session")
            r.restart()
            wait_until(lambda: p.cmd("SET", "k", "2") == "OK", 5, what="writes after restart")
        assert r.cmd("GET", "k") == b"2"


def test_insecure_runs_but_check_config_refuses_it(corral_factory, certs, tmp_path):
    with tls_redis(certs, cert="other_server") as r:
        cfg = upstream_tls_config(r, certs, insecure=True)
        c = corral_factory(cfg)
        with RespConn(c.port) as p:
            assert p.cmd("SET", "k", "v") == "OK"  # no checks: another CA's certificate passes
        assert "NOT checked" in c.stderr_text()
        proc = subprocess.run([corral_bin(), "--check-config", c.config_path],
                              capture_output=True, text=True, timeout=10)
        assert proc.returncode == 1
        assert "upstream.tls.insecure: turns off certificate and host name checks" in proc.stderr


# ---- fill origins over https

def https_fill_config(redis_port, origin, certs, ca):
    cfg = corral_config(redis_port)
    cfg["global"] = {"fill_secret": "tls-test-fill-secret-0123456789abcdef"}
    cfg["origins"] = {"users": {"base_url": origin.url, "timeout": "2s", "ca_file": certs.path(ca)}}
    cfg["policies"] = [{"name": "user", "match": "user:<id:u64>", "ttl": {"default": "60s"},
                        "fill": {"origin": "users", "path": "/v1/users/<id>"},
                        "stampede": {"single_flight": "local"}}]
    return cfg


def test_fill_from_an_https_origin(redis_server, corral_factory, certs):
    from sample_origin import SampleOrigin
    with SampleOrigin(host="localhost", tls_cert=certs.path("server"),
                      tls_key=certs.path("server", "key")) as o:
        assert o.url.startswith("https://localhost:")
        c = corral_factory(https_fill_config(redis_server.port, o, certs, "ca"))
        with RespConn(c.port) as p:
            v = p.cmd("GET", "user:7")
            assert isinstance(v, bytes) and json.loads(v)["id"] == "7", v
        assert redis_server.cmd("GET", "user:7") == v


def test_https_origin_with_an_unknown_ca_is_refused(redis_server, corral_factory, certs):
    from sample_origin import SampleOrigin
    with SampleOrigin(host="localhost", tls_cert=certs.path("server"),
                      tls_key=certs.path("server", "key")) as o:
        c = corral_factory(https_fill_config(redis_server.port, o, certs, "other_ca"))
        with RespConn(c.port) as p:
            assert p.cmd("GET", "user:8") is None  # the fill failed: a miss, as documented
        assert redis_server.cmd("EXISTS", "user:8") == 0
        wait_until(lambda: "certificate verify failed" in c.stderr_text(), 3,
                   what="the TLS reason logged")


def test_upstream_client_certificate_rotation_under_load(corral_factory, certs, tmp_path):
    """upstream.tls cert_file/key_file replaced while a client writes: corral loads the new
    pair within its 1 s poll, the connection in use keeps working, and a reconnect presents
    the new certificate (the server accepts it)."""
    cert = tmp_path / "client.crt"
    key = tmp_path / "client.key"
    shutil.copy(certs.path("client"), cert)
    shutil.copy(certs.path("client", "key"), key)
    with tls_redis(certs, auth_clients="yes") as r:
        c = corral_factory(upstream_tls_config(r, certs, cert_file=str(cert), key_file=str(key)))
        stop = threading.Event()
        failures = []
        count = [0]

        def load():
            with RespConn(c.port) as p:
                while not stop.is_set():
                    reply = p.cmd("INCR", "rot")
                    if not isinstance(reply, int):
                        failures.append(reply)
                        time.sleep(0.01)
                        continue
                    count[0] += 1

        th = threading.Thread(target=load)
        th.start()
        try:
            wait_until(lambda: count[0] > 100, 5, what="load flowing")
            # Another certificate from the same CA (the expired one's key pair would be refused
            # by Redis: it checks dates too), swapped in atomically like a rotated secret.
            for src, dst in ((certs.path("server"), cert), (certs.path("server", "key"), key)):
                tmp = str(dst) + ".new"
                shutil.copy(src, tmp)
                os.replace(tmp, dst)
            wait_until(lambda: c.metrics()["corral_tls_reloads_total"] >= 1, 5, what="reload")
            before = count[0]
            wait_until(lambda: count[0] > before + 100, 5, what="load goes on after the reload")
            # A new connection presents the new certificate: Redis accepts it.
            r.cmd("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            after_kill = count[0]
            wait_until(lambda: count[0] > after_kill + 100, 5, what="load after a reconnect")
        finally:
            stop.set()
            th.join(10)
        # Only requests around the kill may have failed (in flight, or sent while corral was
        # reconnecting), each with corral's error, never anything else.
        assert all(isinstance(f, RespError) and "unavailable" in str(f) for f in failures), failures
        assert len(failures) < 100, len(failures)
        assert c.metrics()["corral_tls_reload_failures_total"] == 0
