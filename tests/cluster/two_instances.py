"""Two nodes on two redis-servers (users sharded over both): one instance
lost is lost to its users alone.
  - both instances serve: each user numbered on its own instance, a device
    on one node hearing what the other node published;
  - instance 2 killed: every node stays ready (a balancer keeps sending them
    devices), and says the instance is lost (kullsync_broker_instances_ready
    1 of 2); the users of instance 1 publish and connect as before, while
    instance 2's are refused: HTTP 503, a new device closed 1013; the
    operators' API names the instance that keeps a user;
  - instance 2 back (empty): its users publish again, in a new epoch, and
    their devices, closed 4009, resume into it.

    two_instances.py <kullsync-server binary>
"""
import asyncio
import os
import sys
import tempfile

from cluster_common import (Device, Node, Redis, check, finish, redis_command, stop_all,
                            testkit, until)

BINARY = sys.argv[1]


def holder(redises, user):
    """Which of the redis-servers holds the user's stream (its index)."""
    for i, r in enumerate(redises):
        if redis_command(r.port, "EXISTS", f"ks:{{{user}}}:st") == 1:
            return i
    return None


async def main():
    work = tempfile.mkdtemp()
    redises = [Redis(work + "/1"), Redis(work + "/2")]
    for r in redises:
        os.makedirs(r.work)
        r.start()
    brokers = ",".join(f"redis://127.0.0.1:{r.port}" for r in redises)
    a, b = Node(BINARY, "a", brokers), Node(BINARY, "b", brokers)
    later = []
    try:
        check(await until(lambda: a.ready() and b.ready(), 10), "both nodes ready")
        # Users land on an instance by their id's hash: publish until each
        # instance holds one.
        on = {}
        for k in range(64):
            user = f"u{k}"
            status, _ = a.post_credits(user, 1)
            if status != 200:
                check(False, f"{user} published ({status})")
            on.setdefault(holder(redises, user), user)
            if 0 in on and 1 in on:
                break
        check(0 in on and 1 in on, f"a user on each instance ({on})")
        first, second = on[0], on[1]
        for i, u in enumerate((first, second)):
            status, body = testkit.call(b.addr, "GET", f"/api/sync/users/{u}")
            check(status == 200 and body.get("redis") == f"127.0.0.1:{redises[i].port}",
                  f"the operators' API says which instance keeps {u} ({body.get('redis')})")

        devices = {u: Device(u, "mac") for u in (first, second)}
        for d in devices.values():
            await d.connect(b)
        check(await until(lambda: all(d.seq == 1 for d in devices.values()), 10),
              "a device of each user on b has its first publish")
        for u in (first, second):
            status, seq = a.post_credits(u, 2)
            check(status == 200 and seq == 2, f"{u}: published on a ({status}, {seq})")
        check(await until(lambda: all(d.seq == 2 for d in devices.values()), 10),
              "each device on b hears what a published")

        redises[1].kill()
        lost = lambda n: n.metric("kullsync_broker_instances_ready") == 1  # noqa: E731
        check(await until(lambda: lost(a) and lost(b), 15),
              "both nodes say one instance of two is ready")
        check(a.ready() and b.ready(), "both nodes stay ready (/readyz 200)")
        status, seq = a.post_credits(first, 3)
        check(status == 200 and seq == 3, f"instance 1's user publishes ({status}, {seq})")
        check(await until(lambda: devices[first].seq == 3, 10), "and its device hears it")
        status, _ = a.post_credits(second, 3)
        check(status == 503, f"instance 2's user is refused: 503 ({status})")
        status, body = testkit.call(a.addr, "GET", f"/api/sync/users/{second}")
        check(status == 503 and f"kept in Redis 127.0.0.1:{redises[1].port}" in body["error"],
              f"asked for that user, the API names the lost instance ({body})")
        newcomer = Device(first, "ipad")
        await newcomer.connect(a)
        check(await until(lambda: newcomer.seq == 3, 10),
              "a new device of instance 1's user joins on a with its state")
        stranger = Device(second, "ipad")
        await stranger.connect(a)
        check(await until(lambda: stranger.closes, 10) and stranger.closes[0] == 1013,
              f"a new device of instance 2's user is closed 1013 ({stranger.closes})")
        check(devices[first].violations == [] and devices[first].closes == [],
              f"instance 1's device kept its socket and stream ({devices[first].closes} "
              f"{devices[first].violations})")

        # A revocation lives in instance 1: revoking instance 2's user works
        # (its order to close the sockets at once cannot be published).
        secret = os.path.join(work, "secret")
        with open(secret, "w") as f:
            f.write("two-instances-test-secret-0123456789abcdef\n")
        c = Node(BINARY, "c", brokers, extra=("--auth", "jwt", "--jwt-secret-file", secret))
        later.append(c)
        check(await until(c.ready, 10), "a node with signed tokens is ready without instance 2")
        status, body = testkit.call(c.addr, "POST", f"/api/sync/users/{second}/revoke", {})
        stored = redis_command(redises[0].port, "ZCARD", "ks:revoked:z")
        check(status == 200 and body.get("closed") == 0 and stored == 1,
              f"revoking instance 2's user: 200, stored in instance 1 ({status} {body}, "
              f"{stored} stored)")

        redises[1].start()
        both = lambda n: n.metric("kullsync_broker_instances_ready") == 2  # noqa: E731
        check(await until(lambda: both(a) and both(b), 20), "instance 2 back on both nodes")
        status, seq = a.post_credits(second, 4)
        check(status == 200 and seq == 1, f"instance 2's user publishes again, a new epoch "
              f"({status}, {seq})")
        # Its device on b lost its stream with the instance: it is closed
        # 4009 (at once, or once the instance is back) and resumes.
        d = devices[second]
        check(await until(lambda: d.closes, 15) and d.closes[0] == 4009,
              f"instance 2's device on b is told its stream broke: 4009 ({d.closes})")
        old_epoch = d.epoch
        await d.connect(b)
        check(await until(lambda: d.epoch != old_epoch and d.seq == 1, 15),
              f"it resumes into the new epoch with a SNAPSHOT at 1 ({d.seq})")
        status, seq = a.post_credits(second, 5)
        check(status == 200 and seq == 2
              and await until(lambda: d.applied and d.applied[-1][1:] == (2, 5), 10),
              f"and hears what follows ({status}, {seq}, {d.applied[-1:]})")
        check(devices[first].violations == [] and devices[second].violations == [],
              f"no device skipped or doubled a position ({devices[first].violations} "
              f"{devices[second].violations})")
    finally:
        stop_all((a, b, *later), redises)
    finish()


if __name__ == "__main__":
    asyncio.run(main())
