"""The deployment guide's balancer snippets, run as written: the ```nginx and
```haproxy blocks of docs/DEPLOYMENT.md (only the nodes' addresses and the
listening port replaced), each in front of three nodes on a real
redis-server, with clients from distinct loopback addresses (127.0.0.2, ...):
  - both configurations pass `nginx -t` / `haproxy -c` without a warning;
  - the per-address cap (1 socket per address here) applies to each client,
    not to the balancer: by X-Forwarded-For through nginx, by a PROXY v2
    header through HAProxy; a client's forged X-Forwarded-For changes nothing;
  - a node cut off from Redis answers 503 (not published): every publish
    through the balancer is still served, by another node;
  - a node an operator drains (HAProxy, whose health checks read /readyz):
    its devices, closed 1001, come back through the balancer on the other
    nodes, and once the checks took it out every upgrade is served elsewhere;
  - a node killed with -9: every publish and upgrade right after is served
    by the others, none answered by the balancer itself (502, 503, 504).

    balancers.py <kullsync-server binary> <docs/DEPLOYMENT.md> [nginx|haproxy]
"""
import asyncio
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import websockets

from cluster_common import SCALE, Node, Redis, check, failures, finish, free_port, until
from tcp_proxy import TcpProxy

BINARY, GUIDE = sys.argv[1], sys.argv[2]
DOC_NODES = ["10.0.0.11:5000", "10.0.0.12:5000", "10.0.0.13:5000"]


def snippet(lang):
    text = open(GUIDE).read()
    m = re.search(r"```" + lang + r"\n(.*?)```", text, re.S)
    if not m:
        raise SystemExit(f"docs/DEPLOYMENT.md has no ```{lang} block")
    return m.group(1)


def place(text, nodes, listen_from, listen_to, names=()):
    """The snippet with this test's addresses (and names); each must be in it."""
    for doc, here in names:
        if doc not in text:
            raise SystemExit(f"the snippet no longer has '{doc}'")
        text = text.replace(doc, here)
    for doc, node in zip(DOC_NODES, nodes):
        if doc not in text:
            raise SystemExit(f"the snippet no longer names {doc}")
        text = text.replace(doc, node.addr)
    if listen_from not in text:
        raise SystemExit(f"the snippet no longer has '{listen_from}'")
    return text.replace(listen_from, listen_to)


class Balancer:
    def __init__(self, kind, nodes, work):
        self.kind = kind
        self.port = free_port()
        self.log = open(os.path.join(work, kind + ".log"), "w+")
        if kind == "nginx":
            body = place(snippet("nginx"), nodes, "listen 80;", f"listen 127.0.0.1:{self.port};",
                         names=[("server_name sync.example.com;", "server_name 127.0.0.1;")])
            temp = "".join(f"{k}_temp_path {work}/{k};\n" for k in
                           ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            # As on Debian: another site is the port's default server, so
            # the guide's block is reached by its server_name only.
            default_site = (f"server {{ listen 127.0.0.1:{self.port} default_server; "
                            f"server_name _; return 404; }}\n")
            conf = (f"user root;\ndaemon off;\nworker_processes 1;\npid {work}/nginx.pid;\n"
                    f"error_log {work}/nginx-error.log;\nevents {{}}\n"
                    f"http {{\naccess_log {work}/nginx-access.log;\n{temp}{default_site}{body}\n}}\n")
            path = os.path.join(work, "nginx.conf")
            open(path, "w").write(conf)
            test = subprocess.run(["nginx", "-t", "-c", path, "-p", work], capture_output=True, text=True)
            self.cmd = ["nginx", "-c", path, "-p", work]
        else:
            conf = place(snippet("haproxy"), nodes, "bind :80", f"bind 127.0.0.1:{self.port}")
            path = os.path.join(work, "haproxy.cfg")
            open(path, "w").write(conf)
            test = subprocess.run(["haproxy", "-c", "-f", path], capture_output=True, text=True)
            self.cmd = ["haproxy", "-db", "-f", path]
        said = (test.stdout + test.stderr).strip()
        check(test.returncode == 0 and "warn" not in said.lower() and "[emerg]" not in said,
              f"{kind}: the guide's configuration is valid without a warning ({said[-300:]})")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=self.log)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def post(port, value, source="127.0.0.1"):
    body = json.dumps({"userId": "u1", "newBalance": value, "change": 1}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/sync/credit-update", method="POST",
                                 data=body, headers={"Content-Type": "application/json",
                                                     "Idempotency-Key": f"k{value}"})
    try:
        with urllib.request.urlopen(req, timeout=10 * SCALE) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return 0


# The test's own requests come from here: not the trusted balancer, which
# must send a PROXY header with --proxy-protocol on.
TESTER = "127.0.0.50"


