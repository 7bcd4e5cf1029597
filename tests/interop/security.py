"""kullsync-server's security from outside, as a third-party client sees it:
tokens signed by PyJWT (HS256, RS256, ES256) and every refusal's close code,
in-band refresh and expiry, the admin feed, API keys on the HTTP triggers,
rate limits, per-address caps, ids that are not valid UTF-8, bounded state,
TLS (wss:// and https:// on one port; a wss:// device that stops reading
is let go in time).
Python's `websockets` is a strict client: a frame with invalid UTF-8 fails
its connection, as Node's `ws` does.

    security.py <kullsync-server binary>
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import jwt
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from testkit import SCALE, check, finish, upgrade_request

BINARY = sys.argv[1]
WORK = tempfile.mkdtemp()
SECRET = os.urandom(24).hex()  # 48 bytes
API_KEY = "k-" + os.urandom(16).hex()


def write(name, data):
    path = os.path.join(WORK, name)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path


def pems(key):
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return priv, pub


RSA_PRIV, RSA_PUB = pems(rsa.generate_private_key(public_exponent=65537, key_size=2048))
EC_PRIV, EC_PUB = pems(ec.generate_private_key(ec.SECP256R1()))


class Server:
    def __init__(self, *args):
        self.proc = subprocess.Popen([BINARY, "--listen", "127.0.0.1:0", "--log-level", "warn",
                                      *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        if "listening" not in line:
            raise SystemExit("server did not start: " + self.proc.stderr.read().decode())
        self.addr = json.loads(line)["listening"]

    def url(self, query):
        return f"ws://{self.addr}/ws{query}"

    def http(self, method, path, body=None, headers=None):
        req = urllib.request.Request(f"http://{self.addr}/api/sync{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        return self.proc.stderr.read().decode()


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_hs256(key, claims):
    """HS256 "signed" with `key` by hand (PyJWT refuses to use a public key
    as an HMAC secret, which is the point of the attack)."""
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def token(sub="u1", alg="HS256", key=None, ttl=3600, **claims):
    body = {"sub": sub, "exp": int(time.time()) + ttl, **claims}
    if key is None:
        key = SECRET if alg == "HS256" else RSA_PRIV
    return jwt.encode(body, key, algorithm=alg)


async def open_v2(url):
    ws = await websockets.connect(url, subprotocols=["kull.v2"], max_size=None)
    return ws


async def until_closed(ws, timeout=5):
    """Reads until the server closes `ws` (each frame within `timeout`): its code."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed:
        pass
    return ws.close_code


async def closed_with(url, v2=True):
    """Connects (the upgrade completes for refusals too) and returns the close code."""
    ws = await websockets.connect(url, subprotocols=["kull.v2"] if v2 else None)
    await until_closed(ws)
    return ws.close_code, ws.close_reason


async def first(ws, type_, timeout=5):
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if m["type"] == type_:
            return m


