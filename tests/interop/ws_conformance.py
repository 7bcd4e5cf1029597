#!/usr/bin/env python3
"""The server's side of RFC 6455, byte by byte, from a raw socket: pings are
answered with their payload, fragments are joined (with a ping between
them), binary frames are read as text, frames split across reads or sent
with the upgrade request arrive, a burst the client reads only later all
arrives, a message sent together with the close frame still counts, close
handshakes are echoed and end with a FIN, the server's socket closed at
once, and each protocol violation fails the connection with its close code
(1002, 1007, 1009) while the server serves the next client; floods of pings
or of small frames leave its memory flat. With one io thread, with two,
and with the sessions on CAF's threads.

usage: ws_conformance.py <kullsync-server>
"""
import json
import os
import socket
import struct
import sys
import time
import urllib.request

from testkit import SCALE, running_server, split_server_frame, upgrade_request

APP_PING = json.dumps({"type": "PING", "payload": {"timestamp": 1.5}}).encode()


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n <= 0xFFFF:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def update_frame(i, total, image=None):
    """A client's UPDATE_PROGRESS for shoot "s": `i` of `total` processed."""
    payload = {"shootId": "s", "status": "processing", "processedCount": i,
               "totalCount": total, "provider": "p"}
    if image:
        payload["currentImage"] = image
    return frame(0x1, json.dumps({"type": "UPDATE_PROGRESS", "payload": payload}).encode())


class client:
    def __init__(self, port, device, early=b"", user="conf"):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.settimeout(patience)
        self.s.sendall(upgrade_request(f"{user}:{device}") + early)
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def more(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def next_frame(self):
        """(opcode, payload) of the server's next frame; server frames are unmasked."""
        while True:
            whole = split_server_frame(self.buf)
            if whole:
                op, payload, self.buf = whole
                return op, payload
            self.more()

    def next_control(self):
        """The next control frame, skipping data frames (connect notices)."""
        while True:
            op, payload = self.next_frame()
            if op & 0x8:
                return op, payload

    def next_message(self):
        """The next data frame, skipping the server's pings and connect notices."""
        while True:
            op, payload = self.next_frame()
            if op == 0x8:
                raise AssertionError(f"closed: {close_of(payload)}")
            if op == 0x1:
                msg = json.loads(payload)
                if msg.get("type") in ("DEVICE_CONNECTED", "DEVICE_DISCONNECTED"):
                    continue
                return msg

    def next_progress(self):
        """processedCount of the next SHOOT_PROGRESS."""
        while True:
            m = self.next_message()
            if m["type"] == "SHOOT_PROGRESS":
                return m["data"]["processedCount"]

    def next_of(self, kind):
        """The next data frame of type `kind`, connect notices included."""
        while True:
            op, payload = self.next_frame()
            if op == 0x8:
                raise AssertionError(f"closed: {close_of(payload)}")
            if op == 0x1 and json.loads(payload).get("type") == kind:
                return json.loads(payload)

    def expect_close(self):
        """The server's close frame, then its FIN: (code, reason)."""
        while True:
            op, payload = self.next_frame()
            if op == 0x8:
                break
        code = close_of(payload)
        try:
            while True:
                self.more()
        except EOFError:
            pass
        except ConnectionResetError:
            raise AssertionError("reset instead of FIN after the close frame")
        return code

    def send(self, data):
        self.s.sendall(data)


def close_of(payload):
    if len(payload) < 2:
        return (None, "")
    return (struct.unpack("!H", payload[:2])[0], payload[2:].decode())


patience = 30 * SCALE


def server_env():
    """The environment, with AddressSanitizer's quarantine off: freed memory
    it holds back would count as growth in the flood cases."""
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                 "quarantine_size_mb=0"]))
    return env


def main():
    # One io thread, a strand per socket, and the sessions on CAF's threads.
    for io_threads, actors_on_io in ((1, "on"), (2, "on"), (1, "off")):
        with running_server(sys.argv[1], "--log-level", "warn", "--max-frame-bytes", "100000",
                            "--io-threads", str(io_threads), "--actors-on-io", actors_on_io,
                            env=server_env()) as (server, port):
            cases(port, server.pid)
            assert server.poll() is None, "the server died"
            print(f"ok: all cases with {io_threads} io thread(s), actors on io {actors_on_io}")
    with running_server(sys.argv[1], "--log-level", "warn", "--handshake-timeout", "3",
                        "--max-queued-bytes", str(64 << 20), env=server_env()) as (server, port):
        check("a peer that sent its FIN but never reads what it is owed is closed on in time",
              lambda: fin_without_reading(port, server.pid))


