"""INFO through corral in front of a Redis Cluster (upstream.cluster): sent to every primary and
merged (proxy/cluster/info_merge.h), corral's "# Proxy" section added once. Each expectation is
checked against the primaries asked directly. A file of its own (test_cluster.py is past 600
lines); its fixtures and helpers are test_cluster.py's."""
import pytest

from harness import RespConn
from test_cluster import cluster_config, corral_cluster, wait_routed  # noqa: F401 (a fixture)


def info_fields(text: bytes) -> dict:
    """key -> value of every "key:value" line; fails on a line that is none of header, empty or
    key:value (the reply must parse as INFO)."""
    out = {}
    for line in text.decode().split("\r\n"):
        if not line or line.startswith("#"):
            continue
        assert ":" in line, f"not an INFO line: {line!r}"
        k, v = line.split(":", 1)
        assert k not in out, f"{k} twice"
        out[k] = v
    return out


def headers(text: bytes) -> list:
    return [line for line in text.decode().split("\r\n") if line.startswith("# ")]


def subfields(value: str) -> dict:
    """"keys=3,expires=1,avg_ttl=5" -> {"keys": "3", ...}"""
    return dict(part.split("=", 1) for part in value.split(","))


def direct_infos(redis_cluster, *section) -> list:
    return [info_fields(redis_cluster.cmd(p, "INFO", *section))
            for p in redis_cluster.primaries()]


def fill(redis_cluster, port, n=600, prefix="info"):
    """n keys through corral, every third with a TTL; they must land on every primary."""
    keys = [f"{prefix}:{i}" for i in range(n)]
    with RespConn(port, timeout=30) as c:
        replies = c.pipeline([("SET", k, "v") + (("EX", 1000 + i) if i % 3 == 0 else ())
                              for i, k in enumerate(keys)])
    assert replies == ["OK"] * n
    assert len(set(redis_cluster.owners(keys).values())) == 3
    return keys


def test_info_keyspace_is_the_sum_of_the_primaries(redis_cluster, corral_cluster):
    fill(redis_cluster, corral_cluster.port)
    with RespConn(corral_cluster.port) as c:
        merged = c.cmd("INFO", "keyspace")
        dbsize = c.cmd("DBSIZE")
    direct = direct_infos(redis_cluster, "keyspace")
    assert headers(merged) == ["# Keyspace"]  # no Proxy section, nor the Cluster one
    db0 = subfields(info_fields(merged)["db0"])
    per_node = [subfields(d["db0"]) for d in direct]
    assert all(int(n["keys"]) > 0 for n in per_node), per_node
    assert int(db0["keys"]) == sum(int(n["keys"]) for n in per_node) == dbsize
    assert int(db0["expires"]) == sum(int(n["expires"]) for n in per_node) >= 200
    assert int(db0["avg_ttl"]) >= 0
    # One primary's own count is not the answer any more.
    assert int(db0["keys"]) > max(int(n["keys"]) for n in per_node)


def test_info_default_has_proxy_section_once_and_merged_primaries(redis_cluster, corral_cluster):
    direct = redis_cluster.cmd(redis_cluster.primaries()[0], "INFO")
    with RespConn(corral_cluster.port) as c:
        text = c.cmd("INFO")
        everything = c.cmd("INFO", "everything")
        server = c.cmd("INFO", "server")
        proxy = c.cmd("INFO", "proxy")
        clients_keyspace = c.cmd("INFO", "clients", "keyspace")
    f = info_fields(text)
    assert text.count(b"# Proxy\r\n") == 1
    assert headers(text) == headers(direct) + ["# Proxy"]
    assert f["corral_merged_primaries"] == "3"
    assert f["cluster_enabled"] == "1" and f["redis_mode"] == "cluster"
    assert "corral_version" in f
    assert f["maxclients"] == info_fields(direct)["maxclients"]  # a setting: not summed
    assert everything.count(b"# Proxy\r\n") == 1
    assert b"# Commandstats" in everything and b"corral_merged_primaries:3" in everything
    info_fields(everything)
    assert headers(server) == ["# Server"] and b"redis_version:" in server
    assert headers(proxy) == ["# Proxy"]
    assert headers(clients_keyspace) == ["# Clients", "# Keyspace"]
    assert int(info_fields(clients_keyspace)["connected_clients"]) >= 3  # corral on each primary


def test_info_stats_and_commandstats_add_up(redis_cluster, corral_cluster):
    keys = fill(redis_cluster, corral_cluster.port, n=300, prefix="stats")
    with RespConn(corral_cluster.port) as c:
        assert c.cmd("CONFIG", "RESETSTAT") == "OK"  # every primary
        gets = c.pipeline([("GET", k) for k in keys] + [("GET", "stats:missing")] * 7)
        assert gets[:len(keys)] == [b"v"] * len(keys)
        before = direct_infos(redis_cluster, "stats")
        stats = info_fields(c.cmd("INFO", "stats"))
        after = direct_infos(redis_cluster, "stats")
        cmdstats = info_fields(c.cmd("INFO", "commandstats"))
    direct_cmd = direct_infos(redis_cluster, "commandstats")
    assert int(stats["keyspace_hits"]) == len(keys) == sum(int(d["keyspace_hits"]) for d in after)
    assert int(stats["keyspace_misses"]) == 7
    # Still moving (corral's own checks, the INFOs): between the direct sums before and after.
    total = int(stats["total_commands_processed"])
    assert sum(int(d["total_commands_processed"]) for d in before) <= total
    assert total <= sum(int(d["total_commands_processed"]) for d in after)
    assert total >= len(keys) + 7
    get = subfields(cmdstats["cmdstat_get"])
    assert int(get["calls"]) == len(keys) + 7
    assert int(get["calls"]) == sum(int(subfields(d["cmdstat_get"])["calls"]) for d in direct_cmd)
    assert int(get["usec"]) == sum(int(subfields(d["cmdstat_get"])["usec"]) for d in direct_cmd)
    assert float(get["usec_per_call"]) == pytest.approx(int(get["usec"]) / int(get["calls"]),
                                                        abs=0.006)
