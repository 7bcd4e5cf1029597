# Shared by scripts/*: installs what the project needs and builds it.
# Sourced, not run.
set -euo pipefail

KULLSYNC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian 12 packages the build, the tests and the demo need.
KULLSYNC_PACKAGES=(
  g++ cmake ninja-build ccache pkg-config
  libcaf-dev libboost1.81-dev libboost-json1.81-dev libspdlog-dev
  libgtest-dev libbenchmark-dev libcli11-dev libssl-dev libncurses-dev
  clang libclang-rt-dev openssl tmux procps
  libjwt-dev python3-jwt python3-websockets prometheus libtomlplusplus-dev
  dpkg-dev file libhiredis-dev libjemalloc-dev redis-server redis-sentinel haproxy nginx
)

log() { printf '[kullsync] %s\n' "$*" >&2; }

ensure_packages() {
  local missing=()
  for p in "${KULLSYNC_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  # Node.js is on the machine image; install Debian's when it is not.
  command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
  if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# build_tree <dir> [--target T] [cmake args...]: configures once, then builds
# incrementally (everything, or only target T and what it needs).
build_tree() {
  local dir=$1; shift
  local target=()
  if [[ ${1:-} == --target ]]; then
    target=(--target "$2"); shift 2
  fi
  export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
  # Hits across clones of the repository, and with precompiled headers.
  export CCACHE_BASEDIR=$KULLSYNC_ROOT CCACHE_NOHASHDIR=1
  export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
  if [[ ! -f $dir/build.ninja ]]; then
    cmake -S "$KULLSYNC_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >&2
  fi
  cmake --build "$dir" -j "$(nproc)" "${target[@]}" >&2
}
