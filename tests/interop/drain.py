"""An operator's drain of a node (docs/OPERATIONS.md, "Drain"), from outside:
real servers, Python's strict `websockets` devices, kullsync-ctl.

    drain.py alone   <kullsync-server> <kullsync-ctl>
    drain.py cluster <kullsync-server> <kullsync-ctl>   (a redis-server of its own)

alone: POST /api/sync/drain turns /readyz to 503 "draining" at once and
closes the node's sockets with 1001 "server draining" at the pace asked (not
all at once), a socket that joins meanwhile is closed too, GET says where the
drain stands, DELETE ends it (ready again, a new socket stays), every bad
input is a 4xx, the API key is needed, kullsync-ctl drives it.
cluster: a drained node's v2 device resumes on the other node with nothing
missed, and the cluster's node list says the drained node is not ready.
"""
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cluster"))
from cluster_common import SCALE, Device, Redis, check, finish, until  # noqa: E402
import testkit  # noqa: E402  (on the path through cluster_common)

MODE, SERVER, CTL = sys.argv[1], sys.argv[2], sys.argv[3]
WORK = tempfile.mkdtemp()
API_KEY = "k-" + os.urandom(16).hex()
KEYS_FILE = os.path.join(WORK, "keys")
with open(KEYS_FILE, "w") as f:
    f.write(API_KEY + "\n")


