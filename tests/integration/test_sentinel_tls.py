"""Sentinel and data nodes on TLS together (issue "Managed and highly available Redis"). corral-only.

    20 clients --> corral --rediss--> primary P (TLS port) <--TLS replication-- replica R
                     |                 3 sentinels: tls-port, tls-replication yes, announcing
                     +--tls://-------> their TLS ports (they reach P, R and each other on TLS)

corral asks the sentinels over TLS (upstream.sentinel.addresses: tls://...), connects to the
primary and replica they name over TLS (upstream.tls.enabled), checking the certificates
(IP SAN 127.0.0.1) against the test CA. SENTINEL FAILOVER under load: writes resume on the new
primary, over TLS, and the counter equals the acknowledged INCRs.
"""

import shutil
import time

import pytest

from certs import Certs
from harness import RedisServer, free_port, parse_client_list, wait_until
from sentinels import MASTER, EventWatcher, SentinelSet
from test_sentinel import Load, sentinel_config


@pytest.fixture(scope="module")
def certs():
    c = Certs()
    yield c
    shutil.rmtree(c.dir, ignore_errors=True)


def tls_args(certs, tls_port):
    return ["--tls-port", str(tls_port), "--tls-cert-file", certs.path("server"),
            "--tls-key-file", certs.path("server", "key"), "--tls-ca-cert-file", certs.path("ca"),
            "--tls-auth-clients", "no", "--tls-replication", "yes"]


class TlsSentinelSet(SentinelSet):
    """SentinelSet on TLS: each sentinel also has a tls-port, announces it to the others, and
    reaches the data nodes and the other sentinels over TLS (tls-replication yes). The plain
    ports stay for the test's own commands."""

    def __init__(self, primary_tls_port, certs, **kw):
        self.certs = certs
        self.tls_ports = {}
        super().__init__(primary_tls_port, **kw)

    def _write_config(self, i: int):
        super()._write_config(i)
        port = self.tls_ports.setdefault(i, free_port())
        with open(self._conf(i), "a") as f:
            f.write(f"tls-port {port}\n"
                    f"tls-cert-file {self.certs.path('server')}\n"
                    f"tls-key-file {self.certs.path('server', 'key')}\n"
                    f"tls-ca-cert-file {self.certs.path('ca')}\n"
                    "tls-auth-clients no\n"
                    "tls-replication yes\n"
                    "sentinel announce-ip 127.0.0.1\n"
                    f"sentinel announce-port {port}\n")

    def tls_addresses(self) -> list:
        return [f"tls://127.0.0.1:{self.tls_ports[i]}" for i in range(len(self.ports))]


def corral_laddr_ports(server) -> set:
    """The local ports of the server that corral's connections came in on."""
    return {int(c["laddr"].rsplit(":", 1)[1]) for c in server.client_list()
            if c.get("cmd") not in ("client|list", "monitor") and c.get("flags", "") != "S"}


def test_failover_with_sentinels_and_data_nodes_on_tls(corral_factory, corral_only, certs):
    p_tls, r_tls = free_port(), free_port()
    primary = RedisServer(extra_args=tls_args(certs, p_tls))
    replica = None
    try:
        replica = RedisServer(replicaof=p_tls, extra_args=tls_args(certs, r_tls) +
                              ["--replica-announce-port", str(r_tls)])
        replica.wait_link_up()
        with TlsSentinelSet(p_tls, certs) as sentinels:
            sentinels.wait_settled(replicas=1)
            cfg = sentinel_config(sentinels.tls_addresses(),
                                  tls={"enabled": True, "ca_file": certs.path("ca")})
            c = corral_factory(cfg)
            watcher = EventWatcher(sentinels.ports)
            load = Load(c.port)
            try:
                wait_until(lambda: load.acked() > 200, 10, what="load flowing through corral")
                # corral reached the primary on its TLS port only.
                assert corral_laddr_ports(primary) <= {p_tls}, primary.client_list()
                t_trigger = time.monotonic()
                assert sentinels.cmd(0, "SENTINEL", "FAILOVER", MASTER) == "OK"
                t_switch = watcher.wait_for("+switch-master", 10, sentinels)
                wait_until(lambda: load.resumed(t_trigger), 6, what="writes resumed")
                time.sleep(0.5)
                load.finish()
            finally:
                load.stop.set()
                watcher.close()
            assert sentinels.primary() == r_tls
            assert replica.cmd("GET", "ctr") == str(load.acked()).encode(), load.errors
            assert corral_laddr_ports(replica) <= {r_tls}, replica.client_list()
            m = c.metrics()
            assert m.get("corral_upstream_tls_failures_total", 0) == 0
            assert t_switch - t_trigger < 10
    finally:
        if replica is not None:
            replica.close()
        primary.close()
