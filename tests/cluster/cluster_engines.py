"""Real client engines on a cluster: a redis-server of its own, three
kullsync-server nodes on it, and kullsync-resume's engines (readers and
writers, each user's on different nodes):
  - readers go offline on node a while writers on node b write, then resume
    on node c: every one recovered, nothing lost, doubled or skipped;
  - readers connected to node a when it is killed with -9 (writers on node
    b keep writing): sent to node b, every one recovers, nothing lost.

    cluster_engines.py <kullsync-server> <kullsync-resume> [clients]
"""
import json
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from cluster_common import SCALE, Redis, check, finish

SERVER, RESUME = sys.argv[1], sys.argv[2]
CLIENTS = sys.argv[3] if len(sys.argv) > 3 else "200"


def start_node(name, redis_port):
    p = subprocess.Popen([SERVER, "--listen", "127.0.0.1:0", "--auth", "legacy",
                          "--node-id", name, "--broker", f"redis://127.0.0.1:{redis_port}",
                          "--limits", "off", "--log-level", "error"],
                         stdout=subprocess.PIPE)
    addr = json.loads(p.stdout.readline().decode())["listening"]
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://{addr}/readyz", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.05)
    return p, f"ws://{addr}/ws"


def run_resume(args):
    p = subprocess.run([RESUME, "--clients", CLIENTS, "--timeout", str(60 * SCALE)] + args,
                       capture_output=True, text=True, timeout=300 * SCALE)
    line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else "{}"
    return p.returncode, json.loads(line), p.stderr


def main():
    redis = Redis(tempfile.mkdtemp())
    redis.start()
    nodes = [start_node(n, redis.port) for n in ("a", "b", "c")]
    (pa, a), (pb, b), (pc, c) = nodes
    try:
        rc, r, err = run_resume(["--url", a, "--writer-url", b, "--resume-url", c,
                                 "--missed", "20"])
        check(rc == 0 and r.get("resumed") == int(CLIENTS) and r.get("lost") == 0
              and r.get("duplicates") == 0 and r.get("gaps") == 0,
              f"offline on a, written on b, resumed on c: {r} {err.strip()[:200]}")
        rc, r, err = run_resume(["--url", a, "--writer-url", b, "--resume-url", b,
                                 "--missed", "50", "--kill", str(pa.pid)])
        check(rc == 0 and r.get("resumed") == int(CLIENTS) and r.get("lost") == 0
              and r.get("wrong_state") == 0 and r.get("duplicates") == 0 and r.get("gaps") == 0,
              f"node a killed with -9 under its readers: {r} {err.strip()[:200]}")
    finally:
        for p, _ in nodes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=10)
        redis.kill()
    finish()


main()
