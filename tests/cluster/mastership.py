"""A stream belongs to the Redis mastership that wrote it. A master that is
demoted (REPLICAOF its replica), resyncs from it (which may have missed
its last writes), and is promoted again keeps its run_id: were that all a
stream's epoch were checked against, the stream would go on in the same
epoch, and a device that saw a lost message at seq n would take another
message at n. Redis gives every promotion a new master_replid, so the
stream starts a new epoch: the device resyncs with a SNAPSHOT.
Meanwhile, writes to a as a replica are refused (503, never 504: what was
sent before the node knew was refused for certain), and the node, finding
a replica behind its plain URL (ROLE), says so and is not ready until a is
a master again.

    mastership.py <kullsync-server binary>
"""
import asyncio
import os
import signal
import sys
import tempfile

from cluster_common import Device, Node, Redis, check, finish, redis_command, until

BINARY = sys.argv[1]


def synced(port):
    info = redis_command(port, "INFO", "replication")
    return "master_link_status:up" in info


async def main():
    work = tempfile.mkdtemp()
    a, b = Redis(work), Redis(work)
    a.start()
    b.start("--replicaof", "127.0.0.1", str(a.port))
    node = None
    try:
        check(await until(lambda: synced(b.port), 10), "b replicates a")
        log = open(f"{work}/n.err", "w+")
        node = Node(BINARY, "n", f"redis://127.0.0.1:{a.port}", stderr=log)
        check(await until(node.ready, 10), "the node is ready on a")
        device = Device("fb", "d1")
        await device.connect(node)
        status, seq = node.post_credits("fb", 1)
        check(status == 200 and await until(lambda: device.seq == seq, 5),
              f"a publish reached the device (seq {seq})")
        first = device.epoch
        run_id = lambda port: next(l.split(":", 1)[1] for l in
                                   redis_command(port, "INFO", "server").splitlines()
                                   if l.startswith("run_id:"))
        before = run_id(a.port)

        # b is promoted, a follows it and resyncs from it; then a is promoted
        # again: the same process, the same run_id.
        redis_command(b.port, "REPLICAOF", "NO", "ONE")
        redis_command(a.port, "REPLICAOF", "127.0.0.1", str(b.port))
        check(await until(lambda: synced(a.port), 10), "a, demoted, resynced from b")
        # Writes go on meanwhile: a refuses them (READONLY). Those sent on
        # the link before the node knew are refused for certain (503), not
        # of unknown outcome (504); then the node, finding a replica (ROLE),
        # is not ready until a is a master again.
        loop = asyncio.get_running_loop()
        answers = await asyncio.gather(*[loop.run_in_executor(
            None, lambda: node.post_credits("fb", 9)[0]) for _ in range(40)])
        check(set(answers) <= {503}, f"publishes to a replica are refused (503): {answers}")
        said = f"127.0.0.1:{a.port} is not the master (slave): not ready until it is a master"
        check(await until(lambda: said in open(f"{work}/n.err").read(), 5),
              "the node's link to a finds a replica (ROLE) and says so")
        check(not node.ready(), "the node is not ready on a replica")
        redis_command(a.port, "REPLICAOF", "NO", "ONE")
        redis_command(b.port, "REPLICAOF", "127.0.0.1", str(a.port))
        check(run_id(a.port) == before, "a is master again with the run_id it had")
        check(await until(node.ready, 15), "the node is ready on a again")

        status, seq = 0, None
        for _ in range(50):  # the node may still be reconnecting: 503s first
            status, seq = node.post_credits("fb", 2)
            if status == 200:
                break
            await asyncio.sleep(0.1)
        check(status == 200, f"a publish on a after its promotion ({status})")
        # The node tells the device of the new epoch (4009) when it sees it;
        # a device still open resumes anyway, as one that lost its link would.
        await until(lambda: device.closes, 5)
        if not device.closes:
            await device.close()
        await device.connect(node)
        check(await until(lambda: device.welcomes and device.epoch not in (None, first), 10),
              f"the stream starts a new epoch (epoch {first} -> {device.epoch}, closes "
              f"{device.closes})")
        check(not device.welcomes[-1]["recovered"],
              f"the device resyncs with a SNAPSHOT ({device.welcomes[-1]})")

        # A master that stops answering (SIGSTOP; its kernel still accepts):
        # the node's new link gets no answer to ROLE. That is an outage, not
        # a replica, and the log must not say otherwise.
        os.kill(a.proc.pid, signal.SIGSTOP)
        try:
            stuck = await until(lambda: "no answer since connecting" in open(f"{work}/n.err").read(),
                                20)
        finally:
            os.kill(a.proc.pid, signal.SIGCONT)
        check(stuck, "a paused master: the node's new link to it is dropped as unanswered")
        check(await until(node.ready, 15), "the node is ready again once a answers")
        wrong = [l for l in open(f"{work}/n.err").read().splitlines()
                 if "is not the master" in l and "(slave)" not in l]
        check(not wrong, f"an unanswered ROLE is not reported as a role: {wrong[:2]}")
        await device.close()
    finally:
        if node:
            node.proc.kill()
            node.proc.wait()
        a.kill()
        b.kill()


asyncio.run(main())
finish()
