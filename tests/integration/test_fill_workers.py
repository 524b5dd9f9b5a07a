"""Single flight across the workers of one corral (policies/fill_flights.h): with `workers: N`,
a storm of concurrent misses of one key makes one origin call, whichever workers its clients
landed on, and every client gets the answer (value, nil or the on_error reply); a client write
on one worker revokes a fill running on another. corral-only.

Clients reach workers through SO_REUSEPORT (the kernel spreads connections by their addresses):
200 connections land on every worker of 2 or 4 all but surely, and the tests check it rather
than assume it: `worker_wakes` counts the workers handed the flight's result by the worker that
ran it, N - 1 exactly when every worker had a waiting client.

Every wait is bounded (socket timeouts, wait_until); everything listens on 127.0.0.1."""

import pytest

from harness import RespConn, RespError, wait_until
from sample_origin import SampleOrigin
from test_fill import body, fill_config, fill_event, internal_keys, item_policy, policy

STORM = 200


@pytest.fixture
def origin():
    with SampleOrigin() as o:
        yield o


def workers_config(redis_port, origin_url, policies, workers):
    return fill_config(redis_port, origin_url, policies, timeout="2s", workers=workers)


def storm(port, key, n=STORM):
    """n connections, all open first, then each sends GET key; returns every reply."""
    conns = [RespConn(port, timeout=10) for _ in range(n)]
    try:
        for cl in conns:
            cl.send_cmd("GET", key)
        return [cl.read_reply() for cl in conns]
    finally:
        for cl in conns:
            cl.close()


def check_every_worker_waited(c, pol, workers):
    # The worker that ran the flight handed its result to every other one: each had clients.
    assert fill_event(c, pol, "worker_wakes") == workers - 1
    assert fill_event(c, pol, "worker_waits") >= workers - 1
    assert fill_event(c, pol, "wait_timeouts") == 0


@pytest.mark.parametrize("workers", [2, 4])
@pytest.mark.parametrize("single_flight", ["local", "distributed"])
def test_value_storm_makes_one_origin_call(redis_server, corral_factory, origin, workers,
                                           single_flight):
    origin.set(latency_ms=300)
    pol = policy(stampede={"single_flight": single_flight})
    c = corral_factory(workers_config(redis_server.port, origin.url, [pol], workers))
    got = storm(c.port, "user:7")
    assert origin.calls() == 1, origin.stats()
    assert len(got) == STORM and len(set(got)) == 1, set(got)
    assert body(got[0])["id"] == "7" and body(got[0])["n"] == 1
    assert redis_server.cmd("GET", "user:7") == got[0]
    assert fill_event(c, "user", "fills") == 1
    assert fill_event(c, "user", "coalesced") == STORM - 1
    check_every_worker_waited(c, "user", workers)
    if single_flight == "distributed":
        # one lease taken, by the one flight; no other worker's flight asked Redis for it
        assert fill_event(c, "user", "lease_wins") == 1
        assert fill_event(c, "user", "lease_losses") == 0
    assert internal_keys(redis_server) == []
    # the next storm of the same key: hits, on every worker, no origin call
    assert set(storm(c.port, "user:7", 40)) == {got[0]}
    assert origin.calls() == 1


@pytest.mark.parametrize("workers", [2, 4])
def test_not_found_storm_makes_one_origin_call(redis_server, corral_factory, origin, workers):
    origin.set(latency_ms=300)
    pol = item_policy(negative={"ttl": "5s"})
    c = corral_factory(workers_config(redis_server.port, origin.url, [pol], workers))
    got = storm(c.port, "item:missing-1")
    assert got == [None] * STORM
    assert origin.calls() == 1, origin.stats()
    assert fill_event(c, "item", "fills") == 1
    check_every_worker_waited(c, "item", workers)
    # remembered: a second storm is answered from the negative entry, still one origin call
    assert storm(c.port, "item:missing-1", 40) == [None] * 40
    assert origin.calls() == 1


@pytest.mark.parametrize("workers", [2, 4])
@pytest.mark.parametrize("on_error", ["nil", "error"])
def test_origin_error_storm_makes_one_origin_call(redis_server, corral_factory, origin, workers,
                                                  on_error):
    origin.set(latency_ms=300)
    pol = item_policy(fill={"origin": "items", "path": "/v1/items/<id>", "on_error": on_error})
    c = corral_factory(workers_config(redis_server.port, origin.url, [pol], workers))
    got = storm(c.port, "item:fail-1")
    want = None if on_error == "nil" else RespError("FILLERR items status 503")
    assert got == [want] * STORM, [g for g in got if g != want][:3]
    assert origin.calls() == 1, origin.stats()
    assert fill_event(c, "item", "fill_errors") == 1
    check_every_worker_waited(c, "item", workers)
    assert redis_server.cmd("DBSIZE") == 0


def other_worker_conn(c, origin, r):
    """A connection on another worker than r's: r starts a fill of a probe key, the candidate
    misses it too, and `worker_waits` grows only if the candidate's worker is not r's."""
    for i in range(24):
        cand = RespConn(c.port, timeout=10)
        try:
            key = f"user:{900 + i}"
            before = fill_event(c, "user", "worker_waits")
            coalesced = fill_event(c, "user", "coalesced")
            r.send_cmd("GET", key)
            wait_until(lambda: origin.calls(f"/v1/users/{900 + i}") == 1, 5, what="probe fill")
            cand.send_cmd("GET", key)
            wait_until(lambda: fill_event(c, "user", "coalesced") == coalesced + 1, 5,
                       what="candidate joined")
            assert r.read_reply() == cand.read_reply()
            if fill_event(c, "user", "worker_waits") == before + 1:
                found, cand = cand, None
                return found
        finally:
            if cand is not None:
                cand.close()
    raise AssertionError("no connection reached a second worker in 24 tries")


@pytest.mark.parametrize("write", ["DEL", "SET"])
def test_write_on_another_worker_revokes_the_fill(redis_server, corral_factory, origin, write):
    origin.set(latency_ms=150)
    c = corral_factory(workers_config(redis_server.port, origin.url, [policy()], 2))
    with RespConn(c.port, timeout=10) as r:
        w = other_worker_conn(c, origin, r)
        try:
            origin.set(latency_ms=500)
            not_stored = fill_event(c, "user", "not_stored")
            r.send_cmd("GET", "user:100")  # r's worker runs the fill
            wait_until(lambda: origin.calls("/v1/users/100") == 1, 5, what="fill started")
            cmd = ("DEL", "user:100") if write == "DEL" else ("SET", "user:100", "fresh")
            assert w.cmd(*cmd) in (0, "OK")  # during the origin call, on the other worker
            assert body(r.read_reply())["id"] == "100"  # the reader still gets the origin's value
            # the fill did not store its value after the write (a DEL would be undone: the
            # fill's SET NX finds no key; only the revocation stops it)
            wait_until(lambda: fill_event(c, "user", "not_stored") == not_stored + 1, 5,
                       what="fill revoked")
            assert redis_server.cmd("GET", "user:100") == (None if write == "DEL" else b"fresh")
        finally:
            w.close()
    assert origin.calls("/v1/users/100") == 1
    assert internal_keys(redis_server) == []
