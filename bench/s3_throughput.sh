#!/usr/bin/env bash
# Throughput of the embedded object store, beside baselines measured in the same run:
#   - presigned PUT of a SIZE_MIB object with plain curl through `slipway run s3`, beside
#     `dd ... conv=fsync` of the same bytes to the same disk (the ceiling for a durable write);
#   - beside them, OpenSSL's MD5 over the same bytes from the page cache: the ETag is their MD5,
#     a serial computation, so no PUT can beat it;
#   - presigned GET of the stored object with curl to /dev/null, beside `cat` of the stored
#     object's own file to /dev/null: warm (both from the page cache) and cold (the GET and
#     the cat each after `dd iflag=nocache` dropped that file's pages);
#   - the same bytes through `aws s3 cp` (up and down) against the same server, once.
# The machine is shared: each pair runs ROUNDS times, alternating, and the medians are printed.
# Also the store's peak RSS after a 4 MiB, a 64 MiB and the SIZE_MIB objects: it must not grow.
# Usage: bench/s3_throughput.sh [SIZE_MIB] [ROUNDS]   (default 256, 5). Needs build/slipway.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-256}
ROUNDS=${2:-5}
BIN=build/slipway
[[ -x $BIN ]] || { echo "build/slipway is missing: run scripts/build.sh first" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/slipway-bench-XXXXXX")
PID=""
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export S3_ACCESS_KEY_ID=bench S3_SECRET_ACCESS_KEY=bench-secret-key
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret-key AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=$WORK/aws-config AWS_SHARED_CREDENTIALS_FILE=$WORK/aws-credentials
printf '[default]\ns3 =\n  addressing_style = path\n' >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"
ENDPOINT=http://127.0.0.1:$PORT
AWS=/usr/bin/aws  # Debian's AWS CLI v2

$BIN run s3 --data "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/s3.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "$ENDPOINT/" && break; sleep 0.05; done
$AWS --endpoint-url "$ENDPOINT" s3 mb s3://bench >/dev/null

now() { date +%s.%N; }
mibps() { python3 -c "print(f'{$1/($3-$2):.1f}')"; }  # MIB START END
# CPU seconds the store has used so far (user + system), and what a command used ($CPU_FILE).
store_cpu() { awk -v t="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / t}' "/proc/$PID/stat"; }
CPU_FILE=$WORK/cpu
cpu_of_last() { awk '{printf "%.3f", $1 + $2}' "$CPU_FILE"; }
hwm_mib() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status"; }
median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):8.1f}')" "$@"; }
median_cpu() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.2f}')" "$@"; }
presign() { $BIN s3 presign --endpoint "$ENDPOINT" --method "$1" "s3://bench/$2"; }
# The file the store keeps an object in (buckets/<bucket>/<hh>/<sha256(key)>: its bytes, then a
# small trailer), for cat to read the very bytes the GET serves.
stored_file() {
  local h
  h=$(printf '%s' "$1" | sha256sum | cut -c1-64)
  echo "$WORK/data/buckets/bench/${h:0:2}/$h"
}

put() {  # MIB KEY: one presigned PUT of $WORK/<KEY>.bin; prints MiB/s
  local url t0 t1
  url=$(presign PUT "$2")
  t0=$(now); /usr/bin/time -o "$CPU_FILE" -f '%U %S' curl -sf -T "$WORK/$2.bin" "$url" >/dev/null; t1=$(now)
  mibps "$1" "$t0" "$t1"
}
get() {  # MIB KEY: one presigned GET to /dev/null; prints MiB/s
  local url t0 t1
  url=$(presign GET "$2")
  t0=$(now); curl -sf -o /dev/null "$url"; t1=$(now)
  mibps "$1" "$t0" "$t1"
}
cat_stored() {  # MIB KEY: cat of the stored object's file to /dev/null; prints MiB/s
  local t0 t1 file
  file=$(stored_file "$2")
  t0=$(now); cat "$file" >/dev/null; t1=$(now)
  mibps "$1" "$t0" "$t1"
}
# Drops the stored file's pages from the page cache (only that file's), for the cold figures.
drop_cached() { dd if="$(stored_file "$1")" iflag=nocache count=0 status=none; }
check_bytes() {  # KEY: the GET serves exactly what was put
  curl -sf "$(presign GET "$1")" | cmp -s - "$WORK/$1.bin" ||
    { echo "downloaded bytes of $1 differ" >&2; exit 1; }
}

# Peak RSS after a 4 MiB and a 64 MiB object, then after the large ones: flat means the same.
HWM=()
for mib in 4 64; do
  head -c $((mib * 1024 * 1024)) /dev/urandom >"$WORK/obj$mib.bin"
  put "$mib" "obj$mib" >/dev/null
  get "$mib" "obj$mib" >/dev/null
  check_bytes "obj$mib"
  HWM+=("$(hwm_mib)")
done

