#!/usr/bin/python3
"""Checks the Grafana dashboard (docs/grafana/sluice-dashboard.json) against a live broker.

    tests/clients/run_with_broker.py --plugins storage,kafka,admin_http -- \\
        /usr/bin/python3 tests/console/grafana_dashboard_test.py [DASHBOARD.json]
    /usr/bin/python3 tests/console/grafana_dashboard_test.py --offline [DASHBOARD.json]   (structure only)

Structure: an importable dashboard (title, uid, schemaVersion, panels with unique ids and grid positions
that fit in 24 columns and do not overlap), a datasource variable DS_PROMETHEUS of type prometheus that
every panel and target uses as "${DS_PROMETHEUS}", every target a non-empty PromQL expr with a unique refId,
every $variable defined, and the metrics the dashboard must cover all present.

Against the broker ($SLUICE_ADMIN, $SLUICE_BOOTSTRAP, set by the harness): it first makes traffic with kcat
(a topic, records, a consumer group that commits, so labelled per-topic and per-group members exist), then
reads /metrics and checks that every metric named in any expr or variable query exists there: a name ending
in _bucket must be a histogram family's bucket series, _sum and _count a histogram's; a bare histogram name
is an error. Also: rate()/increase() only over counters (or histogram series), label matchers and by()
labels present on the series (instance and job are Prometheus target labels and always allowed). Families
the broker exports that no panel shows are listed, not failed.

Standard library only.
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_DASHBOARD = os.path.join(REPO, "docs", "grafana", "sluice-dashboard.json")
DS_UID = "${DS_PROMETHEUS}"
TARGET_LABELS = {"instance", "job"}  # added by Prometheus when it scrapes
# What the dashboard must show (docs/ADMIN.md lists the metrics).
REQUIRED = [
    "sluice_kafka_requests_total", "sluice_kafka_request_latency_us_bucket", "sluice_kafka_request_bytes_total",
    "sluice_kafka_response_bytes_total", "sluice_kafka_connections", "sluice_kafka_topic_bytes_in_total",
    "sluice_kafka_topic_bytes_out_total", "sluice_kafka_topic_records_in_total", "sluice_kafka_group_lag",
    "sluice_storage_append_latency_us_bucket", "sluice_storage_append_bytes_total", "sluice_storage_read_bytes_total",
    "sluice_storage_cache_bytes", "sluice_core_reactor_busy_us_total",
]
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                   "offset", "inf", "nan", "atan2"}
HIST_SUFFIXES = ("_bucket", "_sum", "_count")
KCAT = os.environ.get("KCAT", "kcat")

problems = []


def problem(msg):
    problems.append(msg)


# ---------------------------------------------------------------- the dashboard's structure

def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels") or [])


def check_structure(d):
    for key, kind in (("title", str), ("uid", str), ("schemaVersion", int), ("panels", list),
                      ("templating", dict)):
        if not isinstance(d.get(key), kind):
            problem(f"dashboard: {key!r} missing or not a {kind.__name__}")
    if problems:
        return []
    if len(d["uid"]) > 40:
        problem(f"dashboard uid {d['uid']!r} is longer than Grafana's 40 characters")
    if d["schemaVersion"] < 36:
        problem(f"schemaVersion {d['schemaVersion']}: Grafana 9 writes 36 or later")
    variables = d["templating"].get("list") or []
    names = [v.get("name") for v in variables]
    ds = [v for v in variables if v.get("name") == "DS_PROMETHEUS"]
    if not ds or ds[0].get("type") != "datasource" or ds[0].get("query") != "prometheus":
        problem("templating: no datasource variable DS_PROMETHEUS of type prometheus")
    if len(set(names)) != len(names):
        problem(f"templating: duplicate variable names {names}")

    panels = list(all_panels(d["panels"]))
    if not [p for p in panels if p.get("type") != "row"]:
        problem("dashboard has no panels")
    ids = [p.get("id") for p in panels]
    if not all(isinstance(i, int) for i in ids) or len(set(ids)) != len(ids):
        problem(f"panel ids must be unique integers: {ids}")
    boxes = []
    queries = []  # (where, expr)
    for p in panels:
        where = f"panel {p.get('id')} {p.get('title')!r}"
        g = p.get("gridPos") or {}
        if not all(isinstance(g.get(k), int) for k in ("h", "w", "x", "y")):
            problem(f"{where}: gridPos needs integer h, w, x, y: {g}")
            continue
        if g["w"] < 1 or g["h"] < 1 or g["x"] < 0 or g["x"] + g["w"] > 24:
            problem(f"{where}: gridPos {g} does not fit in 24 columns")
        for other_where, o in boxes:
            if (g["x"] < o["x"] + o["w"] and o["x"] < g["x"] + g["w"] and g["y"] < o["y"] + o["h"]
                    and o["y"] < g["y"] + g["h"]):
                problem(f"{where}: gridPos {g} overlaps {other_where} {o}")
        boxes.append((where, g))
        if p.get("type") == "row":
            continue
        if not p.get("title"):
            problem(f"{where}: no title")
        if (p.get("datasource") or {}).get("uid") != DS_UID:
            problem(f"{where}: datasource is {p.get('datasource')}, want uid {DS_UID}")
        targets = p.get("targets") or []
        if not targets:
            problem(f"{where}: no targets")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or not all(refs):
            problem(f"{where}: refIds must be unique and set: {refs}")
        for t in targets:
            if "datasource" in t and (t["datasource"] or {}).get("uid") != DS_UID:
                problem(f"{where} target {t.get('refId')}: datasource {t['datasource']}, want uid {DS_UID}")
            if not isinstance(t.get("expr"), str) or not t["expr"].strip():
                problem(f"{where} target {t.get('refId')}: no expr")
                continue
            queries.append((f"{where} target {t.get('refId')}", t["expr"]))

    defined = set(names)
    for where, expr in queries + [(f"variable {v.get('name')}", var_query(v)) for v in variables if var_query(v)]:
        for m in re.finditer(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", expr):
            name = next(x for x in m.groups() if x)
            if name not in defined and not name.startswith("__"):
                problem(f"{where}: ${name} is not a dashboard variable ({expr})")
        if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
            problem(f"{where}: unbalanced brackets in {expr}")
    return queries


def var_query(v):
    if v.get("type") != "query":
        return None
    q = v.get("query")
    return q.get("query") if isinstance(q, dict) else q


# ---------------------------------------------------------------- PromQL, just enough

def strip_strings(expr):
    return re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)


def selectors(expr):
    """[(metric name, [matcher label names])] for every metric selector in expr."""
    s = strip_strings(expr)
    s = re.sub(r"\[[^\]]*\]", "", s)  # range and subquery durations
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    out = []
    for m in re.finditer(r"(?<![\w$.:])([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^}]*\})?", s):
        name, matchers = m.group(1), m.group(2)
        rest = s[m.end():].lstrip()
        if name.lower() in PROMQL_KEYWORDS or (rest.startswith("(") and not matchers):
            continue  # a keyword, or a function or aggregation
        if m.start() > 0 and s[m.start() - 1].isdigit():
            continue  # 1e3, 5m
        labels = re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers or "")
        out.append((name, labels))
    return out


def grouping_labels(expr):
    s = strip_strings(expr)
    labels = []
    for m in re.finditer(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", s):
        labels += [x.strip() for x in m.group(2).split(",") if x.strip()]
    return labels


def rated_names(expr):
    """Names directly inside rate(), irate() or increase()."""
    s = strip_strings(expr)
    return set(re.findall(r"\b(?:rate|irate|increase)\s*\(\s*([A-Za-z_:][A-Za-z0-9_:]*)", s))


# ---------------------------------------------------------------- /metrics

def parse_exposition(text):
    """(families {name: type}, series {sample name: set of label names})"""
    families, series = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                families[parts[2]] = parts[3]
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s", line)
        if not m:
            continue
        labels = set(re.findall(r'([A-Za-z_]\w*)="', strip_label_values(m.group(3) or "")))
        series.setdefault(m.group(1), set()).update(labels)
    return families, series


def strip_label_values(s):
    return re.sub(r'="(?:\\.|[^"\\])*"', '="', s)


def family_of(name, families):
    """(family name, its type) for a sample name, or (None, None)."""
    if name in families:
        return name, families[name]
    for suffix in HIST_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and families.get(base) in ("histogram", "summary"):
            if suffix == "_bucket" and families[base] != "histogram":
                return None, None
            return base, families[base]
    return None, None


def check_against_broker(d, queries, families, series):
    used = set()
    exprs = queries + [(f"variable {v.get('name')}", var_query(v))
                       for v in d["templating"]["list"] if var_query(v)]
    for where, expr in exprs:
        m = re.fullmatch(r"\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*(\w+)\s*\)\s*", expr)
        if m:
            sels, by = [(m.group(1), [m.group(2)])], []
        else:
            sels, by = selectors(expr), grouping_labels(expr)
        if not sels:
            problem(f"{where}: no metric in {expr}")
        rated = rated_names(expr)
        for name, labels in sels:
            used.add(name)
            fam, kind = family_of(name, families)
            if fam is None:
                if name in series:
                    problem(f"{where}: {name} has samples but no # TYPE line")
                else:
                    problem(f"{where}: {name} is not in the broker's /metrics")
                continue
            if kind == "histogram" and name == fam:
                problem(f"{where}: {name} is a histogram: query its _bucket, _sum or _count series")
                continue
            if name in rated and kind == "gauge":
                problem(f"{where}: rate()/increase() of the gauge {name}")
            have = series.get(name, set())
            for label in labels:
                if label not in have and label not in TARGET_LABELS:
                    problem(f"{where}: {name} has no label {label!r} (it has {sorted(have) or 'none'})")
        for label in by:
            if label in TARGET_LABELS:
                continue
            if not any(label in series.get(name, set()) for name, _ in sels):
                problem(f"{where}: by/on label {label!r} is on none of {[n for n, _ in sels]}")
        if "histogram_quantile" in expr and not any(n.endswith("_bucket") for n, _ in sels):
            problem(f"{where}: histogram_quantile over no _bucket series: {expr}")
    for name in REQUIRED:
        if name not in used:
            problem(f"the dashboard shows no {name}")
    shown = {family_of(n, families)[0] for n in used}
    unshown = sorted(f for f in families if f not in shown and not f.startswith("sluice_echo_"))
    if unshown:
        print(f"  note: families on /metrics that no panel shows: {', '.join(unshown)}")
    return used


# ---------------------------------------------------------------- traffic and scraping

def run(cmd, timeout=60, input_bytes=None):
    r = subprocess.run(cmd, input=input_bytes, capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.decode(errors='replace')[-500:]}")
    return r


def make_traffic(bootstrap):
    """A topic with records, and a consumer group that read part of it and committed."""
    run_id = f"{os.getpid()}-{int(time.time()) % 100000}"
    topic, group = f"grafana-{run_id}", f"grafana-group-{run_id}"
    records = "".join(f"record {i}\n" for i in range(100)).encode()
    run([KCAT, "-b", bootstrap, "-P", "-t", topic, "-X", "acks=all"], input_bytes=records)
    # -G: a consumer group; auto commit on close. -c 60 leaves 40 records of lag.
    run([KCAT, "-b", bootstrap, "-G", group, "-o", "beginning", "-c", "60", "-q",
         "-X", "auto.offset.reset=earliest", "-X", "enable.auto.commit=true", topic], timeout=90)
    return topic, group


def scrape(admin):
    with urllib.request.urlopen(f"{admin}/metrics", timeout=10) as r:
        return r.read().decode("utf-8", "replace")


def main(argv):
    offline = "--offline" in argv
    files = [a for a in argv if not a.startswith("--")]
    path = files[0] if files else DEFAULT_DASHBOARD
    print(f"-- {path}")
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        print(f"FAILED: cannot load {path}: {e}")
        return 1
    queries = check_structure(d)
    panel_count = sum(1 for p in all_panels(d.get("panels") or []) if p.get("type") != "row")
    print(f"   {panel_count} panels, {len(queries)} queries")
    if offline:
        return finish("structure only (--offline)")

    admin, bootstrap = os.environ.get("SLUICE_ADMIN"), os.environ.get("SLUICE_BOOTSTRAP")
    if not admin or not bootstrap:
        print("FAILED: SLUICE_ADMIN and SLUICE_BOOTSTRAP must be set: run through tests/clients/run_with_broker.py "
              "--plugins storage,kafka,admin_http (or pass --offline for the structure only)")
        return 1
    print("-- traffic: a topic, records and a consumer group that commits (kcat)")
    try:
        topic, group = make_traffic(bootstrap)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        print(f"FAILED: kcat: {e} (run scripts/install-deps.sh if kcat is missing)")
        return 1
    print(f"   topic {topic}, group {group}")

    print(f"-- every metric the dashboard names is on {admin}/metrics")
    # Labelled members appear when the broker first counts them; give the group's lag a moment.
    deadline = time.monotonic() + 15
    waited = False
    while True:
        families, series = parse_exposition(scrape(admin))
        before = len(problems)
        check_against_broker(d, queries, families, series)
        if len(problems) == before or time.monotonic() > deadline:
            break
        if not waited:
            print("   (some are missing: waiting up to 15 s for the broker to count them)")
            waited = True
        del problems[before:]
        time.sleep(1)
    print(f"   /metrics has {len(families)} families, {len(series)} series names")
    return finish("structure and metrics")


def finish(what):
    if problems:
        print(f"FAILED: {len(problems)} problem(s) in the dashboard ({what}):")
        for p in problems:
            print(f"  - {p}")
        return 1
    print(f"PASSED: grafana_dashboard_test ({what})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
