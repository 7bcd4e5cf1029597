"""Redis Sentinel from outside: a master, a replica and three sentinels
(Debian's redis-server and redis-sentinel), two kullsync-server nodes with
--broker redis+sentinel://..., and v2 devices (Python's websockets):
  - kill -9 the master: both nodes are ready and publishing again within
    20 s, without a restart; the devices resync (a failover is a new epoch)
    and end with one consistent stream;
  - the old master comes back (Sentinel makes it a replica), then the new
    master is killed: the nodes follow the second failover back;
  - a wrong master name keeps a node not ready and says why;
  - a "sentinel" that names a replica: the node never writes to it (ROLE
    says slave), stays not ready and says why;
  - a sentinel that takes the question and never answers (listed first):
    the node says so and asks the next one, and is ready;
  - a master that refuses ROLE (an error, not a role): the node says so and
    connects again, without asking the sentinels again each time (the
    refusal is no doubt about where the master is).

    sentinel.py <kullsync-server binary>
"""
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time

from cluster_common import SCALE, Device, Node, Redis, check, finish, free_port, redis_command, until

BINARY = sys.argv[1]
MASTER = "mymaster"


class Sentinel:
    def __init__(self, work, master_port, k):
        self.port = free_port()
        self.conf = os.path.join(work, f"sentinel{k}.conf")
        with open(self.conf, "w") as f:
            f.write(f"port {self.port}\nbind 127.0.0.1\ndir {work}\n"
                    f"sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n"
                    # At least 2 s: with 1 s Sentinel sometimes fails over a
                    # healthy master right after a switch.
                    f"sentinel down-after-milliseconds {MASTER} 2000\n"
                    # A failed election is tried again after twice this:
                    # 10 s, within the failovers' budget below.
                    f"sentinel failover-timeout {MASTER} 5000\n"
                    f"sentinel parallel-syncs {MASTER} 1\n")
        # Its log, printed when a failover does not happen: why Sentinel did
        # not promote (no quorum, no good replica) is only said there.
        self.log = os.path.join(work, f"sentinel{k}.log")
        self.proc = subprocess.Popen(["/usr/bin/redis-sentinel", self.conf],
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT)

    def tail(self, lines=25):
        with open(self.log) as f:
            return "".join(f.readlines()[-lines:])

    def ask(self, *args):
        return redis_command(self.port, *args)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def role(port):
    try:
        return redis_command(port, "ROLE")[0]
    except OSError:
        return None


async def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout * SCALE
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except OSError:
            pass
        await asyncio.sleep(0.2)
    return False


async def logged(log, line, timeout=10):
    """The log's text once it holds `line` (or at the deadline)."""
    text = ""

    def seen():
        nonlocal text
        log.seek(0)
        text = log.read().decode(errors="replace")
        return line in text
    await until(seen, timeout)
    return text


def sentinels_agree(sentinels, replica_port, master_port):
    """Every sentinel sees the master, the replica online and the other two."""
    for s in sentinels:
        addr = s.ask("SENTINEL", "get-master-addr-by-name", MASTER)
        if not addr or int(addr[1]) != master_port:
            return False
        replicas = s.ask("SENTINEL", "replicas", MASTER)
        fields = [dict(zip(r[::2], r[1::2])) for r in replicas]
        if not any(int(f["port"]) == replica_port and "s_down" not in f["flags"]
                   and f.get("master-link-status") == "ok" for f in fields):
            return False
        if len(s.ask("SENTINEL", "sentinels", MASTER)) < 2:
            return False
    return True


async def failover(nodes, devices, kill, master_port, published):
    """Kills the master; the time until both nodes publish again, and what
    the publishes meanwhile were answered."""
    t0 = time.monotonic()
    kill()
    answers = set()
    served = {n.name: False for n in nodes}
    deadline = t0 + 30 * SCALE
    while time.monotonic() < deadline and not all(served.values()):
        for n in nodes:
            if not served[n.name]:
                value = 1000 + len(published)
                status, seq = n.post_credits("u1", value)
                answers.add(status)
                if status == 200:
                    published.append((seq, value))
                    served[n.name] = n.ready()
        await asyncio.sleep(0.2)
    took = time.monotonic() - t0
    return took, answers, all(served.values())


