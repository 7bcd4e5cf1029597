"""A node reads the revocations in force from Redis when its subscriber
confirms their channel. A read that fails (Redis still LOADING its data
after a restart; here the key of another type, which fails the same read
at will) must keep the node not ready and be tried again, or the node
would take a revoked token for as long as its subscriber stays up. When
Redis restarts empty, a running node stores the revocations it holds again
(a node started after it would take the revoked token otherwise).

    revocations_read.py <kullsync-server binary>
"""
import asyncio
import json
import sys
import tempfile
import time

import jwt
import websockets

from cluster_common import Node, Redis, check, finish, redis_command, stop_all, testkit, until

BINARY = sys.argv[1]
SECRET = "revocations-read-test-secret-0123456789abcdef"


async def first_answer(node, token):
    """The first frame's type, or the close code."""
    try:
        async with websockets.connect(f"ws://{node.addr}/ws?token={token}",
                                      subprotocols=["kull.v2"], ping_interval=None) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 5))["type"]
    except websockets.ConnectionClosed as e:
        return e.code


async def main():
    work = tempfile.mkdtemp()
    with open(f"{work}/secret", "w") as f:
        f.write(SECRET + "\n")
    now = int(time.time())
    token = jwt.encode({"sub": "victim", "device": "laptop", "iat": now - 60, "exp": now + 600},
                       SECRET, algorithm="HS256")
    r = Redis(work)
    r.start()
    redis_command(r.port, "SET", "ks:revoked:z", "not a sorted set")
    log = open(f"{work}/n.err", "w+")
    n = Node(BINARY, "n", f"redis://127.0.0.1:{r.port}", stderr=log, log_level="info",
             extra=("--auth", "jwt", "--jwt-secret-file", f"{work}/secret"))

    later = []

    def logged(text):
        log.seek(0)
        return log.read().count(text)

    try:
        check(await until(lambda: logged("the revoked tokens could not be read") >= 2, 10),
              "the failed read is tried again")
        check(not n.ready(), "not ready while the revocations are unknown")
        got = await first_answer(n, token)
        check(got == 1013, f"a socket reaching it meanwhile is not started: {got}")

        # The operator repairs the key and revokes the victim's tokens.
        redis_command(r.port, "DEL", "ks:revoked:z")
        redis_command(r.port, "ZADD", "ks:revoked:z", (now + 3600) * 1000,
                      f"{now * 1000} victim")
        check(await until(n.ready, 10), "ready once the revocations were read")
        check(logged("1 revocations in force") == 1, "the revocation is in force")
        got = await first_answer(n, token)
        check(got == 4002, f"the revoked token is refused: {got}")
        check(logged("device laptop of user victim: rejected socket: Token revoked") == 1,
              "the log names whose revoked token was refused")

        # Redis restarts empty: the node stores what it holds again, so a
        # node started after it refuses the token too.
        r.kill()
        r.start()
        check(await until(lambda: logged("more this node holds were missing") == 1, 15),
              "the node says Redis lost a revocation it holds")
        check(await until(lambda: redis_command(r.port, "ZSCORE", "ks:revoked:z",
                                                f"{now * 1000} victim") is not None, 5),
              "and stored it again")
        m = Node(BINARY, "m", f"redis://127.0.0.1:{r.port}",
                 extra=("--auth", "jwt", "--jwt-secret-file", f"{work}/secret"))
        later.append(m)
        check(await until(m.ready, 10), "a node started after it is ready")
        got = await first_answer(m, token)
        check(got == 4002, f"and refuses the revoked token: {got}")

        # Redis lost: a revocation cannot be stored, and the operator is told
        # so (nothing revoked), with why.
        r.kill()
        check(await until(lambda: not m.ready(), 10), "Redis lost: the node is not ready")
        status, body = testkit.call(m.addr, "POST", "/api/sync/users/other/revoke", {})
        err = body.get("error", "")
        check(status == 503 and err.startswith("revoke failed, nothing done")
              and "not connected" in err, f"a revoke meanwhile: 503, why ({status} {body})")
    finally:
        stop_all((n, *later), (r,))
    finish()


asyncio.run(main())
