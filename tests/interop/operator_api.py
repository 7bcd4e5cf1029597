"""The operators' API from outside (docs/PROTOCOL.md, "Operators' API"), as a
support engineer uses it: real servers with signed tokens (PyJWT) and API
keys, Python's strict `websockets` devices, v1 and v2.

    operator_api.py alone   <kullsync-server> <kullsync-ctl>
    operator_api.py cluster <kullsync-server> <kullsync-ctl>   (a redis-server of its own)

alone: users, history, disconnect (the closed socket reads its code, the
user's other socket stays up), revoke (closed with 4002; a token issued
before refused at connect and at REFRESH, a fresh one taken), nodes, every
bad input, a legacy server that has nothing to revoke, kullsync-ctl in both
output modes with its exit codes.
cluster: a device on node a listed, disconnected and revoked through node b;
both nodes listed.
"""
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import jwt
import websockets

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cluster"))
from cluster_common import SCALE, Redis, check, finish, redis_command  # noqa: E402
import testkit  # noqa: E402  (on the path through cluster_common)

MODE, SERVER, CTL = sys.argv[1], sys.argv[2], sys.argv[3]
WORK = tempfile.mkdtemp()
SECRET = os.urandom(24).hex()
API_KEY = "k-" + os.urandom(16).hex()


def write(name, data):
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        f.write(data)
    return path


SECRET_FILE = write("secret", SECRET + "\n")
KEYS_FILE = write("keys", API_KEY + "\n")


def token(sub, device, iat=None, ttl=600):
    now = int(time.time()) if iat is None else iat
    return jwt.encode({"sub": sub, "device": device, "iat": now, "exp": now + ttl}, SECRET,
                      algorithm="HS256")


class Node:
    def __init__(self, *args, auth=("--auth", "jwt", "--jwt-secret-file", SECRET_FILE)):
        self.proc = subprocess.Popen(
            [SERVER, "--listen", "127.0.0.1:0", "--log-level", "warn", "--limits", "off", *auth,
             "--api-keys-file", KEYS_FILE, *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.addr = json.loads(self.proc.stdout.readline().decode())["listening"]

    def ready(self):
        return testkit.ready(self.addr)

    def http(self, method, path, body=None, key=API_KEY, raw=None):
        return testkit.call(self.addr, method, "/api/sync" + path, body, key, raw)

    def ws(self, tok, v2=True):
        return websockets.connect(f"ws://{self.addr}/ws?token={tok}",
                                  subprotocols=["kull.v2"] if v2 else None)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


async def until(ws, kind, timeout=5):
    """The next message of type `kind` on `ws`."""
    deadline = time.time() + timeout * SCALE
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.time())))
        if m.get("type") == kind:
            return m


