#!/usr/bin/env bash
# Starts kullsync-server on a free port, runs the Node `ws` legacy-client
# suite against it, then stops the server with SIGTERM and checks that it
# closed the remaining sockets with 1001 and exited 0 in time.
set -euo pipefail
server=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$work"' EXIT
"$here/node_deps.sh"
"$server" --listen 127.0.0.1:0 --auth legacy --limits off --max-sockets-per-user 4 --max-queued-bytes 262144 \
  --log-level warn > "$work/out" 2> "$work/err" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
addr=$(sed -n 's/.*"listening":"\([^"]*\)".*/\1/p' "$work/out")
[[ -n $addr ]] || { echo "server did not start"; cat "$work/err"; exit 1; }
export KULLSYNC_URL="http://$addr" KULLSYNC_MAX_SOCKETS=4
node --test "$here/legacy_clients.test.js"
# Graceful stop: a connected client must see 1001, the process exit 0.
node -e '
  const WebSocket = require(process.argv[1]);
  const ws = new WebSocket(process.argv[2]);
  ws.on("open", () => console.log("open"));
  ws.on("close", (c) => { console.log("closed " + c); process.exit(c === 1001 ? 0 : 1); });
  setTimeout(() => { console.log("no close"); process.exit(1); }, 8000);
' "$here/node_modules/ws" "ws://$addr/ws?token=stop:watcher" > "$work/watch" &
watcher=$!
for _ in $(seq 100); do grep -q open "$work/watch" 2>/dev/null && break; sleep 0.05; done
start=$(date +%s%N)
kill -TERM $pid
wait $pid; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
wait $watcher || { echo "watcher did not see 1001: $(cat "$work/watch")"; exit 1; }
echo "server exited $rc after SIGTERM in ${ms} ms"
[[ $rc -eq 0 && $ms -lt 5000 ]]
