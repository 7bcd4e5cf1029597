"""A node's Redis (a plain URL) is made a replica of another server while a
device's follow waits for its channel's confirmation: the confirmation comes
once the node has found the instance is no master, and so serves nobody. The
device must not wait for ever: it is refused (1013) within a few probes, the
node says once (not every probe) why it is not ready, and once the instance
is a master again new devices join. Demoted with nothing written, the node
finds out from its probe (INFO replication), not at its next write.

    demoted_master.py <kullsync-server binary>
"""
import asyncio
import sys
import tempfile

from cluster_common import Device, Node, Redis, check, finish, redis_command, stop_all, until
from tcp_proxy import TcpProxy

BINARY = sys.argv[1]


async def main():
    work = tempfile.mkdtemp()
    a, b = Redis(work), Redis(work)
    a.start()
    b.start()
    proxy = TcpProxy(a.port)
    log = open(f"{work}/n.err", "w+")
    n = Node(BINARY, "n", f"redis://127.0.0.1:{proxy.port}", stderr=log)

    def logged(text):
        log.seek(0)
        return log.read().count(text)

    def log_tail(n):
        log.seek(0)
        return log.read().splitlines()[-n:]

    try:
        check(await until(n.ready, 10), "n ready")
        mac = Device("u1", "mac")
        await mac.connect(n)
        check(await until(lambda: mac.epoch, 10), "u1's device joined")
        command_links = [line.split()[0].split("=")[1]
                         for line in redis_command(a.port, "CLIENT", "LIST").splitlines()
                         if " sub=0 " in line and " cmd=client" not in line]
        check(len(command_links) == 1, f"n's command link found: {command_links}")

        proxy.hold()  # the SUBSCRIBE of u2's channel waits in the proxy
        ipad = Device("u2", "ipad")
        joining = asyncio.ensure_future(ipad.connect(n))
        check(await until(lambda: b"SUBSCRIBE" in proxy.held_up() and b"{u2}" in proxy.held_up(),
                          5), "u2's follow waits for its subscription")
        redis_command(a.port, "REPLICAOF", "127.0.0.1", b.port)
        redis_command(a.port, "CLIENT", "KILL", "ID", command_links[0])
        proxy.release()  # the command link's end, then the confirmation
        check(await until(lambda: ipad.closes, 5), "u2's device refused, not left waiting")
        check(ipad.closes == [1013] and not ipad.welcomes,
              f"refused with 1013 before any WELCOME: {ipad.closes} {ipad.welcomes}")
        await joining

        check(await until(lambda: logged("not ready until it is a master"), 5),
              "n says why it is not ready")
        # Three more ticks, each a command link refused as to a replica.
        before = n.metric("kullsync_broker_reconnects_total") or 0
        check(await until(lambda: (n.metric("kullsync_broker_reconnects_total") or 0)
                          >= before + 3, 10), "three more ticks as a replica")
        lost = logged("command link lost")
        check(lost <= 1, f"the replica's refusals are not warned of at every tick: {lost}")
        check(logged("not ready until it is a master") == 1, "said once")

        redis_command(a.port, "REPLICAOF", "NO", "ONE")
        check(await until(n.ready, 10), "n ready once a is a master again")
        ipad = Device("u2", "ipad")
        await ipad.connect(n)
        check(await until(lambda: ipad.epoch, 10), "u2's device joins")

        await ipad.close()
        await mac.close()

        # Demoted again with nobody followed (no head, no publish writes): the
        # probe's INFO says so, and the node is not ready within a probe
        # interval, not at its next write.
        # The devices' departures are written first (under load they came
        # after the demotion, and their refused write said why before the
        # probe could). On a slow machine a late probe may still cut the
        # links first: then the new link's ROLE check says why.
        check(await until(lambda: all(redis_command(a.port, "HLEN", f"ks:{{{u}}}:p") == 0
                                      for u in ("u1", "u2")), 10),
              "the devices' departures are written")
        said_before = logged("not ready until it is a master")
        redis_command(a.port, "REPLICAOF", "127.0.0.1", b.port)
        check(await until(lambda: not n.ready(), 5), "not ready within a few probes, no write needed")
        check(await until(lambda: logged("it says it is a replica now") >= 1
                          or logged("not ready until it is a master") > said_before, 2),
              "n says why" + ("" if logged("it says it is a replica now")
                              or logged("not ready until it is a master") > said_before
                              else ": " + " | ".join(log_tail(6))))
        redis_command(a.port, "REPLICAOF", "NO", "ONE")
        check(await until(n.ready, 10), "ready again")
    finally:
        stop_all((n,), (b, a))
        proxy.close()
    finish()


asyncio.run(main())
