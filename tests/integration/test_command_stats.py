"""Per-command counters for subcommands (issue item 15). corral-only.

Redis's INFO commandstats counts a container's subcommands on their own, as
`cmdstat_client|setname:calls=1,...` and `cmdstat_config|get:calls=...` (redis-server 7.0.15).
corral's INFO "# Proxy" section and /metrics must count them the same way:
`corral_cmdstat_client|setname:calls=N` and
`corral_command_requests_total{command="client|setname"} N`.
"""

from harness import corral_config


def _proxy_fields(info: bytes) -> dict:
    text = info.decode()
    proxy = text[text.index("# Proxy"):]
    return dict(line.split(":", 1) for line in proxy.splitlines()[1:] if ":" in line)


def _calls(fields, key):
    """calls=N from a cmdstat value "calls=N,failed_calls=M" (Redis's key=value list)."""
    value = fields.get(key)
    if value is None:
        return None
    return int(dict(kv.split("=", 1) for kv in value.split(","))["calls"])


def test_subcommands_counted_like_redis_cmdstat(redis_server, corral_factory):
    c = corral_factory(corral_config(redis_server.port))
    with c.client() as cl:
        assert cl.cmd("CLIENT", "SETNAME", "stats") == "OK"          # answered by corral
        assert cl.cmd("CLIENT", "SETNAME", "stats2") == "OK"
        assert cl.cmd("CLIENT", "GETNAME") == b"stats2"
        assert cl.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"0"]  # forwarded
        assert cl.cmd("GET", "k") is None
        fields = _proxy_fields(cl.cmd("INFO"))
    assert _calls(fields, "corral_cmdstat_client|setname") == 2, fields
    assert _calls(fields, "corral_cmdstat_client|getname") == 1, fields
    assert _calls(fields, "corral_cmdstat_config|get") == 1, fields
    assert _calls(fields, "corral_cmdstat_get") == 1, fields
    m = c.metrics()
    assert m.get('corral_command_requests_total{command="client|setname"}') == 2, \
        {k: v for k, v in m.items() if k.startswith("corral_command_")}
    assert m.get('corral_command_requests_total{command="config|get"}') == 1
    assert m.get('corral_command_requests_total{command="get"}') == 1
