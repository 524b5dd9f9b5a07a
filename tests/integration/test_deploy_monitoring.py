"""The monitoring files in deploy/ (issue 14): the Prometheus alerting rules
(deploy/prometheus/alerts.yaml) and the Grafana dashboard (deploy/grafana/corral.json).

    alerts.yaml ---promtool check rules / test rules (deploy_alerts_cases.yaml)
         \
          +-- metric names, label matchers --> checked against /metrics of a running corral
         /                                     (redis-server + sample origin; a policy with a
    corral.json --JSON, targets, PromQL (promtool)   fill, a near cache, a local and a global
                                                     rate limit, so every family has samples)

A name counts as exported when /metrics has a sample line of exactly that name: a histogram is
used through its _bucket/_sum/_count series (the family name alone has no sample), and such a
suffix is accepted only on a family whose TYPE is histogram. rate()/increase() may only take
counters or histogram series; an equality matcher (result="rejected") needs a sample with that
label value, an alternation of words (event=~"fills|coalesced") each of its words. Needs
promtool (Debian's prometheus package, installed by scripts/deps.sh test). corral-only."""

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from harness import REPO_ROOT, RedisServer, RespConn, corral_config, to_yaml, wait_until
from sample_origin import SampleOrigin

ALERTS = os.path.join(REPO_ROOT, "deploy", "prometheus", "alerts.yaml")
DASHBOARD = os.path.join(REPO_ROOT, "deploy", "grafana", "corral.json")
CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "deploy_alerts_cases.yaml")

NAME = re.compile(r"\b(corral_[a-z0-9_]+)")
SELECTOR = re.compile(r"\b(corral_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)"')
RATE_OF = re.compile(r"\b(?:rate|irate|increase|delta)\s*\(\s*(corral_[a-z0-9_]+)")
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Labels Prometheus adds at scrape time; the dashboard's variables filter on them.
TARGET_LABELS = {"job", "instance"}
# Grafana's variables, replaced by values PromQL accepts when the expressions go to promtool.
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
                "$job": ".*", "$instance": ".*"}


def promtool() -> str:
    p = shutil.which("promtool")
    assert p, "promtool not found: run scripts/deps.sh test (package prometheus)"
    return p


def run_promtool(*args, cwd=None):
    p = subprocess.run([promtool(), *args], capture_output=True, timeout=60, cwd=cwd)
    return p.returncode, (p.stdout + p.stderr).decode()


def alert_rules() -> list:
    with open(ALERTS) as f:
        doc = yaml.safe_load(f)
    return [r for g in doc["groups"] for r in g["rules"]]


def dashboard() -> dict:
    with open(DASHBOARD) as f:
        return json.load(f)


def dashboard_exprs(dash: dict) -> list:
    """(where, PromQL) of every panel target."""
    return [(f"panel {p['id']} {p['title']!r} target {t.get('refId')}", t["expr"])
            for p in dash["panels"] for t in p.get("targets", [])]


def variable_queries(dash: dict) -> list:
    """(where, query) of the query variables: label_values(<selector>, label), not PromQL."""
    out = []
    for v in dash["templating"]["list"]:
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            out.append((f"variable {v['name']}", q))
    return out


def every_expression() -> list:
    """(where, expression) of everything alerts.yaml and corral.json ask Prometheus."""
    dash = dashboard()
    return ([(f"alert {r['alert']}", r["expr"]) for r in alert_rules()] + dashboard_exprs(dash)
            + variable_queries(dash))


def parse_exposition(text: str):
    """({family: type}, {sample name: [label dicts]}) of a Prometheus text exposition."""
    types, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind.strip()
        elif line and not line.startswith("#"):
            series = line.rsplit(" ", 1)[0]
            name, _, rest = series.partition("{")
            labels = dict((k, v) for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rest))
            samples.setdefault(name, []).append(labels)
    return types, samples


def series_kind(name: str, types: dict) -> str:
    """The TYPE a sample name belongs to ("histogram" for X_bucket of histogram X); "" when
    the name belongs to no family."""
    if name in types:
        return types[name]
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
            return "histogram"
    return ""