async def consistent(nodes, devices, published, what):
    """Devices closed by a failover (4009: a new epoch) come back as clients
    do; then a publish reaches both live, at the same position, and no
    device saw a gap or a double within an epoch."""
    deadline = time.monotonic() + 20 * SCALE
    ok = False
    while not ok and time.monotonic() < deadline:
        for d, n in zip(devices, nodes):
            if d.ws is None or d.ws.closed:
                try:
                    await d.connect(n)
                except Exception:  # refused while the node catches up: again
                    pass
        value = 1000 + len(published)
        status, seq = nodes[0].post_credits("u1", value)
        if status == 200:
            published.append((seq, value))
            ok = await until(lambda: all(d.applied and d.applied[-1][2] == value for d in devices), 2)
        else:
            await asyncio.sleep(0.3)
    positions = {(d.epoch, d.seq) for d in devices}
    check(ok and len(positions) == 1 and not any(d.violations for d in devices),
          f"{what}: a publish reaches both devices live, at one position {sorted(positions)}, "
          f"no gap or double {[d.violations for d in devices]}")
    # A node withholds a position a socket has (or closes one past a gap)
    # and counts it: a double the devices cannot see.
    faults = [n.metric("kullsync_delivery_order_faults_total") for n in nodes]
    check(faults == [0] * len(nodes), f"{what}: no node withheld a delivery out of order {faults}")