class Node:
    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [SERVER, "--listen", "127.0.0.1:0", "--log-level", "warn", "--limits", "off",
             "--auth", "legacy", "--api-keys-file", KEYS_FILE, *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.addr = json.loads(self.proc.stdout.readline().decode())["listening"]

    def get(self, path):
        """(status, body) of GET `path` outside /api/sync, with no key."""
        return testkit.call(self.addr, "GET", path)

    def drain(self, method, body=None, key=API_KEY, raw=None):
        return testkit.call(self.addr, method, "/api/sync/drain", body, key, raw)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def metrics(node):
    req = urllib.request.Request(f"http://{node.addr}/metrics",
                                 headers={"Authorization": "Bearer " + API_KEY})
    with urllib.request.urlopen(req, timeout=5 * SCALE) as r:
        return r.read().decode()


def ctl(node, *args):
    env = dict(os.environ, KULLSYNC_URL=f"http://{node.addr}", KULLSYNC_API_KEY_FILE=KEYS_FILE)
    r = subprocess.run([CTL, *args], env=env, capture_output=True, text=True, timeout=30 * SCALE)
    return r.returncode, r.stdout, r.stderr


async def watch(ws, ends, t0, frames=None):
    """Reads `ws` until it closes; appends (seconds after t0, code, reason)
    to `ends`, and what it read to `frames`."""
    try:
        async for text in ws:
            if frames is not None:
                frames.append(text)
    except websockets.ConnectionClosed:
        pass
    ends.append((time.monotonic() - t0, ws.close_code, ws.close_reason))


async def alone():
    n = Node("--node-id", "sync-7")
    try:
        check(n.drain("POST", {"rate": 10}, key=None)[0] == 401, "the drain needs the API key")
        for body, what in (({"rate": 0}, "rate 0"), ({"rate": -5}, "a negative rate"),
                           ({"rate": 1.5}, "a fractional rate"), ({"rate": "9"}, "a text rate"),
                           ({"rate": 10**7}, "a rate past 1,000,000")):
            status, answer = n.drain("POST", body)
            check(status == 400 and "rate" in answer.get("error", ""),
                  f"{what} is refused with 400 ({status} {answer})")
        status, answer = n.drain("POST", {"Rate": 10})
        check(status == 400 and "Rate" in answer.get("error", ""),
              f"a misspelt field is refused with 400, not drained at the default ({answer})")
        check(n.get("/readyz")[0] == 200, "still ready after the refusals")
        status, _ = n.drain("POST", raw=b"{not json")
        check(status == 400, f"a body that is not JSON is refused with 400 ({status})")
        check(n.drain("PUT")[0] == 405, "PUT is not a drain method (405)")
        check(n.get("/readyz")[0] == 200, "ready before the drain")

        count, rate = 24, 12  # two seconds' worth at the pace
        socks = [await websockets.connect(f"ws://{n.addr}/ws?token=u{i}:d{i}",
                                          subprotocols=["kull.v2"] if i % 2 else None)
                 for i in range(count)]
        t0 = time.monotonic()
        status, answer = n.drain("POST", {"rate": rate})
        check(status == 200 and answer["draining"] and answer["rate"] == rate
              and answer["sockets"] == count,
              f"POST drain answers where it stands ({status} {answer})")
        check(n.get("/readyz") == (503, {"status": "draining"}),
              f"/readyz says 503 draining at once ({n.get('/readyz')})")
        ends = []
        tasks = [asyncio.ensure_future(watch(s, ends, t0)) for s in socks]
        # At 12 a second the first half takes about 0.9 s to close (a loaded
        # machine takes longer, never less); all at once would take ms.
        half = await until(lambda: len(ends) >= count // 2, 20)
        took = time.monotonic() - t0
        check(half and took >= 0.5, f"the sockets close at the pace, not at once "
                                    f"({count // 2} of {count} after {took:.2f} s >= 0.5 s)")
        late = await websockets.connect(f"ws://{n.addr}/ws?token=late:d",
                                        subprotocols=["kull.v2"])
        late_ends, late_frames = [], []
        await asyncio.wait_for(watch(late, late_ends, t0, late_frames), 10 * SCALE)
        check(late_ends[0][1:] == (1001, "server draining") and not late_frames,
              f"a socket that arrives meanwhile is closed 1001 before it joins "
              f"({late_ends[0][1:]}, {len(late_frames)} frames)")
        await asyncio.wait_for(asyncio.gather(*tasks), 20 * SCALE)
        codes = {e[1:] for e in ends}
        check(codes == {(1001, "server draining")},
              f"every socket is closed with 1001 server draining ({codes})")
        last = max(e[0] for e in ends)
        check(last >= 1.0, f"the last closes after the pace allows it ({last:.2f} s >= 1 s)")
        # A socket leaves the count once the client saw its close: a moment
        # after the drain told the last one.
        ok = await until(lambda: n.drain("GET")[1].get("left") == 0
                         and n.drain("GET")[1].get("sockets") == 0)
        status, answer = n.drain("GET")
        check(ok and answer["draining"], f"GET says drained: no socket left ({answer})")
        check(n.get("/readyz")[0] == 503, "still not ready once drained")
        check("\nkullsync_draining 1\n" in metrics(n), "/metrics says kullsync_draining 1")

        status, answer = n.drain("DELETE")
        check(status == 200 and not answer["draining"], f"DELETE ends the drain ({answer})")
        check(n.get("/readyz") == (200, {"status": "ready"}), "ready again after it")
        check("\nkullsync_draining 0\n" in metrics(n), "/metrics says kullsync_draining 0")
        ws = await websockets.connect(f"ws://{n.addr}/ws?token=after:d")
        await ws.send(json.dumps({"type": "PING", "payload": {"timestamp": 1}}))
        got = []
        async def pong():
            async for text in ws:
                got.append(json.loads(text)["type"])
                if got[-1] == "PONG":
                    return
        await asyncio.wait_for(pong(), 5 * SCALE)
        check("PONG" in got, "a socket after the drain is served")
        await ws.close()

        # kullsync-ctl
        rc, out, _ = ctl(n, "drain", "--rate", "50")
        check(rc == 0 and out.startswith("node sync-7: draining at 50"),
              f"ctl drain names the node it reached ({rc} {out.strip()})")
        rc, out, _ = ctl(n, "drain", "--status", "--json")
        check(rc == 0 and json.loads(out)["draining"] and json.loads(out)["nodeId"] == "sync-7",
              f"ctl drain --status --json ({out.strip()})")
        rc, out, _ = ctl(n, "drain", "--end")
        check(rc == 0 and "not draining" in out, f"ctl drain --end ({rc} {out.strip()})")
        rc, _, err = ctl(n, "drain", "--rate", "0")
        check(rc == 2, f"ctl drain --rate 0 is a usage error ({rc} {err.strip()})")
        rc, _, err = ctl(n, "drain", "--end", "--status")
        check(rc == 2, f"ctl drain --end --status is a usage error ({rc})")
    finally:
        n.stop()


async def cluster():
    redis = Redis(WORK)
    redis.start()
    url = f"redis://127.0.0.1:{redis.port}"
    a = Node("--node-id", "a", "--broker", url, "--position-check", "2")
    b = Node("--node-id", "b", "--broker", url, "--position-check", "2")
    try:
        check(await until(lambda: testkit.ready(a.addr) and testkit.ready(b.addr)),
              "both nodes ready")
        dev = Device("cu", "phone")
        await dev.connect(a)
        check(await until(lambda: dev.welcomed is not None and dev.epoch is not None),
              "the device is welcomed on node a")
        def credits(balance):
            status, _ = testkit.call(b.addr, "POST", "/api/sync/credit-update",
                                     {"userId": "cu", "newBalance": balance, "change": 1},
                                     API_KEY)
            return status
        check([credits(1), credits(2)] == [200, 200], "node b publishes")
        check(await until(lambda: dev.seq == 2), "it reads what node b published")
        status, _ = a.drain("POST", {"rate": 100})
        check(status == 200, "node a drains")
        check(await until(lambda: 1001 in dev.closes), f"node a closes it 1001 ({dev.closes})")
        # Published while it moves: the resume on node b must bring it.
        check(credits(3) == 200, "node b publishes while the device moves")
        await dev.connect(b)
        check(await until(lambda: dev.seq == 3), f"it resumes on node b with what it missed "
                                                  f"(seq {dev.seq})")
        check(dev.welcomes[-1]["recovered"] and not dev.violations,
              f"recovered, nothing doubled or skipped ({dev.welcomes[-1]}, {dev.violations})")

        def a_listed_unready():
            try:
                status, answer = testkit.call(b.addr, "GET", "/api/sync/nodes", key=API_KEY)
                nodes = {x["nodeId"]: x["ready"] for x in answer.get("nodes", [])}
                return nodes.get("a") is False and nodes.get("b") is True
            except (urllib.error.URLError, OSError, KeyError, ValueError):
                return False
        check(await until(a_listed_unready, 15), "the cluster lists node a as not ready")
        await dev.close()
    finally:
        a.stop()
        b.stop()
        redis.kill()


asyncio.run(alone() if MODE == "alone" else cluster())
finish()
