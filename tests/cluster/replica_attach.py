"""The first replica to attach to a running master changes its replication
id (master_replid) without closing any link. A node that connects after
that reads the new id; one connected before must read it too, or the two
number each user's stream in two "masterships" and every publish of one
starts a new epoch over the other's (4009 and a SNAPSHOT each time). Nodes
read the mastership again with every probe, so after the attach they agree:
publishes through both nodes continue one epoch.

    replica_attach.py <kullsync-server binary>
"""
import asyncio
import sys
import tempfile

from cluster_common import (Device, Node, Redis, check, finish, redis_command, stop_all,
                            until)

BINARY = sys.argv[1]


def synced(port):
    return "master_link_status:up" in redis_command(port, "INFO", "replication")


async def main():
    work = tempfile.mkdtemp()
    a, b = Redis(work), Redis(work)
    a.start()
    url = f"redis://127.0.0.1:{a.port}"
    log = open(f"{work}/n.err", "w+")
    n, m = Node(BINARY, "n", url, stderr=log), Node(BINARY, "m", url)
    try:
        check(await until(lambda: n.ready() and m.ready(), 10), "both nodes ready")
        mac = Device("u1", "mac")
        await mac.connect(n)
        check(await until(lambda: mac.epoch, 10), "mac joined on n")
        m.post_credits("u1", 1)
        check(await until(lambda: mac.applied), "a publish before the replica")

        b.start("--replicaof", "127.0.0.1", str(a.port))  # a's replid changes
        check(await until(lambda: synced(b.port), 10), "a replica attached to a")
        m.proc.kill()
        m.proc.wait()
        m = Node(BINARY, "m2", url)  # connects after: reads the new replid
        check(await until(m.ready, 10), "m restarted")

        def logged(text):
            log.seek(0)
            return text in log.read()

        check(await until(lambda: logged("its mastership changed"), 10),
              "n read the new mastership with a probe")
        # The new mastership is a new epoch: once, as n next writes.
        n.post_credits("u1", 2)
        check(await until(lambda: mac.closes, 10), f"mac closed for the new epoch: {mac.closes}")
        welcomes = len(mac.welcomes)
        await mac.connect(n)
        check(await until(lambda: len(mac.welcomes) > welcomes and mac.epoch == mac.welcomed,
                          10), "mac resyncs into it")
        closes, before = len(mac.closes), len(mac.applied)
        for i in range(6):
            (n if i % 2 else m).post_credits("u1", 10 + i)
            await until(lambda: len(mac.applied) == before + i + 1, 3)
        got = mac.applied[before:]
        check(len(mac.closes) == closes, f"no close while both nodes publish: {mac.closes}")
        check(len(got) == 6 and len({e for e, _, _ in got}) == 1 and not mac.violations,
              f"six publishes through both nodes, one epoch: {got} {mac.violations}")
        await mac.close()
    finally:
        stop_all((n, m), (b, a))
    finish()


asyncio.run(main())
