#!/usr/bin/env python3
"""Smoke run of kullsync-bench's three modes against kullsync-server and, when
Node is installed, the legacy Node server (its `ws` installed from npm on
first use, as the other tests do): each mode
runs briefly and must report sane figures. Timing is not judged here.

Against our server with a 1 s protocol ping, a fan-out of 3 s also proves
that the generator answers pings (a silent client is dropped after 2 s).

usage: smoke.py KULLSYNC_SERVER KULLSYNC_BENCH BASELINE_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import time

server_bin, bench_bin, baseline_dir = sys.argv[1:4]


def start(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    try:
        return p, json.loads(line)["listening"]
    except (ValueError, KeyError):
        p.kill()
        sys.exit(f"server did not start: {cmd}: {line!r}")


def bench(mode, addr, pid, *args):
    out = subprocess.run([bench_bin, mode, "--url", f"ws://{addr}/ws", "--server-pid", str(pid),
                          *args], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        sys.exit(f"{mode}: exit {out.returncode}: {out.stderr}")
    return json.loads(out.stdout)


def check(cond, what, figures):
    if not cond:
        sys.exit(f"FAILED: {what}: {json.dumps(figures)}")


def run_all(name, cmd, fanout_seconds):
    proc, addr = start(cmd)
    try:
        users, devices = 5, 3
        f = bench("fanout", addr, proc.pid, "--users", str(users), "--devices", str(devices),
                  "--window", "2", "--seconds", str(fanout_seconds))
        print(name, "fanout", json.dumps(f))
        check(f["connected"] == users * devices and f["failed"] == 0, "all connected", f)
        check(f["sent"] > 0 and f["delivered"] > 0, "updates relayed", f)
        check(f["delivered"] <= f["sent"] * devices, "no delivery invented", f)
        check(f["p50_ms"] > 0 and f["p99_ms"] >= f["p50_ms"], "latencies", f)
        check(f["server_cpu_s"] > 0 and f["delivered_per_server_cpu_s"] > 0, "server CPU", f)
        r = bench("rate", addr, proc.pid, "--users", str(users), "--devices", str(devices),
                  "--rate", "300", "--seconds", "1")
        print(name, "rate", json.dumps(r))
        check(r["failed"] == 0 and r["sent"] >= 200, "offered load sent", r)
        # Every update reaches every device of its user (the last 300 ms are
        # allowed to be in flight when counting stops).
        check(r["delivered"] >= 0.8 * r["sent"] * devices, "open loop delivered", r)
        i = bench("idle", addr, proc.pid, "--conns", "200", "--seconds", "0.5")
        print(name, "idle", json.dumps(i))
        check(i["connected"] == 200 and i["failed"] == 0, "idle sockets held", i)
        check(i["server_rss_kib"] > 0, "server memory read", i)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


run_all("kullsync", [server_bin, "--listen", "127.0.0.1:0", "--auth", "legacy", "--limits", "off", "--log-level", "error",
                     "--ping-interval", "1"], 3)
node = shutil.which("node")
legacy = os.path.join(baseline_dir, "legacy-server.js")
ws_dir = os.path.join(baseline_dir, "node_modules", "ws")
if node and not os.path.isdir(ws_dir) and shutil.which("npm"):
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=baseline_dir,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
if node and os.path.isdir(ws_dir):
    run_all("legacy", [node, legacy, "--port", "0"], 1)
else:
    print("legacy server skipped: node or the baseline's ws is not installed")
print("smoke passed")
