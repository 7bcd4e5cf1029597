#!/usr/bin/env bash
# Starts kullsync-server on a free port with a small v2 history and runs the
# Node `ws` v2 client suite (written against ../shared/PROTOCOL.md) against it.
set -euo pipefail
server=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$work"' EXIT
if [[ ! -d $here/node_modules/ws ]]; then
  (cd "$here" && npm install --no-audit --no-fund --silent >/dev/null)
fi
"$server" --listen 127.0.0.1:0 --auth legacy --history-size 5 --max-queued-bytes 262144 \
  --log-level warn > "$work/out" 2> "$work/err" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
addr=$(sed -n 's/.*"listening":"\([^"]*\)".*/\1/p' "$work/out")
[[ -n $addr ]] || { echo "server did not start"; cat "$work/err"; exit 1; }
KULLSYNC_URL="http://$addr" KULLSYNC_HISTORY_SIZE=5 node --test "$here/v2_clients.test.js"
