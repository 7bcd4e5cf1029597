#!/usr/bin/env bash
# Runs the Node `ws` v2 client suite (written against ../shared/PROTOCOL.md)
# against kullsync-server with a small v2 history:
#   run_v2.sh SERVER            one node alone
#   run_v2.sh SERVER cluster    two nodes on a redis-server of their own: the
#                               devices on node a, the backend's posts and a
#                               second device on node b
set -euo pipefail
server=$1
mode=${2:-alone}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pids=()
trap 'kill -9 "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
"$here/node_deps.sh"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_node NAME [flags...]: the node's address in $addr
start_node() {
  local name=$1; shift
  "$server" --listen 127.0.0.1:0 --auth legacy --history-size 5 --max-queued-bytes 262144 \
    --log-level warn "$@" > "$work/$name.out" 2> "$work/$name.err" &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$work/$name.out" 2>/dev/null && break; sleep 0.05; done
  addr=$(sed -n 's/.*"listening":"\([^"]*\)".*/\1/p' "$work/$name.out")
  [[ -n $addr ]] || { echo "node $name did not start"; cat "$work/$name.err"; exit 1; }
}

wait_ready() {
  for _ in $(seq 200); do
    python3 -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://$1/readyz',timeout=1).status==200 else 1)" \
      2>/dev/null && return 0
    sleep 0.05
  done
  echo "node at $1 never became ready"; exit 1
}

if [[ $mode == cluster ]]; then
  port=$(free_port)
  /usr/bin/redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work" > /dev/null 2>&1 &
  pids+=($!)
  start_node a --node-id a --broker "redis://127.0.0.1:$port"; a=$addr
  start_node b --node-id b --broker "redis://127.0.0.1:$port"; b=$addr
  wait_ready "$a"; wait_ready "$b"
  KULLSYNC_URL="http://$a" KULLSYNC_TRIGGER_URL="http://$b" KULLSYNC_OTHER_URL="http://$b" \
    KULLSYNC_HISTORY_SIZE=5 node --test --test-force-exit "$here/v2_clients.test.js"
else
  start_node alone
  KULLSYNC_URL="http://$addr" KULLSYNC_HISTORY_SIZE=5 node --test --test-force-exit "$here/v2_clients.test.js"
fi
