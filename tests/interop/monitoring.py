"""What ships for monitoring is checked, not just described:
  - packaging/prometheus/kullsync-alerts.yml passes `promtool check rules`,
    and `promtool test rules` of tests/interop/alerts_test.yml (slow
    consumers fire it; operators' kicks and socket caps do not);
  - every series the alert rules and packaging/grafana/kullsync-dashboard.json
    use (and every label they select on) exists in the /metrics of a loaded
    cluster node (on a redis-server of its own, so the broker's series are
    there too).

    monitoring.py <kullsync-server> <source dir>
"""
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cluster"))
from cluster_common import SCALE, Redis, check, finish  # noqa: E402

SERVER, SOURCE = sys.argv[1], sys.argv[2]
RULES = os.path.join(SOURCE, "packaging", "prometheus", "kullsync-alerts.yml")
DASHBOARD = os.path.join(SOURCE, "packaging", "grafana", "kullsync-dashboard.json")
WORK = tempfile.mkdtemp()

r = subprocess.run(["promtool", "check", "rules", RULES], capture_output=True, text=True)
check(r.returncode == 0, f"promtool check rules kullsync-alerts.yml ({r.stdout.strip()} {r.stderr.strip()})")
r = subprocess.run(["promtool", "test", "rules",
                    os.path.join(SOURCE, "tests", "interop", "alerts_test.yml")],
                   capture_output=True, text=True)
check(r.returncode == 0, "promtool test rules alerts_test.yml: the alerts fire on what they "
      f"name, not on kicks or caps ({r.stdout.strip()[-300:]} {r.stderr.strip()[-300:]})")

# Every PromQL expression shipped.
exprs = re.findall(r"^\s*expr:\s*(\|\s*\n(?:\s{10,}.*\n)+|.*)$", open(RULES).read(), re.M)
dash = json.load(open(DASHBOARD))
exprs += [t["expr"] for p in dash["panels"] for t in p["targets"]]
check(len(dash["panels"]) >= 10 and len(exprs) >= 20, f"{len(exprs)} expressions shipped")

# Functions, keywords and Prometheus' own series are not ours to check.
NOT_SERIES = {"sum", "by", "rate", "increase", "histogram_quantile", "le", "without",
              "ignoring", "on", "up", "job", "instance", "and", "or", "unless", "avg",
              "max", "min", "count", "bool"}


def selectors(expr):
    """(series, {label: matcher}) of each selector in `expr`."""
    out = []
    for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?", expr):
        name, sel = m.group(1), m.group(2) or ""
        if name in NOT_SERIES or not (name.startswith("kullsync_") or name.startswith("process_")):
            continue
        labels = dict(re.findall(r'(\w+)\s*=~?\s*"([^"]*)"', sel))
        labels.pop("job", None)
        out.append((name, labels))
    return out


async def load(addr):
    """Traffic that moves every series: v1 and v2 devices, client messages
    with ids (ACKs), a resume, publishes, closes."""
    a = await websockets.connect(f"ws://{addr}/ws?token=m1:mac", subprotocols=["kull.v2"])
    w = json.loads(await a.recv())
    v1 = await websockets.connect(f"ws://{addr}/ws?token=m1:old")
    for i in range(20):
        await a.send(json.dumps({"type": "UPDATE_PROGRESS", "id": f"i{i}", "payload": {
            "shootId": "s", "status": "processing", "processedCount": i, "totalCount": 20,
            "provider": "p"}}))
    acks = 0
    deadline = time.time() + 10 * SCALE
    while acks < 20 and time.time() < deadline:
        if json.loads(await asyncio.wait_for(a.recv(), 5 * SCALE))["type"] == "ACK":
            acks += 1
    await a.close()
    b = await websockets.connect(
        f"ws://{addr}/ws?token=m1:mac&epoch={w['data']['epoch']}&since=0",
        subprotocols=["kull.v2"])
    await b.recv()
    await b.close()
    await v1.close()
    return acks


redis = Redis(WORK)
redis.start()
proc = subprocess.Popen([SERVER, "--listen", "127.0.0.1:0", "--auth", "legacy", "--log-level",
                         "warn", "--broker", f"redis://127.0.0.1:{redis.port}", "--node-id", "m"],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
try:
    addr = json.loads(proc.stdout.readline().decode())["listening"]
    deadline = time.time() + 20 * SCALE
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://{addr}/readyz", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.05)
    acks = asyncio.run(load(addr))
    check(acks == 20, f"the load was served ({acks} ACKs)")
    text = urllib.request.urlopen(f"http://{addr}/metrics", timeout=10).read().decode()
    series = {}  # name -> set of label names seen
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s", line)
        if m:
            series.setdefault(m.group(1), set()).update(re.findall(r'(\w+)="', m.group(3) or ""))
    used = {}
    for e in exprs:
        for name, labels in selectors(e):
            used.setdefault(name, set()).update(labels)
    check(len(used) >= 15, f"{len(used)} series used by the rules and the dashboard")
    for name, labels in sorted(used.items()):
        present = name in series
        check(present, f"{name} is in /metrics")
        for label in sorted(labels):
            check(present and label in series[name], f"{name} has the label {label}")
finally:
    proc.terminate()
    proc.wait()
    redis.kill()
finish()
