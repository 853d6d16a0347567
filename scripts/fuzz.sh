#!/usr/bin/env bash
# Runs one libFuzzer target for a while: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]
# TARGET is a fuzz/<TARGET>_fuzz.cc (http_request, sigv4, aws_chunked, dockerignore, connect,
# project_config); `scripts/fuzz.sh list` names them. Built with clang, ASan and UBSan into
# build-fuzz/ (the normal build/ is untouched). Starts from the committed seeds in
# fuzz/corpus/TARGET; inputs it finds go to build-fuzz/corpus/TARGET, a crashing input to
# build-fuzz/crashes/TARGET/ (turn it into a unit test, then fix the code). Runs niced
# (FUZZ_NICE, default 19: the machine is shared).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == list ]]; then
  for f in fuzz/*_fuzz.cc; do f=${f#fuzz/}; echo "${f%_fuzz.cc}"; done
  exit 0
fi
if [[ $# -lt 2 ]]; then
  echo "usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]  (targets: scripts/fuzz.sh list)" >&2
  exit 2
fi
target=$1 seconds=$2
shift 2
if [[ ! -f fuzz/${target}_fuzz.cc ]]; then
  echo "no fuzz target '$target': there is no fuzz/${target}_fuzz.cc (see scripts/fuzz.sh list)" >&2
  exit 2
fi
if ! command -v clang++ >/dev/null; then
  echo "clang++ is missing; install Debian's clang (apt-get install -y clang) and run again" >&2
  exit 1
fi
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/slipway-ccache}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(cd .. && pwd)}
export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
if [[ ! -f build-fuzz/build.ninja ]]; then
  CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSLIPWAY_FUZZ=ON >/dev/null
fi
nice -n 10 cmake --build build-fuzz -j "${JOBS:-2}" --target "fuzz_${target}"
mkdir -p "build-fuzz/corpus/$target" "build-fuzz/crashes/$target"
# New inputs land in the first directory; the committed seeds stay as they are.
exec nice -n "${FUZZ_NICE:-19}" "build-fuzz/fuzz_${target}" -max_total_time="$seconds" -print_final_stats=1 \
  -timeout=30 -rss_limit_mb=2048 -artifact_prefix="build-fuzz/crashes/$target/" "$@" \
  "build-fuzz/corpus/$target" "fuzz/corpus/$target"
