"""Regression tests for what an attack run found in kullsync-server's socket
and HTTP layer, each against the binary over raw sockets:
  - upgrades the handshake refuses (no key, a bad key, version 8) never join
    the user: the user's other devices hear nothing;
  - Transfer-Encoding with Content-Length (request smuggling) is a 400;
  - a second socket of the same device does not make the device leave;
  - out of descriptors, the accept loop pauses instead of spinning;
  - a message trickled byte by byte is cut after one ping interval;
  - control characters from a frame never reach the log raw;
  - GET /api/sync/state of a full state does not stall other sockets.

    hardening.py <kullsync-server binary>
"""
import json
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from testkit import (SCALE, check, client_frame, finish, running_server, split_server_frame,
                     upgrade_request)


BINARY = sys.argv[1]


class Reader:
    """A raw client: reads server frames (unmasked) from a socket."""

    def __init__(self, port, token):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.s.sendall(upgrade_request(token))
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.s.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ")[1])

    def next(self, timeout=5):
        self.s.settimeout(timeout)
        while True:
            whole = split_server_frame(self.buf)
            if whole:
                op, payload, self.buf = whole
                if op == 8:
                    return ("close", struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None)
                if op == 1:
                    return ("text", json.loads(payload))
                continue
            chunk = self.s.recv(65536)
            if not chunk:
                return ("eof", None)
            self.buf += chunk

    def texts(self, seconds):
        out = []
        end = time.time() + seconds
        try:
            while time.time() < end:
                kind, m = self.next(max(0.05, end - time.time()))
                if kind == "text":
                    out.append(m)
                elif kind in ("close", "eof"):
                    break
        except socket.timeout:
            pass
        return out


