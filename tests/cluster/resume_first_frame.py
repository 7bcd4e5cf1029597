"""WELCOME is a resuming socket's first frame, even when its replay is read
from Redis slowly. Node n reaches Redis through a proxy; a device resumes on
n while the proxy holds n's bytes, and sends a PING the moment its socket
opens: the PONG must come after the WELCOME and the replay (PROTOCOL.md: "The
server's first frame on a v2 socket is WELCOME"; "the missed messages follow
at once").

    resume_first_frame.py <kullsync-server binary>
"""
import asyncio
import json
import sys
import tempfile

import websockets

from cluster_common import SCALE, Device, check, finish, proxied_pair, until

BINARY = sys.argv[1]


async def main():
    with proxied_pair(BINARY, tempfile.mkdtemp()) as (proxy, n, m):
        check(await until(lambda: n.ready() and m.ready(), 10), "both nodes ready")
        mac = Device("u1", "mac")
        await mac.connect(n)
        check(await until(lambda: mac.epoch, 10), "mac joined on n")
        for balance in (1, 2, 3):
            m.post_credits("u1", balance)
        check(await until(lambda: len(mac.applied) == 3, 10), "mac has the three updates")
        epoch, top = mac.epoch, mac.seq

        proxy.hold()  # the replay's read waits in the proxy
        url = f"ws://{n.addr}/ws?token=u1:ipad&epoch={epoch}&since={top - 2}"
        opening = asyncio.ensure_future(
            websockets.connect(url, subprotocols=["kull.v2"], ping_interval=None))
        done, _ = await asyncio.wait([opening], timeout=0.5 * SCALE)
        if done:  # opened before its replay was read: answer a PING at once
            await opening.result().send(json.dumps({"type": "PING", "payload": {"timestamp": 1}}))
        proxy.release()
        ws = await opening
        if not done:
            await ws.send(json.dumps({"type": "PING", "payload": {"timestamp": 1}}))
        frames = []
        while not any(f["type"] == "PONG" for f in frames):
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), 10 * SCALE)))
        await ws.close()
        types = [f["type"] for f in frames]
        check(types[0] == "WELCOME" and frames[0]["data"]["recovered"],
              f"WELCOME (recovered) comes first: {types}")
        seqs = [f.get("seq") for f in frames if f["type"] == "CREDIT_UPDATE"]
        check(seqs == [top - 1, top] and types[-1] == "PONG",
              f"the replay ({top - 1}, {top}) before the PONG: {types}, seqs {seqs}")
        check(not done, "the socket opened only once its replay was read")
        await mac.close()
    finish()


asyncio.run(main())
