#!/usr/bin/env bash
# Wall time of `slipway deploy examples/hello` on a running `slipway dev` with default settings,
# beside the same work done by hand in the same run. Each round changes the source first, then:
#   slipway deploy            vs  docker build + docker run + first answer (by hand)
#   slipway deploy, unchanged vs  docker run + first answer (by hand: nothing to build)
# Prints every round, the medians, slipway's median overhead over the by-hand work, and where
# slipway's time goes: the CLI before ctrl has the deployment (packaging, upload), each step
# from ctrl's record, the gaps between steps (the contract check, status writes), and the time
# from the last step's end until the CLI has returned.
# Usage: bench/deploy_bench.sh [ROUNDS]   (default 5). Needs build/slipway (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
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
now_ms() { date +%s%3N; }
export XDG_CONFIG_HOME=$WORK/config XDG_DATA_HOME=$WORK/data

start_dev() {  # default settings: only the ports and the data directory are chosen here
  rm -f "$XDG_CONFIG_HOME/slipway/dev.json"
  $BIN dev --data "$WORK/data" --listen "127.0.0.1:$(free_port)" \
    --gateway-listen "127.0.0.1:$(free_port)" --krane-listen "127.0.0.1:$(free_port)" \
    --s3-listen "127.0.0.1:$(free_port)" --gateway-admin-listen 127.0.0.1:0 >/dev/null 2>"$WORK/dev.log" &
  DEV_PID=$!
  for _ in $(seq 300); do [[ -f $XDG_CONFIG_HOME/slipway/dev.json ]] && return 0; sleep 0.1; done
  cat "$WORK/dev.log" >&2
  exit 1
}

# A fresh copy whose page differs each round, so neither side reuses a finished image.
app_copy() {
  rm -rf "$WORK/app"
  cp -r examples/hello "$WORK/app"
  echo "<p>round $1 $(date +%s%N)</p>" >>"$WORK/app/www/index.html"
}

deployment_json() {  # $1: deployment id
  local token ctrl
  token=$(jq -r .token "$XDG_CONFIG_HOME/slipway/dev.json")
  ctrl=$(jq -r .control_plane "$XDG_CONFIG_HOME/slipway/dev.json")
  curl -s -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $token" \
    -d "{\"deploymentId\":\"$1\"}" "$ctrl/slipway.ctrl.v1.DeploymentService/GetDeployment"
}

# By hand: build (unless $1 is "nobuild") + run + first answer. Prints milliseconds.
manual_round() {
  local port t0 t1
  port=$(free_port)
  t0=$(now_ms)
  if [[ $1 != nobuild ]]; then
    $DOCKER build -q --network host -t slipway-bench-manual:latest "$WORK/app" >/dev/null
  fi
  $DOCKER run -d --rm --name slipway-bench-manual --network host -e PORT="$port" \
    slipway-bench-manual:latest >/dev/null
  until curl -s -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.005; done
  t1=$(now_ms)
  $DOCKER rm -f slipway-bench-manual >/dev/null
  echo $((t1 - t0))
}

# slipway deploy of the app directory; appends one JSON line (wall time, the CLI's start and
# end, the deployment record) to $WORK/$1.jsonl.
slipway_round() {
  local t0 t1 out id
  t0=$(now_ms)
  out=$($BIN deploy "$WORK/app" --project benchapp --json 2>"$WORK/cli.log" | tail -1)
  t1=$(now_ms)
  id=$(jq -r .deployment_id <<<"$out")
  echo "$id" >>"$WORK/deployments"
  [[ $(jq -r .status <<<"$out") == READY ]] || { echo "deploy failed: $out" >&2; cat "$WORK/cli.log" >&2; exit 1; }
  curl -sf -o /dev/null "$(jq -r '.urls[0]' <<<"$out")"
  jq -c --argjson t0 "$t0" --argjson t1 "$t1" '{t0: $t0, t1: $t1, d: .deployment}' \
    <<<"$(deployment_json "$id")" >>"$WORK/$1.jsonl"
  echo $((t1 - t0))
}

start_dev
app_copy warmup
slipway_round warmup >/dev/null  # the first deploy of a project creates it: not measured
manual_round build >/dev/null     # nor the first build by hand
echo "deploy of examples/hello, $ROUNDS rounds, default settings" \
  "(by hand: docker build + docker run + first answer; unchanged: docker run + first answer)"
for r in $(seq "$ROUNDS"); do
  app_copy "$r"
  s=$(slipway_round changed)
  m=$(manual_round build)
  u=$(slipway_round unchanged)
  mu=$(manual_round nobuild)
  echo "$s $m $u $mu" >>"$WORK/rounds"
  printf '  round %d: slipway %5d ms  by hand %5d ms  overhead %+5d ms   unchanged: slipway %5d ms  by hand %5d ms\n' \
    "$r" "$s" "$m" $((s - m)) "$u" "$mu"
done

python3 - "$WORK" <<'PY'
import json, statistics, sys
work = sys.argv[1]
rounds = [list(map(int, l.split())) for l in open(f"{work}/rounds")]
med = lambda xs: statistics.median(xs)
s, m, u, mu = (med([r[i] for r in rounds]) for i in range(4))
over = med([r[0] - r[1] for r in rounds])
print(f"median: slipway deploy {s/1000:.2f}s  by hand {m/1000:.2f}s  "
      f"overhead {over/1000:+.2f}s (target: at most +0.25s)  ratio {s/m:.2f}x")
print(f"median: unchanged redeploy READY in {u/1000:.2f}s (target: under 1s)  "
      f"by hand (run + first answer) {mu/1000:.2f}s")

def breakdown(name):
    parts = {}
    for line in open(f"{work}/{name}.jsonl"):
        rec = json.loads(line)
        d, t0, t1 = rec["d"], rec["t0"], rec["t1"]
        steps = [st for st in d.get("steps", []) if st.get("startedAtMs") and st.get("finishedAtMs")]
        first = int(steps[0]["startedAtMs"]); last = int(steps[-1]["finishedAtMs"])
        row = {"cli: package, upload, create": int(d["createdAtMs"]) - t0,
               "ctrl: created -> first step": first - int(d["createdAtMs"])}
        inside = 0
        for st in steps:
            took = int(st["finishedAtMs"]) - int(st["startedAtMs"])
            inside += took
            row[f"step {st['name']}"] = took
        row["between steps (contract, status writes)"] = last - first - inside
        row["last step -> CLI returned"] = t1 - last
        for k, v in row.items():
            parts.setdefault(k, []).append(v)
    print(f"where the time goes, {name} deploy (median ms per part):")
    for k, v in parts.items():
        print(f"  {k:<42} {med(v):7.0f}")

breakdown("changed")
breakdown("unchanged")
PY