async def tokens_and_refusals(s):
    code, reason = await closed_with(s.url(""))
    check(code == 4001, f"no token: 4001 ({code} {reason})")
    for what, tok, want in [
        ("malformed", "u1:d1", 4002),
        ("bad signature", token()[:-4] + "AAAA", 4002),
        ("alg none", jwt.encode({"sub": "u1", "exp": int(time.time()) + 60}, None, algorithm="none"), 4002),
        ("HS256 signed with the public key (confusion)",
         forged_hs256(RSA_PUB, {"sub": "u1", "exp": int(time.time()) + 60, "aud": "kull-sync", "iss": "kull"}), 4002),
        ("RS256 by another key", token(alg="RS256", key=pems(rsa.generate_private_key(65537, 2048))[0]), 4002),
        ("expired", token(ttl=-10), 4003),
        ("not yet valid", token(nbf=int(time.time()) + 600), 4002),
        ("wrong audience", token(aud="someone-else"), 4002),
        ("no aud at all", jwt.encode({"sub": "u1", "exp": int(time.time()) + 60, "iss": "kull"}, SECRET), 4002),
        ("wrong issuer", token(aud="kull-sync", iss="evil"), 4002),
        ("empty sub", token(sub=""), 4002),
        ("no exp", jwt.encode({"sub": "u1", "aud": "kull-sync", "iss": "kull"}, SECRET), 4002),
        ("sub is the admin feed without admin: true", token(sub="admin", aud="kull-sync", iss="kull"), 4002),
    ]:
        code, reason = await closed_with(s.url("?token=" + tok))
        check(code == want, f"{what}: {want} ({code} {reason})")
        check(tok not in reason, f"{what}: the close reason does not quote the token")
    good = dict(aud="kull-sync", iss="kull")
    # A header asking what the verifier does not do is refused saying so,
    # not as a bad signature: another type (RFC 9068's at+jwt), or critical
    # extensions (RFC 7515 4.1.11). "jwt" in any case is JWT.
    claims = {"sub": "u1", "exp": int(time.time()) + 60, **good}
    for what, headers, needle in [("typ at+jwt", {"typ": "at+jwt"}, "typ must be JWT"),
                                  ("crit", {"crit": ["foo"], "foo": 1}, "crit")]:
        code, reason = await closed_with(s.url("?token=" + jwt.encode(claims, SECRET, headers=headers)))
        check(code == 4002 and needle in reason, f"{what}: 4002 saying why ({code} {reason})")
    ws = await open_v2(s.url("?token=" + jwt.encode(claims, SECRET, headers={"typ": "jwt"})))
    check((await first(ws, "WELCOME"))["type"] == "WELCOME", "typ jwt (lower case) accepted")
    await ws.close()
    for alg, key in [("HS256", SECRET), ("RS256", RSA_PRIV)]:
        tok = token(alg=alg, key=key, device="phone", **good)
        ws = await open_v2(s.url("?token=" + tok))
        w = await first(ws, "WELCOME")
        check(ws.subprotocol == "kull.v2" and w["data"]["deviceId"] == "phone",
              f"{alg}: WELCOME for device phone")
        check(abs(w["data"]["expiresAt"] - jwt.decode(tok, options={"verify_signature": False})["exp"] * 1000) == 0,
              f"{alg}: WELCOME.expiresAt is the token's exp in ms")
        await ws.close()
    # Authorization: Bearer works like ?token=, and ?device= names the device.
    ws = await websockets.connect(s.url("?device=laptop"), subprotocols=["kull.v2"],
                                  extra_headers={"Authorization": "Bearer " + token(**good)})
    w = await first(ws, "WELCOME")
    check(w["data"]["deviceId"] == "laptop", "Bearer header, device from ?device=")
    await ws.close()


async def es256(s):
    tok = token(alg="ES256", key=EC_PRIV, aud="kull-sync", iss="kull")
    ws = await open_v2(s.url("?token=" + tok))
    w = await first(ws, "WELCOME")
    check(w["type"] == "WELCOME", "ES256 token signed by PyJWT accepted")
    await ws.close()


