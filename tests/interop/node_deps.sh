#!/usr/bin/env bash
# Installs the Node suites' packages (ws) into tests/interop/node_modules once:
# ctest runs the suites in parallel, so the install holds a lock, and a
# suite that waited finds it done.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec 9> "$here/.node_deps.lock"
flock 9
if [[ ! -d $here/node_modules/ws ]]; then
  (cd "$here" && npm install --no-audit --no-fund --silent >/dev/null)
fi
