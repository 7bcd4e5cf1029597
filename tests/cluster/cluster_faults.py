"""A cluster from outside: a real redis-server of its own, three real
kullsync-server nodes on it, and Python's strict websockets client as the
devices (PROTOCOL.md v2). Checks, each with the figures it saw:
  - one numbering per user whichever node published; presence across nodes;
  - a device resumes on another node with exactly what it missed;
  - a client message resent to another node is applied once (same ACK);
  - Redis paused (SIGSTOP) 5 s: sockets stay up, publishes are refused (503)
    or delayed, service comes back by itself, nothing lost or doubled;
  - Redis killed and restarted empty: a new epoch, devices resync with a
    SNAPSHOT, publishes refused while it is down (HTTP 503, NACK
    unavailable), served after;
  - a node killed with -9 under load: its devices resume on another node
    and miss nothing; a node stopped with SIGTERM: 1001, the others hear its
    devices leave, they resume elsewhere;
  - a Redis with a password: the right one works, a wrong one keeps the
    node unready and is never logged;
  - a Redis that is not there (a typo in --broker): the node is not ready
    and says, at warn, which address it cannot connect to;
  - a full Redis (maxmemory, noeviction): publishes are refused (HTTP 503,
    NACK unavailable, the reason logged), the node says its liveness key
    was refused, and once there is room again everything is served with
    one numbering.

    cluster_faults.py <kullsync-server binary>
"""
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import websockets

from cluster_common import (SCALE, Device, Node, Redis, check, finish, free_port, redis_command,
                            until)

BINARY = sys.argv[1]


def node(name, redis_port, credentials="", stderr=sys.stderr):
    return Node(BINARY, name, f"redis://{credentials}127.0.0.1:{redis_port}", stderr=stderr)


async def numbering_and_presence(a, b):
    d1, d2 = Device("u1", "mac"), Device("u1", "ipad")
    await d1.connect(a)
    await d2.connect(b)
    await until(lambda: ("DEVICE_CONNECTED", "ipad") in d1.presence)
    check(("DEVICE_CONNECTED", "ipad") in d1.presence,
          "a device on node a hears of one connecting on node b")
    # In its WELCOME, or (announced while the WELCOME was on its way) right
    # after it.
    knows = lambda: (d2.welcomes and any(x["deviceId"] == "mac" for x in d2.welcomes[-1]["devices"])
                     or ("DEVICE_CONNECTED", "mac") in d2.presence)
    check(await until(knows), "a device on node b learns of the one on node a")
    seqs = [(a if i % 2 else b).post_credits("u1", i)[1] for i in range(20)]
    check(seqs == list(range(1, 21)), f"20 publishes on alternate nodes numbered 1..20: {seqs}")
    await until(lambda: d1.seq == 20 and d2.seq == 20)
    check(d1.applied == d2.applied and len(d1.applied) == 20 and not d1.violations,
          f"both devices applied the same 20 positions in order ({len(d1.applied)}, "
          f"{len(d2.applied)}, {d1.violations + d2.violations})")
    await d2.close()
    await until(lambda: ("DEVICE_DISCONNECTED", "ipad") in d1.presence)
    check(("DEVICE_DISCONNECTED", "ipad") in d1.presence,
          "a device on node a hears of one leaving node b")
    return d1


async def resume_elsewhere(a, b, d1):
    await d1.close()
    for i in range(5):
        a.post_credits("u1", 100 + i)
    await d1.connect(b)
    await until(lambda: d1.seq == 25)
    w = d1.welcomes[-1]
    check(w["recovered"] and d1.seq == 25 and not d1.violations,
          f"resumed on the other node: recovered={w['recovered']}, at {d1.seq} of 25")
    await d1.close()


async def dedup_elsewhere(a, b):
    p = Device("u2", "phone")
    await p.connect(a)
    await until(lambda: p.welcomes)
    await p.send_progress("once", 1)
    await until(lambda: "once" in p.acks)
    first = p.acks.get("once")
    await p.close()
    p.acks.clear()
    await p.connect(b)
    await until(lambda: len(p.welcomes) == 2)
    await p.send_progress("once", 1)
    await until(lambda: "once" in p.acks)
    check(first is not None and p.acks.get("once") == first and p.seq == first,
          f"a resent id on another node: the first ACK again ({first}, {p.acks.get('once')}), "
          f"stream still at {p.seq}")
    await p.close()


