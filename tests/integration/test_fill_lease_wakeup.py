"""Distributed single-flight: a corral whose client waits for another corral's fill (the lease is
held elsewhere) hears of the stored value through CLIENT TRACKING on its near cache's connection
(FillEngine::setWaitWatcher), instead of polling Redis every 2-10 ms: it answers right after the
winner stores the value, with a handful of lookups as the safety net. corral-only."""
import threading
import time

import pytest

from harness import RespConn
from sample_origin import SampleOrigin
from test_fill import body, fill_config, fill_event, policy

pytestmark = pytest.mark.single_node("the lease wait is watched through one Redis's tracking")


@pytest.fixture
def origin():
    with SampleOrigin() as o:
        yield o


def _timed_get(port, key, out, i):
    with RespConn(port, timeout=5) as cl:
        got = cl.cmd("GET", key)
        out[i] = (time.monotonic(), got)


def test_lease_loser_is_woken_by_the_winner_s_store(redis_server, corral_factory, origin):
    origin.set(latency_ms=400)
    cfg = fill_config(redis_server.port, origin.url,
                      [policy(stampede={"single_flight": "distributed", "wait": "3s"})])
    a, b = corral_factory(cfg), corral_factory(cfg)
    behind = []
    for n in range(3):
        key = f"user:{70 + n}"
        out = [None, None]
        ta = threading.Thread(target=_timed_get, args=(a.port, key, out, 0))
        ta.start()
        time.sleep(0.1)  # A holds the lease and waits for the origin
        tb = threading.Thread(target=_timed_get, args=(b.port, key, out, 1))
        tb.start()
        ta.join(5)
        tb.join(5)
        (t_a, got_a), (t_b, got_b) = out
        assert got_a == got_b and body(got_a)["id"] == str(70 + n)
        behind.append(t_b - t_a)
    assert origin.calls() == 3, origin.stats()
    assert fill_event(a, "user", "lease_wins") == 3
    # B learnt of each value within a few ms of A (polling every 10 ms would give up to 10 ms
    # plus a lookup; the wakeup is an invalidation's trip plus one lookup).
    assert max(behind) < 0.030, behind
    # ~300 ms of waiting each: about 5 safety-net lookups (20, 40, 80, 100 ms apart), not ~30.
    losses = fill_event(b, "user", "lease_losses")
    assert 3 <= losses <= 3 * 7, losses
