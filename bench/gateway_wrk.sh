#!/usr/bin/env bash
# Gateway overhead: wrk straight against an upstream (the baseline) and against `slipway run
# gateway` in front of the same upstream, in the same run; prints req/s and p99 latency for
# both and the ratios.
#
#   bench/gateway_wrk.sh                      # our own keep-alive upstream (build/static_upstream)
#   UPSTREAM=busybox bench/gateway_wrk.sh     # busybox httpd serving a small file (no keep-alive)
#
# Settings: BUILD_DIR (build), DURATION (10s), CONNECTIONS (50), THREADS (2), BODY_BYTES (612).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD_DIR:-build}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
BODY_BYTES=${BODY_BYTES:-612}
UPSTREAM=${UPSTREAM:-slipway}
HOST=bench-production.localhost

for tool in wrk sqlite3 curl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
[[ -x $BUILD/slipway ]] || { echo "bench: $BUILD/slipway is missing; run scripts/build.sh" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() {  # wait_for URL [HOST]: until it answers 200, at most 10 s
  for _ in $(seq 100); do
    if [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Host: ${2:-localhost}" "$1") == 200 ]]; then return 0; fi
    sleep 0.1
  done
  echo "bench: $1 (Host ${2:-localhost}) never answered 200" >&2
  return 1
}

# --- the upstream ---------------------------------------------------------------------------
up_port=$(free_port)
case $UPSTREAM in
  slipway)
    [[ -x $BUILD/static_upstream ]] || { echo "bench: $BUILD/static_upstream is missing; build it" >&2; exit 1; }
    "$BUILD/static_upstream" "127.0.0.1:$up_port" "$BODY_BYTES" >"$work/upstream.log" 2>&1 &
    pids+=($!)
    ;;
  busybox)
    mkdir -p "$work/www"
    head -c "$BODY_BYTES" /dev/zero | tr '\0' x >"$work/www/index.html"
    busybox httpd -f -p "127.0.0.1:$up_port" -h "$work/www" &
    pids+=($!)
    ;;
  *) echo "bench: UPSTREAM is slipway or busybox, not \"$UPSTREAM\"" >&2; exit 1 ;;
esac
wait_for "http://127.0.0.1:$up_port/index.html"

# --- the gateway, routed to it through the partition database --------------------------------
gw_port=$(free_port)
db=$work/partition.db
"$BUILD/slipway" --log-level warn run gateway --listen "127.0.0.1:$gw_port" \
  --partition-database "$db" >"$work/gateway.log" 2>&1 &
gateway_pid=$!
pids+=($gateway_pid)
for _ in $(seq 100); do
  [[ -s $db ]] && sqlite3 "$db" 'SELECT 1 FROM gateway_routes LIMIT 1' >/dev/null 2>&1 && break
  sleep 0.1
done
now=$(date +%s%3N)
sqlite3 "$db" >/dev/null "PRAGMA busy_timeout=5000;
  INSERT INTO instances (deployment_id, instance_id, address, status, reason, updated_at)
    VALUES ('dep_bench', 'i1', '127.0.0.1:$up_port', 'RUNNING', '', $now);
  INSERT INTO gateway_routes (hostname, deployment_id, updated_at) VALUES ('$HOST', 'dep_bench', $now);"
wait_for "http://127.0.0.1:$gw_port/index.html" "$HOST"

# --- wrk ------------------------------------------------------------------------------------
# Prints "<req/s> <p99 ms>" from wrk --latency output.
run_wrk() {
  local url=$1 host=$2 out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Host: $host" "$url")
  echo "$out" >>"$work/wrk.log"
  if echo "$out" | grep -q 'Non-2xx'; then
    echo "bench: non-2xx responses from $url:" >&2
    echo "$out" >&2
    exit 1
  fi
  local rps p99
  rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  # wrk prints latencies as 812.00us, 2.31ms or 1.02s.
  p99=$(echo "$p99" | awk '/us$/ {sub("us", ""); print $1 / 1000; next}
                           /ms$/ {sub("ms", ""); print $1; next}
                           /s$/  {sub("s", ""); print $1 * 1000}')
  echo "$rps $p99"
}

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, upstream: $UPSTREAM, body $BODY_BYTES bytes"
read -r direct_rps direct_p99 < <(run_wrk "http://127.0.0.1:$up_port/index.html" localhost)
read -r gw_rps gw_p99 < <(run_wrk "http://127.0.0.1:$gw_port/index.html" "$HOST")
gw_rss=$(awk '/VmHWM/ {print $2}' "/proc/$gateway_pid/status")

printf '%-22s %12s %12s\n' "" "req/s" "p99 (ms)"
printf '%-22s %12.0f %12.2f\n' "upstream (baseline)" "$direct_rps" "$direct_p99"
printf '%-22s %12.0f %12.2f\n' "through the gateway" "$gw_rps" "$gw_p99"
awk -v a="$gw_rps" -v b="$direct_rps" -v c="$gw_p99" -v d="$direct_p99" \
  'BEGIN { printf "ratio gateway/baseline: throughput %.2fx, p99 %.2fx\n", a / b, c / d }'
echo "gateway peak RSS: ${gw_rss} KiB"
