#!/usr/bin/env bash
# Throughput of the embedded object store, beside baselines measured in the same run:
#   - presigned PUT and GET of a SIZE_MIB object with plain curl through `slipway run s3`;
#   - the same bytes through `aws s3 cp` (up and down) against the same server;
#   - `dd ... conv=fsync` of the same bytes to the same disk (the ceiling for a durable write).
# Also the store's peak RSS after a small and after a large object: it must not grow with size.
# Usage: bench/s3_throughput.sh [SIZE_MIB]   (default 256). Needs build/slipway (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-256}
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
mbps() { python3 -c "print(f'{$SIZE_MIB/($2-$1):8.1f}')"; }
hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$PID/status"; }

head -c $((4 * 1024 * 1024)) /dev/urandom >"$WORK/small.bin"
curl -sf -T "$WORK/small.bin" "$($BIN s3 presign --endpoint "$ENDPOINT" --method PUT s3://bench/small)" >/dev/null
HWM_SMALL=$(hwm_kib)

head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$WORK/object.bin"
sync

t0=$(now); dd if="$WORK/object.bin" of="$WORK/data/dd.bin" bs=1M conv=fsync status=none; t1=$(now)
DD=$(mbps "$t0" "$t1"); rm -f "$WORK/data/dd.bin"

URL=$($BIN s3 presign --endpoint "$ENDPOINT" --method PUT s3://bench/object)
t0=$(now); curl -sf -T "$WORK/object.bin" "$URL" >/dev/null; t1=$(now)
PUT=$(mbps "$t0" "$t1")
URL=$($BIN s3 presign --endpoint "$ENDPOINT" --method GET s3://bench/object)
t0=$(now); curl -sf -o "$WORK/down.bin" "$URL"; t1=$(now)
GET=$(mbps "$t0" "$t1")
cmp -s "$WORK/object.bin" "$WORK/down.bin" || { echo "downloaded bytes differ" >&2; exit 1; }
rm -f "$WORK/down.bin"

t0=$(now); $AWS --endpoint-url "$ENDPOINT" s3 cp --quiet "$WORK/object.bin" s3://bench/aws; t1=$(now)
AWS_PUT=$(mbps "$t0" "$t1")
t0=$(now); $AWS --endpoint-url "$ENDPOINT" s3 cp --quiet s3://bench/aws "$WORK/down.bin"; t1=$(now)
AWS_GET=$(mbps "$t0" "$t1")
HWM_LARGE=$(hwm_kib)

ratio() { python3 -c "print(f'{$1/$2:5.2f}x')"; }
echo "object store throughput, ${SIZE_MIB} MiB object, MB/s (MiB/s), same run, same disk"
printf '  %-44s %s\n' "dd conv=fsync to the data disk (baseline)" "$DD"
printf '  %-44s %s   (%s of dd)\n' "presigned PUT via curl -> slipway s3" "$PUT" "$(ratio "$PUT" "$DD")"
printf '  %-44s %s   (%s of aws s3 cp up)\n' "" "" "$(ratio "$PUT" "$AWS_PUT")"
printf '  %-44s %s\n' "aws s3 cp up (multipart) -> slipway s3" "$AWS_PUT"
printf '  %-44s %s   (%s of aws s3 cp down)\n' "presigned GET via curl <- slipway s3" "$GET" "$(ratio "$GET" "$AWS_GET")"
printf '  %-44s %s\n' "aws s3 cp down <- slipway s3" "$AWS_GET"
echo "store peak RSS: $((HWM_SMALL / 1024)) MiB after a 4 MiB object, $((HWM_LARGE / 1024)) MiB after ${SIZE_MIB} MiB objects"
