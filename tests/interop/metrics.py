"""GET /metrics, /healthz and /readyz of kullsync-server under load: the
scrape passes `promtool check metrics`, and the traffic moves it (sockets by
protocol, deliveries, frames and bytes out, messages in by type, ACK
latency, auth refusals by code, resumes). The health endpoints need no key;
/metrics does when keys are configured.

    metrics.py <kullsync-server binary>
"""
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

import websockets

from testkit import check, finish

BINARY = sys.argv[1]
KEY = "metrics-key-" + os.urandom(8).hex()


def get(addr, path, key=None):
    req = urllib.request.Request(f"http://{addr}{path}",
                                 headers={"Authorization": "Bearer " + key} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), ""


def post(addr, path, body):
    req = urllib.request.Request(f"http://{addr}/api/sync{path}", method="POST",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + KEY})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status


def value(text, name, labels=""):
    m = re.search(r"^" + re.escape(name + labels) + r" ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


def promtool(text):
    tool = shutil.which("promtool")
    if not tool:
        return None
    p = subprocess.run([tool, "check", "metrics"], input=text.encode(), capture_output=True)
    return p.returncode, (p.stdout + p.stderr).decode()


async def traffic(addr):
    v1 = await websockets.connect(f"ws://{addr}/ws?token=m1:old")
    v2 = await websockets.connect(f"ws://{addr}/ws?token=m1:new", subprotocols=["kull.v2"])
    await v2.recv()  # WELCOME
    for i in range(20):
        await v2.send(json.dumps({"type": "UPDATE_PROGRESS", "id": f"m{i}", "payload": {
            "shootId": "s", "status": "processing", "processedCount": i, "totalCount": 20,
            "provider": "p"}}))
    acks = 0
    while acks < 20:
        if json.loads(await asyncio.wait_for(v2.recv(), 5))["type"] == "ACK":
            acks += 1
    for i in range(10):
        post(addr, "/credit-update", {"userId": "m1", "newBalance": i, "change": 1})
    await v1.send(json.dumps({"type": "PING"}))
    refused = await websockets.connect(f"ws://{addr}/ws")  # no token: 4001
    try:
        await asyncio.wait_for(refused.recv(), 5)
    except websockets.ConnectionClosed:
        pass
    # A resume the server cannot serve (another epoch): a SNAPSHOT, counted
    # apart from the first connects above.
    stale = await websockets.connect(f"ws://{addr}/ws?token=m1:stale&epoch=gone&since=3",
                                     subprotocols=["kull.v2"])
    await stale.recv()  # WELCOME
    await stale.close()
    return v1, v2


async def main():
    work = tempfile.mkdtemp()
    keys = os.path.join(work, "keys")
    with open(keys, "w") as f:
        f.write(KEY + "\n")
    proc = subprocess.Popen([BINARY, "--listen", "127.0.0.1:0", "--auth", "legacy",
                             "--api-keys-file", keys, "--log-level", "warn"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    addr = json.loads(proc.stdout.readline().decode())["listening"]
    try:
        st, body, _ = get(addr, "/healthz")
        check(st == 200 and json.loads(body)["status"] == "ok", "/healthz without a key")
        st, body, _ = get(addr, "/readyz")
        check(st == 200 and json.loads(body)["status"] == "ready", "/readyz without a key")
        st, _, _ = get(addr, "/metrics")
        check(st == 401, f"/metrics without the key: 401 ({st})")
        st, before, ctype = get(addr, "/metrics", KEY)
        check(st == 200 and ctype.startswith("text/plain; version=0.0.4"),
              f"/metrics with the key: 200, text format 0.0.4 ({st} {ctype})")
        v1, v2 = await traffic(addr)
        st, after, _ = get(addr, "/metrics", KEY)
        res = promtool(after)
        if res is None:
            check(False, "promtool is installed (Debian prometheus)")
        else:
            check(res[0] == 0, f"promtool check metrics passes {res[1].strip()}")
        def moved(name, labels="", at_least=1):
            b = value(before, name, labels) or 0
            a = value(after, name, labels)
            check(a is not None and a - b >= at_least, f"{name}{labels}: {b:g} -> {a}")
        moved("kullsync_deliveries_total", at_least=40)
        moved("kullsync_frames_out_total", at_least=40)
        moved("kullsync_bytes_out_total", at_least=4000)
        moved("kullsync_messages_in_total", '{type="UPDATE_PROGRESS"}', 20)
        moved("kullsync_messages_in_total", '{type="PING"}', 1)
        moved("kullsync_ack_latency_seconds_count", at_least=20)
        moved("kullsync_auth_refusals_total", '{code="4001"}', 1)
        moved("kullsync_closes_total", '{code="4001"}', 1)
        moved("kullsync_connects_total", at_least=2)
        moved("kullsync_resumes_total", '{outcome="fresh"}', 1)
        resyncs = (value(after, "kullsync_resumes_total", '{outcome="snapshot"}') or 0) - (
            value(before, "kullsync_resumes_total", '{outcome="snapshot"}') or 0)
        check(resyncs == 1, f"a resume of another epoch is a snapshot, a first connect is not "
              f"({resyncs})")
        moved("kullsync_http_requests_total", at_least=10)
        moved("kullsync_history_entries", at_least=30)
        check(value(after, "kullsync_sockets_open", '{protocol="v1"}') == 1
              and value(after, "kullsync_sockets_open", '{protocol="v2"}') == 1,
              "sockets open by protocol: one v1, one v2")
        check(value(after, "kullsync_unfinished_message_bytes") == 0,
              "nothing unfinished: two open sockets that sent only whole messages hold 0 bytes "
              f"({value(after, 'kullsync_unfinished_message_bytes')})")
        check((value(after, "process_resident_memory_bytes") or 0) > 1e6, "process RSS reported")
        check(value(after, "kullsync_io_loop_lag_seconds_count") is not None, "io loop lag histogram")
        label_values = re.findall(r'="([^"]*)"', "\n".join(
            l for l in after.splitlines() if not l.startswith("#")))
        check(not {"m1", "old", "new"} & set(label_values),
              f"no user or device id in any label ({sorted(set(label_values))[:8]}...)")
        await v1.close()
        await v2.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    log = proc.stderr.read().decode()
    check("/healthz" not in log and "/readyz" not in log and log.count("/metrics") == 1,
          "health checks and scrapes are not logged (only the refused scrape is)")


asyncio.run(main())
finish()