async def redis_paused(redis, a, b):
    d1, d2 = Device("u3", "mac"), Device("u3", "ipad")
    await d1.connect(a)
    await d2.connect(b)
    await until(lambda: d1.welcomes and d2.welcomes)
    ok = [a.post_credits("u3", i)[1] for i in range(5)]
    os.kill(redis.proc.pid, signal.SIGSTOP)
    t0 = time.monotonic()
    during = [b.post_credits("u3", 50)[0]]
    pong = False
    try:
        await d1.ws.send(json.dumps({"type": "PING"}))
        pong = True
    except websockets.ConnectionClosed:
        pass
    await asyncio.sleep(max(0, 5 - (time.monotonic() - t0)))
    os.kill(redis.proc.pid, signal.SIGCONT)
    back = await until(lambda: a.post_credits("u3", 60)[0] == 200, 20)
    answered = [s for s in (b.post_credits("u3", 61)[1], a.post_credits("u3", 62)[1]) if s]
    top = max(answered) if answered else 0
    await until(lambda: d1.seq >= top and d2.seq >= top, 15)
    # Sent to a Redis that does not answer: it may run it on SIGCONT, so the
    # honest answer is "unknown" (504), not "not published" (503).
    check(during[0] in (200, 504), f"a publish while Redis is paused: {during[0]} (504: outcome unknown)")
    check(pong and d1.ws.open and d2.ws.open or 4009 in d1.closes + d2.closes,
          "sockets stay up while Redis is paused")
    check(back, "publishes are served again after SIGCONT")
    for d in (d1, d2):
        if d.closes:  # the stream was interrupted: it resumes like a client does
            await d.connect(a)
    await until(lambda: d1.seq >= top and d2.seq >= top, 15)
    check(ok == list(range(1, 6)) and d1.seq == d2.seq == top and not d1.violations
          and not d2.violations,
          f"nothing lost or doubled across the pause: both at {d1.seq}/{d2.seq} of {top}, "
          f"{d1.violations + d2.violations}")
    await d1.close()
    await d2.close()


async def redis_restarted(redis, a, b):
    d1 = Device("u4", "mac")
    await d1.connect(a)
    await until(lambda: d1.welcomes)
    for i in range(3):
        b.post_credits("u4", i)
    await until(lambda: d1.seq == 3)
    old_epoch = d1.epoch
    redis.kill()
    # Both noticed: nothing is sent now (d1 is on a, whose lost EVAL would
    # be an unknown outcome, 1013, not a NACK).
    check(await until(lambda: not a.ready() and not b.ready(), 10), "a and b not ready without Redis")
    refused = b.post_credits("u4", 10)[0]
    check(refused == 503, f"a publish while Redis is down: {refused}")
    await d1.send_progress("while-down", 1)
    await until(lambda: "while-down" in d1.nacks)
    check(d1.nacks.get("while-down") == "unavailable",
          f"a client message while Redis is down: NACK {d1.nacks.get('while-down')}")
    pongs = d1.pongs
    await d1.ws.send(json.dumps({"type": "PING"}))
    check(await until(lambda: d1.pongs > pongs, 5) and d1.ws.open,
          "sockets stay up while Redis is down (a PING answered)")
    redis.start()
    ready = await until(lambda: a.ready() and b.ready(), 20)
    check(ready, "both nodes ready again after Redis restarted")
    status, seq = b.post_credits("u4", 20)
    check(status == 200, f"publishes served after the restart ({status}, seq {seq})")
    # The old epoch is gone with Redis' data: the device is told to resume
    # (4009) and resyncs with a SNAPSHOT of the new epoch.
    await until(lambda: 4009 in d1.closes, 15)
    check(4009 in d1.closes, f"the device is told its stream was interrupted ({d1.closes})")
    await d1.connect(b)
    await until(lambda: len(d1.welcomes) >= 2)
    w = d1.welcomes[-1]
    check(not w["recovered"] and w["epoch"] != old_epoch,
          f"it resyncs in a new epoch ({old_epoch} -> {w['epoch']}, recovered={w['recovered']})")
    await d1.close()