def drain(node, method, body=b""):
    """(status, answer) of `method /api/sync/drain` at `node`, from TESTER."""
    host, port = node.addr.split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=5 * SCALE, source_address=(TESTER, 0))
    c.request(method, "/api/sync/drain", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, json.loads(r.read() or b"{}")


async def drained_through(p, nodes, kind):
    """Node b drained at 20 sockets a second behind the balancer."""
    b = nodes[1]
    devices = []
    for i in range(9):
        ws, what = await open_socket(p, f"drain:d{i}", f"127.0.3.{1 + i}")
        if ws:
            devices.append((i, ws))
    on_b = int(b.metric("kullsync_sockets_open", TESTER) or 0)
    status, _ = drain(b, "POST", b'{"rate":20}')
    check(status == 200 and on_b > 0, f"{kind}: node b drains ({on_b} of the devices on it)")
    emptied = await until(lambda: (b.metric("kullsync_sockets_open", TESTER) or 0) == 0, 10)
    codes = await asyncio.gather(*[refused(ws, 1 * SCALE) for _, ws in devices])
    moved = [i for (i, _), code in zip(devices, codes) if code == 1001]
    check(emptied and len(moved) == on_b and all(c in (None, 1001) for c in codes),
          f"{kind}: node b's devices closed 1001, the others left alone ({codes})")
    # Each comes back through the balancer, trying again while the balancer
    # still sends some to node b (refused 1001 before a join): after a
    # refusal, once the balancer's next health check reached node b.
    def requests_to_b():
        return b.metric("kullsync_http_requests_total", TESTER) or 0

    async def next_health_check():
        # Reading the counter is a request too: a rise of 2 between two
        # reads is someone else's.
        last = [requests_to_b()]

        def checked():
            now = requests_to_b()
            rose = now - last[0] >= 2
            last[0] = now
            return rose
        await until(checked, 5)

    back, refused_by_b = [], 0
    deadline = time.monotonic() + 20 * SCALE
    for i in moved:
        while time.monotonic() < deadline:
            ws, what = await open_socket(p, f"drain:d{i}", f"127.0.3.{1 + i}")
            if ws:
                back.append(ws)
                break
            refused_by_b += what == "closed 1001"
            await next_health_check()
    check(len(back) == len(moved), f"{kind}: every drained device back elsewhere "
                                   f"({len(back)} of {len(moved)}; {refused_by_b} tries refused by b)")
    # Once the health checks took node b out, upgrades all go elsewhere.
    run, tries = 0, 0
    while run < 10 and time.monotonic() < deadline:
        ws, what = await open_socket(p, f"probe2:d{tries}", f"127.0.4.{1 + tries % 250}")
        tries += 1
        run = run + 1 if ws else 0
        if ws:
            await ws.close()
    check(run == 10, f"{kind}: the balancer takes node b out: 10 upgrades in a row served "
                     f"elsewhere ({tries} tries)")
    for ws in back:
        await ws.close()
    for _, ws in devices:
        await ws.close()
    status, _ = drain(b, "DELETE")
    check(status == 200 and await until(lambda: ready(b), 10), f"{kind}: node b ready again")


def ready(node):
    """GET /readyz from TESTER."""
    host, port = node.addr.split(":")
    try:
        c = http.client.HTTPConnection(host, int(port), timeout=2, source_address=(TESTER, 0))
        c.request("GET", "/readyz")
        return c.getresponse().status == 200
    except OSError:
        return False


async def open_socket(port, token, source, headers=None):
    """A v2 device through the balancer from `source`: (the socket, 'welcome')
    once WELCOME came, else (None, what happened)."""
    try:
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws?token={token}", subprotocols=["kull.v2"],
                                      ping_interval=None, open_timeout=10 * SCALE,
                                      local_addr=(source, 0), extra_headers=headers or {})
    except websockets.exceptions.InvalidStatusCode as e:
        return None, f"HTTP {e.status_code}"
    except Exception as e:  # noqa: BLE001: reported as what happened
        return None, repr(e)
    try:
        first = json.loads(await asyncio.wait_for(ws.recv(), 5 * SCALE))
        return ws, "welcome" if first["type"] == "WELCOME" else first["type"]
    except websockets.ConnectionClosed as e:
        return None, f"closed {e.code}"
    except asyncio.TimeoutError:
        return None, "no WELCOME"


