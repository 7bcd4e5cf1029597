"""A link to Redis that is behind is not a link that stopped. Node n reaches
Redis through a proxy that forwards Redis's bytes slowly (a byte a second
while node m, which reaches Redis directly, makes a burst of publishes,
then 12 KB a second), so that the burst reaches n's subscriber link ~8 s
late with the probe behind it; bytes keep arriving meanwhile. Then the
proxy holds every byte: a link that stopped.
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

from cluster_common import SCALE, Device, check, finish, proxied_pair, until

BINARY = sys.argv[1]
BURST = 400          # publishes, ~250 bytes each on n's subscriber link
RATE = 12_000        # bytes a second from Redis to n once the burst is made


async def main():
    work = tempfile.mkdtemp()
    log = open(f"{work}/n.err", "w+")
    with proxied_pair(BINARY, work, stderr=log, log_level="info") as (proxy, n, m):
        check(await until(lambda: n.ready() and m.ready(), 10), "both nodes ready")
        reader = Device("u1", "reader")
        await reader.connect(n)
        check(await until(lambda: reader.welcomes, 10), "the reader joined on n")

        # Made at any pace while n's links trickle: the backlog is the same.
        proxy.throttle(1)
        loop = asyncio.get_running_loop()
        answered = await loop.run_in_executor(
            None, lambda: [m.post_credits("u1", v) for v in range(1, BURST + 1)])
        proxy.throttle(RATE)
        t0 = time.monotonic()
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
        counted = n.metric("kullsync_broker_probes_late_total")
        check(late and counted == len(late),
              f"the probe came back late (past its patience), behind the backlog: after "
              f"{late} ms, counted {counted} (all {BURST} reached the reader and the "
              f"subscriber {took:.1f} s after the burst)")
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
        took = time.monotonic() - t1
        check(cut and took <= 5.5 * SCALE,
              f"a link that stopped is cut within 3-4 s of its next probe: after {took:.1f} s")
        proxy.release()
        check(await until(lambda: n.ready(), 15), "n ready again once the bytes flow")
        await reader.close()


asyncio.run(main())
finish()
