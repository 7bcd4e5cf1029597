"""Presence across an outage of Redis that outlives the nodes' liveness keys
(--position-check 2: each node's key lives 2 s). Two nodes, each reaching
Redis through a proxy of its own; a device of one user on each. Both
proxies hold every byte until both nodes cut their links (both keys have
lapsed by then), then m's comes back first and n's only once m read the
user's head: m reads it before n renewed its key. m must not tell its device that
n's device left (it never did), and every device still ends up listing the
other; a device that really leaves meanwhile is still told.

    presence_across_outage.py <kullsync-server binary>
"""
import asyncio
import sys
import tempfile

from cluster_common import Device, Node, Redis, check, finish, redis_command, stop_all, until
from tcp_proxy import TcpProxy

BINARY = sys.argv[1]


async def main():
    work = tempfile.mkdtemp()
    redis = Redis(work)
    redis.start()
    pn, pm = TcpProxy(redis.port), TcpProxy(redis.port)
    n = Node(BINARY, "n", f"redis://127.0.0.1:{pn.port}")
    m = Node(BINARY, "m", f"redis://127.0.0.1:{pm.port}")
    try:
        check(await until(lambda: n.ready() and m.ready(), 10), "both nodes ready")
        on_n, on_m = Device("u1", "mac"), Device("u1", "ipad")
        await on_n.connect(n)
        await on_m.connect(m)
        check(await until(lambda: ("DEVICE_CONNECTED", "ipad") in on_n.presence, 10),
              "the device on n hears the one on m arrive")

        pn.hold()
        pm.hold()
        # Noticed 3-4 s after (the probe): both keys (2 s) have lapsed by then.
        check(await until(lambda: not n.ready() and not m.ready(), 10),
              "both nodes lose Redis")
        # The scenario: m reads the user's head (following it again) while
        # n's key is still lapsed, and only then is n back. The head read
        # renews the user's state lifetime (PTTL jumps back up): that is
        # the sign it happened.
        pttl = lambda: redis_command(redis.port, "PTTL", "ks:{u1}:st")  # noqa: E731
        cut_off = pttl()
        pm.release()
        check(await until(m.ready, 10), "m is back")
        # Two reads: the one following the user again, then a position check.
        check(await until(lambda: pttl() > cut_off, 10), "m read the user's head")
        first = pttl()
        check(await until(lambda: pttl() > first, 10),
              "and again at its position check, while n is still cut off")
        pn.release()
        check(await until(n.ready, 10), "n is back")
        gone = ("DEVICE_DISCONNECTED", "mac")
        # Three position checks of m (every 2 s) after n is back.
        check(not await until(lambda: gone in on_m.presence, 6),
              f"m's device is not told that n's left ({on_m.presence})")

        await on_n.close()
        check(await until(lambda: gone in on_m.presence, 10),
              "a device that does leave is still told")
    finally:
        stop_all((n, m), (redis,))
        pn.close()
        pm.close()
    finish()


if __name__ == "__main__":
    asyncio.run(main())