async def refused(ws, within=1.5 * SCALE):
    """The close code the server sends within `within` s (None: the socket
    stays open)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), within)
    except websockets.ConnectionClosed as e:
        return e.code
    except asyncio.TimeoutError:
        return None


async def group(port, clients, nodes):
    """Opens every (source, headers) socket at once: how many were refused (1008)."""
    opened = await asyncio.gather(*[open_socket(port, f"cap:d{i}", src, h)
                                    for i, (src, h) in enumerate(clients)])
    # A socket over the cap is opened, then closed (1008) before its WELCOME.
    codes = await asyncio.gather(*[refused(ws) if ws else asyncio.sleep(0, 1008 if what == "closed 1008" else what)
                                   for ws, what in opened])
    for ws, _ in opened:
        if ws:
            await ws.close()
    # Their sessions end (and leave the per-address counts) before the next group.
    await until(lambda: all(n.metric("kullsync_transport_sockets_open", TESTER) == 0
                            and n.metric("kullsync_sockets_open", TESTER) == 0 for n in nodes), 10)
    return codes


async def routed_to(port, node, attempt):
    """Whether a socket opened through the balancer lands on `node`."""
    ws, _ = await open_socket(port, f"probe:d{attempt}", f"127.0.2.{1 + attempt % 250}")
    if ws is None:
        return False
    on = node.metric("kullsync_transport_sockets_open", TESTER) or 0
    await ws.close()
    return on > 0


async def phase(kind, work, redis):
    extra = ["--trusted-proxies", "127.0.0.1", "--max-sockets-per-ip", "1"]
    if kind == "haproxy":
        extra += ["--proxy-protocol", "on"]
    cut = TcpProxy(redis.port)
    logs = [open(os.path.join(work, f"{kind}-{n}.log"), "w+") for n in "abc"]
    nodes = [Node(BINARY, f"{kind}-{n}", f"redis://127.0.0.1:{redis.port if n != 'c' else cut.port}",
                  stderr=log, extra=extra, limits=True) for n, log in zip("abc", logs)]
    lb = None
    try:
        check(await until(lambda: all(ready(n) for n in nodes), 10),
              f"{kind}: three nodes ready")
        lb = Balancer(kind, nodes, work)
        p = lb.port
        check(await until(lambda: post(p, 1) == 200, 10), f"{kind}: serving")

        def logged(addr):
            text = ""
            for log in logs:
                log.seek(0)
                text += log.read()
            return f"{addr}: socket refused" in text

        codes = await group(p, [("127.0.0.2", None)] * 4, nodes)
        check(codes.count(1008) >= 1 and codes.count("not open") == 0 and logged("127.0.0.2"),
              f"{kind}: four sockets of client 127.0.0.2 over three nodes with a cap of 1: "
              f"one refused, for 127.0.0.2 ({codes})")
        codes = await group(p, [(f"127.0.0.{3 + i}", None) for i in range(4)], nodes)
        check(codes == [None] * 4, f"{kind}: four clients through the one balancer: none refused ({codes})")
        codes = await group(p, [("127.0.0.9", {"X-Forwarded-For": f"198.51.100.{i}"}) for i in range(4)],
                           nodes)
        check(codes.count(1008) >= 1 and logged("127.0.0.9"),
              f"{kind}: a client's forged X-Forwarded-For changes nothing: still refused as 127.0.0.9 ({codes})")

        # Cut from Redis, node c is not ready and answers publishes 503.
        cut.hold()
        down = await until(lambda: not ready(nodes[2]), 10)
        statuses = [post(p, 100 + i) for i in range(12)]
        check(down and statuses == [200] * 12,
              f"{kind}: node c cut off from Redis (503): every publish served by another node ({statuses})")
        cut.release()
        check(await until(lambda: ready(nodes[2]), 15), f"{kind}: node c ready again once healed")
        if kind == "haproxy":  # it sends to c again once its health checks rise (2 x 2 s)
            attempts = iter(range(10_000))
            back = False
            deadline = time.monotonic() + 15 * SCALE
            while not back and time.monotonic() < deadline:
                back = await routed_to(p, nodes[2], next(attempts))
            check(back, f"{kind}: the balancer routes to node c again")

        if kind == "haproxy":
            await drained_through(p, nodes, kind)

        # Killed with -9: what comes right after must be served by b and c.
        nodes[0].proc.send_signal(signal.SIGKILL)
        nodes[0].proc.wait()
        t0 = time.monotonic()
        statuses, upgrades, held = [], [], []
        for i in range(30):
            statuses.append(post(p, 200 + i))
            ws, what = await open_socket(p, f"after:d{i}", f"127.0.1.{1 + i}")
            upgrades.append(what)
            if ws:
                held.append(ws)
        took = time.monotonic() - t0
        check(statuses == [200] * 30,
              f"{kind}: after kill -9 of a node, 30 publishes served by the others ({sorted(set(statuses))})")
        check(upgrades == ["welcome"] * 30,
              f"{kind}: and 30 upgrades (WELCOME each), in {took:.1f} s ({sorted(set(upgrades))})")
        for ws in held:
            await ws.close()
    finally:
        if failures and os.environ.get("KULLSYNC_TEST_VERBOSE"):
            for n, log in zip("abc", logs):
                log.seek(0)
                print(f"--- node {n}:\n" + log.read()[-3000:])
        if lb:
            lb.stop()
        for n in nodes:
            if n.proc.poll() is None:
                n.proc.send_signal(signal.SIGKILL)
                n.proc.wait()
        cut.close()


async def main():
    work = tempfile.mkdtemp()
    redis = Redis(work)
    redis.start()
    try:
        for kind in sys.argv[3:] or ("nginx", "haproxy"):
            await phase(kind, work, redis)
    finally:
        redis.kill()


asyncio.run(main())
finish()
