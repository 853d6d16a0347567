#!/usr/bin/env bash
# The gateway side by side with nginx and HAProxy as reverse proxies, in one run, in front of
# the same origin (nginx serving a 1 KiB body): wrk at 50 and at 1,000 keep-alive connections,
# the three proxies alternating within each round, medians over the rounds (the machine is
# shared and noisy). Then 10,000 idle keep-alive connections held open through the gateway and
# through nginx, with each one's resident memory.
#
#   bench/gateway_wrk.sh
#
# Settings: BUILD_DIR (build), DURATION (10s per wrk run), ROUNDS (3), CONCURRENCY ("50 1000"),
# WRK_THREADS (2), IDLE_CONNECTIONS (10000), WORKERS (cores: nginx worker_processes, HAProxy
# nbthread and the gateway's --threads).
# nginx and HAProxy are Debian's (apt-get install -y nginx-light haproxy wrk); they run in the
# foreground with their own configuration and pid files under a temporary directory, and are
# stopped by PID at the end. No system service is started.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD_DIR:-build}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-50 1000}
WRK_THREADS=${WRK_THREADS:-2}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
WORKERS=${WORKERS:-$(nproc)}
HOST=bench-production.localhost
BODY_BYTES=1024

for tool in wrk sqlite3 curl nginx haproxy python3; do
  command -v "$tool" >/dev/null || {
    echo "bench: $tool is missing (apt-get install -y nginx-light haproxy wrk sqlite3 curl)" >&2
    exit 1
  }
done
for bin in slipway hold_connections; do
  [[ -x $BUILD/$bin ]] || { echo "bench: $BUILD/$bin is missing; run scripts/build.sh" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d)
chmod 755 "$work"  # nginx workers run as nobody
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

