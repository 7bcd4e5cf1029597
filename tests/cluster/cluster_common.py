"""What the cluster tests share: the check/report, free ports, and a
redis-server of their own (Debian's, on a free loopback port, no persistence)."""
import os
import socket
import subprocess
import sys
import time

REDIS = "/usr/bin/redis-server"
# Instrumented builds run slower: every wait stretches by this factor.
SCALE = float(os.environ.get("KULLSYNC_TEST_TIME_SCALE", "1"))
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def finish():
    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self, work):
        self.port = free_port()
        self.work = work
        self.proc = None

    def start(self, *extra):
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.work, *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self):
        self.proc.kill()
        self.proc.wait()
