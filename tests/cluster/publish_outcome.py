"""A 503 means "not published"; a 504 says the outcome is unknown. Node n
reaches Redis through a proxy that holds the bytes of a publish and
delivers them after n has given up on its link (as a router that held the
packets would); node m reaches Redis directly, and a device on m shows what
was applied:
  - the held publish is answered 504 {"outcome":"unknown"}, and it does
    appear in the stream once the bytes arrive (seq after the last);
  - while n is not ready, a publish is answered 503, and never appears;
  - the held publish retried with its Idempotency-Key is answered with the
    position it got: published once;
  - a device's message held the same way: no NACK; its socket is closed
    (1013); resent on node m with its id, it is ACKed once;
  - a keyed PROVIDER_HEALTH (not in the stream) held the same way: n's own
    admin socket has it at once (its retry will be a duplicate, and the
    relay through Redis skips the node that sent it), m's once the bytes
    arrive; after the retry each has it once.

    publish_outcome.py <kullsync-server binary>
"""
import asyncio
import json
import sys
import tempfile
import time
import urllib.error
import urllib.request

from cluster_common import SCALE, Device, check, finish, proxied_pair, until

BINARY = sys.argv[1]


def post(node, value, key=None, path="credit-update", body=None):
    """(status, body) of a credit-update publish (or `body` to `path`)
    through `node`."""
    body = json.dumps(body or {"userId": "u1", "newBalance": value, "change": 1}).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    req = urllib.request.Request(f"http://{node.addr}/api/sync/{path}", method="POST",
                                 data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20 * SCALE) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


async def main():
    with proxied_pair(BINARY, tempfile.mkdtemp()) as (proxy, n, m):
        check(await until(lambda: n.ready() and m.ready(), 10), "both nodes ready")
        watcher = Device("u1", "watcher")
        await watcher.connect(m)
        # Joined before the first publish: else its SNAPSHOT already counts it.
        check(await until(lambda: watcher.welcomes, 10), "the watcher joined on m")
        status, first = post(n, 1, "k1")
        await until(lambda: watcher.seq >= 1)
        check(status == 200 and watcher.applied[-1][2] == 1, f"a publish through n: 200, seq {first.get('seq')}")

        proxy.hold()
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        status, body = await loop.run_in_executor(None, post, n, 42, "k42")
        took = time.monotonic() - t0
        check(status == 504 and body.get("outcome") == "unknown",
              f"a publish whose bytes are held: 504 with outcome unknown after {took:.1f} s ({status} {body})")
        # The 504 may reach us before the broker handled its link's end.
        check(await until(lambda: not n.ready(), 5), "n is not ready while its link is cut")
        status, body = post(n, 43, "k43")
        check(status == 503 and "outcome" not in body,
              f"a publish while n is not ready: 503, not published ({status} {body})")

        proxy.release()  # the held bytes reach Redis now
        check(await until(lambda: any(v == 42 for _, _, v in watcher.applied), 5),
              f"the 504's publish was applied once its bytes arrived: {watcher.applied}")
        seq42 = next(s for _, s, v in watcher.applied if v == 42)
        check(await until(lambda: n.ready(), 15), "n ready again")
        status, body = post(n, 42, "k42")
        check(status == 200 and body.get("seq") == seq42,
              f"retried with its Idempotency-Key: answered with its position {seq42}, not published again ({body})")
        status, body = post(n, 44, "k44")
        await until(lambda: watcher.applied[-1][2] == 44, 5)
        values = [v for _, _, v in watcher.applied]
        check(43 not in values and values.count(42) == 1 and values[-1] == 44,
              f"the 503's publish never appeared; the 504's once: {values}")

        # A device's message of unknown outcome: its socket closes, no NACK.
        d = Device("u1", "mac")
        await d.connect(n)
        await until(lambda: d.welcomes)
        proxy.hold()
        await d.send_progress("p1", 7)
        closed = await until(lambda: d.closes, 10)
        check(closed and d.closes[-1] == 1013 and "p1" not in d.nacks and "p1" not in d.acks,
              f"a device's message held likewise: no NACK, its socket closed 1013 ({d.closes}, {d.nacks})")
        proxy.release()
        await d.connect(m)
        await d.send_progress("p1", 7)
        await until(lambda: "p1" in d.acks, 5)
        # A marker after it: what the watcher has not seen before it never comes.
        post(m, 45, "k45")
        await until(lambda: watcher.applied[-1][2] == 45, 5)
        applied = [s for t, s, x in watcher.numbered if t == "SHOOT_PROGRESS" and x.get("processedCount") == 7]
        check(d.acks.get("p1") in applied and len(applied) == 1,
              f"resent with its id on node m: ACKed at seq {d.acks.get('p1')}, in the stream once {applied}")
        await watcher.close()
        await d.close()

        # A keyed message outside the stream, of unknown outcome.
        check(await until(lambda: n.ready(), 15), "n ready again")
        admins = {node: Device("admin", f"admin-{node.name}") for node in (n, m)}
        for node, a in admins.items():
            await a.connect(node)
            await until(lambda: a.welcomes)
        health = lambda t: {"providers": [{"provider": "p", "status": "healthy"}], "timestamp": t}
        times = lambda a: [d["timestamp"] for t, d in a.admin if t == "PROVIDER_HEALTH"]
        proxy.hold()
        status, body = await loop.run_in_executor(
            None, lambda: post(n, 0, "h1", "provider-health", health(1)))
        check(status == 504, f"a held keyed PROVIDER_HEALTH: 504 ({status} {body})")
        check(await until(lambda: times(admins[n]) == [1], 5),
              f"n's own admin socket has it though its outcome is unknown: {times(admins[n])}")
        proxy.release()
        check(await until(lambda: n.ready(), 15), "n ready again")
        status, body = post(n, 0, "h1", "provider-health", health(1))
        check(status == 200, f"its retry with the same Idempotency-Key: 200 ({status} {body})")
        post(n, 0, "h2", "provider-health", health(2))  # a marker after it
        check(await until(lambda: all(times(a)[-1:] == [2] for a in admins.values()), 5),
              f"the marker reached both admin sockets: {[times(a) for a in admins.values()]}")
        check(all(times(a) == [1, 2] for a in admins.values()),
              f"each admin socket had the held message once: {[times(a) for a in admins.values()]}")
        for a in admins.values():
            await a.close()


asyncio.run(main())
finish()