wait_for() {  # wait_for URL HOST: until it answers 200, at most 10 s
  for _ in $(seq 100); do
    if [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Host: $2" "$1") == 200 ]]; then return 0; fi
    sleep 0.1
  done
  echo "bench: $1 (Host $2) never answered 200" >&2
  return 1
}

# Resident memory (KiB) of a process and its children (nginx's workers), from /proc.
rss_kib() {
  local total=0 pid
  for pid in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

nginx_common="daemon off; error_log $work/nginx-error.log warn; events { worker_connections 12000; }
  worker_rlimit_nofile 20000;"
nginx_http="access_log off; client_body_temp_path $work/tmp; proxy_temp_path $work/tmp;
  fastcgi_temp_path $work/tmp; uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
  keepalive_requests 1000000; keepalive_timeout 120s;"
mkdir -p "$work/www" "$work/tmp"
head -c "$BODY_BYTES" /dev/zero | tr '\0' x >"$work/www/index.html"

# --- the origin: nginx serving a 1 KiB file --------------------------------------------------
origin_port=$(free_port)
cat >"$work/origin.conf" <<EOF
$nginx_common
worker_processes 1; pid $work/origin.pid;
http { $nginx_http
  server { listen 127.0.0.1:$origin_port default_server; root $work/www; } }
EOF
nginx -c "$work/origin.conf" -p "$work" &
pids+=($!)
wait_for "http://127.0.0.1:$origin_port/index.html" localhost

# --- nginx as a reverse proxy ---------------------------------------------------------------
nginx_port=$(free_port)
cat >"$work/proxy.conf" <<EOF
$nginx_common
worker_processes $WORKERS; pid $work/proxy.pid;
http { $nginx_http
  upstream origin { server 127.0.0.1:$origin_port; keepalive 256; }
  server { listen 127.0.0.1:$nginx_port default_server;
    location / { proxy_pass http://origin; proxy_http_version 1.1;
                 proxy_set_header Connection ""; proxy_set_header Host \$host; } } }
EOF
nginx -c "$work/proxy.conf" -p "$work" &
nginx_pid=$!
pids+=($nginx_pid)

# --- HAProxy --------------------------------------------------------------------------------
haproxy_port=$(free_port)
cat >"$work/haproxy.cfg" <<EOF
global
  nbthread $WORKERS
  maxconn 9000
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  http-reuse always
frontend web
  bind 127.0.0.1:$haproxy_port
  default_backend origin
backend origin
  server o1 127.0.0.1:$origin_port maxconn 10000
EOF
haproxy -db -f "$work/haproxy.cfg" -p "$work/haproxy.pid" &
pids+=($!)

# --- the gateway, routed to the origin through the partition database ------------------------
gw_port=$(free_port)
db=$work/partition.db
"$BUILD/slipway" --log-level warn run gateway --listen "127.0.0.1:$gw_port" \
  --admin-listen 127.0.0.1:0 --partition-database "$db" --threads "$WORKERS" --max-connections 40000 \
  --client-idle-timeout 120s >"$work/gateway.log" 2>&1 &
gateway_pid=$!
pids+=($gateway_pid)
for _ in $(seq 100); do
  [[ -s $db ]] && sqlite3 "$db" 'SELECT 1 FROM gateway_routes LIMIT 1' >/dev/null 2>&1 && break
  sleep 0.1
done
now=$(date +%s%3N)
sqlite3 "$db" >/dev/null "PRAGMA busy_timeout=5000;
  INSERT INTO instances (deployment_id, instance_id, address, status, reason, updated_at)
    VALUES ('dep_bench', 'i1', '127.0.0.1:$origin_port', 'RUNNING', '', $now);
  INSERT INTO gateway_routes (hostname, deployment_id, updated_at) VALUES ('$HOST', 'dep_bench', $now);"
wait_for "http://127.0.0.1:$gw_port/index.html" "$HOST"
wait_for "http://127.0.0.1:$nginx_port/index.html" "$HOST"
wait_for "http://127.0.0.1:$haproxy_port/index.html" "$HOST"

declare -A port_of=([gateway]=$gw_port [nginx]=$nginx_port [haproxy]=$haproxy_port [origin]=$origin_port)

# run_wrk NAME CONNECTIONS: appends "<req/s> <p99 ms> <socket errors> <non-2xx> <connect> <read>
# <write> <timeout>" (the last four: the socket errors by kind) to a result file.
run_wrk() {
  local name=$1 conns=$2 out
  out=$(wrk -t"$WRK_THREADS" -c"$conns" -d"$DURATION" --latency -H "Host: $HOST" \
    "http://127.0.0.1:${port_of[$name]}/index.html")
  echo "== $name c$conns" >>"$work/wrk.log"
  echo "$out" >>"$work/wrk.log"
  echo "$out" | awk '
    /^Requests\/sec:/ { rps = $2 }
    $1 == "99%" { p = $2; if (p ~ /us$/) { sub("us", "", p); p /= 1000 } else if (p ~ /ms$/) { sub("ms", "", p) } else if (p ~ /s$/) { sub("s", "", p); p *= 1000 } }
    /Socket errors:/ { gsub(",", ""); connect = $4; read = $6; write = $8; timeout = $10 }
    /Non-2xx/ { non2xx = $NF }
    END { printf "%s %s %d %d %d %d %d %d\n", rps, p, connect + read + write + timeout, non2xx,
                 connect, read, write, timeout }' >>"$work/result-$name-$conns"
}

# median FILE COLUMN
median() { sort -g -k"$2","$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END { print v[int((NR + 1) / 2)] }'; }
total() { awk -v c="$2" '{ s += $c } END { print s + 0 }' "$1"; }

echo "wrk -t$WRK_THREADS -d$DURATION, $ROUNDS rounds, origin nginx (1 KiB body), proxies with $WORKERS workers/threads"
contenders=(gateway nginx haproxy)
for round in $(seq "$ROUNDS"); do
  for conns in $CONCURRENCY; do
    # A different order each round, so no proxy always runs first or last.
    for i in 0 1 2; do
      name=${contenders[$(((i + round) % 3))]}
      run_wrk "$name" "$conns"
    done
  done
  run_wrk origin 50
  echo "round $round done"
done

printf '\n%-8s %-10s %10s %10s %10s %8s %14s\n' conns proxy "req/s" "p99 ms" "vs nginx" errors non-2xx
verdicts=()
for conns in $CONCURRENCY; do
  nginx_rps=$(median "$work/result-nginx-$conns" 1)
  nginx_p99=$(median "$work/result-nginx-$conns" 2)
  for name in gateway nginx haproxy; do
    f=$work/result-$name-$conns
    rps=$(median "$f" 1)
    p99=$(median "$f" 2)
    printf '%-8s %-10s %10.0f %10.2f %9.2fx %8d %14d\n' "$conns" "$name" "$rps" "$p99" \
      "$(awk -v a="$rps" -v b="$nginx_rps" 'BEGIN { print a / b }')" "$(total "$f" 3)" "$(total "$f" 4)"
  done
  gw_rps=$(median "$work/result-gateway-$conns" 1)
  gw_p99=$(median "$work/result-gateway-$conns" 2)
  verdicts+=("c$conns req/s gateway >= nginx: $(awk -v a="$gw_rps" -v b="$nginx_rps" 'BEGIN { print (a >= b) ? "met" : "MISSED" }')")
  if [[ $conns == 50 ]]; then
    verdicts+=("c50 p99 gateway <= nginx: $(awk -v a="$gw_p99" -v b="$nginx_p99" 'BEGIN { print (a <= b) ? "met" : "MISSED" }')")
  fi
  f=$work/result-gateway-$conns
  verdicts+=("c$conns gateway socket errors: $(total "$f" 3) (connect $(total "$f" 5), read $(total "$f" 6), write $(total "$f" 7), timeout $(total "$f" 8))")
done
for conns in $CONCURRENCY; do  # each round's figures, the proxies of a round side by side
  paste -d' ' "$work/result-gateway-$conns" "$work/result-nginx-$conns" "$work/result-haproxy-$conns" |
    awk -v c="$conns" '{ printf "c%-7s round %d: gateway %.0f req/s p99 %.2f ms, nginx %.0f p99 %.2f, haproxy %.0f p99 %.2f: gateway/nginx %.2fx\n",
                         c, NR, $1, $2, $9, $10, $17, $18, $1 / $9 }'
done
printf '%-8s %-10s %10.0f %10.2f   (origin alone, the ceiling)\n' 50 origin \
  "$(median "$work/result-origin-50" 1)" "$(median "$work/result-origin-50" 2)"

# --- idle keep-alive connections ------------------------------------------------------------
idle_rss() {  # idle_rss NAME PID: RSS before and while IDLE_CONNECTIONS are held
  local before held_rss holder
  before=$(rss_kib "$2")
  "$BUILD/hold_connections" "${port_of[$1]}" "$HOST" "$IDLE_CONNECTIONS" >"$work/hold-$1.out" 2>&1 &
  holder=$!
  for _ in $(seq 600); do
    grep -q holding "$work/hold-$1.out" && break
    kill -0 "$holder" 2>/dev/null || { cat "$work/hold-$1.out" >&2; return 1; }
    sleep 0.1
  done
  held_rss=$(rss_kib "$2")
  kill "$holder"
  wait "$holder" 2>/dev/null || true
  printf '%-10s %10d KiB before, %10d KiB holding %d idle connections\n' "$1" "$before" "$held_rss" \
    "$IDLE_CONNECTIONS"
  echo "$held_rss" >"$work/idle-$1"
}
echo
idle_rss gateway "$gateway_pid"
idle_rss nginx "$nginx_pid"
verdicts+=("$IDLE_CONNECTIONS idle connections under 100 MiB: $(awk '{ print ($1 < 102400) ? "met" : "MISSED" }' "$work/idle-gateway")")
echo "gateway peak RSS over the whole run: $(awk '/VmHWM/ {print $2}' "/proc/$gateway_pid/status") KiB"
echo
printf '%s\n' "${verdicts[@]}"