async def close_code(ws, timeout=5):
    """The close code `ws` ends with (0: it did not close)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout * SCALE)
    except websockets.ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else 1006
    except asyncio.TimeoutError:
        return 0


async def refused_with(node, tok):
    """The close code a socket opened with `tok` is closed with at once."""
    ws = await node.ws(tok)
    return await close_code(ws)


async def alive(ws):
    """The socket is open and served: a PING is answered by its PONG."""
    await ws.send(json.dumps({"type": "PING", "payload": {"timestamp": 1}}))
    try:
        await until(ws, "PONG")
        return True
    except (websockets.ConnectionClosed, asyncio.TimeoutError):
        return False


def ctl(node, *args, key_file=KEYS_FILE):
    env = dict(os.environ, KULLSYNC_URL=f"http://{node.addr}")
    if key_file:
        env["KULLSYNC_API_KEY_FILE"] = key_file
    else:
        env.pop("KULLSYNC_API_KEY_FILE", None)
    r = subprocess.run([CTL, *args], env=env, capture_output=True, text=True, timeout=30 * SCALE)
    return r.returncode, r.stdout, r.stderr


async def alone():
    n = Node()
    try:
        check(n.http("GET", "/users/u1", key=None)[0] == 401, "users/* need the API key (401)")
        mac = await n.ws(token("u1", "mac"), v2=False)
        await until(mac, "DEVICE_CONNECTED")
        ipad = await n.ws(token("u1", "ipad"))
        await until(ipad, "SNAPSHOT")
        for b in (10, 11, 12):
            n.http("POST", "/credit-update", {"userId": "u1", "newBalance": b, "change": 1})
        await until(ipad, "CREDIT_UPDATE")
        st, u = n.http("GET", "/users/u1")
        devices = sorted((d["deviceId"], d["protocol"]) for d in u.get("devices", []))
        check(st == 200 and devices == [("ipad", 2), ("mac", 1)],
              f"users lists both devices with their protocol ({devices})")
        check(all(d["node"] and d["connectedAt"] > 0 for d in u["devices"]), "with node and time")
        check(u["seq"] == 3 and u["history"] == {"size": 3, "first": 1, "last": 3}
              and u["epoch"], f"the stream's top and history ({u.get('seq')}, {u.get('history')})")
        st, h = n.http("GET", "/users/u1/history?since=1&limit=1")
        check(st == 200 and [m["seq"] for m in h["messages"]] == [2] and h["complete"]
              and h["messages"][0]["data"]["newBalance"] == 11, "history: after since, up to limit")
        st, h = n.http("GET", "/users/u1/history")
        check([m["seq"] for m in h["messages"]] == [1, 2, 3] and h["seq"] == 3
              and h["epoch"] == u["epoch"], "history by default: from the start")
        st, e = n.http("GET", "/users/nobody")
        check(st == 200 and e["devices"] == [] and e["history"] == {"size": 0, "first": None,
                                                                   "last": None},
              "an unknown user: 200 with empty lists")
        # Disconnect one device: it reads the code, the other stays up.
        st, r = n.http("POST", "/users/u1/disconnect", {"deviceId": "mac", "code": 4003})
        check(st == 200 and r == {"success": True, "closed": 1}, f"disconnect a device ({r})")
        check(await close_code(mac) == 4003, "the device's socket reads 4003")
        check(await alive(ipad), "the user's other socket stays up")
        st, r = n.http("POST", "/users/u1/disconnect", {})
        check(st == 200 and r["closed"] == 1 and await close_code(ipad) == 4009,
              "disconnect all: 4009 by default")
        # Revoke (from now, the default): tokens issued before are refused,
        # at connect and at REFRESH; the user's fresh login right after is
        # taken (tokens carry whole seconds: one of this second is not before).
        old = token("u1", "ipad", iat=int(time.time()) - 30)
        ws = await n.ws(old)
        await until(ws, "WELCOME")
        v1 = await n.ws(token("u1", "mac", iat=int(time.time()) - 30), v2=False)
        await until(v1, "DEVICE_CONNECTED")
        st, r = n.http("POST", "/users/u1/revoke", {})
        check(st == 200 and r == {"success": True, "closed": 2}, f"revoke ({r})")
        check(await close_code(ws) == 4002, "the revoked device's socket is closed with 4002")
        check(await close_code(v1) == 4002, "and the v1 one too")
        check(await refused_with(n, old) == 4002, "a token issued before is refused (4002)")
        st, r = n.http("GET", f"/state?token={old}")
        check(st == 401 and "revoked" in r.get("error", ""),
              f"and the state call refuses it (401): {st} {r}")
        check(await refused_with(n, jwt.encode({"sub": "u1", "exp": int(time.time()) + 60},
                                               SECRET, algorithm="HS256")) == 4002,
              "a token without iat counts as revoked")
        fresh = token("u1", "ipad")
        ws = await n.ws(fresh)
        w = await until(ws, "WELCOME")
        check(w["data"]["deviceId"] == "ipad", "a token issued right after is taken")
        check(n.http("GET", f"/state?token={fresh}")[0] == 200, "by the state call too")
        await ws.send(json.dumps({"type": "REFRESH", "payload": {"token": token("u1", "ipad")}}))
        check((await until(ws, "REFRESHED"))["type"] == "REFRESHED",
              "a fresh token refreshes the socket")
        await ws.send(json.dumps({"type": "REFRESH", "payload": {"token": old}}))
        check(await close_code(ws) == 4002, "an old token is refused at REFRESH too (4002)")
        check(await refused_with(n, token("u2", "d", ttl=2 * 86400)) == 4002,
              "a token that lives longer than --max-token-lifetime is refused")
        st, nodes = n.http("GET", "/nodes")
        me = nodes.get("nodes", [{}])
        check(st == 200 and len(me) == 1 and me[0]["ready"] and me[0]["version"]
              and me[0]["startedAt"] > 0 and "sockets" in me[0] and "users" in me[0],
              f"nodes lists this node ({me})")
        # Every bad input: 400 with an error, 405 for a wrong method.
        bad = [("GET", "/users/", None), ("GET", "/users/%FF", None),
               ("GET", "/users/" + "x" * 129, None), ("GET", "/users/%ZZ", None),
               ("GET", "/users/u1/history?limit=0", None),
               ("GET", "/users/u1/history?limit=5000", None),
               ("GET", "/users/u1/history?since=-1", None),
               ("GET", "/users/u1/history?since=abc", None),
               ("POST", "/users/u1/disconnect", b"{not json"),
               ("POST", "/users/u1/disconnect", {"code": 4001}),
               ("POST", "/users/u1/disconnect", {"code": "4009"}),
               ("POST", "/users/u1/disconnect", {"deviceId": 5}),
               ("POST", "/users/u1/disconnect", {"reason": "r" * 200}),
               ("POST", "/users/u1/disconnect", [1]),
               ("POST", "/users/u1/revoke", {"before": "x"}),
               ("POST", "/users/u1/revoke", {"before": -5}),
               ("GET", "/users/u1/elsewhere", None), ("GET", "/users/u1/", None),
               ("GET", "/users", None),
               ("GET", "/users/u1/history?since=9223372036854775808", None),
               ("GET", "/users/u1/history?since=99999999999999999999", None),
               ("GET", "/users/u1/history?limit=+5", None)]
        for method, path, body in bad:
            raw = body if isinstance(body, bytes) else None
            st, r = n.http(method, path, None if raw else body, raw=raw)
            check(st == 400 and r.get("error"), f"{method} {path} {body!r:.40}: 400 ({st})")
        for method, path in [("POST", "/users/u1"), ("GET", "/users/u1/revoke"),
                             ("POST", "/nodes"), ("GET", "/users/u1/disconnect")]:
            check(n.http(method, path, {})[0] == 405, f"{method} {path}: 405")
        st, r = n.http("POST", "/prompt-change", {"promptId": "p", "action": "created", "userIds": []})
        check(st == 200 and r.get("recipients") == 0 and r.get("seqs") == {},
              f"prompt-change to no users: answered, seqs {{}} ({r})")
        st, r = n.http("POST", "/prompt-change", {"promptId": "p", "action": "created"})
        check(st == 200 and r.get("recipients") == 0 and r.get("seqs") == {},
              f"prompt-change without userIds: answered, seqs {{}} ({r})")
        st, r = n.http("POST", "/prompt-change",
                       {"promptId": "p", "action": "created", "userIds": ["dup", "dup"]})
        st2, r2 = n.http("POST", "/prompt-change", {"promptId": "p", "action": "voted",
                                                    "userIds": ["dup"]})
        check(st == 200 and r.get("recipients") == 1 and list(r.get("seqs", {})) == ["dup"]
              and st2 == 200 and r2["seqs"]["dup"] == r["seqs"]["dup"] + 1,
              f"a user listed twice is published to once: {r} then {r2}")
        await ctl_checks(n)
    finally:
        n.stop()
    await short_history()
    await kept_across_restart()
    await legacy_tokens_revoked()
    legacy = Node(auth=("--auth", "legacy"))
    try:
        st, r = legacy.http("POST", "/users/u1/revoke", {})
        check(st == 400 and "legacy" in r.get("error", ""), "a legacy server has nothing to revoke")
    finally:
        legacy.stop()


async def short_history():
    """A history that no longer holds `since+1`: not complete, from the oldest."""
    n = Node("--history-size", "2")
    try:
        for b in (1, 2, 3):
            n.http("POST", "/credit-update", {"userId": "h1", "newBalance": b, "change": 1})
        st, h = n.http("GET", "/users/h1/history?since=0")
        check(st == 200 and not h["complete"] and [m["seq"] for m in h["messages"]] == [2, 3],
              f"history past what it holds: complete false, from the oldest ({h})")
        st, h = n.http("GET", "/users/h1/history?since=1")
        check(h["complete"] and [m["seq"] for m in h["messages"]] == [2, 3],
              "and complete from what it holds")
    finally:
        n.stop()


async def kept_across_restart():
    """A node alone keeps revocations in --revocations-file across a restart."""
    path = os.path.join(WORK, "revocations")
    old = token("r1", "mac", iat=int(time.time()) - 30)
    n = Node("--revocations-file", path)
    try:
        st, _ = n.http("POST", "/users/r1/revoke", {})
        check(st == 200, "revoked on a node with a revocations file")
    finally:
        n.stop()
    n = Node("--revocations-file", path)
    try:
        check(await refused_with(n, old) == 4002, "the revocation outlives a restart")
        ws = await n.ws(token("r1", "mac"))
        check((await until(ws, "WELCOME"))["type"] == "WELCOME", "a fresh token is still taken")
    finally:
        n.stop()


async def legacy_tokens_revoked():
    """jwt+legacy: an unsigned userId:deviceId token has no iat: revoked too."""
    n = Node(auth=("--auth", "jwt+legacy", "--jwt-secret-file", SECRET_FILE))
    try:
        ws = await n.ws("l1:laptop", v2=False)
        await until(ws, "DEVICE_CONNECTED")
        st, r = n.http("POST", "/users/l1/revoke", {})
        check(st == 200 and await close_code(ws) == 4002, "a legacy token's socket is closed")
        check(await refused_with(n, "l1:laptop") == 4002,
              "and a legacy token of the user is refused while the revocation lasts")
    finally:
        n.stop()


async def ctl_checks(n):
    ws = await n.ws(token("c1", "mac"))
    await until(ws, "SNAPSHOT")
    rc, out, _ = ctl(n, "publish", "credit-update", "--user", "c1", "--balance", "5",
                     "--change", "5")
    check(rc == 0 and "seq 1" in out, f"ctl publish credit-update ({out.strip()})")
    rc, out, _ = ctl(n, "publish", "shoot-progress", "--user", "c1", "--shoot", "s1",
                     "--processed", "2", "--total", "9", "--idempotency-key", "k1")
    check(rc == 0 and "seq 2" in out, f"ctl publish shoot-progress ({out.strip()})")
    # An Idempotency-Key: a retry gets the first answer; the same key on
    # another trigger is another publish, answered with its own position.
    rc, out, _ = ctl(n, "publish", "shoot-progress", "--user", "c1", "--shoot", "s1",
                     "--processed", "3", "--total", "9", "--idempotency-key", "k1")
    check(rc == 0 and "seq 2" in out, f"a retry with its key: the first answer ({out.strip()})")
    rc, out, _ = ctl(n, "publish", "credit-update", "--user", "c1", "--balance", "6",
                     "--change", "1", "--idempotency-key", "k1")
    check(rc == 0 and "seq 3" in out, f"the key on another trigger: published ({out.strip()})")
    rc, out, _ = ctl(n, "publish", "credit-update", "--user", "c1", "--balance", "7",
                     "--change", "1")
    check(rc == 0 and "seq 4" in out, f"and the stream goes on ({out.strip()})")
    rc, out, _ = ctl(n, "users", "c1")
    check(rc == 0 and "mac" in out and "v2" in out and "seq 4" in out, "ctl users: a table")
    rc, out, _ = ctl(n, "--json", "users", "c1")
    check(rc == 0 and json.loads(out)["devices"][0]["deviceId"] == "mac", "ctl users --json")
    rc, out, _ = ctl(n, "history", "c1", "--since", "1")
    check(rc == 0 and "SHOOT_PROGRESS" in out and out.count("CREDIT_UPDATE") == 2, "ctl history")
    rc, out, _ = ctl(n, "--json", "history", "c1")
    check(rc == 0 and [m["seq"] for m in json.loads(out)["messages"]] == [1, 2, 3, 4],
          "ctl history --json")
    rc, out, _ = ctl(n, "nodes")
    check(rc == 0 and "READY" in out and "yes" in out, "ctl nodes")
    # An empty --device (an unset shell variable) is a mistake, not "every device".
    rc, _, err = ctl(n, "disconnect", "c1", "--device", "")
    check(rc != 0 and "must not be empty" in err, f"ctl disconnect --device '' refused ({rc})")
    rc, out, _ = ctl(n, "disconnect", "c1", "--device", "mac", "--code", "4003")
    check(rc == 0 and "1 connection" in out and await close_code(ws) == 4003, "ctl disconnect")
    rc, out, _ = ctl(n, "--json", "revoke", "c1")
    check(rc == 0 and json.loads(out)["success"], "ctl revoke --json")
    rc, _, err = ctl(n, "users", "c1", key_file=None)
    check(rc == 1 and "401" in err, "ctl: an error answer exits 1 and prints it")
    rc, out, _ = ctl(n, "--json", "users", "c1", key_file=None)
    failure = json.loads(out) if out.strip() else {}
    check(rc == 1 and failure.get("success") is False and failure.get("status") == 401
          and failure.get("error"), f"ctl --json: a failure on stdout too ({out.strip()})")
    rc, _, err = ctl(n, "disconnect", "c1", "--code", "1234")
    check(rc == 2, "ctl: a usage error exits 2")
    rc, _, _ = ctl(n, "users")
    check(rc == 2, "ctl: a missing argument exits 2")
    rc, _, err = ctl(n, "usres", "c1")
    check(rc == 2 and "unknown command 'usres'" in err,
          f"ctl: a mistyped command is named ({err.strip()})")
    rc, _, _ = ctl(n, "publish", "prompt-change", "--prompt", "p", "--action", "a")
    check(rc == 2, "ctl: prompt-change needs --users")
    for since in ("99999999999999999999", "-1", "1e3"):
        rc, _, err = ctl(n, "history", "c1", "--since", since)
        check(rc == 2 and "not a whole number from 0 to 9223372036854775807" in err,
              f"ctl history --since {since}: refused, saying why ({rc} {err.strip()[:80]})")
    rc, out, _ = ctl(n, "publish", "shoot-progress", "--user", "c2", "--shoot", "s9",
                     "--status", "failed", "--current-image", "IMG_7.jpg", "--eta", "12.5",
                     "--error", "disk full")
    rc2, out2, _ = ctl(n, "--json", "history", "c2")
    data = json.loads(out2)["messages"][0]["data"] if rc2 == 0 else {}
    check(rc == 0 and data.get("currentImage") == "IMG_7.jpg" and data.get("eta") == 12.5
          and data.get("errorMessage") == "disk full",
          f"ctl publish shoot-progress with every field ({data})")
    rc, _, err = ctl(n, "--url", f"http://{n.addr}/", "users", "c1")
    check(rc == 0, f"ctl --url with a trailing slash names the same server ({err.strip()})")
    # A server that accepts and never answers: --timeout bounds the wait.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    try:
        t0 = time.monotonic()
        rc, _, err = ctl(n, "--url", f"http://127.0.0.1:{silent.getsockname()[1]}",
                         "--timeout", "1", "nodes")
        took = time.monotonic() - t0
    finally:
        silent.close()
    check(rc == 1 and took < 5 * SCALE and "timeout" in err,
          f"ctl --timeout 1 against a server that never answers: rc {rc} after {took:.1f} s "
          f"({err.strip()})")
    # The server's own key file (comments, CRLF) serves kullsync-ctl as is.
    server_style = write("keys-crlf", "# the backend's key\r\n\r\n" + API_KEY + "\r\n")
    rc, _, err = ctl(n, "users", "c1", key_file=server_style)
    check(rc == 0, f"ctl reads a key file as the server does ({err.strip()})")


def ready(*nodes):
    """Whether every node is ready within 20 s."""
    deadline = time.time() + 20 * SCALE
    while time.time() < deadline and not all(n.ready() for n in nodes):
        time.sleep(0.05)
    return all(n.ready() for n in nodes)


async def cluster():
    redis = Redis(WORK)
    redis.start()
    url = f"redis://127.0.0.1:{redis.port}"
    a = Node("--node-id", "a", "--broker", url)
    b = Node("--node-id", "b", "--broker", url)
    try:
        check(ready(a, b), "both nodes ready")
        deadline = time.time() + 20 * SCALE
        ws = await a.ws(token("x1", "mac"))
        await until(ws, "SNAPSHOT")
        devices = []
        while time.time() < deadline:  # presence reaches the stream at once, but not before
            st, u = b.http("GET", "/users/x1")
            devices = [(d["deviceId"], d["node"], d["protocol"]) for d in u.get("devices", [])]
            if devices:
                break
            time.sleep(0.05)
        check(devices == [("mac", "a", 2)], f"node b lists the device on node a ({devices})")
        st, r = b.http("POST", "/users/x1/disconnect", {"code": 4003})
        check(st == 200 and r["closed"] == 1 and await close_code(ws) == 4003,
              "disconnected through node b: the socket on node a reads 4003")
        old = token("x1", "mac", iat=int(time.time()) - 30)
        ws = await a.ws(old)
        await until(ws, "WELCOME")
        st, r = b.http("POST", "/users/x1/revoke", {"before": int(time.time()) * 1000})
        check(st == 200 and r["closed"] == 1 and await close_code(ws) == 4002,
              "revoked through node b: the socket on node a is closed with 4002")
        code = 0
        while time.time() < deadline:  # node a hears of the revocation on its channel
            code = await refused_with(a, old)
            if code == 4002:
                break
        check(code == 4002, "node a refuses a token issued before (4002)")
        fresh = await a.ws(token("x1", "mac"))
        check((await until(fresh, "WELCOME"))["type"] == "WELCOME", "and takes a fresh one")
        on_b = await b.ws(token("x1", "ipad"))
        await until(on_b, "WELCOME")
        await on_b.send(json.dumps({"type": "REFRESH", "payload": {"token": old}}))
        check(await close_code(on_b) == 4002, "node b refuses the old token at REFRESH (4002)")
        # One device disconnected through node b; the user's other stays up.
        ipad = await a.ws(token("x1", "ipad"))
        await until(ipad, "WELCOME")
        st, r = b.http("POST", "/users/x1/disconnect", {"deviceId": "mac"})
        check(st == 200 and await close_code(fresh) == 4009 and await alive(ipad),
              "one device disconnected through node b; the other stays up")
        b.http("POST", "/credit-update", {"userId": "x1", "newBalance": 7, "change": 7})
        st, h = b.http("GET", "/users/x1/history")
        check(st == 200 and [m["type"] for m in h["messages"]] == ["CREDIT_UPDATE"]
              and h["seq"] >= 1, f"history through node b ({h})")
        # A revocation another node announces (no close order): node a's
        # sockets check their tokens again; only the revoked one closes.
        stale = await a.ws(token("x2", "tv", iat=int(time.time()) - 20))
        await until(stale, "WELCOME")
        current = await a.ws(token("x2", "phone"))
        await until(current, "WELCOME")
        before = (int(time.time()) - 5) * 1000
        until_ms = before + 86_400_000

        redis_command(redis.port, "ZADD", "ks:revoked:z", "GT", until_ms, f"{before} x2")
        redis_command(redis.port, "PUBLISH", "ks:revoked", f"{before} {until_ms} x2")
        check(await close_code(stale) == 4002 and await alive(current),
              "an announced revocation closes the revoked socket, not the fresh one")
        # A weaker revocation never replaces a stronger one in Redis.
        st, _ = b.http("POST", "/users/x2/revoke", {"before": before - 60_000})
        check(st == 200 and int(float(redis_command(redis.port, "ZSCORE", "ks:revoked:z", f"{before} x2")))
              == until_ms, "an earlier `before` leaves the later one in force")
        # A node that starts later loads what is in force: x1's and x2's
        # revocations, not a lapsed one (which leaves the set).
        redis_command(redis.port, "ZADD", "ks:revoked:z", 1000, "999 lapsed-user")
        c = Node("--node-id", "c", "--broker", url)
        try:
            check(ready(c), "node c ready")
            check(await refused_with(c, old) == 4002
                  and await refused_with(c, token("x2", "tv", iat=int(time.time()) - 20)) == 4002,
                  "a node started later refuses the revoked tokens at once")
            check(redis_command(redis.port, "ZSCORE", "ks:revoked:z", "999 lapsed-user") is None,
                  "a lapsed revocation leaves the set")
        finally:
            c.stop()

        ids = []
        while time.time() < deadline:
            st, nodes = b.http("GET", "/nodes")
            ids = sorted(n["nodeId"] for n in nodes.get("nodes", []))
            if ids == ["a", "b"]:
                break
            time.sleep(0.1)
        check(ids == ["a", "b"], f"nodes lists both nodes ({ids})")
        rc, out, _ = ctl(b, "users", "x1")
        check(rc == 0 and "ipad" in out and "a " in out,
              f"ctl through node b lists node a's device ({out!r})")
    finally:
        a.stop()
        b.stop()
        redis.kill()


asyncio.run(alone() if MODE == "alone" else cluster())
finish()
