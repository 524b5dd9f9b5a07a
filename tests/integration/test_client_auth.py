"""Client authentication (auth.users) and the upstream's credentials kept apart. corral-only."""

import hashlib

import pytest

from harness import RedisServer, RespConn, RespError, corral_config, wait_until

USERS = {"users": [
    {"name": "app", "password": "s3cret"},
    {"name": "ops", "password_sha256": hashlib.sha256(b"opspass").hexdigest()},
    {"name": "default", "password": "defpw"},
]}


def _corral(redis_server, corral_factory, **extra):
    cfg = corral_config(redis_server.port, **extra)
    cfg["auth"] = USERS
    return corral_factory(cfg)


def test_refused_before_auth_accepted_after(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    with c.client() as cl:
        for args in (("GET", "k"), ("CLIENT", "ID"), ("SUBSCRIBE", "ch"), ("MULTI",),
                     ("ECHO", "x")):
            assert cl.cmd(*args) == RespError("NOAUTH Authentication required."), args
        assert cl.cmd("PING") == "PONG"  # health checks work before AUTH
        r = cl.cmd("HELLO", "2")
        assert isinstance(r, RespError) and r.startswith("NOAUTH HELLO must be called"), r
        before = c.metrics()["corral_auth_failures_total"]
        wrong = RespError("WRONGPASS invalid username-password pair or user is disabled.")
        assert cl.cmd("AUTH", "app", "nope") == wrong
        assert cl.cmd("AUTH", "nobody", "s3cret") == wrong
        assert cl.cmd("AUTH", "s3cret") == wrong  # one argument means user "default"
        assert c.metrics()["corral_auth_failures_total"] - before == 3
        assert cl.cmd("GET", "k") == RespError("NOAUTH Authentication required.")
        assert cl.cmd("AUTH", "app", "s3cret") == "OK"
        assert cl.cmd("SET", "k", "v") == "OK"
        assert cl.cmd("GET", "k") == b"v"
        # RESET logs the client out again
        assert cl.cmd("RESET") == "RESET"
        assert cl.cmd("GET", "k") == RespError("NOAUTH Authentication required.")
        assert cl.cmd("AUTH", "defpw") == "OK"  # the configured default user
        assert cl.cmd("GET", "k") == b"v"
    with c.client() as cl:
        assert cl.cmd("AUTH", "ops", "opspass") == "OK"  # user given by its SHA-256
        assert cl.cmd("GET", "k") == b"v"
    with c.client() as cl:
        r = cl.cmd("HELLO", "2", "AUTH", "app", "s3cret", "SETNAME", "web")
        assert isinstance(r, list) and r[0::2][:3] == [b"server", b"version", b"proto"], r
        assert cl.cmd("CLIENT", "GETNAME") == b"web"
        assert cl.cmd("PING") == "PONG"
    with c.client() as cl:
        r = cl.cmd("HELLO", "3", "AUTH", "app", "wrong")
        assert isinstance(r, RespError) and r.startswith("WRONGPASS"), r
        r = cl.cmd("HELLO", "3", "AUTH", "app", "s3cret")
        assert isinstance(r, dict) and r[b"proto"] == 3, r
        assert cl.cmd("GET", "k") == b"v"
    # the client's credentials never reached Redis
    stats = redis_server.cmd("INFO", "commandstats").decode()
    assert "cmdstat_auth:" not in stats, stats


def test_upstream_password_not_visible_to_clients(corral_factory):
    with RedisServer(password="up-secret-42") as redis:
        cfg = corral_config(redis.port, upstream={"password": "up-secret-42"})
        c = corral_factory(cfg)
        with c.client() as cl:
            assert cl.cmd("SET", "k", "v") == "OK"
            r = cl.cmd("CONFIG", "GET", "requirepass")
            assert r == [b"requirepass", b""], r
            r = cl.cmd("CONFIG", "GET", "*pass*")
            assert b"up-secret-42" not in repr(r).encode(), r
            info = cl.cmd("INFO")
            assert b"up-secret-42" not in info
            assert b"# Proxy" in info and b"corral_version:" in info
            clients = cl.cmd("CLIENT", "LIST")
            assert b"up-secret-42" not in clients
        assert "up-secret-42" not in open(c.stderr_path).read()


def test_info_has_proxy_section(redis_server, corral_factory):
    c = corral_factory(corral_config(redis_server.port))
    with c.client() as cl:
        assert cl.cmd("SET", "i", "1") == "OK"
        assert cl.cmd("GET", "i") == b"1"
        info = cl.cmd("INFO").decode()
        assert "# Server" in info and "redis_version:" in info
        proxy = info[info.index("# Proxy"):]
        fields = dict(line.split(":", 1) for line in proxy.splitlines()[1:] if ":" in line)
        assert fields["corral_upstream_primary_status"] == "up"
        assert int(fields["corral_connected_clients"]) == 1
        assert fields["corral_cmdstat_get"] == "calls=1,failed_calls=0"
        assert fields["corral_cmdstat_set"] == "calls=1,failed_calls=0"
        # a named section other than proxy stays Redis's alone
        ks = cl.cmd("INFO", "keyspace").decode()
        assert "# Keyspace" in ks and "# Proxy" not in ks
        assert "# Proxy" in cl.cmd("INFO", "proxy").decode()
    wait_until(lambda: c.metrics()["corral_clients"] == 0, 3, what="client gone")
