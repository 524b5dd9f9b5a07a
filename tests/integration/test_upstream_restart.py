"""Test 5: the upstream is SIGKILLed and restarted under load. corral-only.

Every request gets a reply or a corral error (a 5 s socket timeout fails the test: no hangs),
and service resumes after redis comes back on the same port, without restarting corral.
"""

import re
import threading
import time

import pytest

from cluster_upstream import REDIS_PROCESS
from harness import EOF, RespConn, RespError, RespTimeout, corral_config, wait_until

CLIENTS = 10
MAX_REQUESTS_PER_CLIENT = 20000
UPSTREAM_ERR = re.compile(r"^ERR corral: upstream \S+ (unavailable|timeout)")


@pytest.mark.single_node(REDIS_PROCESS)
def test_upstream_killed_and_restarted_under_load(redis_server, corral_factory):
    c = corral_factory(corral_config(redis_server.port, upstream={
        "command_timeout": "1s", "connect_timeout": "300ms"}))
    stop = threading.Event()
    stats = [dict(ok=0, err=0, bad=[], exc=None) for _ in range(CLIENTS)]

    def hammer(i):
        st = stats[i]
        try:
            with RespConn(c.port, timeout=5.0) as cl:
                n = 0
                while not stop.is_set() and n < MAX_REQUESTS_PER_CLIENT:
                    batch = [("SET", f"load:{i}", n), ("GET", f"load:{i}"), ("INCR", f"ctr:{i}")]
                    replies = cl.pipeline(batch)
                    n += 1
                    for r in replies:
                        if r is EOF:
                            st["bad"].append("connection closed by corral")
                            return
                        if isinstance(r, RespError):
                            if UPSTREAM_ERR.match(r.message):
                                st["err"] += 1
                            else:
                                st["bad"].append(r)
                        else:
                            st["ok"] += 1
                    if replies[0] == "OK" and replies[1] not in (str(n - 1).encode(),) and \
                            not isinstance(replies[1], RespError):
                        st["bad"].append(("GET after SET", n - 1, replies[1]))
        except RespTimeout as e:
            st["exc"] = f"hang: {e}"
        except Exception as e:  # noqa: BLE001
            st["exc"] = repr(e)

    threads = [threading.Thread(target=hammer, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: sum(s["ok"] for s in stats) > 3000, 10, what="load running")
        redis_server.kill()
        t_kill = time.monotonic()
        # while redis is down: errors must come, and fast
        errs0 = sum(s["err"] for s in stats)
        wait_until(lambda: sum(s["err"] for s in stats) > errs0 + 100, 5,
                   what="upstream errors while redis is down")
        time.sleep(0.5)  # keep it down a little while under load (this is the scenario, not sync)
        ok_before_restart = sum(s["ok"] for s in stats)
        redis_server.start()
        t_up = time.monotonic()
        # service resumes within a bounded time
        wait_until(lambda: sum(s["ok"] for s in stats) > ok_before_restart + 3000, 10,
                   what="successful replies after redis restart")
        resumed_after = time.monotonic() - t_up
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
    assert not any(t.is_alive() for t in threads), "client threads hung"
    exc = {i: s["exc"] for i, s in enumerate(stats) if s["exc"]}
    assert not exc, exc
    bad = {i: s["bad"][:5] for i, s in enumerate(stats) if s["bad"]}
    assert not bad, f"replies that are neither success nor an upstream error: {bad}"
    print(f"\nrestart under load: ok={sum(s['ok'] for s in stats)} "
          f"upstream errors={sum(s['err'] for s in stats)} resumed {resumed_after:.2f}s after restart")
    # a fresh connection works too
    with RespConn(c.port, timeout=5.0) as cl:
        assert cl.cmd("SET", "fresh", "1") == "OK"
        assert cl.cmd("GET", "fresh") == b"1"
    assert resumed_after < 10
    assert t_kill < t_up