def metric(port, name):
    """A series' value in the server's /metrics (no label)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} is not in /metrics")


def descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def fin_without_reading(port, pid):
    """Device a of a user never reads, with a small receive buffer, while
    device b's updates fan out to it, until the server holds frames for it
    that the kernel does not take; then a sends its FIN. The server ends the
    socket then, but what it owes a is still unsent: its handshake timeout
    (3 s here: time enough for this test to see the socket still held)
    must close the socket, not a's reading, which never comes."""
    a = socket.socket()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    a.settimeout(patience)
    a.connect(("127.0.0.1", port))
    a.sendall(upgrade_request("fin:a"))
    head = b""
    while b"\r\n\r\n" not in head:
        head += a.recv(1)  # the reply only: nothing behind it is read
    assert head.startswith(b"HTTP/1.1 101"), head
    b = client(port, "b", user="fin")
    image = "IMG_" + "x" * 8000 + ".CR3"  # 8 MB in all: more than the kernel holds
    for i in range(1000):
        b.send(update_frame(i, 1000, image))
    for i in range(1000):  # b reads its own copies: the server has sent a's too
        assert b.next_progress() == i
    held = descriptors(pid)
    waiting = metric(port, "kullsync_output_queued_bytes")
    assert waiting > 0, f"the frames a does not take are counted as queued ({waiting})"
    a.shutdown(socket.SHUT_WR)
    # b hears a leave once the server has ended a's socket: by then a socket
    # with nothing left unsent would be closed already.
    b.next_of("DEVICE_DISCONNECTED")
    assert descriptors(pid) == held, \
        "a's socket closed at once: nothing was left unsent, so the case was not reached"
    deadline = time.monotonic() + 8 * SCALE
    while descriptors(pid) == held:
        assert time.monotonic() < deadline, \
            "the server still holds a socket whose peer sent its FIN and reads nothing"
        time.sleep(0.05)
    assert descriptors(pid) == held - 1
    assert metric(port, "kullsync_output_queued_bytes") == 0, "a's queue left the count"
    a.close()


def check(name, f):
    f()
    print(f"ok: {name}")


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss(pid):
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS


