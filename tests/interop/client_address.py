"""Who the client is behind a balancer, over raw sockets from distinct
loopback addresses (127.0.0.2, 127.0.0.3, ...), against kullsync-server with
--trusted-proxies 127.0.0.1 and a cap of 2 sockets per address:
  - --proxy-protocol on: a PROXY header (v1 text, v2 binary) from the trusted
    proxy names the client: the cap applies per client; it wins over an
    X-Forwarded-For behind it; a LOCAL header (a balancer's health check) is
    served; a trusted peer without a header, an untrusted peer with one, and
    a malformed one are closed before HTTP, logged and counted; TLS begins
    after the header;
  - --proxy-protocol off: the trusted proxy's last X-Forwarded-For entry (or
    X-Real-IP) names the client; one that is not an address is a 400;
  - anybody else's X-Forwarded-For is ignored: a forged header never spreads
    one client over many addresses.

    client_address.py <kullsync-server binary>
"""
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

from testkit import check, finish, split_server_frame, upgrade_request


BINARY = sys.argv[1]


class Server:
    def __init__(self, *args):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [BINARY, "--listen", "127.0.0.1:0", "--auth", "legacy", "--trusted-proxies", "127.0.0.1",
             "--max-sockets-per-ip", "2", *args],
            stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline().decode()
        if not line:
            self.log.seek(0)
            raise SystemExit("the server did not start: " + self.log.read().decode())
        self.port = int(line.split('"')[3].split(":")[1])

    def stderr(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def connect(port, source="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def proxy_v1(client):
    return f"PROXY TCP4 {client} 127.0.0.1 40000 5000\r\n".encode()


def proxy_v2(client, local=False):
    addresses = socket.inet_aton(client) + socket.inet_aton("127.0.0.1") + struct.pack(">HH", 40000, 5000)
    tlv = b"\x04\x00\x02ok"  # PP2_TYPE_NOOP: a proxy may add TLVs
    body = addresses + tlv
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20 if local else 0x21, 0x11])
            + struct.pack(">H", len(body)) + body)


def answer(s):
    """The HTTP status line's code, or None when the server closed without one."""
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            c = s.recv(4096)
            if not c:
                return None, buf
            buf += c
    except (socket.timeout, ConnectionResetError):
        return None, buf
    return int(buf.split(b" ")[1]), buf


def close_code(s, timeout=3, buf=b""):
    """Reads frames (from `buf`, what came with the handshake's answer, on)
    until a close frame: its code (None: the socket stayed open)."""
    s.settimeout(timeout)
    try:
        while True:
            while (whole := split_server_frame(buf)):
                op, payload, buf = whole
                if op == 8:
                    return struct.unpack(">H", payload[:2])[0]
            c = s.recv(65536)
            if not c:
                return "eof"
            buf += c
    except socket.timeout:
        return None


def upgrade(port, token, preface=b"", headers="", source="127.0.0.1"):
    """An upgrade; (status, socket, the bytes that came after the answer)."""
    s = connect(port, source)
    req = upgrade_request(token)
    if headers:
        req = req.replace(b"\r\n\r\n", ("\r\n" + headers + "\r\n\r\n").encode(), 1)
    s.sendall(preface + req)
    status, buf = answer(s)
    return status, s, buf.split(b"\r\n\r\n", 1)[1] if status else b""


def caps(port, who, make):
    """Opens three sockets with make(i) -> (preface, headers, source): the
    close codes of the third (refused, 1008) and of the first two (open)."""
    socks, codes = [], []
    for i in range(3):
        preface, headers, source = make(i)
        status, s, rest = upgrade(port, f"{who}:d{i}", preface, headers, source)
        socks.append((s, rest))
        codes.append(status)
    closed = [close_code(s, 1 if i < 2 else 3, rest) for i, (s, rest) in enumerate(socks)]
    socks = [s for s, _ in socks]
    for s in socks:
        s.close()
    return codes, closed


