#!/usr/bin/env bash
# Configures (once) and builds slipway, its tests and benchmarks into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/slipway-ccache}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(cd .. && pwd)}
export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}  # debug info keeps paths; lets worktrees share the cache
if [[ ! -f build/build.ninja ]]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build build -j "${JOBS:-2}"