def problems(expressions: list, exposition: str) -> list:
    """What in expressions (where, text) /metrics does not back, one line each."""
    types, samples = parse_exposition(exposition)
    out = []
    for where, expr in expressions:
        names = set(NAME.findall(QUOTED.sub('""', expr)))
        if not names:
            out.append(f"{where}: names no corral metric: {expr}")
        for name in sorted(names):
            if name not in samples:
                out.append(f"{where}: {name} has no sample in /metrics")
            elif not series_kind(name, types):
                out.append(f"{where}: {name} belongs to no family with a # TYPE (a histogram "
                           f"suffix on a non-histogram?)")
        for name in RATE_OF.findall(expr):
            if series_kind(name, types) not in ("counter", "histogram"):
                out.append(f"{where}: rate/increase of {name}, a "
                           f"{series_kind(name, types) or 'missing'} series")
        for name, body in SELECTOR.findall(expr):
            have = samples.get(name, [])
            for label, op, value in MATCHER.findall(body):
                if label in TARGET_LABELS or "$" in value:
                    continue
                values = {s[label] for s in have if label in s}
                if not values:
                    out.append(f"{where}: {name} has no label {label}")
                elif op == "=" and value not in values:
                    out.append(f"{where}: {name}{{{label}=\"{value}\"}} matches no sample "
                               f"(values: {sorted(values)})")
                elif op == "=~":
                    words = value.split("|") if re.fullmatch(r"[A-Za-z0-9_|]+", value) else []
                    missing = [w for w in words if w not in values]
                    if missing or not any(re.fullmatch(value, v) for v in values):
                        out.append(f"{where}: {name}{{{label}=~\"{value}\"}}: no sample for "
                                   f"{missing or value} (values: {sorted(values)})")
    return out


# ---------------------------------------------------------------------------------------------
# The rules and the dashboard alone


def test_alert_rules_pass_promtool():
    rc, out = run_promtool("check", "rules", ALERTS)
    assert rc == 0, out
    rules = alert_rules()
    assert f"SUCCESS: {len(rules)} rules found" in out, out
    for r in rules:
        assert r.get("for") is not None, f"{r['alert']}: no for:"
        assert r.get("labels", {}).get("severity") in ("critical", "warning", "info"), r["alert"]
        notes = r.get("annotations", {})
        assert notes.get("summary") and notes.get("description"), f"{r['alert']}: annotations"


def test_alert_rules_fire_as_the_cases_say(tmp_path):
    """promtool test rules on deploy_alerts_cases.yaml, against the rules without their
    annotations; every alert has a case where it fires."""
    rules = alert_rules()
    with open(ALERTS) as f:
        doc = yaml.safe_load(f)
    for g in doc["groups"]:
        for r in g["rules"]:
            r.pop("annotations", None)
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(doc))
    shutil.copy(CASES, tmp_path / "cases.yaml")
    rc, out = run_promtool("test", "rules", "cases.yaml", cwd=tmp_path)
    assert rc == 0, out
    with open(CASES) as f:
        cases = yaml.safe_load(f)
    fired = {t["alertname"] for c in cases["tests"] for t in c.get("alert_rule_test", [])
             if t.get("exp_alerts")}
    assert fired == {r["alert"] for r in rules}, "alerts without a firing case: " + \
        ", ".join(sorted({r["alert"] for r in rules} - fired))


def test_grafana_dashboard_is_well_formed(tmp_path):
    dash = dashboard()  # json.load: a syntax error fails here
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    ds = variables.get("datasource")
    assert ds and ds["type"] == "datasource" and ds["query"] == "prometheus", variables.keys()
    panels = dash["panels"]
    assert len(panels) >= 10
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), ids
    taken = set()
    for p in panels:
        where = f"panel {p['id']} {p.get('title')!r}"
        assert p.get("title") and p.get("type") in ("timeseries", "stat"), where
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        targets = p.get("targets") or []
        assert targets, f"{where}: no target"
        refs = [t["refId"] for t in targets]
        assert len(refs) == len(set(refs)), f"{where}: refIds {refs}"
        for t in targets:
            assert t.get("expr", "").strip(), f"{where}: empty expr"
            assert t.get("datasource", p["datasource"]) == p["datasource"], where
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, where
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                 for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, f"{where} overlaps another panel"
        taken |= cells
    # The PromQL itself: every target as a recording rule, Grafana's variables filled in.
    rules = []
    for i, (_, expr) in enumerate(dashboard_exprs(dash)):
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, f"a Grafana variable the test does not know: {expr}"
        rules.append({"record": f"dashboard:target_{i}", "expr": expr})
    path = tmp_path / "dashboard_rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    rc, out = run_promtool("check", "rules", str(path))
    assert rc == 0, out