async def refresh_and_expiry(s):
    good = dict(aud="kull-sync", iss="kull")
    ws = await open_v2(s.url("?token=" + token(ttl=3, **good)))
    await first(ws, "WELCOME")
    new = token(ttl=3600, **good)
    await ws.send(json.dumps({"type": "REFRESH", "payload": {"token": new}}))
    r = await first(ws, "REFRESHED")
    check(r["data"]["expiresAt"] == jwt.decode(new, options={"verify_signature": False})["exp"] * 1000,
          "REFRESH -> REFRESHED with the new expiry")
    await asyncio.sleep(4.5)  # past the first token's expiry: still open
    await ws.send(json.dumps({"type": "PING", "payload": {"timestamp": time.time()}}))
    check((await first(ws, "PONG"))["type"] == "PONG", "a refreshed socket outlives the old token")
    # A token bound to another device does not refresh this socket.
    other = await open_v2(s.url("?token=" + token(ttl=60, device="phone", **good)))
    await first(other, "WELCOME")
    await other.send(json.dumps({"type": "REFRESH", "payload": {"token": token(device="tablet", **good)}}))
    await until_closed(other)
    check(other.close_code == 4002, f"REFRESH with a token bound to another device: 4002 ({other.close_code})")
    await ws.send(json.dumps({"type": "REFRESH", "payload": {"token": token(sub="u2", **good)}}))
    await until_closed(ws)
    check(ws.close_code == 4002, f"REFRESH for another user: 4002 ({ws.close_code})")
    # An expired new token is an invalid one for REFRESH (4002), said so.
    late = await open_v2(s.url("?token=" + token(ttl=60, device="pad", **good)))
    await first(late, "WELCOME")
    await late.send(json.dumps({"type": "REFRESH", "payload": {"token": token(ttl=-10, device="pad", **good)}}))
    await until_closed(late)
    check(late.close_code == 4002 and late.close_reason == "Invalid token: the new token has expired",
          f"REFRESH with an expired token: 4002 saying so ({late.close_code} {late.close_reason})")
    # Without a usable token (and without an id): an invalid new token, 4002,
    # not a frame to ignore until the old token expires.
    for payload in ({}, {"token": 5}):
        bare = await open_v2(s.url("?token=" + token(ttl=60, device="pad", **good)))
        await first(bare, "WELCOME")
        # Whatever a PING carries, it is answered PONG.
        await bare.send(json.dumps({"type": "PING", "payload": {"timestamp": "2024-11-26T00:00:00Z"}}))
        check((await first(bare, "PONG"))["type"] == "PONG", "a PING with a text timestamp: PONG")
        await bare.send(json.dumps({"type": "REFRESH", "payload": payload}))
        await until_closed(bare)
        check(bare.close_code == 4002, f"REFRESH with payload {payload}: 4002 ({bare.close_code})")
    # Unrefreshed: closed 4003 at the expiry (the sweep runs every second).
    ws = await open_v2(s.url("?token=" + token(ttl=2, **good)))
    await first(ws, "WELCOME")
    t0 = time.time()
    await until_closed(ws, 6)
    took = time.time() - t0
    check(ws.close_code == 4003 and took < 2.5 + 2 * SCALE, f"unrefreshed token: 4003 after {took:.1f} s ({ws.close_code})")


async def admin_feed(s):
    good = dict(aud="kull-sync", iss="kull")
    admin = await open_v2(s.url("?token=" + token(sub="ops-1", admin=True, **good)))
    await first(admin, "WELCOME")
    user = await open_v2(s.url("?token=" + token(sub="u9", **good)))
    await first(user, "WELCOME")
    st, _ = s.http("POST", "/admin-session", {"sessionId": "c1", "action": "new_message"},
                   {"Authorization": "Bearer " + API_KEY})
    check(st == 200, f"admin-session published ({st})")
    m = await first(admin, "ADMIN_SESSION_UPDATE")
    check(m["data"]["sessionId"] == "c1", "an admin: true token receives the admin feed")
    try:
        await first(user, "ADMIN_SESSION_UPDATE", timeout=0.5)
        check(False, "a plain user does not receive the admin feed")
    except asyncio.TimeoutError:
        check(True, "a plain user does not receive the admin feed")
    await admin.close()
    await user.close()

    # An admin token is its `sub`'s, though its socket is on the admin feed:
    # another admin's token does not refresh it (4002), and revoking its
    # user closes it (4002) but not another admin's socket.
    async def ends(ws):
        """The close code, or None when the socket is still open after 5 s."""
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed:
            return ws.close_code
        except asyncio.TimeoutError:
            return None
    a1 = await open_v2(s.url("?token=" + token(sub="ops-1", admin=True, device="c1", **good)))
    await first(a1, "WELCOME")
    await a1.send(json.dumps({"type": "REFRESH", "payload": {
        "token": token(sub="ops-3", admin=True, device="c1", **good)}}))
    code = await ends(a1)
    check(code == 4002, f"an admin socket is not refreshed with another admin's token: 4002 ({code})")
    a1 = await open_v2(s.url("?token=" + token(sub="ops-1", admin=True, device="c1", **good)))
    a2 = await open_v2(s.url("?token=" + token(sub="ops-2", admin=True, device="c2", **good)))
    await first(a1, "WELCOME")
    await first(a2, "WELCOME")
    st, _ = s.http("POST", "/users/ops-1/revoke", {}, {"Authorization": "Bearer " + API_KEY})
    code = await ends(a1)
    await a2.send(json.dumps({"type": "PING", "payload": {"timestamp": time.time()}}))
    alive = (await first(a2, "PONG"))["type"] == "PONG"
    check(st == 200 and code == 4002 and alive,
          f"revoking an admin token's user closes its socket (4002), not another admin's "
          f"({st}, {code}, other alive {alive})")
    await a2.close()