def raw_request(port, data, wait=1.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    s.settimeout(wait)
    got = b""
    try:
        while True:
            c = s.recv(65536)
            if not c:
                break
            got += c
    except socket.timeout:
        pass
    s.close()
    return got.decode(errors="replace")


def refused_upgrades(port):
    watcher = Reader(port, "hs:watcher")
    watcher.next()  # its own DEVICE_CONNECTED
    base = ("GET /ws?token=hs:{dev} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\n{extra}\r\n")
    cases = [("no key", "Sec-WebSocket-Version: 13\r\n", "400"),
             ("a key that is not 16 bytes", "Sec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 13\r\n", "400"),
             ("version 8", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n", "426")]
    for i, (what, extra, status) in enumerate(cases):
        reply = raw_request(port, base.format(dev=f"bad{i}", extra=extra).encode(), 3)
        check(reply.startswith("HTTP/1.1 " + status), f"upgrade with {what}: {status} ({reply[:30]!r})")
        if status == "426":
            check("Sec-WebSocket-Version: 13" in reply, "426 names the version it speaks")
    heard = [m["type"] for m in watcher.texts(0.7)]
    check(heard == [], f"the user's other device heard nothing of refused upgrades ({heard})")


def smuggling(port):
    req = (b"POST /api/sync/shoot-progress HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/sync/status HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = raw_request(port, req)
    check(reply.startswith("HTTP/1.1 400") and reply.count("HTTP/1.1") == 1,
          f"Transfer-Encoding with Content-Length: 400 and nothing more ({reply.count('HTTP/1.1')} replies)")
    req = (b"POST /api/sync/shoot-progress HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
    check(raw_request(port, req).startswith("HTTP/1.1 400"), "Transfer-Encoding gzip: 400")


def duplicate_device(port):
    watcher = Reader(port, "dup:watcher")
    watcher.next()
    first = Reader(port, "dup:phone")
    second = Reader(port, "dup:phone")
    second.s.close()  # the second socket of the same device leaves
    first.next()
    heard = [(m["type"], m.get("deviceId")) for m in watcher.texts(2)]
    check(heard == [("DEVICE_CONNECTED", "phone")],
          f"a device's second socket coming and going: presence stays honest ({heard})")
    first.s.close()
    heard = [(m["type"], m.get("deviceId")) for m in watcher.texts(2)]
    check(heard == [("DEVICE_DISCONNECTED", "phone")], f"its last socket leaving: DISCONNECTED ({heard})")


def trickle():
    with running_server(BINARY, "--ping-interval", "2") as (proc, port):
        r = Reader(port, "slow:d1")
        r.next()
        body = json.dumps({"type": "PING", "pad": "x" * 60000})
        data = client_frame(body)
        t0 = time.time()
        code = None
        try:
            for i in range(0, len(data), 100):  # 100 bytes every 0.2 s: ~2 min for all
                r.s.sendall(data[i:i + 100])
                time.sleep(0.2)
                r.s.settimeout(0.001)
                try:
                    chunk = r.s.recv(65536)
                    if not chunk:
                        break
                    r.buf += chunk
                    kind, code = r.next(1)
                    while kind == "text":
                        kind, code = r.next(1)
                    if kind in ("close", "eof"):
                        break
                except (socket.timeout, BlockingIOError):
                    pass
                if time.time() - t0 > 15 * SCALE:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        took = time.time() - t0
        check(code == 1008 and took < 8 * SCALE, f"a message trickled for one ping interval is cut: {code} after {took:.1f} s")


def accept_backoff():
    # Few descriptors: the server runs out, pauses its accepts, and serves again later.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([BINARY, "--listen", "127.0.0.1:0", "--auth", "legacy", "--limits", "off"],
                            stdout=subprocess.PIPE, stderr=log, preexec_fn=limit)
    port = int(proc.stdout.readline().decode().split('"')[3].split(":")[1])
    held = []
    for i in range(120):
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        except OSError:
            break

    def said():
        log.seek(0)
        return log.read().decode()
    # Until it ran out and said so (then it pauses 50 ms at a time).
    deadline = time.time() + 10 * SCALE
    while "accept failed" not in said() and time.time() < deadline:
        time.sleep(0.02)
    for s in held:
        s.close()
    r = Reader(port, "after:d1")  # waits in the backlog until an accept succeeds
    kind, m = r.next()
    check(kind == "text" and m["type"] == "DEVICE_CONNECTED", "serves again once descriptors are free")
    proc.terminate()
    proc.wait(timeout=10)
    lines = [l for l in said().splitlines() if "accept failed" in l]
    check(1 <= len(lines) <= 3, f"out of descriptors: {len(lines)} log line(s), not one per attempt")


def log_escaping():
    with running_server(BINARY, "--log-level", "debug", stderr=subprocess.PIPE) as (proc, port):
        r = Reader(port, "esc:d1")
        r.next()
        r.s.sendall(client_frame(json.dumps({"type": "X\nFORGED line\u001b[31m"})))
        r.s.sendall(client_frame(json.dumps({"type": "PING"})))
        r.next()  # the PONG: the frame before it was handled (and logged)
        r.s.close()
        proc.terminate()
        err = proc.stderr.read().decode()
    check("\nFORGED" not in err and "\x1b[31m" not in err and "\\x0aFORGED" in err,
          "a frame's control characters are escaped in the log")


def state_does_not_stall(port):
    shoots = [{"userId": "big", "shootId": f"s{i}", "status": "processing", "processedCount": 1,
               "totalCount": 9, "provider": "p", "currentImage": "i" * 150} for i in range(1000)]
    for s in shoots:
        raw_request(port, ("POST /api/sync/shoot-progress HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                           "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                           % (len(json.dumps(s)), json.dumps(s))).encode(), 0.2)
    pinger = Reader(port, "other:d1")
    pinger.next()
    worst = [0.0]
    def hammer():
        for _ in range(5):
            raw_request(port, b"GET /api/sync/state?token=big:probe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 2)
    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(20):
        t0 = time.time()
        pinger.s.sendall(client_frame(json.dumps({"type": "PING"})))
        while True:
            kind, m = pinger.next()
            if kind == "text" and m["type"] == "PONG":
                break
        worst[0] = max(worst[0], time.time() - t0)
    for t in threads:
        t.join()
    check(worst[0] < 1.0 * SCALE, f"a PONG while full states are served: worst {worst[0] * 1000:.0f} ms")


with running_server(BINARY) as (proc, port):
    refused_upgrades(port)
    smuggling(port)
    duplicate_device(port)
    state_does_not_stall(port)
trickle()
accept_backoff()
log_escaping()
finish()
