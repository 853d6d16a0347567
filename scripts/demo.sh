#!/usr/bin/env bash
# The main job, end to end on this machine: installs what is missing, builds slipway, starts the
# whole embedded stack (`slipway dev`: object store, ctrl, krane on dockerd, gateway), deploys
# the bundled example with `slipway deploy examples/hello`, and shows its URL answering through
# the gateway.
#   scripts/demo.sh          stops the stack at the end
#   KEEP=1 scripts/demo.sh   leaves it running in the foreground until Ctrl-C
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
scripts/services.sh dockerd base-images

WORK=$(mktemp -d "${TMPDIR:-/tmp}/slipway-demo-XXXXXX")
DEV_PID=""
cleanup() {
  if [[ -n $DEV_PID ]] && kill -0 "$DEV_PID" 2>/dev/null; then
    kill -TERM "$DEV_PID"
    wait "$DEV_PID" 2>/dev/null || true
  fi
  # Apps outlive the stack (as in production); the demo's go with its data.
  local id
  for id in $(grep -Eo 'dep_[0-9a-f]{16}' "$WORK/deploy.out" 2>/dev/null | sort -u); do
    /usr/bin/docker ps -aq --filter "label=slipway.deployment=$id" | xargs -r /usr/bin/docker rm -f >/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# The usual ports when free, others when something already listens there.
port_or_free() { if curl -s -o /dev/null -m 1 "http://127.0.0.1:$1/"; then free_port; else echo "$1"; fi; }
GW=$(port_or_free 8080) CTRL=$(port_or_free 7000) KRANE=$(port_or_free 7070) S3=$(port_or_free 9000)
GW_ADMIN=$(port_or_free 8081)

# The demo keeps its data and CLI credentials apart from a developer's own `slipway dev`.
export XDG_CONFIG_HOME=$WORK/config XDG_DATA_HOME=$WORK/data

echo "==> starting the stack: slipway dev (data in $WORK/data)"
build/slipway dev --data "$WORK/data" --listen "127.0.0.1:$CTRL" --gateway-listen "127.0.0.1:$GW" \
  --krane-listen "127.0.0.1:$KRANE" --s3-listen "127.0.0.1:$S3" --gateway-admin-listen "127.0.0.1:$GW_ADMIN" \
  >"$WORK/dev.out" 2>"$WORK/dev.log" &
DEV_PID=$!
for _ in $(seq 300); do
  [[ -f $XDG_CONFIG_HOME/slipway/dev.json ]] && break
  kill -0 "$DEV_PID" 2>/dev/null || { cat "$WORK/dev.log" >&2; exit 1; }
  sleep 0.1
done
[[ -f $XDG_CONFIG_HOME/slipway/dev.json ]] || { echo "slipway dev did not start" >&2; cat "$WORK/dev.log" >&2; exit 1; }
sed 's/^/    /' "$WORK/dev.out"

echo "==> slipway deploy examples/hello"
build/slipway deploy examples/hello | tee "$WORK/deploy.out"
URL=$(grep -Eo 'http://hello-production\.[^ ]+' "$WORK/deploy.out" | head -1)
[[ -n $URL ]] || URL=$(grep -Eo 'http://[^ ]+\.localhost:[0-9]+/?' "$WORK/deploy.out" | tail -1)
[[ -n $URL ]] || { echo "the deploy printed no URL" >&2; exit 1; }

echo "==> curl $URL"
curl -sS -f -m 10 "$URL" | tee "$WORK/page.html"
grep -q "hello from slipway" "$WORK/page.html" || { echo "the URL did not answer with the app" >&2; exit 1; }
echo "==> done: $URL answers through the gateway"

if [[ ${KEEP:-0} == 1 ]]; then
  echo "the stack keeps running (Ctrl-C stops it); the CLI finds it through XDG_CONFIG_HOME=$XDG_CONFIG_HOME"
  wait "$DEV_PID"
fi
