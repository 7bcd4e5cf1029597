"""A node reads the revocations in force from Redis when its subscriber
confirms their channel. A read that fails (Redis still LOADING its data
after a restart; here the key of another type, which fails the same read
at will) must keep the node not ready and be tried again, or the node
would take a revoked token for as long as its subscriber stays up.

    revocations_read.py <kullsync-server binary>
"""
import asyncio
import json
import sys
import tempfile
import time

import jwt
import websockets

from cluster_common import Node, Redis, check, finish, redis_command, stop_all, until

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
    finally:
        stop_all((n,), (r,))
    finish()


asyncio.run(main())
