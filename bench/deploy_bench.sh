#!/usr/bin/env bash
# Wall time of `slipway deploy examples/hello` on a running `slipway dev`, beside the same work
# done by hand in the same run: `docker build` of the same context + `docker run` + waiting until
# the port answers. Prints both, their ratio, and where slipway's time goes (each step's time
# from ctrl, the CLI's 2 s poll and ctrl's 1 s krane poll included), once with the default polls
# and once with 250 ms polls.
# Usage: bench/deploy_bench.sh [ROUNDS]   (default 3). Needs build/slipway (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
BIN=$PWD/build/slipway
[[ -x $BIN ]] || { echo "build/slipway is missing: run scripts/build.sh first" >&2; exit 1; }
scripts/services.sh dockerd base-images >/dev/null
DOCKER=/usr/bin/docker

WORK=$(mktemp -d "${TMPDIR:-/tmp}/slipway-deploy-bench-XXXXXX")
DEV_PID=""
cleanup() {
  [[ -n $DEV_PID ]] && kill -TERM "$DEV_PID" 2>/dev/null && wait "$DEV_PID" 2>/dev/null || true
  $DOCKER rm -f slipway-bench-manual >/dev/null 2>&1 || true
  local id
  for id in $(cat "$WORK/deployments" 2>/dev/null); do
    $DOCKER ps -aq --filter "label=slipway.deployment=$id" | xargs -r $DOCKER rm -f >/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
export XDG_CONFIG_HOME=$WORK/config XDG_DATA_HOME=$WORK/data

start_dev() {  # $1: ctrl's krane poll interval
  GW=$(free_port)
  rm -f "$XDG_CONFIG_HOME/slipway/dev.json"
  $BIN dev --data "$WORK/data" --listen "127.0.0.1:$(free_port)" --gateway-listen "127.0.0.1:$GW" \
    --krane-listen "127.0.0.1:$(free_port)" --s3-listen "127.0.0.1:$(free_port)" \
    --wait-interval "$1" >/dev/null 2>"$WORK/dev.log" &
  DEV_PID=$!
  for _ in $(seq 300); do [[ -f $XDG_CONFIG_HOME/slipway/dev.json ]] && return 0; sleep 0.1; done
  cat "$WORK/dev.log" >&2
  exit 1
}
stop_dev() { kill -TERM "$DEV_PID"; wait "$DEV_PID" 2>/dev/null || true; DEV_PID=""; }

# Each round deploys a fresh copy whose page differs, so neither side reuses a finished image.
app_copy() {
  rm -rf "$WORK/app"
  cp -r examples/hello "$WORK/app"
  echo "<p>round $1 $(date +%s%N)</p>" >>"$WORK/app/www/index.html"
}

step_times() {  # $1: deployment id -> "build 0.41s schedule 0.05s ..."
  local token ctrl
  token=$(jq -r .token "$XDG_CONFIG_HOME/slipway/dev.json")
  ctrl=$(jq -r .control_plane "$XDG_CONFIG_HOME/slipway/dev.json")
  curl -s -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $token" \
    -d "{\"deploymentId\":\"$1\"}" "$ctrl/slipway.ctrl.v1.DeploymentService/GetDeployment" |
    jq -r '[.deployment.steps[] | "\(.name) \(((.finishedAtMs|tonumber) - (.startedAtMs|tonumber))/1000)s"] | join("  ")'
}

manual_round() {
  local port t0 t1
  port=$(free_port)
  t0=$(now)
  $DOCKER build -q --network host -t slipway-bench-manual:latest "$WORK/app" >/dev/null
  $DOCKER run -d --rm --name slipway-bench-manual --network host -e PORT="$port" \
    slipway-bench-manual:latest >/dev/null
  until curl -s -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.02; done
  t1=$(now)
  $DOCKER rm -f slipway-bench-manual >/dev/null
  python3 -c "print(f'{$t1-$t0:.2f}')"
}

slipway_round() {  # $1: CLI poll interval; prints "<seconds> <deployment id>"
  local t0 t1 out
  t0=$(now)
  out=$($BIN deploy "$WORK/app" --project benchapp --poll-interval "$1" --json 2>/dev/null | tail -1)
  t1=$(now)
  jq -r .deployment_id <<<"$out" >>"$WORK/deployments"
  [[ $(jq -r .status <<<"$out") == READY ]] || { echo "deploy failed: $out" >&2; exit 1; }
  curl -sf -o /dev/null "$(jq -r '.urls[0]' <<<"$out")"
  echo "$(python3 -c "print(f'{$t1-$t0:.2f}')") $(jq -r .deployment_id <<<"$out")"
}

run_mode() {  # $1 label, $2 ctrl krane poll, $3 CLI poll
  start_dev "$2"
  app_copy warmup
  slipway_round "$3" >/dev/null  # first deploy of a project creates it; not measured
  local total_s=0 total_m=0
  for r in $(seq "$ROUNDS"); do
    app_copy "$r"
    read -r s id < <(slipway_round "$3")
    m=$(manual_round)
    total_s=$(python3 -c "print($total_s+$s)")
    total_m=$(python3 -c "print($total_m+$m)")
    printf '  %-22s round %d: slipway %6.2fs   by hand %6.2fs   steps: %s\n' "$1" "$r" "$s" "$m" "$(step_times "$id")"
  done
  python3 -c "s=$total_s/$ROUNDS; m=$total_m/$ROUNDS; print(f'  {\"$1\":<22} mean: slipway {s:.2f}s  by hand {m:.2f}s  ratio {s/m:.2f}x')"
  stop_dev
}

echo "deploy of examples/hello, $ROUNDS rounds per mode (by hand = docker build + docker run + first answer)"
run_mode "default polls (1s/2s)" 1s 2s
run_mode "fast polls (250ms)" 250ms 250ms
