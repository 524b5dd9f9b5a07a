"""Test 11: SIGTERM drains in-flight requests, SIGHUP reloads (or keeps the old config on a bad
file), --check-config and --version. corral-only."""

import os
import re
import signal
import socket
import time

from harness import (EOF, RespConn, RespError, corral_config, encode_command, run_corral_cli,
                     to_yaml, wait_until)


def _redis_busy(redis_server):
    """True while redis (a node of a cluster upstream) cannot answer a PING within 50 ms (it is
    inside DEBUG SLEEP)."""
    for port in redis_server.ports():
        try:
            with RespConn(port, timeout=0.05) as c:
                c.cmd("PING")
        except (socket.timeout, AssertionError):
            return True
    return False


def test_sigterm_finishes_in_flight_request_then_exits_0(redis_server, corral_factory):
    c = corral_factory(corral_config(redis_server.port))
    with c.client(timeout=5.0) as cl:
        assert cl.cmd("PING") == "PONG"
        cl.send_raw(encode_command("DEBUG", "SLEEP", "0.3"))
        wait_until(lambda: _redis_busy(redis_server), 2, interval=0.01,
                   what="DEBUG SLEEP 0.3 executing in redis")
        t0 = time.monotonic()
        c.signal(signal.SIGTERM)
        r = cl.read_reply()
        assert r == "OK", f"in-flight DEBUG SLEEP got {r!r} after SIGTERM"
        # corral stopped accepting when it got SIGTERM (0.2 s+ ago): no new client is served
        try:
            with RespConn(c.port, timeout=1.0) as late:
                late_reply = late.cmd("PING")
        except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
            late_reply = "refused"
        assert late_reply in ("refused", EOF), f"new connection after SIGTERM got {late_reply!r}"
        # the drained connection is closed by corral
        assert cl.read_reply() is EOF
    rc = c.wait_exit(5)
    assert rc == 0, f"exit code {rc}\n{c.stderr_tail()}"
    assert time.monotonic() - t0 < 5


def test_sigterm_idle_exits_0_quickly(redis_server, corral_factory):
    c = corral_factory(corral_config(redis_server.port))
    with c.client() as cl:
        assert cl.cmd("PING") == "PONG"
        t0 = time.monotonic()
        c.signal(signal.SIGTERM)
        assert c.wait_exit(5) == 0
        assert time.monotonic() - t0 < 2.0, "idle shutdown should not wait for shutdown_timeout"


def _max_clients_in_effect(port, held):
    """True when a new connection (beyond `held`) is refused with the max-clients error."""
    with RespConn(port, timeout=2.0) as extra:
        extra.send_raw(b"*1\r\n$4\r\nPING\r\n")
        r = extra.read_reply()
        return r == RespError("ERR max number of clients reached")


def test_sighup_reload_valid_then_invalid(redis_server, corral_factory):
    cfg = corral_config(redis_server.port, limits={"max_clients": 100})
    c = corral_factory(cfg)
    held = [c.client() for _ in range(2)]
    try:
        for h in held:
            assert h.cmd("PING") == "PONG"
        assert not _max_clients_in_effect(c.port, held)

        # valid change: max_clients 100 -> 2; a third client must then be refused
        c.write_config(corral_config(redis_server.port, limits={"max_clients": 2}))
        c.signal(signal.SIGHUP)
        wait_until(lambda: _max_clients_in_effect(c.port, held), 5, interval=0.05,
                   what="max_clients 2 in effect after SIGHUP")
        for h in held:
            assert h.cmd("PING") == "PONG", "existing clients must survive a reload"

        # invalid file: corral logs, keeps the old config (max_clients 2) and keeps serving
        err_len = len(c.stderr_text())
        c.write_config("listen: [127.0.0.1:0\nworkers: [oops\n  limits: -\n")
        c.signal(signal.SIGHUP)
        try:
            wait_until(lambda: len(c.stderr_text()) > err_len, 3,
                       what="corral to log the failed reload")
        except AssertionError:
            pass  # logging is not part of the contract; behaviour below is
        assert c.running(), f"corral died on SIGHUP with a bad file:\n{c.stderr_tail()}"
        for h in held:
            assert h.cmd("SET", "after-bad-hup", "1") == "OK"
            assert h.cmd("GET", "after-bad-hup") == b"1"
        assert _max_clients_in_effect(c.port, held), "old config (max_clients 2) was lost"

        # and a valid file after the bad one is picked up again
        c.write_config(corral_config(redis_server.port, limits={"max_clients": 100}))
        c.signal(signal.SIGHUP)
        wait_until(lambda: not _max_clients_in_effect(c.port, held), 5, interval=0.05,
                   what="max_clients 100 in effect after the second valid SIGHUP")
    finally:
        for h in held:
            h.close()


