"""One kullsync-server at 1k, 5k, 10k and 19k sockets, side by side in one run.

Called by bench/scale (which builds the binaries). For each kind of socket
(v1 with legacy tokens, v2 with legacy tokens, v2 with HS256 JWTs, v2 over
TLS) and each count, a fresh server is filled by several kullsync-bench
generators (a process holds at most ~20,000 descriptors, and each source
address of 127.0.0.0/8 has its own ephemeral ports), then held idle while
the server pings every socket. Measured from /proc of the server:

- connect: sockets per second of wall time, and per server CPU second;
- RSS per socket (growth over the empty server);
- CPU per ping round trip (the server's CPU over the idle window divided by
  the pings it sent and the pongs it read);
- fan-out: deliveries per server CPU second with count/4 users x 4 devices,
  against the same at 400 devices;
- a node restart under N v2 client engines (kullsync-storm): every engine
  back, on v2, and when;
- a cluster node killed with -9 under N v2 client engines (two
  kullsync-resume processes): every one live again on the other two nodes
  at its user's top, with what was written meanwhile, none lost, doubled or
  gapped, and when.

Prints a markdown table (and the per-device cost's change from the smallest
count to the largest) and, with --plot DIR, charts DIR/scale.png. With
--rounds N the node's counts are measured N times, alternating, and each
figure is the median: the machine's speed moves from minute to minute, and a
count measured once moved a small cost by up to a fifth between runs.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import jwt  # python3-jwt

SECRET = b"kullsync-scale-bench-secret-0123456789abcdef"


def usage(pid):
    """(CPU seconds, RSS KiB) of a process. CPU from each thread's schedstat
    (nanoseconds; /proc/PID/stat counts 10 ms ticks, too coarse for 1k idle
    sockets)."""
    cpu = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                cpu += int(f.read().split()[0]) / 1e9
        except OSError:
            pass  # a thread that just ended
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return cpu, rss


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spread(option, url, addresses=4):
    """`option url` for a server on every address (0.0.0.0), once per
    loopback address 127.0.0.1..N: one host's thousands of connects to one
    address and port would spend the client engines' CPU on the kernel's
    search for a free ephemeral port (`__inet_check_established`), which
    devices with their own addresses never pay."""
    port = url.rsplit(":", 1)[1].split("/")[0]
    scheme = url.split("://")[0]
    out = []
    for k in range(1, addresses + 1):
        out += [option, f"{scheme}://127.0.0.{k}:{port}/ws"]
    return out


def redis_info(port, section):
    """One INFO section as a dict; {} while the server does not answer."""
    r = subprocess.run(["redis-cli", "-p", str(port), "info", section], capture_output=True,
                       text=True)
    return dict(line.split(":", 1) for line in r.stdout.splitlines() if ":" in line)


def command_counts(port):
    """Calls per command so far (INFO commandstats)."""
    out = {}
    for k, v in redis_info(port, "commandstats").items():
        if k.startswith("cmdstat_"):
            out[k[len("cmdstat_"):]] = int(v.split(",")[0].split("=")[1])
    return out


class Run:
    def __init__(self, args, work):
        self.a, self.work = args, work
        self.next_source = 2  # 127.0.0.K: a fresh address per generator, no TIME_WAIT clash

    def sources(self, sockets):
        first = self.next_source
        self.next_source += (sockets + 14999) // 15000
        if self.next_source > 250:
            self.next_source, first = 2 + (sockets + 14999) // 15000, 2
        return first

    def server(self, kind, ping, extra=(), listen="127.0.0.1:0"):
        cmd = [f"{self.a.bin}/kullsync-server", "--listen", listen, "--log-level", "error",
               "--limits", "off", "--max-sockets-per-user", "256", "--ping-interval", str(ping),
               *extra]
        if kind == "v2+jwt":
            cmd += ["--auth", "jwt", "--jwt-secret-file", f"{self.work}/secret",
                    "--max-token-lifetime", "86400"]
        else:
            cmd += ["--auth", "legacy"]
        if kind == "v2+tls":
            cmd += ["--tls-cert", f"{self.work}/cert.pem", "--tls-key", f"{self.work}/key.pem"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(f"{self.work}/server.err", "w"),
                             text=True)
        line = p.stdout.readline()
        if '"listening"' not in line:
            p.kill()
            sys.exit(f"bench/scale: the server did not start: {open(f'{self.work}/server.err').read()[-300:]}")
        addr = json.loads(line)["listening"]
        scheme = "wss" if kind == "v2+tls" else "ws"
        return p, f"{scheme}://{addr}/ws"

    def tokens(self, first_user, n):
        path = f"{self.work}/tokens.{first_user}"
        now = int(time.time())
        with open(path, "w") as f:
            for u in range(first_user, first_user + n):
                f.write(jwt.encode({"sub": f"u{u}", "device": "d0", "iat": now, "exp": now + 3600},
                                   SECRET, algorithm="HS256") + "\n")
        return path

    def idle(self, kind, count):
        """Fills a fresh server with `count` idle sockets; returns its figures."""
        # The same number of generators at every count (as many as the
        # largest needs): one more process on two cores changes the server's
        # CPU per connect by itself.
        gens = max(1, (max(self.counts) + self.a.per_generator - 1) // self.a.per_generator)
        shares = [count // gens + (1 if i < count % gens else 0) for i in range(gens)]
        token_files = []
        if kind == "v2+jwt":  # signed before the clock starts
            first = 0
            for s in shares:
                token_files.append(self.tokens(first, s))
                first += s
        srv, url = self.server(kind, self.a.ping)
        time.sleep(0.3)
        cpu0, rss0 = usage(srv.pid)
        procs, first = [], 0
        for i, share in enumerate(shares):
            cmd = [f"{self.a.bin}/bench/kullsync-bench", "idle", "--hold", "--url", url,
                   "--conns", str(share), "--first-user", str(first), "--threads", "1",
                   "--protocol", "v1" if kind == "v1" else "v2",
                   "--source-first", str(self.sources(share)),
                   "--connect-rate", str(self.a.connect_rate / gens)]
            if token_files:
                cmd += ["--tokens", token_files[i]]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
            first += share
        start = time.monotonic()
        lines = [json.loads(p.stdout.readline() or "{}") for p in procs]
        wall = time.monotonic() - start
        cpu1, rss1 = usage(srv.pid)
        connected = sum(x.get("connected", 0) for x in lines)
        errors = [x["first_error"] for x in lines if "first_error" in x]
        # Idle: whole ping intervals, after one to settle (presence, first pings).
        time.sleep(self.a.ping)
        cpu2, _ = usage(srv.pid)
        window = self.a.ping * self.a.idle_intervals
        time.sleep(window)
        cpu3, rss3 = usage(srv.pid)
        alive = srv.poll() is None
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
        srv.send_signal(signal.SIGTERM)
        srv.wait()
        pings = connected * self.a.idle_intervals
        ping_cpu = (cpu3 - cpu2) / max(pings, 1)
        # The sockets that connected first are pinged while the others still
        # connect (more of them the larger the count): that keepalive CPU,
        # at the rate measured below, is not the connects' cost.
        pinged = sum(x.get("pings", 0) for x in lines)
        connect_cpu = max(cpu1 - cpu0 - pinged * ping_cpu, 0)
        return {"kind": kind, "count": count, "connected": connected, "failed": count - connected,
                "first_error": errors[0] if errors else "", "server_alive": alive,
                "connect_per_s": connected / wall if wall else 0,
                "connect_per_cpu_s": connected / connect_cpu if connect_cpu > 0 else 0,
                "connect_cpu_us": connect_cpu / max(connected, 1) * 1e6,
                "connect_cpu_us_with_pings": (cpu1 - cpu0) / max(connected, 1) * 1e6,
                "pings_while_connecting": pinged,
                "kib_per_socket": (rss3 - rss0) / max(connected, 1),
                "ping_cpu_us": ping_cpu * 1e6,
                "idle_core_pct": (cpu3 - cpu2) / window * 100}

    def cluster_up(self, name, listen="127.0.0.1:0"):
        """A redis-server and three v2 nodes on it: (redis, its port, [(node, url)])."""
        port = free_port()
        redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--dir", self.work],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if redis_info(port, "server"):
                break
            time.sleep(0.05)
        nodes = [self.server("v2", 30, ["--broker", f"redis://127.0.0.1:{port}",
                                        "--node-id", f"{name}-{n}"], listen=listen)
                 for n in range(3)]
        return redis, port, nodes

    def cluster_down(self, redis, nodes, sig=signal.SIGTERM):
        for p, _ in nodes:
            if p.poll() is None:
                p.send_signal(sig)
        for p, _ in nodes:
            p.wait()
        redis.kill()
        redis.wait()

    def cluster_fanout(self, devices):
        """Fan-out on three nodes of one redis-server: devices/3 users x 3 v2
        devices, one on each node (device d on node d mod 3: with 4 a user,
        the first node would get half of them, past the descriptors a
        process holds), from as many generators as the descriptors need,
        started together at the same connect pace so that their measured
        windows coincide. Deliveries per CPU second of the nodes and Redis."""
        redis, _, nodes = self.cluster_up("fan")
        urls = [a for _, u in nodes for a in ("--url", u)]
        as_args = lambda ps: [a for pid in ps for a in ("--server-pid", str(pid))]
        node_pids, all_pids = [p.pid for p, _ in nodes], [p.pid for p, _ in nodes] + [redis.pid]
        # The windows coincide: the first generator measures Redis, the
        # second the nodes, the others all of them (a check on the split).
        pid_sets = [as_args([redis.pid]), as_args(node_pids)]
        users = devices // 3
        gens = max(1, (devices + self.a.per_generator - 1) // self.a.per_generator)
        procs, first = [], 0
        for g in range(gens):
            share = users // gens + (1 if g < users % gens else 0)
            pids = pid_sets[g] if g < len(pid_sets) and gens > 2 else as_args(all_pids)
            procs.append(subprocess.Popen(
                [f"{self.a.bin}/bench/kullsync-bench", "fanout", *urls, *pids,
                 "--users", str(share), "--devices", "3", "--window", "4",
                 "--seconds", str(self.a.seconds), "--protocol", "v2", "--threads", "1",
                 "--first-user", str(first), "--source-first", str(self.sources(share * 3)),
                 "--connect-rate", str(self.a.connect_rate / gens)],
                stdout=subprocess.PIPE, text=True))
            first += share
        outs = [json.loads(p.communicate(timeout=1800)[0] or "{}") for p in procs]
        self.cluster_down(redis, nodes)
        if not all("delivered" in o for o in outs):
            return {"devices": devices, "failed": json.dumps(outs)}
        delivered = sum(o["delivered"] for o in outs)
        split = {}
        if gens > 2:
            split = {"redis_cpu_s": outs[0]["server_cpu_s"], "nodes_cpu_s": outs[1]["server_cpu_s"]}
            cpu = [split["redis_cpu_s"] + split["nodes_cpu_s"]] + [o["server_cpu_s"] for o in outs[2:]]
        else:
            cpu = [o["server_cpu_s"] for o in outs]  # each: all nodes and Redis in its window
        return {"devices": devices, "generators": gens, **split,
                "connected": sum(o["connected"] for o in outs), "delivered": delivered,
                "server_cpu_s": sum(cpu) / len(cpu), "server_cpu_s_spread": [min(cpu), max(cpu)],
                "delivered_per_cpu_s": delivered / (sum(cpu) / len(cpu)),
                "p99_ms": max(o["p99_ms"] for o in outs),
                "parts": [{k: o.get(k) for k in ("connected", "failed", "first_error",
                                                 "connect_s", "delivered", "server_cpu_s")}
                          for o in outs]}

    def cluster(self, per_node):
        """Three nodes on one redis-server, `per_node` v2 devices each (one
        per user): Redis memory and commands per device, and the nodes' CPU
        per connect, while the devices arrive."""
        redis, port, nodes = self.cluster_up("scale")
        time.sleep(1)
        mem0 = int(redis_info(port, "memory")["used_memory"])
        cmds0 = command_counts(port)
        nodes_cpu0 = sum(usage(p.pid)[0] for p, _ in nodes)
        redis_cpu0 = usage(redis.pid)[0]
        gens = max(1, (per_node + self.a.per_generator - 1) // self.a.per_generator)
        procs, first = [], 0
        for _, url in nodes:
            for g in range(gens):
                share = per_node // gens + (1 if g < per_node % gens else 0)
                procs.append(subprocess.Popen(
                    [f"{self.a.bin}/bench/kullsync-bench", "idle", "--hold", "--url", url,
                     "--conns", str(share), "--first-user", str(first), "--threads", "1",
                     "--protocol", "v2", "--source-first", str(self.sources(share)),
                     "--connect-rate", str(self.a.connect_rate / (3 * gens))],
                    stdout=subprocess.PIPE, text=True))
                first += share
        lines = [json.loads(p.stdout.readline() or "{}") for p in procs]
        time.sleep(2)  # presence and subscriptions settle
        connected = sum(x.get("connected", 0) for x in lines)
        cpu_nodes = sum(usage(p.pid)[0] for p, _ in nodes)
        cpu_redis = usage(redis.pid)[0]
        mem1 = int(redis_info(port, "memory")["used_memory"])
        cmds1 = command_counts(port)
        keys = int(redis_info(port, "keyspace").get("db0", "keys=0").split(",")[0].split("=")[1])
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
        self.cluster_down(redis, nodes)
        calls = {k: cmds1.get(k, 0) - cmds0.get(k, 0) for k in cmds1}
        n = max(connected, 1)
        return {"per_node": per_node, "connected": connected,
                "redis_bytes_per_device": (mem1 - mem0) / n, "redis_keys": keys,
                "redis_commands_per_device": sum(calls.values()) / n,
                "subscribes_per_device": (calls.get("subscribe", 0) + calls.get("ssubscribe", 0)) / n,
                "commands": {k: v for k, v in sorted(calls.items(), key=lambda x: -x[1]) if v},
                "node_cpu_us_per_connect": (cpu_nodes - nodes_cpu0) / n * 1e6,
                "redis_cpu_us_per_connect": (cpu_redis - redis_cpu0) / n * 1e6}

    def restart(self, engines):
        """A node alone restarted (SIGTERM, then started again on its port)
        under `engines` v2 client engines, four per user."""
        # On every address, dialled at four loopback ones (spread()).
        port = free_port()
        srv, url = self.server("v2", 30, listen=f"0.0.0.0:{port}")
        storm = subprocess.Popen(
            [f"{self.a.bin}/bench/kullsync-storm", *spread("--url", url), "--clients", str(engines),
             "--users", str(max(1, engines // 4)), "--jitter", "0.5", "--io-threads", "2",
             "--timeout", "180"], stdout=subprocess.PIPE, text=True)
        up = json.loads(storm.stdout.readline() or "{}")
        r = {"engines": engines, "connected": up.get("connected", 0), "connect_ms": up.get("ms")}
        if r["connected"] == engines:
            t0 = time.monotonic()
            engines_cpu0 = usage(storm.pid)[0]
            srv.send_signal(signal.SIGTERM)
            # The old node's CPU for its whole life is in its rusage; the
            # stop's share is what it spent after the signal.
            stop_cpu0 = usage(srv.pid)[0]
            _, _, ru = os.wait4(srv.pid, 0)
            srv.returncode = 0
            r["stop_s"] = time.monotonic() - t0
            r["stop_cpu_s"] = ru.ru_utime + ru.ru_stime - stop_cpu0
            r["stop_engines_cpu_s"] = usage(storm.pid)[0] - engines_cpu0
            srv, _ = self.server("v2", 30, listen=f"0.0.0.0:{port}")
            r.update(json.loads(storm.stdout.readline() or "{}"))
            # Where the time went: the restarted server's CPU, the engines'.
            r["server_cpu_s"] = usage(srv.pid)[0]
            try:
                r["engines_cpu_s"] = usage(storm.pid)[0] - engines_cpu0
            except OSError:  # already gone
                r["engines_cpu_s"] = None
        storm.kill()
        storm.wait()
        srv.send_signal(signal.SIGTERM)
        srv.wait()
        return r

    def failover(self, readers, missed):
        """Three nodes on one redis-server; `readers` v2 engines on node A
        (one user each), each user's writer engine on B or C. A is killed
        with -9; its readers go to the writers' node (as a balancer would)
        while every writer writes `missed` messages."""
        redis, port, nodes = self.cluster_up("failover", listen="0.0.0.0:0")
        (a, a_url), (_, b_url), (_, c_url) = nodes
        shares = [readers // 2, readers - readers // 2]
        procs = [subprocess.Popen(
            [f"{self.a.bin}/bench/kullsync-resume", *spread("--url", a_url),
             *spread("--writer-url", url), *spread("--resume-url", url),
             "--clients", str(share), "--missed", str(missed),
             "--killed-by-caller", "--io-threads", "2", "--timeout", "240"],
            stdout=subprocess.PIPE, text=True) for share, url in zip(shares, (b_url, c_url))]
        up = [json.loads(p.stdout.readline() or "{}") for p in procs]
        r = {"readers": readers, "missed": missed}
        if all(x.get("phase") == "connected" for x in up):
            watched = {"nodes": [p for p, _ in nodes[1:]], "redis": [redis], "engines": procs}
            cpu0 = {k: sum(usage(p.pid)[0] for p in ps) for k, ps in watched.items()}
            t0 = time.monotonic()
            a.kill()  # SIGKILL
            for p in procs:
                p.send_signal(signal.SIGUSR1)
            outs = [json.loads(p.stdout.readline() or "{}") for p in procs]
            # Where the time went, from the kill until the last reader was live.
            r["wall_s"] = time.monotonic() - t0
            for k, ps in watched.items():
                try:
                    r[f"{k}_cpu_s"] = sum(usage(p.pid)[0] for p in ps) - cpu0[k]
                except OSError:  # a process already gone
                    r[f"{k}_cpu_s"] = None
            r["parts"] = outs
            if all(o.get("mode") == "failover" for o in outs):
                for k in ("resumed", "replayed", "lost", "wrong_state", "duplicates", "gaps"):
                    r[k] = sum(o[k] for o in outs)
                for k in ("live_p50_ms", "live_p99_ms", "live_max_ms"):
                    r[k] = max(o[k] for o in outs)  # of the two halves: the later
            else:  # a process gave up (a phase timed out): no figures to trust
                r["failed"] = "a resume process gave up: " + json.dumps(outs)
        else:
            r["failed"] = "the engines did not all connect"
        for p in procs:
            p.kill()
            p.wait()
        self.cluster_down(redis, nodes, signal.SIGKILL)  # A is gone already
        return r

    def fanout(self, devices):
        srv, url = self.server("v1", 30)
        cmd = [f"{self.a.bin}/bench/kullsync-bench", "fanout", "--url", url,
               "--users", str(devices // 4), "--devices", "4", "--window", "4",
               "--seconds", str(self.a.seconds), "--server-pid", str(srv.pid),
               "--source-first", str(self.sources(devices))]
        out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=600).stdout
        srv.send_signal(signal.SIGTERM)
        srv.wait()
        r = json.loads(out)
        r["devices"] = devices
        return r


def median_row(rows):
    """One row for rounds of the same figure: each number the median of the
    rounds (a count that failed in any round counts as failed)."""
    out = dict(rows[0])
    for k, v in rows[0].items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        vals = sorted(r[k] for r in rows)
        mid = len(vals) // 2
        if len(vals) % 2 or isinstance(v, int):  # counts stay whole: the lower median
            out[k] = vals[mid] if len(vals) % 2 else vals[mid - 1]
        else:
            out[k] = (vals[mid - 1] + vals[mid]) / 2
    for k in ("count", "devices"):  # what was measured, not a measurement
        if k in rows[0]:
            out[k] = rows[0][k]
    if "connected" in out:
        out["connected"] = min(r["connected"] for r in rows)
    if "failed" in out:
        out["failed"] = max(r["failed"] for r in rows)
    if "server_alive" in out:
        out["server_alive"] = all(r["server_alive"] for r in rows)
    out["rounds"] = len(rows)
    return out


def rounds_of(n, items, measure):
    """Measures every item `n` times, the items alternating within each
    round (so that the machine's slow minutes fall on all of them alike),
    and returns the median row of each, in the items' order (every row is
    printed to stderr as it comes)."""
    every = {i: [] for i in range(len(items))}
    for _ in range(n):
        for i, item in enumerate(items):
            r = measure(item)
            if r is None:
                continue
            print(json.dumps(r), file=sys.stderr, flush=True)
            every[i].append(r)
    return [median_row(every[i]) for i in range(len(items)) if every[i]]


def change(rows, key, kind=None):
    """The per-device cost's change from the smallest count to the largest."""
    sel = [r for r in rows if (kind is None or r["kind"] == kind) and not r.get("failed")]
    a, b = sel[0][key], sel[-1][key]
    return (b / a - 1) * 100 if a else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--counts", default="1000,5000,10000,19000")
    ap.add_argument("--kinds", default="v1,v2,v2+jwt,v2+tls")
    ap.add_argument("--ping", type=int, default=2, help="the server's --ping-interval")
    ap.add_argument("--idle-intervals", type=int, default=5, help="ping intervals measured idle")
    ap.add_argument("--seconds", type=float, default=8, help="each fan-out run")
    ap.add_argument("--per-generator", type=int, default=9500)
    ap.add_argument("--connect-rate", type=float, default=4000,
                    help="sockets per second, all generators together: the same pace at every "
                         "count, so that CPU per connect compares (0: as fast as accepted)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure the node's counts this many times, alternating, and report "
                         "the medians (the machine's speed moves between minutes)")
    ap.add_argument("--plot", default="")
    ap.add_argument("--cluster", default="1000,19000",
                    help="devices per node of a three-node cluster, comma-separated ('' to skip)")
    ap.add_argument("--cluster-fanout", default="399,57000",
                    help="devices of a three-node cluster's fan-out, all nodes together "
                         "('' to skip)")
    ap.add_argument("--restart", type=int, default=19000,
                    help="v2 client engines through a node restart (0 to skip)")
    ap.add_argument("--failover", type=int, default=19000,
                    help="v2 client engines on a cluster node killed with -9 (0 to skip)")
    ap.add_argument("--failover-missed", type=int, default=1,
                    help="messages each user's writer writes after the kill")
    a = ap.parse_args()
    counts = [int(c) for c in a.counts.split(",") if c]  # none: the cluster only
    kinds = a.kinds.split(",")
    with tempfile.TemporaryDirectory() as work:
        with open(f"{work}/secret", "wb") as f:
            f.write(SECRET)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=localhost",
                        "-days", "2", "-keyout", f"{work}/key.pem", "-out", f"{work}/cert.pem"],
                       check=True, capture_output=True)
        run = Run(a, work)
        run.counts = counts
        idle, rows = [], []
        for kind in kinds if counts else []:
            def held(count, kind=kind):
                # A kind that failed to hold a count holds no more at a
                # larger one (see its last row).
                if any(r["kind"] == kind and r["failed"] and r["count"] < count for r in rows):
                    return None
                rows.append(run.idle(kind, count))
                return rows[-1]
            idle += rounds_of(a.rounds, counts, held)
        clusters = []
        for per_node in ([int(c) for c in a.cluster.split(",")] if a.cluster else []):
            r = run.cluster(per_node)
            print(json.dumps(r), file=sys.stderr, flush=True)
            clusters.append(r)
        fan = rounds_of(a.rounds, [400] + counts, run.fanout) if counts else []
        cfan = []
        for devices in ([int(c) for c in a.cluster_fanout.split(",")] if a.cluster_fanout else []):
            cfan.append(run.cluster_fanout(devices))
            print(json.dumps(cfan[-1]), file=sys.stderr, flush=True)
        storms = []
        if a.restart:
            storms.append(run.restart(a.restart))
            print(json.dumps(storms[-1]), file=sys.stderr, flush=True)
        if a.failover:
            storms.append(run.failover(a.failover, a.failover_missed))
            print(json.dumps(storms[-1]), file=sys.stderr, flush=True)
    report(a, kinds, counts, idle, fan, clusters, cfan, storms)