def cases(port, pid):
    dev = iter(range(1000))

    def fresh(early=b""):
        return client(port, f"d{next(dev)}", early)

    def ping_payload():
        c = fresh()
        c.send(frame(0x9, b"are you there"))
        op, payload = c.next_control()
        assert (op, payload) == (0xA, b"are you there"), (op, payload)
    check("a ping is answered with a pong carrying its payload", ping_payload)

    def fragments():
        c = fresh()
        parts = [APP_PING[:5], APP_PING[5:20], APP_PING[20:]]
        c.send(frame(0x1, parts[0], fin=False))
        c.send(frame(0x9, b"between"))
        c.send(frame(0x0, parts[1], fin=False) + frame(0x0, parts[2]))
        op, payload = c.next_control()
        assert (op, payload) == (0xA, b"between"), (op, payload)
        assert c.next_message()["type"] == "PONG"
    check("fragments are joined, with a ping between them", fragments)

    def binary():
        c = fresh()
        c.send(frame(0x2, APP_PING))
        assert c.next_message()["type"] == "PONG"
    check("a binary frame is read as text", binary)

    def split():
        c = fresh()
        data = frame(0x1, APP_PING)
        for i in range(len(data)):
            c.send(data[i:i + 1])
            time.sleep(0.002)
        assert c.next_message()["type"] == "PONG"
    check("a frame sent a byte at a time arrives", split)

    def many_in_one_send():
        c = fresh()
        c.send(b"".join(frame(0x1, APP_PING) for _ in range(50)))
        for _ in range(50):
            assert c.next_message()["type"] == "PONG"
    check("50 frames in one send are each answered", many_in_one_send)

    def early():
        c = fresh(early=frame(0x1, APP_PING))
        assert c.next_message()["type"] == "PONG"
    check("a frame sent with the upgrade request arrives", early)

    def long_frames():
        c = fresh()
        for pad in (200, 70000):  # 16-bit and 64-bit lengths
            body = json.dumps({"type": "PING", "payload": {"timestamp": 2, "pad": "x" * pad}})
            c.send(frame(0x1, body.encode()))
            assert c.next_message()["type"] == "PONG"
    check("frames with 16-bit and 64-bit lengths arrive", long_frames)

    def close_echo():
        c = fresh()
        c.send(frame(0x8, struct.pack("!H", 1000) + b"bye"))
        code, _ = c.expect_close()
        assert code == 1000, code
    check("a close frame is echoed, then FIN", close_echo)

    def burst_then_read():
        # A device reading nothing while its own burst comes back (5.6 MB,
        # more than the kernel's buffers hold) gets every frame, in order,
        # once it reads again: none is left behind waiting for room.
        c = client(port, "d", user=f"burst{next(dev)}")
        image = "IMG_" + "x" * 8000 + ".CR3"
        for i in range(700):
            c.send(update_frame(i, 700, image))
        for i in range(700):
            got = c.next_progress()
            assert got == i, (i, got)
    check("a device that read nothing during a burst gets all of it once it reads", burst_then_read)

    def last_message_then_close():
        # A client's last message and its close frame in one send (as
        # `ws.send(m); ws.close()` often arrive): the message still counts.
        user = f"last{next(dev)}"
        b = client(port, "b", user=user)
        a = client(port, "a", user=user)
        a.send(update_frame(7, 10) + frame(0x8, struct.pack("!H", 1000)))
        a.expect_close()
        got = b.next_progress()
        assert got == 7, got
    check("a message sent with the close frame behind it is not lost", last_message_then_close)

    def closed_at_once():
        # RFC 6455 5.5.1: after both close frames the server closes the TCP
        # connection at once, not waiting for the client's FIN: what the
        # client sends after it meets a closed socket (a reset).
        c = fresh()
        c.send(frame(0x8, struct.pack("!H", 1000)))
        c.expect_close()
        # The FIN that ended expect_close() came with the close: the first
        # send meets a reset at once. Well under the server's 10 s handshake
        # timeout, after which a server that waited for our FIN would close too.
        deadline = time.monotonic() + min(2 * SCALE, 4)
        while time.monotonic() < deadline:
            try:
                c.s.sendall(b"x")
            except OSError:
                return
            time.sleep(0.05)
        raise AssertionError("the server still reads its socket after the close handshake")
    check("after the close handshake the server's socket is closed at once", closed_at_once)

    def empty_close():
        c = fresh()
        c.send(frame(0x8, b""))
        code, _ = c.expect_close()
        assert code is None, code
    check("an empty close frame is answered with an empty one", empty_close)

    def ping_flood():
        # The server reads on (it drops the pongs the client leaves unread,
        # RFC 6455 5.5.3), so all 40 MB go through; how fast depends on the
        # CPU the server gets, so each 1.3 MB send may take up to `patience`.
        c = fresh()
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        c.s.settimeout(patience)
        ping = frame(0x9, b"p" * 125)
        before = rss_kib(pid)
        reset_peak_rss(pid)
        for i in range(30):  # 40 MB of pings; their pongs are never read
            try:
                c.send(ping * 10000)
            except socket.timeout:
                raise AssertionError(f"the server stopped reading after {i * 1.3:.0f} MB")
        grown = rss_kib(pid, "VmHWM") - before
        assert grown < 8 * 1024, f"the server grew by {grown} KiB at its peak"
        c.s.close()
    check("a client that floods pings and never reads does not grow the server", ping_flood)

    def small_frame_flood():
        c = fresh()
        junk = frame(0x1, b"x") * 100000  # the session ignores junk
        before = rss_kib(pid)
        reset_peak_rss(pid)
        for _ in range(10):  # a million frames
            c.send(junk)
        c.send(frame(0x1, APP_PING))
        c.s.settimeout(4 * patience)  # the PONG comes after the million
        assert c.next_message()["type"] == "PONG"
        grown = rss_kib(pid, "VmHWM") - before
        assert grown < 16 * 1024, f"the server grew by {grown} KiB at its peak"
    check("a flood of small frames is read no faster than it is handled", small_frame_flood)

    violations = [
        ("an unmasked frame", frame(0x1, APP_PING, mask=False), 1002),
        ("a reserved bit", frame(0x1, APP_PING, rsv=0x40), 1002),
        ("an unknown opcode", frame(0x3, b"x"), 1002),
        ("a continuation without a message", frame(0x0, b"x"), 1002),
        ("a data frame inside a fragmented message",
         frame(0x1, b"{", fin=False) + frame(0x1, b"}"), 1002),
        ("a long ping", frame(0x9, b"p" * 126), 1002),
        ("a fragmented ping", frame(0x9, b"p", fin=False), 1002),
        ("a non-minimal length",
         bytes([0x81, 0x80 | 126]) + struct.pack("!H", 5) + os.urandom(4) + b"xxxxx", 1002),
        ("a close code 1005", frame(0x8, struct.pack("!H", 1005)), 1002),
        ("a close code 999", frame(0x8, struct.pack("!H", 999)), 1002),
        ("a one-byte close", frame(0x8, b"\x03"), 1002),
        ("invalid UTF-8 text", frame(0x1, b'{"type":"PING","x":"\xc3\x28"}'), 1007),
        ("invalid UTF-8 across fragments",
         frame(0x1, b'"\xe2\x82', fin=False) + frame(0x0, b'\xff"'), 1007),
        ("invalid UTF-8 in a close reason",
         frame(0x8, struct.pack("!H", 1000) + b"\xff"), 1007),
        ("a frame over the limit (header only)",
         bytes([0x81, 0x80 | 127]) + struct.pack("!Q", 200000) + os.urandom(4), 1009),
        ("a fragmented message over the limit",
         frame(0x1, b"x" * 60000, fin=False) + frame(0x0, b"x" * 60000), 1009),
    ]
    for name, data, want in violations:
        def violation():
            c = fresh()
            c.send(data)
            code, _ = c.expect_close()
            assert code == want, f"{name}: closed with {code}, expected {want}"
        check(f"{name} fails the connection with {want}", violation)

    def still_serving():
        c = fresh()
        c.send(frame(0x1, APP_PING))
        assert c.next_message()["type"] == "PONG"
    check("the server still serves a new client", still_serving)


if __name__ == "__main__":
    main()
