#!/usr/bin/env bash
# The same app built through the docker backend (local dockerd), the buildkit backend (the
# real buildkitd of scripts/buildkitd.sh, pushing to the local registry) and the depot backend
# (against tests/peers/depot-standin, a stand-in for Depot's API whose machine is that same
# buildkitd over mTLS: what it adds is Depot's calls), in one run: cold (a
# RUN step nothing has cached), warm (the same source again), and warm after the builder's own
# cache is pruned (`buildctl prune --all`; `docker builder prune -af` for dockerd): buildkit
# then takes the layers from the project's registry cache, as a fresh builder machine would,
# where dockerd has nothing to fall back on. Wall time of `slipway build --poll-interval 50ms` (upload + build + push)
# on a running `slipway dev` of each backend, mean of ROUNDS, and the ratios side by side.
# Usage: bench/build_backends.sh [ROUNDS]   (default 3). Needs build/slipway (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
BIN=$PWD/build/slipway
[[ -x $BIN ]] || { echo "build/slipway is missing: run scripts/build.sh first" >&2; exit 1; }
scripts/services.sh dockerd registry base-images buildkitd >/dev/null
eval "$(scripts/buildkitd.sh env | sed 's/^/export /')"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/slipway-build-bench-XXXXXX")
DEV_PID=""
DEPOT_PID=""
cleanup() {
  [[ -n $DEPOT_PID ]] && kill -TERM "$DEPOT_PID" 2>/dev/null && wait "$DEPOT_PID" 2>/dev/null || true
  [[ -n $DEV_PID ]] && kill -TERM "$DEV_PID" 2>/dev/null && wait "$DEV_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

start_dev() {  # extra flags of slipway dev
  export XDG_CONFIG_HOME=$WORK/config-$1 XDG_DATA_HOME=$WORK/data-$1
  local data=$WORK/data-$1
  shift
  rm -f "$XDG_CONFIG_HOME/slipway/dev.json"
  $BIN dev --data "$data" --listen "127.0.0.1:$(free_port)" --gateway-listen "127.0.0.1:$(free_port)" \
    --krane-listen "127.0.0.1:$(free_port)" --s3-listen "127.0.0.1:$(free_port)" \
    --gateway-admin-listen 127.0.0.1:0 "$@" \
    >/dev/null 2>"$WORK/dev.log" &
  DEV_PID=$!
  for _ in $(seq 300); do [[ -f $XDG_CONFIG_HOME/slipway/dev.json ]] && return 0; sleep 0.1; done
  cat "$WORK/dev.log" >&2
  exit 1
}
stop_dev() { kill -TERM "$DEV_PID"; wait "$DEV_PID" 2>/dev/null || true; DEV_PID=""; }

# An app with a CPU-bound RUN step, its output unique to $1 so a cold
# round shares no cache with any earlier one.
app() {
  rm -rf "$WORK/app"
  cp -r examples/hello "$WORK/app"
  rm -f "$WORK/app/slipway.toml"
  cat >>"$WORK/app/Dockerfile" <<DOCKERFILE
RUN i=0; while [ \$i -lt 1000000 ]; do i=\$((i+1)); done; echo "$1" > /www/build.txt
DOCKERFILE
}

build_once() {  # prints seconds
  local t0 t1 out
  t0=$(now)
  out=$($BIN build "$WORK/app" --project benchbuild --poll-interval 50ms --json 2>"$WORK/build.err" | tail -1)
  t1=$(now)
  [[ $(jq -r .status <<<"$out") == SUCCEEDED ]] || { echo "build failed: $out" >&2; cat "$WORK/build.err" >&2; exit 1; }
  python3 -c "print(f'{$t1-$t0:.2f}')"
}

mean() { python3 -c "import sys; v=[float(x) for x in sys.argv[1:]]; print(f'{sum(v)/len(v):.2f}')" "$@"; }

declare -A RESULT
measure() {  # $1 backend label; buildkit also measures after prune
  local cold=() warm=() pruned=() r marker
  for r in $(seq "$ROUNDS"); do
    marker="$1-$r-$(date +%s%N)"
    app "$marker"
    cold+=("$(build_once)")
    warm+=("$(build_once)")
    if [[ $1 == buildkit || $1 == depot ]]; then
      "$BUILDCTL" --addr "$BUILDKIT_HOST" prune --all >/dev/null
    else
      /usr/bin/docker builder prune -af >/dev/null
    fi
    pruned+=("$(build_once)")
  done
  RESULT[$1-cold]=$(mean "${cold[@]}")
  RESULT[$1-warm]=$(mean "${warm[@]}")
  RESULT[$1-pruned]=$(mean "${pruned[@]}")
}

start_dev docker --build-backend docker
app warmup && build_once >/dev/null  # the project's first build creates it; not measured
measure docker
stop_dev
start_dev buildkit --build-backend buildkit --buildkit-host "$BUILDKIT_HOST" --registry 127.0.0.1:5000
app warmup && build_once >/dev/null
measure buildkit
stop_dev
# Depot: the stand-in hands out the shared buildkitd's TLS port (tcp://127.0.0.1:1234).
DEPOT_PORT=${DEPOT_STANDIN_PORT:-7599}
DEPOT_STANDIN_PORT=$DEPOT_PORT DEPOT_STANDIN_TOKEN=bench-token \
  node tests/peers/depot-standin/server.mjs >"$WORK/depot.log" 2>&1 &
DEPOT_PID=$!
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$DEPOT_PORT/stand-in/state" && break; sleep 0.1; done
start_dev depot --build-backend depot --depot-token bench-token \
  --depot-api-url "http://127.0.0.1:$DEPOT_PORT" --depot-registry 127.0.0.1:5000
app warmup && build_once >/dev/null
measure depot
stop_dev

echo "slipway build of a hello app with a CPU-bound RUN step, mean of $ROUNDS rounds (same run)"
printf '  %-26s %8s %8s %20s\n' "" cold warm "warm after prune"
printf '  %-26s %7ss %7ss %19ss\n' "docker (local dockerd)" "${RESULT[docker-cold]}" "${RESULT[docker-warm]}" "${RESULT[docker-pruned]}"
printf '  %-26s %7ss %7ss %19ss\n' "buildkit (push + cache)" "${RESULT[buildkit-cold]}" "${RESULT[buildkit-warm]}" "${RESULT[buildkit-pruned]}"
printf '  %-26s %7ss %7ss %19ss\n' "depot (stand-in, mTLS)" "${RESULT[depot-cold]}" "${RESULT[depot-warm]}" "${RESULT[depot-pruned]}"
python3 - "${RESULT[docker-cold]}" "${RESULT[docker-warm]}" "${RESULT[docker-pruned]}" \
  "${RESULT[buildkit-cold]}" "${RESULT[buildkit-warm]}" "${RESULT[buildkit-pruned]}" \
  "${RESULT[depot-cold]}" "${RESULT[depot-warm]}" <<'PY'
import sys
dc, dw, dp, bc, bw, bp, pc, pw = map(float, sys.argv[1:])
print(f"  buildkit/docker: cold {bc/dc:.2f}x, warm {bw/dw:.2f}x, after prune {bp/dp:.2f}x")
print(f"  after prune / cold: docker {dp/dc:.2f}x, buildkit {bp/bc:.2f}x (the registry cache)")
print(f"  depot/buildkit: cold {pc/bc:.2f}x, warm {pw/bw:.2f}x (Depot's calls: build, machine, health, finish)")
PY