def test_check_config_good_and_bad(tmp_path, corral_only):
    good = tmp_path / "good.yaml"
    good.write_text(to_yaml(corral_config(6379, limits={"max_clients": 50})) + "\n")
    p = run_corral_cli(["--check-config", str(good)])
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)

    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: [127.0.0.1:0]\n"
                   "workers: 1\n"
                   "upstream:\n"
                   "  primary: 127.0.0.1:6379\n"
                   "  connect_timeout: banana\n")
    p = run_corral_cli(["--check-config", str(bad)])
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 1, (p.returncode, p.stdout, err)
    assert re.search(re.escape(str(bad)) + r":5:\d+: upstream\.connect_timeout: .*banana", err), \
        err

    missing = tmp_path / "nope.yaml"
    p = run_corral_cli(["--check-config", str(missing)])
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert str(missing) in p.stderr.decode("utf-8", "replace")


def test_check_config_reports_loader_and_policy_errors_in_one_run(tmp_path, corral_only):
    """The loader's errors and the policy compiler's come out together, in file order (the main
    file, then each policy file), each naming its key the same way: policies[i].field."""
    (tmp_path / "more.yaml").write_text(
        "policies:\n"
        "  - {name: d, match: \"d:<x:nosuchtype>\"}\n"   # compiler, more.yaml line 2
        "  - {name: e, match: \"e:<id>\", priority: x}\n")  # loader, more.yaml line 3
    main = tmp_path / "main.yaml"
    main.write_text(
        "listen: [127.0.0.1:0]\n"
        "upstream: {primary: 127.0.0.1:6379}\n"
        "policies:\n"
        "  - {name: a, match: \"user:<id:u46>\"}\n"                            # compiler, line 4
        "  - {name: b, match: \"b:<id>\", ttl: {default: 5 parsecs}}\n"         # loader, line 5
        "  - {name: c, match: \"c:<id:int>\",\n"
        "     rate_limits: [{name: l, rate: 1/s, commands: [NOSUCH]}]}\n"      # compiler, line 7
        "workers: 0\n"                                                       # loader, line 8
        "policy_files: [more.yaml]\n")
    p = run_corral_cli(["--check-config", str(main)])
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 1, (p.returncode, p.stdout, err)
    lines = err.strip().splitlines()
    expected = [
        (main, 4, "policies[0].match: "),
        (main, 5, "policies[1].ttl.default: "),
        (main, 7, "policies[2].rate_limits[0].commands: unknown command 'nosuch'"),
        (main, 8, "workers: "),
        (tmp_path / "more.yaml", 2, "policies[0].match: "),
        (tmp_path / "more.yaml", 3, "policies[1].priority: "),
    ]
    assert len(lines) == len(expected) + 1, err
    for line, (f, n, text) in zip(lines, expected):
        assert line.startswith(f"{f}:{n}:"), (line, err)
        assert text in line, (line, err)
    assert lines[-1] == f"{main}: 6 error(s)", err


