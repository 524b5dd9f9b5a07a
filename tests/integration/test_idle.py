"""Test 9: 1,000 idle clients cost little memory. corral-only."""

import pytest

from harness import RespConn, corral_bin, corral_config

N = 1000
# corral's own (anonymous) memory with N idle clients. The whole RSS also counts the pages of the
# binary and of the shared libraries it maps (8 MiB of a debug build, more as the code grows),
# which are not memory any client costs.
ANON_BOUND_KIB = 4 * 1024
PER_CLIENT_BOUND_KIB = 1.5


def _sanitized():
    with open(corral_bin(), "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


def test_thousand_idle_clients_rss(redis_server, corral_factory):
    if _sanitized():
        # A sanitizer's shadow memory alone is over the bound; the debug stage of
        # scripts/test.sh runs this test on an uninstrumented build of the same tree.
        pytest.skip("RSS bound applies to uninstrumented builds; this corral has a sanitizer")
    c = corral_factory(corral_config(redis_server.port))
    anon0 = c.rss_kib("RssAnon")
    conns = []
    try:
        for _ in range(N):
            conns.append(RespConn(c.port, timeout=5.0))
        # each sends one PING (pipelined across connections), then reads its PONG
        for cl in conns:
            cl.send_raw(b"*1\r\n$4\r\nPING\r\n")
        bad = [(i, r) for i, r in enumerate(cl.read_reply() for cl in conns) if r != "PONG"]
        assert not bad, bad[:5]
        anon = c.rss_kib("RssAnon")
        assert anon < ANON_BOUND_KIB, (
            f"corral's private memory with {N} idle clients is {anon} KiB ({anon0} KiB before "
            f"connecting), bound {ANON_BOUND_KIB} KiB")
        assert (anon - anon0) / N < PER_CLIENT_BOUND_KIB, (
            f"{(anon - anon0) / N:.2f} KiB per idle client, bound {PER_CLIENT_BOUND_KIB}")
        # they are all still served
        echoed = [(i, conns[i].cmd("ECHO", str(i))) for i in range(0, N, 50)]
        bad = [(i, r) for i, r in echoed if r != str(i).encode()]
        assert not bad, bad[:5]
        print(f"\ncorral private memory: {anon0} KiB idle, {anon} KiB with {N} idle clients")
    finally:
        for cl in conns:
            cl.close()
