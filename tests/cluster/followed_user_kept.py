"""A user whose device stays connected is kept in Redis though nothing is
published: its epoch, state and presence outlive --user-state-ttl while a
node follows it (docs/SECURITY.md: a user is forgotten only with "no device
and no update"). Two nodes with --user-state-ttl 4 and --history-ttl 1; one
publish, then silence until Redis renewed the state's lifetime twice and
more than twice that lifetime passed:
  - the device is not closed (no new epoch: 4009) and its state stays;
  - a second device, on the other node, is told the first is there and
    gets the credits as they were;
  - the next publish continues the same epoch.

    followed_user_kept.py <kullsync-server binary>
"""
import asyncio
import sys
import tempfile
import time

from cluster_common import Device, Node, Redis, check, finish, redis_command, stop_all, until

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
        # Each position check's head renews the state's lifetime (PTTL jumps
        # back up); the old scripts never did, and it ran out.
        since, renewals, last = time.monotonic(), 0, None

        def renewed_past_its_lifetime():
            nonlocal renewals, last
            left = redis_command(redis.port, "PTTL", "ks:{u1}:st")
            if last is not None and left > last:
                renewals += 1
            last = left
            return renewals >= 2 and time.monotonic() - since > 9

        check(await until(renewed_past_its_lifetime, 30),
              f"the state's lifetime renewed while silent ({renewals} times, {last} ms left)")
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
        stop_all((n, m), (redis,))
    finish()


asyncio.run(main())
