"""kullsync-server's --config FILE (TOML), its precedence (flags > environment
> file) and its refusals (file, line and key named), --log-format json and
--version.

    config_file.py <kullsync-server binary>
"""
import json
import os
import subprocess
import sys
import tempfile

from testkit import check, finish

BINARY = sys.argv[1]
WORK = tempfile.mkdtemp()


def conf(name, text):
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def refused(text, says):
    p = subprocess.run([BINARY, "--config", conf("bad.toml", text)], capture_output=True,
                       timeout=10)
    err = p.stderr.decode().strip()
    check(p.returncode == 2 and says in err, f"refused, naming {says!r}: {err}")


def started(args, env=None):
    """Starts, reads the listening line, stops; returns (stdout lines, stderr)."""
    p = subprocess.Popen([BINARY, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, **(env or {})})
    first = p.stdout.readline().decode()
    p.terminate()
    out, err = p.communicate(timeout=10)
    return [first] + out.decode().splitlines(), err.decode(), p.returncode


good = conf("server.toml", '# a comment\nlisten = "127.0.0.1:0"\nauth = "legacy"\n'
            'history-size = 50\nclient-rate = 20.5\nlog-level = "warn"\n')
out, err, rc = started(["--config", good])
check('"listening"' in out[0] and rc == 0, f"starts from a config file ({out[0].strip()})")
check(err == "", "log-level from the file applies (warn: nothing logged)")
out, err, rc = started(["--config", good, "--log-level", "info"])
check("listening on" in err, "a flag wins over the file")
out, err, rc = started(["--config", good], {"KULLSYNC_LOG_LEVEL": "info"})
check("listening on" in err, "the environment wins over the file")
out, err, rc = started(["--config", good], {"KULLSYNC_AUTH": "jwt"})
check(rc == 2 and "--jwt-secret-file" in err, "the environment's auth wins over the file's")
refused('listen = "127.0.0.1:0"\nauth = "legacy"\nhistory-sise = 50\n', "bad.toml:3: unknown key 'history-sise'")
refused('listen = "127.0.0.1:0"\n\nhistory-size = "fifty"\n', "bad.toml:3: 'history-size' must be a non-negative integer")
refused('auth = 7\n', "bad.toml:1: 'auth' must be a string")
refused('auth = "ldap"\n', "bad.toml:1: 'auth'")
refused('client-rate = -5.0\n', "bad.toml:1: 'client-rate'")
refused('[server]\nlisten = "x"\n', "bad.toml:1: unknown key 'server'")
refused('listen = 127.0.0.1\n', "bad.toml:1:")
cluster = conf("cluster.toml", 'listen = "127.0.0.1:0"\nauth = "legacy"\n'
               'broker = ["redis://127.0.0.1:1", "redis://127.0.0.1:2"]\nnode-id = "n-1"\n')
out, err, rc = started(["--config", cluster])
check(rc == 0 and "node n-1 in a cluster of 2 Redis instance(s)" in err,
      f"a list of brokers from the file (a node of a cluster of 2; exit {rc}: {err[-400:]})")
refused('auth = "legacy"\nbroker = ["http://x"]\n', "--broker 'http://x' is not redis://")
refused('broker = "redis://127.0.0.1:1"\nnode-id = "a|b"\n', "bad.toml:2: 'node-id'")
p = subprocess.run([BINARY, "--config", os.path.join(WORK, "missing.toml")], capture_output=True)
check(p.returncode == 2 and "missing.toml" in p.stderr.decode(), "a missing file is named")
out, err, rc = started(["--listen", "127.0.0.1:0", "--auth", "legacy", "--log-format", "json"])
lines = [json.loads(l) for l in err.splitlines() if l.strip()]
check(lines and all({"time", "level", "logger", "message"} <= set(l) for l in lines),
      f"--log-format json: {len(lines)} lines, each an object with time, level, logger, message")
# NaN passes a plain range check (every comparison is false) and would turn
# the limit off: refused from the file, the command line and the environment.
refused('client-rate = nan\n', "bad.toml:1: 'client-rate'")
for args, env in ((["--client-rate", "nan"], None), (["--upgrade-burst", "inf"], None),
                  ([], {"KULLSYNC_API_KEY_RATE": "nan"})):
    p = subprocess.run([BINARY, "--auth", "legacy", *args], capture_output=True,
                       env=dict(os.environ, **(env or {})), timeout=10)
    check(p.returncode != 0 and "not in range" in p.stderr.decode(),
          f"{args or env} refused: {p.stderr.decode().strip()[-120:]}")
# Flags that must agree with one another.
refused('auth = "legacy"\nuser-state-ttl = 60\nhistory-ttl = 600\n',
        "--user-state-ttl (60 s) must be at least --history-ttl (600 s)")
refused('auth = "legacy"\nuser-state-ttl = 20\nhistory-ttl = 10\nposition-check = 30\n',
        "must be longer than --position-check")
refused('auth = "legacy"\nmax-queued-frames = 100\n',
        "--max-queued-frames (100) must exceed --max-replay (2000)")
# A usage error exits 2 like a bad value (CLI11's own codes were 105, 109...).
for args in (["--no-such-flag"], ["--ping-interval", "0"], ["--auth", "jwtt"]):
    p = subprocess.run([BINARY, *args], capture_output=True, timeout=10)
    check(p.returncode == 2, f"{args}: exit 2 ({p.returncode}: {p.stderr.decode().strip()[:80]})")
# A key file that is a directory or empty is named as such.
with tempfile.TemporaryDirectory() as d:
    empty = os.path.join(d, "empty")
    open(empty, "w").close()
    for path, why in ((d, "is a directory"), (empty, "is empty")):
        p = subprocess.run([BINARY, "--auth", "jwt", "--jwt-secret-file", path],
                           capture_output=True, timeout=10)
        err = p.stderr.decode()
        check(p.returncode == 2 and path in err and why in err,
              f"--jwt-secret-file {why}: named ({p.returncode}: {err.strip()[:100]})")
p = subprocess.run([BINARY, "--version"], capture_output=True)
check(p.returncode == 0 and p.stdout.decode().startswith("kullsync-server "),
      f"--version: {p.stdout.decode().strip()}")
finish()
