"""Test 1: 10,000 pipelined commands from 20 concurrent clients come back in order, right values.

Runs against corral or (CORRAL_TARGET=redis) straight against redis-server.
"""

import random
import threading

CLIENTS = 20
COMMANDS_PER_CLIENT = 500   # 20 x 500 = 10,000
BATCH = 50


def _client_run(target, idx, results):
    rng = random.Random(1000 + idx)
    model = {}           # key -> bytes value, the expected state of this client's keys
    keys = [f"pipe:{idx}:{k}" for k in range(5)]
    counters = [f"pipe:{idx}:ctr{k}" for k in range(3)]
    mismatches = []
    done = 0
    with target.client(timeout=10.0) as c:
        # start from a clean slate for this client's keys
        r = c.cmd("DEL", *keys, *counters)
        assert isinstance(r, int), r
        while done < COMMANDS_PER_CLIENT:
            batch, expected = [], []
            for _ in range(min(BATCH, COMMANDS_PER_CLIENT - done)):
                op = rng.choice(("SET", "GET", "INCR"))
                if op == "SET":
                    k = rng.choice(keys)
                    v = f"v{idx}-{done}-{rng.randrange(1 << 30)}".encode()
                    batch.append(("SET", k, v))
                    expected.append("OK")
                    model[k] = v
                elif op == "GET":
                    k = rng.choice(keys)
                    batch.append(("GET", k))
                    expected.append(model.get(k))
                else:
                    k = rng.choice(counters)
                    n = int(model.get(k, b"0")) + 1
                    model[k] = str(n).encode()
                    batch.append(("INCR", k))
                    expected.append(n)
                done += 1
            got = c.pipeline(batch)
            for i, (cmd, exp, g) in enumerate(zip(batch, expected, got)):
                if g != exp:
                    mismatches.append((done - len(batch) + i, cmd, exp, g))
        # and the final state, read in one pipeline
        final = c.pipeline([("GET", k) for k in keys + counters])
        for k, g in zip(keys + counters, final):
            if g != model.get(k):
                mismatches.append(("final", k, model.get(k), g))
    results[idx] = (done, mismatches)


def test_pipelined_mixed_commands_from_concurrent_clients(target):
    results = {}
    errors = {}

    def run(i):
        try:
            _client_run(target, i, results)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors[i] = e

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "client threads still running after 60s"
    assert not errors, f"client errors: {errors!r}"
    total = sum(d for d, _ in results.values())
    assert total == CLIENTS * COMMANDS_PER_CLIENT == 10_000
    bad = {i: m[:5] for i, (_, m) in results.items() if m}
    assert not bad, f"out-of-order or wrong replies (client: [(index, cmd, expected, got)]): {bad}"


def test_pipelined_with_two_workers(redis_server, corral_factory):
    from conftest import Target
    from harness import corral_config
    c = corral_factory(corral_config(redis_server.port, workers=2))
    test_pipelined_mixed_commands_from_concurrent_clients(Target(c.port, redis_server, c))
