#!/usr/bin/env bash
# The object store on its own (the first demo): installs what is missing, builds slipway, starts the
# embedded object store, and moves a file through presigned URLs with plain curl, the way the
# CLI hands a build context to storage and a builder fetches it back.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh

WORK=$(mktemp -d "${TMPDIR:-/tmp}/slipway-demo-XXXXXX")
PID=""
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

PORT=${S3_PORT:-9000}
if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fi
ENDPOINT=http://127.0.0.1:$PORT
export S3_ACCESS_KEY_ID=demo S3_SECRET_ACCESS_KEY=demo-secret-key-0123456789
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$S3_SECRET_ACCESS_KEY
export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=$WORK/aws-config AWS_SHARED_CREDENTIALS_FILE=$WORK/aws-creds
printf '[default]\ns3 =\n  addressing_style = path\n' >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"

echo "==> starting the embedded object store on $ENDPOINT (data in $WORK/data)"
build/slipway run s3 --data "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/s3.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "$ENDPOINT/" && break; sleep 0.05; done

echo "==> creating bucket 'slipway' with the AWS CLI"
/usr/bin/aws --endpoint-url "$ENDPOINT" s3 mb s3://slipway

echo "==> packaging a directory as a build context"
tar -czf "$WORK/context.tar.gz" -C "$(pwd)" README.md scripts
SHA=$(sha256sum "$WORK/context.tar.gz" | cut -d' ' -f1)
KEY=contexts/demo/$SHA.tar.gz

PUT_URL=$(build/slipway s3 presign --endpoint "$ENDPOINT" --method PUT --expires 15m "s3://slipway/$KEY")
echo "==> presigned PUT (15 min): ${PUT_URL:0:110}..."
curl -sf -T "$WORK/context.tar.gz" "$PUT_URL"
echo "    uploaded $(stat -c %s "$WORK/context.tar.gz") bytes with curl, no credentials"

GET_URL=$(build/slipway s3 presign --endpoint "$ENDPOINT" --method GET --expires 15m "s3://slipway/$KEY")
echo "==> presigned GET: ${GET_URL:0:110}..."
curl -sf -o "$WORK/fetched.tar.gz" "$GET_URL"
GOT=$(sha256sum "$WORK/fetched.tar.gz" | cut -d' ' -f1)
[[ $GOT == "$SHA" ]] || { echo "downloaded bytes differ from the upload" >&2; exit 1; }
echo "    downloaded and verified: sha256 $GOT"

echo "==> a tampered URL is refused:"
last=${GET_URL: -1}; [[ $last == 0 ]] && flip=1 || flip=0
curl -s -o /dev/null -w '    HTTP %{http_code}\n' "${GET_URL%?}$flip"
echo "==> listing with the AWS CLI:"
/usr/bin/aws --endpoint-url "$ENDPOINT" s3 ls --recursive s3://slipway/
echo "done: the object store answered on $ENDPOINT"