def report(a, kinds, counts, idle, fan, clusters, cfan, storms):
    if counts:
        report_node(a, kinds, counts, idle, fan)
    if clusters:
        report_cluster(clusters)
    if cfan:
        report_cluster_fanout(cfan)
    if storms:
        report_storms(storms)
    print("\nraw:")
    for r in idle + clusters + fan + cfan + storms:
        print("  " + json.dumps(r))
    if a.plot and counts:
        plot(a.plot, kinds, counts, idle, fan)


def report_node(a, kinds, counts, idle, fan):
    print(f"Idle sockets: pings every {a.ping} s, {a.idle_intervals} intervals measured; "
          f"connects paced at {a.connect_rate:.0f}/s (0: unpaced). A connect's CPU leaves out "
          "the pings the sockets already connected answered meanwhile (counted by the "
          "generators, at the CPU per ping measured after); in brackets with them."
          + (f" Each figure the median of {a.rounds} rounds, the counts alternating."
             if a.rounds > 1 else "") + "\n")
    print("| kind | sockets | held | connects/s | connects per server CPU s | "
          "server CPU per connect | RSS per socket | CPU per ping round trip | idle core |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in idle:
        held = f"{r['connected']}" + ("" if r["server_alive"] else " (server died)")
        print(f"| {r['kind']} | {r['count']} | {held} | {r['connect_per_s']:.0f} | "
              f"{r['connect_per_cpu_s']:.0f} | {r['connect_cpu_us']:.0f} µs "
              f"({r.get('connect_cpu_us_with_pings', r['connect_cpu_us']):.0f}) | "
              f"{r['kib_per_socket']:.2f} KiB | {r['ping_cpu_us']:.1f} µs | {r['idle_core_pct']:.1f} % |")
    print(f"\nFrom {counts[0]} to {counts[-1]} sockets (or the most a kind held), "
          "per-socket cost change:\n")
    print("| kind | RSS per socket | CPU per ping | CPU per connect | (with the pings meanwhile) |")
    print("|---|---|---|---|---|")
    for k in kinds:
        print(f"| {k} | {change(idle, 'kib_per_socket', k):+.0f} % | "
              f"{change(idle, 'ping_cpu_us', k):+.0f} % | {change(idle, 'connect_cpu_us', k):+.0f} % | "
              f"{change(idle, 'connect_cpu_us_with_pings', k):+.0f} % |")
    base = fan[0]["delivered_per_server_cpu_s"]
    print("\nFan-out (v1, users x 4 devices, each user's first device keeps 4 updates in flight"
          + (f"; medians of {a.rounds} rounds, the counts alternating" if a.rounds > 1 else "")
          + "):\n")
    print("| devices | held | deliveries/s | deliveries per server CPU s | vs 400 devices | p99 |")
    print("|---|---|---|---|---|---|")
    for r in fan:
        print(f"| {r['devices']} | {r['connected']} | {r['delivered_per_s']:.0f} | "
              f"{r['delivered_per_server_cpu_s']:.0f} | "
              f"{r['delivered_per_server_cpu_s'] / base:.2f}x | {r['p99_ms']:.1f} ms |")


def report_cluster(clusters):
    if clusters:
        print("\nA cluster: three nodes on one redis-server, v2 devices (one per user) "
              "arriving on every node:\n")
        print("| devices per node | held | Redis memory per device | Redis keys | "
              "Redis commands per device | SUBSCRIBEs per device | node CPU per connect | "
              "Redis CPU per connect |")
        print("|---|---|---|---|---|---|---|---|")
        for r in clusters:
            print(f"| {r['per_node']} | {r['connected']} | {r['redis_bytes_per_device']:.0f} B | "
                  f"{r['redis_keys']} | {r['redis_commands_per_device']:.1f} | "
                  f"{r['subscribes_per_device']:.2f} | {r['node_cpu_us_per_connect']:.0f} µs | "
                  f"{r['redis_cpu_us_per_connect']:.0f} µs |")


def report_cluster_fanout(cfan):
    print("\nFan-out on a cluster (three nodes, one redis-server; users x 3 v2 devices, "
          "one on each node), per CPU second of the nodes and Redis:\n")
    print("| devices | generators | held | deliveries | nodes + Redis CPU s (spread "
          "over the generators' windows) | deliveries per CPU s | vs the first row | p99 |")
    print("|---|---|---|---|---|---|---|---|")
    base = next((r["delivered_per_cpu_s"] for r in cfan if "failed" not in r), None)
    for r in cfan:
        if "failed" in r:
            print(f"| {r['devices']} | failed: {r['failed'][:200]} | | | | | | |")
            continue
        lo, hi = r["server_cpu_s_spread"]
        print(f"| {r['devices']} | {r['generators']} | {r['connected']} | {r['delivered']} | "
              f"{r['server_cpu_s']:.2f} ({lo:.2f}–{hi:.2f}) | {r['delivered_per_cpu_s']:.0f} | "
              f"{r['delivered_per_cpu_s'] / base:.2f}x | {r['p99_ms']:.1f} ms |")


def report_storms(storms):
    print("\nReal client engines (reconnect policy, keepalive, v2 streams) through a "
          "node's end:\n")
    print("| event | engines | back | on v2 | resumed without a snapshot | lost / doubled / "
          "gapped | live again: p50 / p99 / last |")  # readers resume only on v2
    print("|---|---|---|---|---|---|---|")
    for r in storms:
        if "readers" in r:
            if r.get("failed"):
                print(f"| cluster node killed with -9 | {r['readers']} | {r['failed']} | | | | |")
                continue
            back = r["readers"] - r["lost"]
            print(f"| cluster node killed with -9 ({r['missed']} message(s) per user written "
                  f"meanwhile) | {r['readers']} | {back} | {back} | {r['resumed']} | "
                  f"{r['lost'] + r['wrong_state']} / {r['duplicates']} / {r['gaps']} | "
                  f"{r['live_p50_ms']:.0f} / {r['live_p99_ms']:.0f} / {r['live_max_ms']:.0f} ms "
                  f"after the kill |")
        else:
            if "back" not in r:
                print(f"| node restart | {r['engines']} | connected {r['connected']} first | "
                      "| | | |")
                continue
            stop = (f"; {r['stop_s']:.1f} s to stop, {r['stop_cpu_s']:.2f} s of its CPU, "
                    f"the engines' {r['stop_engines_cpu_s']:.2f} s meanwhile"
                    if "stop_cpu_s" in r else "")
            print(f"| node restart (SIGTERM: 1001 to each{stop}) | "
                  f"{r['engines']} | {r['back']} | {r['back_v2']} | (a node alone's history "
                  f"restarts with it: SNAPSHOT) | {r['lost'] - r['back']} / - / - | "
                  f"{r['back_p50_ms']:.0f} / {r['back_p99_ms']:.0f} / {r['back_max_ms']:.0f} ms "
                  "after the first loss |")


def plot(out, kinds, counts, idle, fan):
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as w:
        for k in kinds:
            with open(f"{w}/{k}.dat", "w") as f:
                for r in idle:
                    if r["kind"] == k and not r["failed"]:  # only counts it held
                        f.write(f"{r['count']} {r['kib_per_socket']} {r['ping_cpu_us']} "
                                f"{r['connect_cpu_us']}\n")
        with open(f"{w}/fan.dat", "w") as f:
            for r in fan:
                f.write(f"{r['devices']} {r['delivered_per_server_cpu_s'] / 1000}\n")
        series = lambda col: ", ".join(f'"{w}/{k}.dat" using 1:{col} title "{k}" with linespoints'
                                       for k in kinds)
        script = f"""
set terminal pngcairo size 1200,800 font "sans,10"
set output "{out}/scale.png"
set multiplot layout 2,2 title "One kullsync-server: per-socket costs by socket count"
set grid
set key top left
set logscale x
set xrange [{counts[0] * 0.8}:{counts[-1] * 1.25}]
set yrange [0:*]
set xlabel "sockets"
set title "RSS per idle socket (KiB)"
plot {series(2)}
set title "server CPU per ping round trip (µs)"
plot {series(3)}
set title "server CPU per connect (µs)"
plot {series(4)}
set title "fan-out: thousand deliveries per server CPU second"
set xrange [300:{counts[-1] * 1.25}]
plot "{w}/fan.dat" using 1:2 title "v1, users x 4" with linespoints
unset multiplot
"""
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
    print(f"\nchart: {out}/scale.png")


if __name__ == "__main__":
    main()
