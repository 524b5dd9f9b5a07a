"""log.format text | json: every line carries its time in UTC as RFC 3339 (whatever the host's
zone), json lines are one object each with the message's key=value pairs as fields, and SIGHUP
switches the format of a running corral."""

import datetime
import json
import re
import signal

from harness import corral_config, wait_until

TEXT_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\w+) \[(\w+)\] (.*)$")
# POSIX TZ: a zone 13 h 45 min east of UTC that needs no tzdata; a local time would show it
FAR_ZONE = "CORRAL-13:45"


def lines(c):
    return [ln for ln in c.stderr_text().splitlines() if ln.strip()]


def parse_utc(stamp: str) -> datetime.datetime:
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


def near_now(t: datetime.datetime) -> bool:
    return abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()) < 120


def churn(c):
    with c.client() as cl:
        assert cl.cmd("PING") == "PONG"


def test_text_lines_are_utc_with_a_zone(redis_server, corral_factory, monkeypatch):
    monkeypatch.setenv("TZ", FAR_ZONE)
    c = corral_factory(corral_config(redis_server.port, log={"level": "debug"}))
    churn(c)
    got = lines(c)
    assert got, "corral logged nothing at debug level"
    for ln in got:
        m = TEXT_LINE.match(ln)
        assert m, f"not 'TIME LEVEL [module] message': {ln!r}"
        assert near_now(parse_utc(m.group(1))), f"time is not UTC now: {ln!r}"


def test_json_lines_are_objects_with_fields(redis_server, corral_factory, monkeypatch):
    monkeypatch.setenv("TZ", FAR_ZONE)
    c = corral_factory(corral_config(redis_server.port, log={"level": "debug", "format": "json"}))
    churn(c)
    records = []
    for ln in lines(c):
        try:
            records.append(json.loads(ln))
        except ValueError:
            raise AssertionError(f"not a JSON line: {ln!r}")
    assert records
    for r in records:
        assert set(r) >= {"time", "level", "module", "msg", "event"}, r
        assert near_now(parse_utc(r["time"])), r
        assert r["level"] in ("trace", "debug", "info", "warning", "error", "critical"), r
        assert r["msg"].startswith(r["event"]), r
        # every key=value of the message is a field of its own, holding the value as written
        for k, v in r.items():
            if k not in ("time", "level", "module", "msg", "event"):
                key = k.rstrip("_")
                assert f" {key}={v}" in r["msg"] or f' {key}="{v}"' in r["msg"], (k, v, r)
    with_fields = [r for r in records if len(r) > 5]
    assert with_fields, "no line had key=value fields"


def test_sighup_switches_the_format(redis_server, corral_factory):
    c = corral_factory(corral_config(redis_server.port, log={"level": "debug"}))
    churn(c)
    before = len(lines(c))
    assert all(TEXT_LINE.match(ln) for ln in lines(c))
    c.write_config(corral_config(redis_server.port, log={"level": "debug", "format": "json"}))
    c.signal(signal.SIGHUP)

    def json_lines():
        churn(c)
        return [ln for ln in lines(c)[before:] if ln.startswith("{")]
    wait_until(json_lines, 5, interval=0.05, what="json lines after SIGHUP to log.format json")
    reloaded = [json.loads(ln) for ln in json_lines()]
    assert any(r["event"] == "config reloaded" for r in reloaded), reloaded[:5]
