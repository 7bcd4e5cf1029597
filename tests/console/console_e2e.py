#!/usr/bin/env python3
"""End-to-end tests of kullsync-console against kullsync-server.

usage: console_e2e.py json|tui|demo|demo_script <build-dir>
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from testkit import SCALE, free_port  # noqa: E402

build = sys.argv[2]
server_bin = os.path.join(build, "apps", "kullsync-server")
console_bin = os.path.join(build, "apps", "kullsync-console")
env = dict(os.environ, XDG_CONFIG_HOME=tempfile.mkdtemp(), LANG="C.UTF-8")


def start_server(port):
    p = subprocess.Popen([server_bin, "--listen", f"127.0.0.1:{port}", "--auth", "legacy", "--log-level", "warn"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    line = p.stdout.readline().decode()
    assert "listening" in line, line
    return p


def post(port, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/sync{path}",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


def wait_for(pred, what, timeout=15):
    deadline = time.time() + timeout * SCALE
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def test_json():
    port = free_port()
    server = start_server(port)
    out = tempfile.NamedTemporaryFile(delete=False)
    console = subprocess.Popen([console_bin, "--json", "--url", f"ws://127.0.0.1:{port}/ws",
                                "--user", "u1", "--device", "laptop"],
                               stdout=out, stderr=subprocess.DEVNULL, env=env)
    lines = []

    def read():
        with open(out.name) as f:
            lines[:] = [json.loads(l) for l in f if l.strip()]
        return lines

    def last(pred):
        return lambda: next((l for l in reversed(read()) if pred(l)), None)

    try:
        wait_for(last(lambda l: l["connection"] == "connected"), "connected")
        post(port, "/shoot-progress", {"userId": "u1", "shootId": "s1", "status": "processing",
                                       "processedCount": 12, "totalCount": 48, "eta": 90,
                                       "currentImage": "IMG_0012.CR3", "provider": "openai"})
        post(port, "/credit-update", {"userId": "u1", "newBalance": 950, "change": -50,
                                      "reason": "shoot s1"})
        l = wait_for(last(lambda l: l["credits"] == 950 and l["shoots"]), "progress and credits")
        s = l["shoots"][0]
        assert s["shootId"] == "s1" and s["processedCount"] == 12 and s["totalCount"] == 48
        assert abs(s["progress"] - 0.25) < 1e-9 and s["provider"] == "openai"
        assert s["currentImage"] == "IMG_0012.CR3" and 80 <= s["eta"] <= 90
        for key in ("connection", "attempt", "error", "credits", "shoots", "devices", "lastPrompt"):
            assert key in l, key
        # A second device of the same user.
        other = subprocess.Popen([console_bin, "--json", "--url", f"ws://127.0.0.1:{port}/ws",
                                  "--user", "u1", "--device", "ipad"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        wait_for(last(lambda l: "ipad" in l["devices"]), "second device")
        other.terminate()
        other.wait(5)
        wait_for(last(lambda l: "ipad" not in l["devices"] and l["connection"] == "connected"),
                 "second device gone")
        # Server killed: reconnecting, with growing attempts.
        server.kill()
        server.wait()
        wait_for(last(lambda l: l["connection"] == "reconnecting" and l["attempt"] >= 3),
                 "reconnecting with attempt 3", timeout=20)
        attempts = [l["attempt"] for l in read() if l["connection"] == "reconnecting"]
        assert attempts == sorted(attempts), attempts
        # Server back. An update posted before the console is back on it is
        # not lost (the console loads the server's state while down and
        # right after reconnecting); one posted after comes over the socket.
        seen = len(read())
        server = start_server(port)
        post(port, "/credit-update", {"userId": "u1", "newBalance": 875, "change": -75,
                                      "reason": "while away"})
        since = lambda pred: lambda: next((l for l in reversed(read()[seen:]) if pred(l)), None)
        wait_for(since(lambda l: l["connection"] == "connected" and l["credits"] == 875),
                 "reconnected with the credits posted meanwhile", timeout=20)
        post(port, "/credit-update", {"userId": "u1", "newBalance": 900, "change": -50,
                                      "reason": "shoot s2"})
        l = wait_for(since(lambda l: l["credits"] == 900), "refreshed credits")
        # What the link went through, in every line: one reconnect after
        # several dials, the time it took, nothing lost.
        t = l["telemetry"]
        assert t["reconnects"] == 1 and t["connects"] == 2, t
        assert t["attemptsPerReconnect"]["max"] >= 3, t
        assert t["dials"] == 1 + t["attemptsPerReconnect"]["max"], t
        assert t["timeToLiveMs"]["count"] == 1 and t["timeToLiveMs"]["max"] >= 1000, t
        assert t["queueDropped"] == 0 and t["gaps"] == 0, t
    finally:
        console.send_signal(signal.SIGINT)
        console.wait(10)
        server.kill()
    assert console.returncode == 0, console.returncode


def test_tui():
    port = free_port()
    server = start_server(port)
    session = f"kullsync-test-{os.getpid()}"
    cmd = (f"LANG=C.UTF-8 XDG_CONFIG_HOME={env['XDG_CONFIG_HOME']} {console_bin} "
           f"--url ws://127.0.0.1:{port}/ws --user u1 --device tui")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd],
                   check=True)
    try:
        def screen():
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                  capture_output=True, text=True).stdout

        wait_for(lambda: "connected" in screen(), "connected on screen")
        post(port, "/shoot-progress", {"userId": "u1", "shootId": "wedding-7", "status": "processing",
                                       "processedCount": 30, "totalCount": 60, "provider": "openai"})
        post(port, "/credit-update", {"userId": "u1", "newBalance": 1234, "change": 100,
                                      "reason": "top-up"})
        s = wait_for(lambda: (lambda t: t if "wedding-7" in t and "1234" in t else None)(screen()),
                     "shoot and credits on screen")
        assert "Credits 1234" in s, s
        assert "\u2588" in s and "50%" in s and "30/60" in s, s
        assert "\u25cf connected" in s, s
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        wait_for(lambda: subprocess.run(["tmux", "has-session", "-t", session],
                                        capture_output=True).returncode != 0, "quit on q")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        server.kill()


def test_demo():
    seconds = str(int(5 * SCALE))
    r = subprocess.run([console_bin, "--demo", "--json", "--demo-seconds", seconds],
                       capture_output=True, text=True, env=env, timeout=60 * SCALE)
    assert r.returncode == 0, r.returncode
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    assert any(l["connection"] == "connected" for l in lines)
    final = lines[-1]
    assert final["credits"] is not None
    assert len(final["shoots"]) >= 3
    assert all(s["processedCount"] > 0 for s in final["shoots"]), final["shoots"]
    assert any(len(l["devices"]) == 2 for l in lines), "the second demo device never showed"


def test_demo_script():
    """The README's first command, as a newcomer runs it: scripts/demo itself
    (not the binary), from another directory, on this build tree."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    seconds = str(int(4 * SCALE))
    r = subprocess.run([os.path.join(root, "scripts", "demo"), "--json", "--demo-seconds", seconds],
                       capture_output=True, text=True, cwd="/", timeout=120 * SCALE,
                       env=dict(env, KULLSYNC_BUILD_DIR=os.path.abspath(build)))
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    assert lines, "scripts/demo printed no state: " + r.stderr[-2000:]
    assert any(l["connection"] == "connected" for l in lines)
    assert any(l["shoots"] for l in lines), "no shoots came"
    assert any(l["credits"] is not None for l in lines), "no credits came"


{"json": test_json, "tui": test_tui, "demo": test_demo,
 "demo_script": test_demo_script}[sys.argv[1]]()
print("ok")
