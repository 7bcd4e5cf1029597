#!/usr/bin/env bash
# Builds the .deb from the build tree (cpack -G DEB) and checks what an
# operator gets: the binaries, the hardened unit, /etc/kullsync/server.toml as
# a conffile, the maintainer scripts; then runs the packaged server, from the
# unpacked package, with the packaged configuration.
#   check_deb.sh <build dir> [jemalloc|libc: the allocator the server links]
set -euo pipefail
build=$1
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
pid=
fail() { echo "FAIL $*"; exit 1; }
ok() { echo "ok   $*"; }
(cd "$build" && cpack -G DEB -B "$work/out" >/dev/null)
deb=$(ls "$work"/out/kullsync_*.deb)
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/kullsync-server ./usr/bin/kullsync-console ./usr/bin/kullsync-ctl \
         ./usr/lib/systemd/system/kullsync-server.service ./etc/kullsync/server.toml \
         ./usr/share/doc/kullsync/OPERATIONS.md ./usr/share/doc/kullsync/SECURITY.md \
         ./usr/share/kullsync/prometheus/kullsync-alerts.yml \
         ./usr/share/kullsync/grafana/kullsync-dashboard.json; do
  grep -q " $f\$" <<<"$contents" || fail "the package lacks $f"
done
ok "the three binaries, unit, config, docs, alert rules and dashboard are in $(basename "$deb")"
grep -q "^/etc/kullsync/server.toml$" <(dpkg-deb -I "$deb" conffiles) || fail "server.toml is not a conffile"
ok "server.toml is a conffile"
dpkg-deb -I "$deb" postinst | grep -q "adduser --system" || fail "postinst makes no system user"
ok "postinst makes the kullsync system user"
dpkg-deb -I "$deb" postinst | grep -q "install -d -o kullsync -g kullsync -m 0700 /var/lib/kullsync" \
  || fail "postinst makes no /var/lib/kullsync"
grep -q '^revocations-file = "/var/lib/kullsync/revocations"$' <(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./etc/kullsync/server.toml) \
  || fail "server.toml keeps no revocations file"
ok "postinst makes /var/lib/kullsync, where server.toml keeps the revocations"
dpkg-deb -f "$deb" Depends | grep -q "libjwt0" || fail "Depends lacks the shared libraries"
ok "Depends: $(dpkg-deb -f "$deb" Depends | cut -c1-80)..."
if [[ ${2:-libc} == jemalloc ]]; then
  dpkg-deb -f "$deb" Depends | grep -q "libjemalloc2" || fail "the server is built with jemalloc, Depends lacks libjemalloc2"
  ok "Depends names libjemalloc2 (the server's allocator)"
fi
dpkg-deb -x "$deb" "$work/root"
unit=$work/root/usr/lib/systemd/system/kullsync-server.service
for d in "User=kullsync" "NoNewPrivileges=yes" "ProtectSystem=strict" "Restart=on-failure" \
         "LimitNOFILE=262144" "StateDirectory=kullsync" "ExecStart=/usr/bin/kullsync-server --config /etc/kullsync/server.toml"; do
  grep -qx "$d" "$unit" || fail "the unit lacks $d"
done
ok "the unit runs as kullsync, hardened, restarts on failure, LimitNOFILE 262144, /var/lib/kullsync its own"
# The packaged server with the packaged configuration (the key files the
# postinst would make, here in the scratch directory).
head -c 48 /dev/urandom | base64 > "$work/secret"
echo "key-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$work/keys"
"$work/root/usr/bin/kullsync-server" --config "$work/root/etc/kullsync/server.toml" \
  --listen 127.0.0.1:0 --jwt-secret-file "$work/secret" --api-keys-file "$work/keys" \
  --revocations-file "$work/revocations" \
  > "$work/out.txt" 2> "$work/err.txt" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out.txt" 2>/dev/null && break; sleep 0.05; done
grep -q listening "$work/out.txt" || fail "the packaged server did not start: $(cat "$work/err.txt")"
addr=$(sed -n 's/.*"listening":"\([^"]*\)".*/\1/p' "$work/out.txt")
python3 - "$addr" <<'PY' || fail "/readyz of the packaged server"
import sys, urllib.request
with urllib.request.urlopen(f"http://{sys.argv[1]}/readyz", timeout=5) as r:
    assert r.status == 200
PY
head -n 1 "$work/err.txt" | python3 -c 'import json,sys; json.loads(sys.stdin.readline())' \
  || fail "the packaged config's log-format json"
ok "the packaged server starts from the packaged server.toml and is ready"
"$work/root/usr/bin/kullsync-server" --version | grep -q "^kullsync-server " || fail "--version"
ok "--version: $("$work/root/usr/bin/kullsync-server" --version)"
# kullsync-ctl from the package, against the packaged server and its key.
KULLSYNC_URL="http://$addr" KULLSYNC_API_KEY_FILE="$work/keys" \
  "$work/root/usr/bin/kullsync-ctl" nodes | grep -q "^NODE" || fail "the packaged kullsync-ctl"
ok "the packaged kullsync-ctl lists the node"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' \
  "$work/root/usr/share/kullsync/grafana/kullsync-dashboard.json" || fail "the dashboard's JSON"
ok "the dashboard is JSON"
echo "all passed"