async def node_killed(a, b, c):
    # Node c reconnects to the restarted Redis on its own schedule.
    check(await until(lambda: a.ready() and b.ready() and c.ready(), 20),
          "all three nodes ready before the kill")
    users = [Device(f"k{i}", "dev") for i in range(30)]
    for d in users:
        await d.connect(c)
    await until(lambda: all(d.welcomes for d in users))
    published = {d.user: 0 for d in users}

    async def load(rounds):
        for r in range(rounds):
            for d in users:
                status, seq = (a if r % 2 else b).post_credits(d.user, r)
                if status == 200:
                    published[d.user] = max(published[d.user], seq)
            await asyncio.sleep(0)

    await load(3)
    c.proc.send_signal(signal.SIGKILL)
    c.proc.wait()
    await load(3)
    # Each device sees its socket die and resumes on another node.
    await until(lambda: all(d.closes for d in users), 10)
    for i, d in enumerate(users):
        await d.connect(a if i % 2 else b)
    await load(2)
    await until(lambda: all(d.seq == published[d.user] for d in users), 15)
    short = [d.user for d in users if d.seq != published[d.user]]
    recovered = sum(1 for d in users if d.welcomes[-1]["recovered"])
    bad = [v for d in users for v in d.violations]
    check(not short and not bad and recovered == len(users),
          f"node killed with -9: {len(users)} devices resumed elsewhere, {recovered} "
          f"recovered, {len(short)} short of their top, violations {bad[:3]}")
    for d in users:
        await d.close()


def readyz_status(n):
    """/readyz's HTTP status (None: no answer), where ready() says only yes or no."""
    try:
        with urllib.request.urlopen(f"http://{n.addr}/readyz", timeout=2 * SCALE) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


async def node_stopped(redis, a, b):
    phone, watch = Device("s1", "phone"), Device("s1", "watch")
    await phone.connect(a)
    await watch.connect(b)
    await until(lambda: phone.welcomes and watch.welcomes)
    for i in range(3):
        b.post_credits("s1", i)
    await until(lambda: phone.seq == 3)
    # SIGHUP reloads nothing: said, and the node goes on serving.
    # (A signal's default action kills before the process runs again: an
    # HTTP answer after it shows the node took it.)
    a.proc.send_signal(signal.SIGHUP)
    check(a.ready() and a.proc.poll() is None, "SIGHUP ignored: the node still serves")
    # From the signal on it is not ready (a balancer sends it no more
    # sockets), though it stops only once Redis heard its devices leave:
    # Redis paused holds it, and its probe would take seconds to say so.
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        a.proc.send_signal(signal.SIGTERM)
        # Within 2.5 s: sooner than the probe could find Redis paused (3 s).
        unready = await until(lambda: a.proc.poll() is None and readyz_status(a) == 503,
                              2.5 * SCALE)
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    check(unready, "not ready from SIGTERM on, while still stopping")
    code = a.proc.wait(timeout=15 * SCALE)
    await until(lambda: phone.closes)
    # The node stops once Redis has its devices' departure: the other node
    # tells its own at once (a position check would take 30 s).
    gone = await until(lambda: ("DEVICE_DISCONNECTED", "phone") in watch.presence, timeout=10)
    check(code == 0 and phone.closes == [1001] and gone,
          f"a node stopped with SIGTERM: exit {code}, its device closed with {phone.closes}, "
          f"the device on the other node hears it leave within 2 s: {gone}")
    b.post_credits("s1", 9)
    await phone.connect(b)
    await until(lambda: phone.seq == 4)
    check(phone.welcomes[-1]["recovered"] and phone.seq == 4 and not phone.violations,
          f"it resumes on the other node: recovered={phone.welcomes[-1]['recovered']}, "
          f"at {phone.seq} of 4")
    await phone.close()
    await watch.close()


async def redis_password(work):
    redis = Redis(work)
    redis.start("--requirepass", "s3cret-pass")
    log = os.path.join(work, "wrong.log")
    good = node("p1", redis.port, ":s3cret-pass@")
    with open(log, "w") as f:
        wrong = node("p2", redis.port, ":not-it@", stderr=f)
    try:
        check(await until(good.ready, 10) and good.post_credits("pw", 1) == (200, 1),
              "a node with the instance's password is ready and publishes")
        await until(lambda: "AUTH refused" in open(log).read(), 5)
        text = open(log).read()
        check(not wrong.ready() and "AUTH refused" in text and "not-it" not in text,
              "a node with a wrong password is not ready, says AUTH refused, never logs it")
        # Refused again at every tick, on both links: said once a minute.
        before = wrong.metric("kullsync_broker_reconnects_total") or 0
        refused = await until(
            lambda: (wrong.metric("kullsync_broker_reconnects_total") or 0) >= before + 4, 10)
        text = open(log).read()
        check(refused and text.count("AUTH refused") == 1 and "link lost" not in text,
              f"a wrong password is said once, not at every tick: {text.count('AUTH refused')} "
              f"AUTH refused, {text.count('link lost')} link lost")
    finally:
        for n in (good, wrong):
            n.proc.send_signal(signal.SIGTERM)
            n.proc.wait(timeout=10)
        redis.kill()