def api_keys(s):
    body = {"userId": "u1", "shootId": "s1", "status": "processing", "processedCount": 1,
            "totalCount": 2, "provider": "p"}
    st, _ = s.http("POST", "/shoot-progress", body)
    check(st == 401, f"trigger without an API key: 401 ({st})")
    st, _ = s.http("POST", "/shoot-progress", body, {"Authorization": "Bearer nope-nope-nope-nope"})
    check(st == 401, f"trigger with a wrong key: 401 ({st})")
    st, r = s.http("POST", "/shoot-progress", body, {"Authorization": "Bearer " + API_KEY})
    check(st == 200 and r.get("seq", 0) >= 1, f"trigger with the key: 200 with seq ({st} {r})")
    st, _ = s.http("GET", "/status")
    check(st == 200, "GET status needs no key")
    st, _ = s.http("GET", "/state?token=" + token(aud="kull-sync", iss="kull"))
    check(st == 401, f"state without the API key: 401 ({st})")
    st, r = s.http("GET", "/state?token=" + token(aud="kull-sync", iss="kull"),
                   headers={"Authorization": "Bearer " + API_KEY})
    check(st == 200 and any(x["shootId"] == "s1" for x in r["shoots"]), f"state with key and user token ({st})")
    bad = dict(body, shootId="x" * 200)
    st, _ = s.http("POST", "/shoot-progress", bad, {"Authorization": "Bearer " + API_KEY})
    check(st == 400, f"a shootId over 128 bytes: 400 ({st})")
    codes = [s.http("GET", "/state?token=x", headers={"Authorization": "Bearer " + API_KEY})[0]
             for _ in range(30)]
    check(429 in codes, f"an API key over its rate: 429 ({sorted(set(codes))})")


async def client_rate_limit(s):
    ws = await open_v2(s.url("?token=" + token(sub="flood", aud="kull-sync", iss="kull")))
    await first(ws, "WELCOME")
    for i in range(8):
        await ws.send(json.dumps({"type": "UPDATE_PROGRESS", "id": f"m{i}", "payload": {
            "shootId": "s", "status": "processing", "processedCount": i, "totalCount": 9, "provider": "p"}}))
    answers = {}
    while len(answers) < 8:
        m = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if m["type"] in ("ACK", "NACK"):
            answers[m["data"]["id"]] = m
    acks = [a for a in answers.values() if a["type"] == "ACK"]
    limited = [a for a in answers.values() if a["type"] == "NACK" and a["data"]["code"] == "rate_limited"]
    check(len(acks) == 5 and len(limited) == 3, f"burst 5: 5 ACK, 3 NACK rate_limited ({len(acks)}, {len(limited)})")
    # A flood in one go: what the server refused before it closed the socket
    # is still NACKed, ahead of the close (the close does not overtake them).
    nacked = []
    try:
        for i in range(200):
            await ws.send(json.dumps({"type": "UPDATE_PROGRESS", "id": f"f{i}", "payload": {
                "shootId": "s", "status": "processing", "processedCount": 1, "totalCount": 9}}))
        while True:
            m = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if m["type"] == "NACK":
                nacked.append(m["data"]["id"])
    except websockets.ConnectionClosed:
        pass
    check(ws.close_code == 4008, f"a socket that keeps flooding: 4008 ({ws.close_code})")
    # At most 3 refusals of this second came before: at least 2 more are NACKed.
    check(len(nacked) >= 2 and all(i.startswith("f") for i in nacked),
          f"the messages refused before the 4008 were NACKed first ({nacked})")


