"""A user's stream goes on in a new epoch under live sockets (Redis emptied
by FLUSHALL, or a new mastership read by a probe): the first publish of the
new epoch reaches the nodes as a message of an epoch they do not know. v2
devices resume (4009, SNAPSHOT); v1 devices know no positions and are not
closed, so every message of the new epoch must still reach them, in order
(the node reads back what the new epoch holds before its head), also when
the new epoch is empty at first, and after a new mastership, whose epoch
numbers on from the old top.

    new_epoch_v1.py <kullsync-server binary>
"""
import asyncio
import json
import sys
import tempfile

import websockets

from cluster_common import Device, Node, Redis, check, finish, redis_command, stop_all, until

BINARY = sys.argv[1]


class V1Device:
    """A deployed (v1) app: no subprotocol, keeps every balance it hears."""

    def __init__(self, user, device):
        self.user, self.device = user, device
        self.balances, self.closes = [], []

    async def connect(self, node):
        self.ws = await websockets.connect(f"ws://{node.addr}/ws?token={self.user}:{self.device}",
                                           ping_interval=None)
        self.task = asyncio.ensure_future(self.read())

    async def read(self):
        try:
            async for text in self.ws:
                m = json.loads(text)
                if m["type"] == "CREDIT_UPDATE":
                    self.balances.append(m["data"]["newBalance"])
        except websockets.ConnectionClosed as e:
            self.closes.append(e.code)

    async def close(self):
        await self.ws.close()
        await self.task


async def main():
    work = tempfile.mkdtemp()
    r = Redis(work)
    r.start()
    url = f"redis://127.0.0.1:{r.port}"
    logs = [open(f"{work}/{name}.err", "w+") for name in ("a", "b")]
    a, b = Node(BINARY, "a", url, stderr=logs[0]), Node(BINARY, "b", url, stderr=logs[1])
    replica = Redis(work)

    def logged(text):
        found = 0
        for log in logs:
            log.seek(0)
            found += log.read().count(text)
        return found
    try:
        check(await until(lambda: a.ready() and b.ready(), 10), "both nodes ready")
        on_a, on_b = V1Device("u1", "mac"), V1Device("u1", "pc")
        ipad = Device("u1", "ipad")
        await on_a.connect(a)
        await on_b.connect(b)
        await ipad.connect(b)
        check(await until(lambda: ipad.epoch, 10), "the v2 device joined")
        check(a.post_credits("u1", 1)[0] == 200, "balance 1 published")
        check(await until(lambda: on_a.balances == [1] and on_b.balances == [1], 5),
              "both v1 devices have balance 1")

        redis_command(r.port, "FLUSHALL")
        for balance in (2, 3, 4):  # back to back: the nodes reset meanwhile
            status, seq = a.post_credits("u1", balance)
            check(status == 200, f"balance {balance} published in the new epoch: seq {seq}")
        for d in (on_a, on_b):
            check(await until(lambda: d.balances == [1, 2, 3, 4], 5),
                  f"v1 {d.device} has every balance in order: {d.balances}")
            check(not d.closes, f"v1 {d.device} kept its socket: {d.closes}")
        check(await until(lambda: 4009 in ipad.closes, 5), f"the v2 device resumes: {ipad.closes}")

        check(b.post_credits("u1", 5)[0] == 200, "balance 5 published through b")
        for d in (on_a, on_b):
            check(await until(lambda: d.balances[-1:] == [5], 5),
                  f"v1 {d.device} goes on: {d.balances}")
        # Emptied while the user is idle: the nodes' position checks find the
        # new epoch empty (nothing to read back), and the v1 devices go on.
        redis_command(r.port, "FLUSHALL")
        check(await until(lambda: logged("the stream's epoch changed") >= 4, 10),
              "both nodes' position checks found the new epoch")
        check(a.post_credits("u1", 6)[0] == 200, "balance 6 published")
        for d in (on_a, on_b):
            check(await until(lambda: d.balances[-1:] == [6], 5),
                  f"v1 {d.device} gets what follows an empty new epoch: {d.balances}")

        # A new mastership (the first replica attaching changes the master's
        # replication id): the new epoch numbers on from the old top.
        replica.start("--replicaof", "127.0.0.1", str(r.port))
        check(await until(lambda: logged("its mastership changed") >= 2, 10),
              "both nodes read the new mastership")
        for balance in (7, 8):
            check(a.post_credits("u1", balance)[0] == 200, f"balance {balance} published")
        for d in (on_a, on_b):
            check(await until(lambda: d.balances[-3:] == [6, 7, 8], 5),
                  f"v1 {d.device} has every balance of the new mastership: {d.balances}")
        await on_a.close()
        await on_b.close()
    finally:
        stop_all((a, b), (replica, r) if replica.proc else (r,))
    finish()


asyncio.run(main())
