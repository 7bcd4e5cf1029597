"""What the cluster tests share: a redis-server of their own (Debian's, on a
free loopback port, no persistence), a node, and a v2 device (Python's
websockets) that checks the stream it applies; the check, its report and
free ports come from tests/interop/testkit.py."""
import asyncio
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import websockets

from tcp_proxy import TcpProxy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import testkit  # noqa: E402
from testkit import SCALE, check, failures, finish, free_port  # noqa: E402,F401

REDIS = "/usr/bin/redis-server"


def redis_command(port, *args, timeout=2, password=None):
    """One command to the Redis (or Sentinel) on `port`, after an AUTH with
    `password` if given: its reply as Python values (an error reply raises
    RuntimeError)."""
    def encode(cmd):
        out = f"*{len(cmd)}\r\n"
        for a in cmd:
            a = str(a)
            out += f"${len(a.encode())}\r\n{a}\r\n"
        return out

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(((encode(("AUTH", password)) if password else "") + encode(args)).encode())
        f = s.makefile("rb")

        def read():
            line = f.readline().rstrip(b"\r\n")
            kind, rest = line[:1], line[1:]
            if kind == b"+":
                return rest.decode()
            if kind == b"-":
                raise RuntimeError(rest.decode())
            if kind == b":":
                return int(rest)
            if kind == b"$":
                n = int(rest)
                return None if n < 0 else f.read(n + 2)[:-2].decode()
            if kind == b"*":
                n = int(rest)
                return None if n < 0 else [read() for _ in range(n)]
            raise RuntimeError(f"not a RESP reply: {line!r}")
        if password:
            read()  # the AUTH's +OK (a refusal raises)
        return read()


class Redis:
    def __init__(self, work):
        self.port = free_port()
        self.work = work
        self.proc = None

    def start(self, *extra):
        """Starts redis-server on its port; checks that what answers there is
        this process (free_port's port may have been taken meanwhile by a
        test running in parallel: a first start then takes another)."""
        for attempt in range(5):
            self.proc = subprocess.Popen(
                [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self.work, *extra],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._answering(extra):
                self.started = True
                return
            self.kill()
            if getattr(self, "started", False):
                raise RuntimeError(f"redis-server could not start again on port {self.port}")
            self.port = free_port()
        raise RuntimeError("redis-server did not start")

    def _answering(self, extra):
        """Whether the redis-server answering on the port is this process."""
        password = extra[extra.index("--requirepass") + 1] if "--requirepass" in extra else None
        deadline = time.monotonic() + 5 * SCALE
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                info = redis_command(self.port, "INFO", "server", timeout=0.5, password=password)
                return self.proc.poll() is None and f"process_id:{self.proc.pid}" in info
            except RuntimeError:  # another test's redis-server, with its own password
                return False
            except OSError:  # not listening yet
                time.sleep(0.05)
        return False

    def kill(self):
        self.proc.kill()
        self.proc.wait()


class Node:
    """A kullsync-server node on a free port, with `broker` (a --broker URL),
    legacy tokens (unless `extra` names an --auth) and no rate limits."""

    def __init__(self, binary, name, broker, stderr=sys.stderr, extra=(), limits=False,
                 log_level="warn"):
        self.name = name
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0",
             *(() if "--auth" in extra else ("--auth", "legacy")), "--node-id", name,
             "--broker", broker, "--position-check", "2", "--limits", "on" if limits else "off",
             "--log-level", log_level, *extra],
            stdout=subprocess.PIPE, stderr=stderr)
        self.addr = json.loads(self.proc.stdout.readline().decode())["listening"]

    def ready(self):
        return testkit.ready(self.addr)

    def post_credits(self, user, balance):
        """The HTTP status and the seq it answered (None when refused)."""
        body = json.dumps({"userId": user, "newBalance": balance, "change": 1}).encode()
        req = urllib.request.Request(f"http://{self.addr}/api/sync/credit-update",
                                     method="POST", data=body,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=8 * SCALE) as r:
                return r.status, json.loads(r.read())["seq"]
        except urllib.error.HTTPError as e:
            return e.code, None
        except (urllib.error.URLError, OSError):
            return 0, None

    def metric(self, name, source=None):
        """The sum of a series' samples in the node's /metrics, asked from
        `source` (an address of this host; default any). None when the node
        does not answer or has no such series."""
        host, port = self.addr.split(":")
        try:
            c = http.client.HTTPConnection(host, int(port), timeout=4 * SCALE,
                                           source_address=(source, 0) if source else None)
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
        except OSError:
            return None
        samples = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name + " ") or line.startswith(name + "{")]
        return sum(samples) if samples else None