async def redis_absent(work):
    port = free_port()
    log = os.path.join(work, "absent.log")
    with open(log, "w") as f:
        n = Node(BINARY, "x1", f"redis://127.0.0.1:{port}", stderr=f)  # warn: the default
    try:
        said = await until(lambda: f"127.0.0.1:{port}: cannot connect" in open(log).read(), 5)
        check(said and not n.ready(),
              "a Redis that is not there: not ready, and the log says where: "
              + next((l for l in open(log).read().splitlines() if "cannot connect" in l),
                     "(nothing)"))
    finally:
        n.proc.send_signal(signal.SIGTERM)
        n.proc.wait(timeout=10)


async def redis_full(work):
    redis = Redis(work)
    redis.start("--maxmemory-policy", "noeviction")
    log = os.path.join(work, "full.log")
    with open(log, "w") as f:
        n = node("f1", redis.port, stderr=f)
    d = Device("full", "mac")
    try:
        check(await until(n.ready, 10), "a node on a Redis that will fill up")
        await d.connect(n)
        await until(lambda: d.welcomes)
        check(n.post_credits("full", 1) == (200, 1), "a publish while there is room")
        redis_command(redis.port, "CONFIG", "SET", "maxmemory", "1")
        status, _ = n.post_credits("full", 2)
        await d.send_progress("full-1", 5)
        await until(lambda: "full-1" in d.nacks, 5)
        check(status == 503 and d.nacks.get("full-1") == "unavailable",
              f"a full Redis: the backend's publish 503, the device's NACK unavailable "
              f"({status}, {d.nacks})")
        said = await until(lambda: "liveness key was refused (OOM" in open(log).read(), 20)
        text = open(log).read()
        check(said and "OOM" in text,
              "the node says its liveness key was refused: "
              + next((l for l in text.splitlines() if "liveness" in l), "(nothing)"))
        redis_command(redis.port, "CONFIG", "SET", "maxmemory", "0")
        status, seq = n.post_credits("full", 3)
        await d.send_progress("full-1", 5)  # the device resends it, as its outbox would
        await until(lambda: "full-1" in d.acks and d.seq >= 3, 5)
        check(status == 200 and seq == 2 and d.acks.get("full-1") == 3 and not d.violations,
              f"room again: served, numbered on (seq {seq}, the device's message "
              f"{d.acks.get('full-1')}, {d.violations})")
        await d.close()
    finally:
        n.proc.send_signal(signal.SIGTERM)
        n.proc.wait(timeout=10)
        redis.kill()


async def twin_node_ids(work):
    """Two running nodes given one --node-id are told of (a restarted node's
    old listing is not: it stops moving on)."""
    redis = Redis(work)
    redis.start()
    logs = [os.path.join(work, f"twin{i}.log") for i in range(2)]
    twin = "another running node has this node's --node-id"
    nodes = []
    try:
        with open(logs[0], "w") as f:
            nodes.append(node("tw", redis.port, stderr=f))
        check(await until(nodes[0].ready, 10), "the first node of id tw is ready")
        with open(logs[1], "w") as f:
            nodes.append(node("tw", redis.port, stderr=f))
        said = await until(lambda: all(twin in open(l).read() for l in logs), 20)
        check(said, "two running nodes with one --node-id: each says so: "
              + " / ".join(next((x for x in open(l).read().splitlines() if twin in x), "(nothing)")
                           for l in logs))
    finally:
        for n in nodes:
            n.proc.send_signal(signal.SIGTERM)
            n.proc.wait(timeout=10)
        redis.kill()


async def main():
    work = tempfile.mkdtemp()
    redis = Redis(work)
    redis.start()
    nodes = [node(n, redis.port) for n in ("a", "b", "c")]
    try:
        check(await until(lambda: all(n.ready() for n in nodes), 10), "three nodes ready")
        a, b, c = nodes
        d1 = await numbering_and_presence(a, b)
        await resume_elsewhere(a, b, d1)
        await dedup_elsewhere(a, b)
        await redis_paused(redis, a, b)
        await redis_restarted(redis, a, b)
        await node_killed(a, b, c)
        await node_stopped(redis, a, b)
        await redis_password(work)
        await redis_absent(work)
        await redis_full(work)
        await twin_node_ids(work)
    finally:
        for n in nodes:
            if n.proc.poll() is None:
                n.proc.send_signal(signal.SIGTERM)
        for n in nodes:
            try:
                n.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                n.proc.kill()
        if redis.proc.poll() is None:
            redis.kill()
    finish()


asyncio.run(main())