# ---------------------------------------------------------------------------------------------
# Every name against a running corral

SECRET = "deploy-monitoring-fill-secret-0123456789"


def monitoring_config(redis_port: int, origin_url: str, replica_port: int) -> str:
    """A policy with a fill, a local and a global limit; a policy with a near cache; a replica."""
    cfg = corral_config(redis_port)
    # The alerts tell the primary from a replica (corral_upstream_up{role=...}): a replica gives
    # the replica series too (a server of its own; only the names matter here).
    cfg["upstream"]["replicas"] = [f"127.0.0.1:{replica_port}"]
    cfg["global"] = {"fill_secret": SECRET}
    cfg["origins"] = {"users": {"base_url": origin_url, "timeout": "2s"}}
    cfg["policies"] = [
        {"name": "user", "match": "user:<id:u64>", "ttl": {"default": "60s"},
         "fill": {"origin": "users", "path": "/v1/users/<id>"},
         "stampede": {"single_flight": "local"},
         "rate_limits": [
             {"name": "user-local", "rate": "1000/s", "burst": 1000},
             {"name": "user-global", "rate": "1000/s", "burst": 1000, "scope": "global"},
         ]},
        {"name": "product", "match": "product:<id:u64>", "ttl": {"default": "60s"},
         "near_cache": {"max_age": "10s"}},
    ]
    return to_yaml(cfg) + "\n"


@pytest.mark.single_node("the names corral exports do not depend on the upstream kind")
def test_every_metric_used_exists_in_metrics(redis_server, corral_factory):
    with SampleOrigin() as origin, RedisServer() as replica:
        c = corral_factory(monitoring_config(redis_server.port, origin.url, replica.port))
        with RespConn(c.port) as conn:
            first = conn.cmd("GET", "user:7")  # a miss: filled from the origin
            assert isinstance(first, bytes) and b'"7"' in first, first
            assert conn.cmd("GET", "user:7") == first  # a hit
            assert conn.cmd("SET", "product:1", "p1") == "OK"
            for _ in range(5):
                assert conn.cmd("GET", "product:1") == b"p1"  # then answered from memory
            assert conn.cmd("GET", "nope") is None  # another command line, no policy

        def ready():
            m = c.metrics()
            return (m.get('corral_fill_events_total{policy="user",event="fills"}', 0) >= 1
                    and m.get('corral_policy_near_total{policy="product",event="hit"}', 0) >= 1
                    and m.get('corral_ratelimit_global_takes_total{limit="user-global",'
                              'result="granted"}', 0) >= 1)
        wait_until(ready, 5, what="a fill, a near hit and a global take in /metrics")
        status, body = c.http_get("/metrics")
        assert status == 200

    expressions = every_expression()
    used = {n for _, e in expressions for n in NAME.findall(e)}
    assert len(used) >= 25, sorted(used)  # the parsing found what the files use
    found = problems(expressions, body)
    assert not found, "\n".join(found) + "\n\n" + body

    # The check can fail: a misspelt name, a gauge under rate(), a family name without its
    # histogram suffix, a label value corral never gives, a word missing from an alternation.
    bad = [("misspelt", "rate(corral_requests_totl[5m])"),
           ("gauge", "rate(corral_clients[5m])"),
           ("bare histogram", "rate(corral_request_duration_seconds[5m])"),
           ("label value", 'corral_ratelimit_requests_total{result="rejcted"}'),
           ("alternation", 'corral_fill_events_total{event=~"fills|fils"}')]
    for what, expr in bad:
        assert problems([(what, expr)], body), f"{what}: not caught: {expr}"
