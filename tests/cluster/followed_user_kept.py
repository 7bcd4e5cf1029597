"""A user whose device stays connected is kept in Redis though nothing is
published: its epoch, state and presence outlive --user-state-ttl while a
node follows it (docs/SECURITY.md: a user is forgotten only with "no device
and no update"). Two nodes with --user-state-ttl 4 and --history-ttl 1; one
publish, then 9 s of silence, more than twice the state's lifetime:
  - the device is not closed (no new epoch: 4009) and its state stays;
  - a second device, on the other node, is told the first is there and
    gets the credits as they were;
  - the next publish continues the same epoch.

    followed_user_kept.py <kullsync-server binary>
"""
import asyncio
import sys
import tempfile

from cluster_common import SCALE, Device, Node, Redis, check, finish, until

BINARY = sys.argv[1]


async def main():
    work = tempfile.mkdtemp()
    redis = Redis(work)
    redis.start()
    ttl = ["--user-state-ttl", "4", "--history-ttl", "1"]
    url = f"redis://127.0.0.1:{redis.port}"
    n, m = Node(BINARY, "n", url, extra=ttl), Node(BINARY, "m", url, extra=ttl)
    try:
        check(await until(lambda: n.ready() and m.ready(), 10), "both nodes ready")
        mac = Device("u1", "mac")
        await mac.connect(n)
        check(await until(lambda: mac.epoch, 10), "mac joined on n")
        status, seq = m.post_credits("u1", 7)
        check(status == 200 and await until(lambda: mac.applied), f"a publish ({status}, {seq})")
        epoch = mac.epoch
        await asyncio.sleep(9 * SCALE)  # position checks every 2 s meanwhile
        check(not mac.closes, f"the silent device is not closed: {mac.closes}")
        ipad = Device("u1", "ipad")
        await ipad.connect(m)
        check(await until(lambda: ipad.epoch, 10), "ipad joined on m")
        devices = [d["deviceId"] for d in ipad.welcomes[-1]["devices"]]
        check(ipad.epoch == epoch and "mac" in devices,
              f"the same epoch, mac present: {ipad.epoch} vs {epoch}, {devices}")
        status, seq2 = m.post_credits("u1", 8)
        check(await until(lambda: len(mac.applied) == 2),
              f"the next publish reaches mac ({status}, seq {seq2})")
        check(mac.applied[-1][0] == epoch and seq2 == seq + 1 and not mac.violations,
              f"in the same epoch, next in line: {mac.applied}, {mac.violations}")
        await mac.close()
        await ipad.close()
    finally:
        for node in (n, m):
            node.proc.kill()
            node.proc.wait()
        redis.kill()
    finish()


asyncio.run(main())