def metric(port, name):
    s = connect(port, "127.0.0.50")  # not the trusted proxy: no header needed
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        data += c
    for line in data.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def get(port, path, preface=b"", headers="", source="127.0.0.1"):
    s = connect(port, source)
    s.sendall(preface + f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n".encode())
    status, buf = answer(s)
    s.close()
    return status, buf


def proxy_protocol_on():
    srv = Server("--proxy-protocol", "on")
    p = srv.port
    try:
        codes, closed = caps(p, "v1", lambda i: (proxy_v1("127.0.0.2"), "", "127.0.0.1"))
        check(codes == [101, 101, 101] and closed[:2] == [None, None] and closed[2] == 1008,
              f"PROXY v1: the third socket of client 127.0.0.2 is refused (1008): {codes} {closed}")
        # Clients of their own: the v1 case's sockets of 127.0.0.2 may not be counted out yet.
        codes, closed = caps(p, "v2", lambda i: (proxy_v2("127.0.0.12" if i < 2 else "127.0.0.13"), "", "127.0.0.1"))
        check(codes == [101, 101, 101] and closed == [None, None, None],
              f"PROXY v2: two clients through one proxy each have their own cap: {closed}")
        codes, closed = caps(p, "pxff", lambda i: (proxy_v2("127.0.0.4"), f"X-Forwarded-For: 10.9.9.{i}", "127.0.0.1"))
        check(closed[2] == 1008,
              f"a PROXY header wins over the X-Forwarded-For behind it: {closed}")
        check("127.0.0.4: socket refused" in srv.stderr(), "the refusal names the client, not the proxy")
        check("connected from 127.0.0.2" in srv.stderr(), "so does a device's connect")
        status, _ = get(p, "/readyz", proxy_v2("127.0.0.1", local=True))
        check(status == 200, f"a LOCAL header (the balancer's health check) is served: {status}")

        before = metric(p, "kullsync_proxy_refusals_total") or 0
        for what, preface, source in [
            ("a trusted proxy's connection without a PROXY header", b"", "127.0.0.1"),
            ("a PROXY header from a peer not in --trusted-proxies", proxy_v1("127.0.0.9"), "127.0.0.5"),
            ("a malformed PROXY header", b"PROXY TCP4 127.0.0.2 nonsense 1 2\r\n", "127.0.0.1"),
            ("a PROXY v2 header of another version", b"\r\n\r\n\x00\r\nQUIT\n\x11\x11\x00\x00", "127.0.0.1"),
        ]:
            status, buf = get(p, "/healthz", preface, source=source)
            check(status is None and buf == b"", f"{what}: closed before HTTP")
        after = metric(p, "kullsync_proxy_refusals_total")
        check(after == before + 4, f"each is counted (kullsync_proxy_refusals_total {before} -> {after})")
        check("no PROXY header from a trusted proxy" in srv.stderr(), "and logged with why")
        status, _ = get(p, "/healthz", source="127.0.0.5")
        check(status == 200, "anybody else is served without a header")
        codes, closed = caps(p, "forged", lambda i: (b"", f"X-Forwarded-For: 10.0.0.{i}", "127.0.0.5"))
        check(closed[2] == 1008, f"an untrusted peer's X-Forwarded-For is ignored: the cap is its own: {closed}")
        # A header cut into pieces is read whole.
        s = connect(p)
        whole = proxy_v2("127.0.0.6") + upgrade_request("pieces:d")
        for i in range(0, 30):
            s.sendall(whole[i:i + 1])
            time.sleep(0.005)
        s.sendall(whole[30:])
        status, _ = answer(s)
        check(status == 101, f"a header that arrives byte by byte: {status}")
        s.close()
    finally:
        srv.stop()


def unfinished_header():
    """A PROXY header that never completes: closed at --handshake-timeout,
    counted and logged."""
    srv = Server("--proxy-protocol", "on", "--handshake-timeout", "1")
    try:
        before = metric(srv.port, "kullsync_proxy_refusals_total") or 0
        s = connect(srv.port)
        s.sendall(b"PROXY TCP4 127.0.0.2")
        s.settimeout(5)
        started = time.time()
        try:
            gone = s.recv(1) == b""
        except (socket.timeout, ConnectionResetError):
            gone = False
        took = time.time() - started
        check(gone and took < 3, f"an unfinished PROXY header is closed at the timeout ({took:.1f} s)")
        after = metric(srv.port, "kullsync_proxy_refusals_total")
        check(after == before + 1, f"counted ({before} -> {after})")
        check("no complete PROXY header" in srv.stderr(), "and logged")
        s.close()
    finally:
        srv.stop()


def forwarded_for():
    srv = Server()
    p = srv.port
    try:
        codes, closed = caps(p, "xff", lambda i: (b"", f"X-Forwarded-For: 203.0.113.{i}, 127.0.0.7", "127.0.0.1"))
        check(codes == [101, 101, 101] and closed[2] == 1008 and closed[:2] == [None, None],
              f"X-Forwarded-For's last entry is the client: its third socket is refused: {closed}")
        check("127.0.0.7: socket refused" in srv.stderr(), "the refusal names the client")
        codes, closed = caps(p, "xff2", lambda i: (b"", f"X-Forwarded-For: 127.0.0.{8 + i}", "127.0.0.1"))
        check(closed == [None, None, None], f"three clients through one proxy: none refused: {closed}")
        codes, closed = caps(p, "realip", lambda i: (b"", "X-Real-IP: 127.0.0.20", "127.0.0.1"))
        check(closed[2] == 1008, f"X-Real-IP names the client without X-Forwarded-For: {closed}")
        status, buf = get(p, "/healthz", headers="X-Forwarded-For: 127.0.0.2, unknown\r\n")
        check(status == 400 and b"X-Forwarded-For" in buf,
              f"a trusted proxy's X-Forwarded-For that does not end with an address: 400 ({status})")
        codes, closed = caps(p, "forged2", lambda i: (b"", f"X-Forwarded-For: 10.1.1.{i}", "127.0.0.21"))
        check(closed[2] == 1008, f"an untrusted peer's X-Forwarded-For is ignored: {closed}")
        status, buf = get(p, "/healthz", proxy_v1("127.0.0.2"))
        check(status == 400, f"with --proxy-protocol off a PROXY header is not HTTP: 400 ({status})")
    finally:
        srv.stop()


def tls_after_proxy_header():
    work = tempfile.mkdtemp()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", f"{work}/k.pem", "-out", f"{work}/c.pem"], check=True, capture_output=True)
    srv = Server("--proxy-protocol", "on", "--tls-cert", f"{work}/c.pem", "--tls-key", f"{work}/k.pem")
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        socks, closed = [], []
        for i in range(3):
            raw = connect(srv.port)
            raw.sendall(proxy_v2("127.0.0.30"))
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            s.sendall(upgrade_request(f"tls:d{i}"))
            status, buf = answer(s)
            check(status == 101, f"wss:// behind a PROXY header, socket {i}: {status}")
            socks.append((s, buf.split(b"\r\n\r\n", 1)[1] if status else b""))
        closed = [close_code(s, 1 if i < 2 else 3, rest) for i, (s, rest) in enumerate(socks)]
        check(closed[:2] == [None, None] and closed[2] == 1008,
              f"TLS after the header: the cap applies to the client it names: {closed}")
    finally:
        srv.stop()


def bad_flags():
    for args, want in [(["--trusted-proxies", "10.0.0.0/40"], "is not an IP address or network"),
                       (["--proxy-protocol", "on", "--trusted-proxies", ""], "needs --trusted-proxies")]:
        r = subprocess.run([BINARY, "--listen", "127.0.0.1:0", "--auth", "legacy", *args],
                           capture_output=True, text=True, timeout=20)
        check(r.returncode == 2 and want in r.stderr, f"{' '.join(args)}: exit 2, '{want}' ({r.returncode}: {r.stderr.strip()})")


proxy_protocol_on()
unfinished_header()
forwarded_for()
tls_after_proxy_header()
bad_flags()
finish()