async def fake_sentinel(replica_port):
    """A 'sentinel' that names the replica as the master."""
    async def serve(reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                if not line.startswith(b"*"):
                    continue
                args = []
                for _ in range(int(line[1:])):
                    n = int((await reader.readline())[1:])
                    args.append((await reader.readexactly(n + 2))[:-2].decode())
                if args[0].upper() == "SENTINEL":
                    p = str(replica_port)
                    writer.write(f"*2\r\n$9\r\n127.0.0.1\r\n${len(p)}\r\n{p}\r\n".encode())
                elif args[0].upper() == "SUBSCRIBE":
                    writer.write(b"*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def mute_sentinel():
    """A 'sentinel' that accepts and reads, and never answers (as a paused
    process's kernel does)."""
    async def serve(reader, writer):
        try:
            while await reader.read(4096):
                pass
        except ConnectionError:
            pass
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def main():
    work = tempfile.mkdtemp()
    master = Redis(work)
    master.start()
    replica = Redis(work)
    replica.start("--replicaof", "127.0.0.1", str(master.port))
    sentinels = [Sentinel(work, master.port, k) for k in range(3)]
    url = ("redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in sentinels) + "/" + MASTER)
    nodes, devices, extra = [], [], []
    try:
        check(await wait_for(lambda: sentinels_agree(sentinels, replica.port, master.port), 30),
              "the sentinels see the master, its replica and each other")
        nodes = [Node(BINARY, n, url) for n in ("a", "b")]
        check(await until(lambda: all(n.ready() for n in nodes), 10),
              "both nodes ready through the sentinels")
        devices = [Device("u1", "mac"), Device("u1", "ipad")]
        for d, n in zip(devices, nodes):
            await d.connect(n)
        await until(lambda: all(d.welcomes for d in devices))
        published = []
        for i in range(5):
            status, seq = nodes[i % 2].post_credits("u1", i)
            published.append((seq, i))
        check([s for s, _ in published] == [1, 2, 3, 4, 5], f"one numbering through either node: {published}")
        await consistent(nodes, devices, published, "before any failover")

        first_epoch = devices[0].epoch
        took, answers, served = await failover(nodes, devices, master.kill, master.port, published)
        check(served and took <= 30 * SCALE,
              f"kill -9 of the master: both nodes ready and publishing again after {took:.1f} s (<= 30)")
        check(answers <= {200, 503, 504}, f"publishes meanwhile answered 200, 503 or 504 only: {sorted(answers)}")
        promoted = role(replica.port) == "master"
        check(promoted, "Sentinel promoted the replica")
        if not promoted:
            for k, sentinel in enumerate(sentinels):
                print(f"--- sentinel {k}'s log:\n{sentinel.tail()}")
        await consistent(nodes, devices, published, "after the failover")
        check(all(d.epoch != first_epoch and 4009 in d.closes
                  and not d.welcomes[-1]["recovered"] for d in devices),
              f"the failover is a new epoch: each device was closed 4009 and resynced "
              f"({[(d.closes, d.epoch != first_epoch) for d in devices]})")

        # The old master comes back; Sentinel makes it a replica of the new one.
        master.start()
        check(await wait_for(lambda: sentinels_agree(sentinels, master.port, replica.port), 40),
              "the old master is back as the new master's replica, seen by every sentinel")
        took, answers, served = await failover(nodes, devices, replica.kill, replica.port, published)
        check(served and took <= 30 * SCALE,
              f"the second failover, back: both nodes publishing again after {took:.1f} s (<= 30)")
        check(role(master.port) == "master", "the first master is the master again")
        await consistent(nodes, devices, published, "after the failover back")

        with tempfile.TemporaryFile() as log:
            wrong = Node(BINARY, "c", url.replace("/" + MASTER, "/nosuchmaster"), stderr=log)
            extra.append(wrong)
            text = await logged(log, "knows no master named 'nosuchmaster'")
            check(not wrong.ready(), "a wrong master name: the node is not ready")
            check("knows no master named 'nosuchmaster'" in text,
                  "and says why: " + next((l for l in text.splitlines() if "nosuchmaster" in l), "(nothing)"))

        # A replica is back next to the master (port of the killed one).
        replica.start("--replicaof", "127.0.0.1", str(master.port))
        server, fake_port = await fake_sentinel(replica.port)
        with tempfile.TemporaryFile() as log:
            liar = Node(BINARY, "d", f"redis+sentinel://127.0.0.1:{fake_port}/{MASTER}", stderr=log)
            extra.append(liar)
            text = await logged(log, f"127.0.0.1:{replica.port} is not the master")
            check(not liar.ready(), "a sentinel that names a replica: the node is not ready")
            check(f"127.0.0.1:{replica.port} is not the master (slave)" in text,
                  "and says the replica is not the master: "
                  + next((l for l in text.splitlines() if "not the master" in l), "(nothing)"))
            stats = redis_command(replica.port, "INFO", "commandstats")
            check("cmdstat_evalsha" not in stats and "cmdstat_script" not in stats
                  and "cmdstat_eval:" not in stats,
                  "the node sent the replica no script and no write (it stopped at ROLE)")
        server.close()

        server, mute_port = await mute_sentinel()
        listed = f"127.0.0.1:{mute_port}," + ",".join(f"127.0.0.1:{s.port}" for s in sentinels)
        with tempfile.TemporaryFile() as log:
            patient = Node(BINARY, "e", f"redis+sentinel://{listed}/{MASTER}", stderr=log)
            extra.append(patient)
            text = await logged(log, "did not answer", timeout=15)
            check(f"sentinel 127.0.0.1:{mute_port} did not answer" in text,
                  "a sentinel that never answers is named: "
                  + next((l for l in text.splitlines() if "did not answer" in l), "(nothing)"))
            check(await until(patient.ready, 15),
                  "and the node asks the next one and is ready")
        server.close()

        refusing = Redis(work)
        refusing.start("--rename-command", "ROLE", "ROLE_HIDDEN")
        server, fake_port = await fake_sentinel(refusing.port)
        try:
            with tempfile.TemporaryFile() as log:
                asker = Node(BINARY, "f", f"redis+sentinel://127.0.0.1:{fake_port}/{MASTER}",
                             stderr=log)
                extra.append(asker)
                text = await logged(log, "ROLE was not answered")
                check("ROLE was not answered (ERR unknown command" in text,
                      "a master that refuses ROLE is named: "
                      + next((l for l in text.splitlines() if "ROLE" in l), "(nothing)"))
                await asyncio.sleep(3 * SCALE)  # a few more attempts
                log.seek(0)
                text = log.read().decode()
                asked = [l for l in text.splitlines() if "asking the sentinels" in l]
                check(not asked and not asker.ready(),
                      f"it is not ready and does not ask the sentinels again: {asked[:2]}")
        finally:
            server.close()
            refusing.kill()
        for d in devices:
            await d.close()
    finally:
        for n in nodes + extra:
            n.proc.send_signal(signal.SIGKILL)
            n.proc.wait()
        for s in sentinels:
            s.stop()
        for r in (master, replica):
            if r.proc and r.proc.poll() is None:
                r.kill()


asyncio.run(main())
finish()