async def address_caps(s):
    good = dict(aud="kull-sync", iss="kull")
    held = []
    for i in range(3):
        ws = await open_v2(s.url(f"?token={token(sub=f'cap{i}', **good)}"))
        await first(ws, "WELCOME")
        held.append(ws)
    code, _ = await closed_with(s.url("?token=" + token(sub="cap9", **good)))
    check(code == 1008, f"past --max-sockets-per-ip: 1008 ({code})")
    for ws in held:
        await ws.close()


async def upgrade_rate(s):
    codes = []
    for i in range(6):
        code, _ = await closed_with(s.url(""))  # refused anyway; counts as an attempt
        codes.append(code)
    check(4008 in codes, f"upgrades past the per-address rate: 4008 ({codes})")


async def invalid_utf8_ids(s):
    """The attack: a device id with invalid UTF-8 copied into the victim's frames."""
    victim = await websockets.connect(s.url("?token=victim:d1"))
    await first(victim, "DEVICE_CONNECTED")
    code, _ = await closed_with(s.url("?token=victim:evil%FF%FE"), v2=False)
    check(code == 4002, f"a device id that is not UTF-8: 4002 ({code})")
    code, _ = await closed_with(s.url("?token=victim:" + "d" * 200), v2=False)
    check(code == 4002, f"a device id over 128 bytes: 4002 ({code})")
    await victim.send(json.dumps({"type": "PING"}))
    check((await first(victim, "PONG"))["type"] == "PONG", "the victim's strict client stays connected")
    await victim.close()


def bounded_state(s):
    for i in range(50):
        st, _ = s.http("POST", "/shoot-progress", {"userId": "many", "shootId": f"s{i}",
                       "status": "processing", "processedCount": 1, "totalCount": 9, "provider": "p"})
    st, r = s.http("GET", "/state?token=many:probe")
    ids = [x["shootId"] for x in r["shoots"]]
    check(len(ids) == 10 and "s49" in ids and "s0" not in ids,
          f"--max-shoots-per-user 10 keeps the 10 updated last ({len(ids)})")


async def over_tls(s):
    import ssl
    port = s.addr.split(":")[1]
    ctx = ssl.create_default_context(cafile=os.path.join(WORK, "ca.pem"))
    with urllib.request.urlopen(f"https://localhost:{port}/api/sync/status", context=ctx,
                                timeout=5) as r:
        check(r.status == 200 and json.loads(r.read())["status"] == "ok", "https:// status")
    ws = await websockets.connect(f"wss://localhost:{port}/ws?token=tls:d1", ssl=ctx)
    m = await first(ws, "DEVICE_CONNECTED")
    check(m["deviceId"] == "d1", "wss:// socket with a certificate from a CA made here")
    await ws.close()
    try:
        await websockets.connect(f"wss://localhost:{port}/ws?token=tls:d2",
                                 ssl=ssl.create_default_context())
        check(False, "a client without the CA refuses the server")
    except ssl.SSLCertVerificationError:
        check(True, "a client without the CA refuses the server")


def descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def tls_reader_that_stops(s):
    """A wss:// device that reads nothing after its upgrade, with a small
    receive buffer, while its user's updates pile up: the server cuts it as
    a slow consumer, and the socket's TLS relay, whose write to the device
    never completes, must let go of its descriptors within the handshake
    timeout (1 s here) of the cut, not when TCP gives up."""
    import http.client
    import socket
    import ssl
    pid, port = s.proc.pid, int(s.addr.split(":")[1])
    ctx = ssl.create_default_context(cafile=os.path.join(WORK, "ca.pem"))
    before = descriptors(pid)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(10 * SCALE)
    raw.connect(("127.0.0.1", port))
    a = ctx.wrap_socket(raw, server_hostname="localhost")
    a.sendall(upgrade_request("slowtls:a"))
    head = b""
    while b"\r\n\r\n" not in head:
        head += a.recv(1)  # the reply only: nothing behind it is read
    check(head.startswith(b"HTTP/1.1 101"), "a wss:// device that will stop reading is upgraded")
    held = descriptors(pid)
    check(held == before + 3, f"a TLS socket is three descriptors ({held - before})")
    api = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10 * SCALE)
    image = "IMG_" + "x" * 8000 + ".CR3"  # 8 MB in all: more than the kernel holds
    for i in range(1000):
        api.request("POST", "/api/sync/shoot-progress", json.dumps({
            "userId": "slowtls", "shootId": "s", "status": "processing", "processedCount": i,
            "totalCount": 1000, "currentImage": image, "provider": "p"}),
            {"Content-Type": "application/json"})
        r = api.getresponse()
        r.read()
        assert r.status == 200, r.status
    api.close()
    deadline = time.monotonic() + 15 * SCALE
    while descriptors(pid) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    left = descriptors(pid) - before
    check(left == 0, f"the TLS socket of a device that stopped reading is let go in time "
                     f"({left} of its descriptors still held)")
    a.close()


