"""A link to Redis that is behind is not a link that stopped. Node n reaches
Redis through a proxy that forwards Redis's bytes slowly, so that a burst
of publishes (made on node m, which reaches Redis directly) reaches n's
subscriber link seconds late, behind which the probe waits; bytes keep
arriving meanwhile. Then the proxy holds every byte: a link that stopped.
  - behind: n keeps both links (no probe timeout, no reconnect), says the
    probe came back late, and its device gets every message in order, with
    no close;
  - stopped: n cuts the links within 3-4 s, and is ready again once the
    bytes flow.

    busy_links.py <kullsync-server binary>
"""
import asyncio
import re
import sys
import tempfile
import time

from cluster_common import Device, Node, Redis, check, finish, until
from tcp_proxy import TcpProxy

BINARY = sys.argv[1]
BURST = 400          # publishes of ~300 bytes each on the channel
RATE = 12_000        # bytes a second from Redis to n: ~10 s behind


async def main():
    work = tempfile.mkdtemp()
    redis = Redis(work)
    redis.start()
    proxy = TcpProxy(redis.port)
    log = open(f"{work}/n.err", "w+")
    n = Node(BINARY, "n", f"redis://127.0.0.1:{proxy.port}", stderr=log,
             log_level="info")
    m = Node(BINARY, "m", f"redis://127.0.0.1:{redis.port}")
    try:
        check(await until(lambda: n.ready() and m.ready(), 10), "both nodes ready")
        reader = Device("u1", "reader")
        await reader.connect(n)
        check(await until(lambda: reader.welcomes, 10), "the reader joined on n")

        proxy.throttle(RATE)
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        answered = await loop.run_in_executor(
            None, lambda: [m.post_credits("u1", v) for v in range(1, BURST + 1)])
        top = max(seq for _, seq in answered if seq)
        check(all(status == 200 for status, _ in answered), f"{BURST} publishes on m: 200 each")
        # The reader may catch up through the node's position check (reads on
        # the command link); the subscriber link has drained once the probe
        # behind its backlog came back.
        def probe_late():
            return [int(x) for x in
                    re.findall(r"the probe came back after (\d+) ms", open(f"{work}/n.err").read())]
        got = await until(lambda: reader.seq >= top and probe_late(), 60)
        took = time.monotonic() - t0
        proxy.throttle(None)
        late = probe_late()
        check(late and max(late) >= 2750,
              f"the probe came back late, behind the backlog: after {late} ms "
              f"(all {BURST} reached the reader and the subscriber in {took:.1f} s)")
        check(n.metric("kullsync_broker_probe_timeouts_total") == 0
              and n.metric("kullsync_broker_reconnects_total") == 0,
              "a link behind is kept: no probe timeout, no reconnect "
              f"({n.metric('kullsync_broker_probe_timeouts_total')}, "
              f"{n.metric('kullsync_broker_reconnects_total')})")
        values = [v for _, _, v in reader.applied]
        check(got and values[-BURST:] == list(range(1, BURST + 1)) and not reader.closes
              and not reader.violations,
              f"the reader got all {BURST} in order, its socket open "
              f"(last {reader.seq} of {top}, closes {reader.closes}, {reader.violations[:3]})")

        before = n.metric("kullsync_broker_probe_timeouts_total") or 0
        proxy.hold()
        t1 = time.monotonic()
        cut = await until(lambda: (n.metric("kullsync_broker_probe_timeouts_total") or 0) > before,
                          10)
        check(cut, f"a link that stopped is cut: after {time.monotonic() - t1:.1f} s")
        proxy.release()
        check(await until(lambda: n.ready(), 15), "n ready again once the bytes flow")
        await reader.close()
    finally:
        for node in (n, m):
            node.proc.kill()
            node.proc.wait()
        proxy.close()
        redis.kill()


asyncio.run(main())
finish()