def stop_all(nodes=(), redises=()):
    """Kills the nodes, then the redis-servers, and waits for each."""
    for node in nodes:
        node.proc.kill()
        node.proc.wait()
    for r in redises:
        r.kill()


@contextlib.contextmanager
def proxied_pair(binary, work, **n_options):
    """A redis-server of its own and two nodes on it: n through a TcpProxy
    (the test holds or slows its bytes), m directly. Yields (proxy, n, m);
    all of it stops after."""
    redis = Redis(work)
    redis.start()
    proxy = TcpProxy(redis.port)
    n = Node(binary, "n", f"redis://127.0.0.1:{proxy.port}", **n_options)
    m = Node(binary, "m", f"redis://127.0.0.1:{redis.port}")
    try:
        yield proxy, n, m
    finally:
        stop_all((n, m))
        proxy.close()
        redis.kill()


class Device:
    """A v2 device: applies its stream in order and says when it did not."""

    def __init__(self, user, device):
        self.user, self.device = user, device
        self.epoch, self.seq = None, 0
        self.welcomed = None
        self.applied = []  # (epoch, seq, newBalance) of every CREDIT_UPDATE applied
        self.numbered = []  # (type, seq, data) of every numbered message applied
        self.pongs = 0
        self.violations = []
        self.welcomes = []
        self.closes = []
        self.acks = {}
        self.nacks = {}
        self.presence = []
        self.admin = []  # (type, data) of every ADMIN_SESSION_UPDATE / PROVIDER_HEALTH
        self.ws = None
        self.task = None

    async def connect(self, node, resume=True):
        q = f"token={self.user}:{self.device}"
        if resume and self.epoch:
            q += f"&epoch={self.epoch}&since={self.seq}"
        self.ws = await websockets.connect(f"ws://{node.addr}/ws?{q}",
                                           subprotocols=["kull.v2"], ping_interval=None)
        self.task = asyncio.ensure_future(self.read(self.ws))

    async def read(self, ws):
        try:
            async for text in ws:
                self.on_frame(json.loads(text))
        except websockets.ConnectionClosed as e:
            self.closes.append(e.code)
            return
        self.closes.append(ws.close_code)  # 1000/1001 end the loop quietly

    def on_frame(self, m):
        t = m["type"]
        if t == "WELCOME":
            self.welcomes.append(m["data"])
            if m["data"]["recovered"] and m["data"]["epoch"] != self.epoch:
                self.violations.append("recovered in another epoch")
            # A position of the new epoch only once its SNAPSHOT came (a
            # link that dies between them leaves the device where it was).
            self.welcomed = m["data"]["epoch"]
        elif t == "SNAPSHOT":
            self.epoch, self.seq = self.welcomed, m["data"]["seq"]
        elif t == "ACK":
            self.acks[m["data"]["id"]] = m["data"]["seq"]
        elif t == "NACK":
            self.nacks[m["data"]["id"]] = m["data"]["code"]
        elif t == "PONG":
            self.pongs += 1
        elif t in ("DEVICE_CONNECTED", "DEVICE_DISCONNECTED"):
            self.presence.append((t, m["data"]["deviceId"]))
        elif t in ("ADMIN_SESSION_UPDATE", "PROVIDER_HEALTH"):
            self.admin.append((t, m["data"]))
        elif "seq" in m:
            if m["seq"] != self.seq + 1:
                self.violations.append(f"seq {m['seq']} after {self.seq}")
            self.seq = m["seq"]
            self.numbered.append((t, m["seq"], m["data"]))
            if t == "CREDIT_UPDATE":
                self.applied.append((self.epoch, m["seq"], m["data"]["newBalance"]))

    async def close(self):
        await self.ws.close()
        await self.task

    async def send_progress(self, msg_id, count):
        await self.ws.send(json.dumps({"type": "UPDATE_PROGRESS", "id": msg_id, "payload": {
            "shootId": "s", "status": "processing", "processedCount": count,
            "totalCount": 100, "provider": "test"}}))


async def until(pred, timeout=10):
    deadline = time.monotonic() + timeout * SCALE
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(0.02)
    return pred()