head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$WORK/object.bin"
sync
DD=() MD5=() PUT=() DD_CPU=() CURL_CPU=() STORE_CPU=() COLD_GET=() COLD_CAT=() GET=() CAT=()
for round in $(seq "$ROUNDS"); do
  # Each round writes a new file and a new key (dd's file is removed outside the timing, and so
  # is the previous round's object), so neither write pays for freeing an older one's blocks.
  key=object-$round
  ln -sf object.bin "$WORK/$key.bin"
  sync
  t0=$(now)
  /usr/bin/time -o "$CPU_FILE" -f '%U %S' \
    dd if="$WORK/object.bin" of="$WORK/data/dd.bin" bs=1M conv=fsync status=none
  t1=$(now)
  DD+=("$(mibps "$SIZE_MIB" "$t0" "$t1")") DD_CPU+=("$(cpu_of_last)"); rm -f "$WORK/data/dd.bin"
  # The ETag of a single PUT is the MD5 of its bytes, and MD5 is one serial chain: no PUT can
  # finish before OpenSSL's MD5 (the store's) has gone over the bytes once, on one core.
  t0=$(now); openssl md5 "$WORK/object.bin" >/dev/null; t1=$(now)
  MD5+=("$(mibps "$SIZE_MIB" "$t0" "$t1")")
  sync
  c0=$(store_cpu)
  PUT+=("$(put "$SIZE_MIB" "$key")") CURL_CPU+=("$(cpu_of_last)")
  STORE_CPU+=("$(python3 -c "print(f'{$(store_cpu) - $c0:.3f}')")")
  drop_cached "$key"
  COLD_GET+=("$(get "$SIZE_MIB" "$key")")
  drop_cached "$key"
  COLD_CAT+=("$(cat_stored "$SIZE_MIB" "$key")")
  GET+=("$(get "$SIZE_MIB" "$key")")
  CAT+=("$(cat_stored "$SIZE_MIB" "$key")")
  check_bytes "$key"
  $AWS --endpoint-url "$ENDPOINT" s3 rm --quiet "s3://bench/$key"
  rm -f "$WORK/$key.bin"
done
HWM+=("$(hwm_mib)")

t0=$(now); $AWS --endpoint-url "$ENDPOINT" s3 cp --quiet "$WORK/object.bin" s3://bench/aws; t1=$(now)
AWS_PUT=$(mibps "$SIZE_MIB" "$t0" "$t1")
t0=$(now); $AWS --endpoint-url "$ENDPOINT" s3 cp --quiet s3://bench/aws "$WORK/down.bin"; t1=$(now)
AWS_GET=$(mibps "$SIZE_MIB" "$t0" "$t1")
rm -f "$WORK/down.bin"

ratio() { python3 -c "print(f'{$1/$2:5.2f}x')"; }
M_DD=$(median "${DD[@]}") M_PUT=$(median "${PUT[@]}") M_MD5=$(median "${MD5[@]}")
M_CGET=$(median "${COLD_GET[@]}") M_CCAT=$(median "${COLD_CAT[@]}")
M_GET=$(median "${GET[@]}") M_CAT=$(median "${CAT[@]}")
echo "object store throughput, ${SIZE_MIB} MiB object, MiB/s, medians of $ROUNDS alternating rounds, same disk"
row() { printf '  %-46s %s   (%s)\n' "$1" "$2" "$3"; }
row "dd conv=fsync to the data disk (baseline)" "$M_DD" "rounds: ${DD[*]}"
row "MD5 of the bytes, one stream (ETag's floor)" "$M_MD5" "$(ratio "$M_MD5" "$M_DD") of dd; rounds: ${MD5[*]}"
row "presigned PUT via curl -> slipway s3" "$M_PUT" "$(ratio "$M_PUT" "$M_DD") of dd, $(ratio "$M_PUT" "$M_MD5") of MD5; rounds: ${PUT[*]}"
row "cat of the stored file, cold (baseline)" "$M_CCAT" "rounds: ${COLD_CAT[*]}"
row "presigned GET to /dev/null, cold" "$M_CGET" "$(ratio "$M_CGET" "$M_CCAT") of cat; rounds: ${COLD_GET[*]}"
row "cat of the stored file, warm (baseline)" "$M_CAT" "rounds: ${CAT[*]}"
row "presigned GET to /dev/null, warm" "$M_GET" "$(ratio "$M_GET" "$M_CAT") of cat; rounds: ${GET[*]}"
printf '  %-46s %8s   (once)\n' "aws s3 cp up (multipart) -> slipway s3" "$AWS_PUT"
printf '  %-46s %8s   (once)\n' "aws s3 cp down <- slipway s3" "$AWS_GET"
# The machine is shared: when its cores are busy, a write that needs more CPU falls further
# behind dd, whatever the disk does. This says how much each side needed.
echo "CPU seconds per ${SIZE_MIB} MiB write (medians): dd $(median_cpu "${DD_CPU[@]}"), PUT: the store" \
  "$(median_cpu "${STORE_CPU[@]}") + curl $(median_cpu "${CURL_CPU[@]}"); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "store peak RSS (VmHWM): ${HWM[0]} MiB after a 4 MiB object, ${HWM[1]} MiB after 64 MiB," \
  "${HWM[2]} MiB after $ROUNDS ${SIZE_MIB} MiB objects (presigned PUT and GET)"