def test_print_addresses(tmp_path, corral_only):
    """--print-addresses: what scripts/run.sh reads instead of parsing the YAML itself."""
    good = tmp_path / "good.yaml"
    good.write_text(
        "listen: [127.0.0.1:6390, 'unix:/tmp/corral-it.sock']\n"
        "admin: {listen: '[::1]:9121'}\n"
        "upstream:\n"
        "  primary: redis://app:s3cret@127.0.0.1/2\n"
        "  replicas: [127.0.0.1:6381]\n")
    p = run_corral_cli(["--print-addresses", str(good)])
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, (p.returncode, out, p.stderr)
    assert out == ("listen 127.0.0.1:6390\n"
                   "listen unix:/tmp/corral-it.sock\n"
                   "admin [::1]:9121\n"
                   "primary 127.0.0.1:6379 password\n"  # the URL's password is its own
                   "replica 127.0.0.1:6381\n"), out
    assert "s3cret" not in out + p.stderr.decode("utf-8", "replace")

    # Defaults are resolved too: no listen key means 127.0.0.1:6380.
    minimal = tmp_path / "minimal.yaml"
    minimal.write_text("upstream: {primary: 'unix:/tmp/redis-it.sock'}\n")
    p = run_corral_cli(["--print-addresses", str(minimal)])
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert p.stdout.decode() == "listen 127.0.0.1:6380\nprimary unix:/tmp/redis-it.sock\n"

    # Invalid (here only by a policy template): the errors, as --check-config gives them, and no
    # addresses.
    bad = tmp_path / "bad.yaml"
    bad.write_text("upstream: {primary: 127.0.0.1:6379}\n"
                   "policies: [{name: a, match: 'a:<id:u46>'}]\n")
    p = run_corral_cli(["--print-addresses", str(bad)])
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 1, (p.returncode, p.stdout, err)
    assert p.stdout == b"", p.stdout
    assert f"{bad}:2:" in err and "policies[0].match" in err, err

    p = run_corral_cli(["--help"])
    assert b"--print-addresses FILE" in p.stdout, p.stdout


def test_version(corral_only):
    p = run_corral_cli(["--version"])
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    out = (p.stdout + p.stderr).decode("utf-8", "replace").strip()
    assert out, "--version printed nothing"
    assert re.search(r"\d+\.\d+", out), f"--version output has no version number: {out!r}"


def test_invalid_config_refuses_to_start(tmp_path, corral_only):
    cfgfile = tmp_path / "c.yaml"
    cfgfile.write_text("listen: [127.0.0.1:0]\nworkers: 1\nupstream:\n  primary: nothost:abc\n")
    p = run_corral_cli(["--config", str(cfgfile), "--ready-file", str(tmp_path / "ready")])
    assert p.returncode != 0, (p.returncode, p.stderr)
    assert not os.path.exists(tmp_path / "ready")


DEBUG_LINE = re.compile(r"^\S+ debug ", re.M)


def test_sighup_changes_log_level(redis_server, corral_factory):
    c = corral_factory(corral_config(redis_server.port, log={"level": "info"}))

    def churn_and_count_debug_lines():
        with c.client() as cl:
            assert cl.cmd("PING") == "PONG"
            assert cl.cmd("GET", "x") is None
        return len(DEBUG_LINE.findall(c.stderr_text()))

    # a client connecting and leaving logs at debug level only
    assert churn_and_count_debug_lines() == 0, c.stderr_tail()
    c.write_config(corral_config(redis_server.port, log={"level": "debug"}))
    c.signal(signal.SIGHUP)
    wait_until(churn_and_count_debug_lines, 5, interval=0.05,
               what="debug log lines after SIGHUP to log.level debug")
    c.write_config(corral_config(redis_server.port, log={"level": "warn"}))
    c.signal(signal.SIGHUP)

    def churn_settled():
        # corral logs a client's close after it sees the EOF, a moment after we close: give
        # that line time to land, so a round counts its own line (if any) and no earlier one.
        n = churn_and_count_debug_lines()
        time.sleep(0.2)
        return max(n, len(DEBUG_LINE.findall(c.stderr_text())))

    # once warn is in effect, churn adds no debug lines: wait until two settled rounds agree
    prev = [churn_settled()]

    def stable():
        n = churn_settled()
        same = n == prev[0]
        prev[0] = n
        return same

    wait_until(stable, 5, interval=0.1, what="no new debug lines after SIGHUP to warn")
    n = prev[0]
    for _ in range(5):
        assert churn_settled() == n, c.stderr_tail()