async def main():
    secret_file = write("secret", SECRET + "\n")
    pub_file = write("rsa.pub", RSA_PUB)
    ec_file = write("ec.pub", EC_PUB)
    keys_file = write("keys", "# backend\n" + API_KEY + "\n")
    jwt_flags = ["--auth", "jwt", "--jwt-secret-file", secret_file, "--jwt-audience", "kull-sync",
                 "--jwt-issuer", "kull"]
    s = Server(*jwt_flags, "--jwt-public-key-file", pub_file, "--api-keys-file", keys_file,
               "--api-key-rate", "5", "--api-key-burst", "10", "--client-rate", "1",
               "--client-burst", "5")
    try:
        await tokens_and_refusals(s)
        await refresh_and_expiry(s)
        await admin_feed(s)
        api_keys(s)
        await client_rate_limit(s)
    finally:
        log = s.stop()
    check(SECRET not in log and "eyJ" not in log, "the server's log quotes no secret and no token")
    s = Server(*jwt_flags, "--jwt-public-key-file", ec_file, "--max-sockets-per-ip", "3")
    try:
        await es256(s)
        await address_caps(s)
    finally:
        s.stop()
    s = Server(*jwt_flags, "--upgrades-per-ip", "1", "--upgrade-burst", "3")
    try:
        await upgrade_rate(s)
    finally:
        s.stop()
    s = Server("--auth", "legacy", "--max-shoots-per-user", "10")
    try:
        await invalid_utf8_ids(s)
        bounded_state(s)
    finally:
        s.stop()
    # TLS: wss:// and https:// on one port, verified against a CA made here.
    subprocess.run(["sh", "-c", f"cd {WORK} && openssl req -x509 -newkey rsa:2048 -nodes -days 1 "
                    "-subj /CN=ca -keyout ca.key -out ca.pem && openssl req -newkey rsa:2048 -nodes "
                    "-subj /CN=localhost -keyout srv.key -out srv.csr && printf "
                    "'subjectAltName=DNS:localhost\\n' > ext && openssl x509 -req -in srv.csr "
                    "-CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext -out srv.pem"],
                   check=True, capture_output=True)
    s = Server("--auth", "legacy", "--tls-cert", os.path.join(WORK, "srv.pem"),
               "--tls-key", os.path.join(WORK, "srv.key"))
    try:
        await over_tls(s)
    finally:
        s.stop()
    s = Server("--auth", "legacy", "--limits", "off", "--tls-cert", os.path.join(WORK, "srv.pem"),
               "--tls-key", os.path.join(WORK, "srv.key"), "--handshake-timeout", "1",
               "--max-queued-bytes", str(1 << 20))
    try:
        tls_reader_that_stops(s)
    finally:
        s.stop()
    # Refusing to start: jwt without a key, a bad key file, a bad API key file.
    for args, says in [([], "--jwt-secret-file"),
                       (["--jwt-public-key-file", secret_file], "--jwt-public-key-file"),
                       (["--jwt-secret-file", secret_file, "--api-keys-file", write("k", "short\n")],
                        "--api-keys-file")]:
        p = subprocess.run([BINARY, "--listen", "127.0.0.1:0", *args], capture_output=True,
                           timeout=10)
        err = p.stderr.decode()
        check(p.returncode == 2 and says in err, f"refuses to start, naming {says}: {err.strip()}")


asyncio.run(main())
finish()
