"""What the Python test scripts share: the check and its report, the time
scale of instrumented builds, free ports, kullsync-server started on a free
port, a JSON call to its HTTP API, and a WebSocket written by hand: the upgrade request, a client's
frame and the server's frames read back."""
import base64
import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import urllib.error
import urllib.request

# Instrumented builds run slower (scripts/sanitize sets this): every wait
# stretches by this factor.
SCALE = float(os.environ.get("KULLSYNC_TEST_TIME_SCALE", "1"))
failures = []


def check(cond, what):
    """Prints the check's outcome; a failed one is counted for finish()."""
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def finish():
    """Exits 1 when a check failed, listing them, else 0."""
    if failures:
        print(f"{len(failures)} failed:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(addr, method, path, body=None, key=None, raw=None):
    """(status, parsed JSON answer) of `method path` at HOST:PORT: `body` sent
    as JSON, or `raw` bytes as they are; `key` as a Bearer API key."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    req = urllib.request.Request(f"http://{addr}{path}", method=method, data=data,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10 * SCALE) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def ready(addr):
    """Whether the server at HOST:PORT answers GET /readyz with 200."""
    try:
        with urllib.request.urlopen(f"http://{addr}/readyz", timeout=2 * SCALE) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running_server(binary, *args, env=None, stderr=None):
    """kullsync-server on 127.0.0.1 and a free port (legacy tokens, no rate
    limits: these tests are about the socket layer); yields (process, port)."""
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--auth", "legacy", "--limits", "off", *args],
                            stdout=subprocess.PIPE, stderr=stderr, env=env)
    try:
        line = proc.stdout.readline().decode()  # {"listening":"127.0.0.1:PORT",...}
        yield proc, int(line.split('"')[3].split(":")[1])
    finally:
        proc.terminate()
        proc.wait()


def upgrade_request(token):
    """A GET /ws upgrade request for `token` (userId:deviceId)."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def client_frame(data, opcode=0x1, fin=True):
    """A client's frame (RFC 6455 5.2): `data` (text or bytes) masked with a
    random key."""
    data = data.encode() if isinstance(data, str) else data
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(data)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def split_server_frame(buf):
    """(opcode, payload, rest) for the first whole frame the server sent in
    `buf` (server frames are unmasked), or None while it is incomplete."""
    if len(buf) < 2:
        return None
    assert buf[1] & 0x80 == 0, "the server masked a frame"
    n, off = buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, off = struct.unpack(">H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, off = struct.unpack(">Q", buf[2:10])[0], 10
    if len(buf) < off + n:
        return None
    return buf[0] & 0x0F, buf[off:off + n], buf[off + n:]
