#!/usr/bin/env bash
# A real BuildKit daemon for slipway's buildkit build backend, its tests and `slipway dev`.
#   scripts/buildkitd.sh build   builds buildkitd and buildctl from the Go module proxy, once per
#                                version, into a cache outside the clone (a second run is instant)
#   scripts/buildkitd.sh start   builds if needed, makes TLS material with openssl, writes the
#                                config and starts buildkitd (idempotent)
#   scripts/buildkitd.sh stop    stops the buildkitd this script started (by its PID file)
#   scripts/buildkitd.sh env [tls]  prints the BUILDKIT_* settings that reach the running daemon
#                                on its unix socket (or, with tls, on its TCP port with mTLS)
#
# The daemon: OCI worker on Debian's runc with host networking, its own root, the containerd
# worker off (dockerd's containerd is never touched), on a unix socket and on a loopback TCP
# port with mutual TLS. A folder on its PATH carries qemu-aarch64-static as
# buildkit-qemu-aarch64, so RUN steps of linux/arm64 builds run under emulation. Docker Hub
# names resolve through the local registry at 127.0.0.1:5000 as a mirror (no Hub here).
set -euo pipefail

VERSION=${BUILDKIT_VERSION:-v0.34.2}
CACHE=${SLIPWAY_PEER_CACHE:-/var/cache/slipway}/buildkit-$VERSION
STATE=${BUILDKITD_STATE:-/var/lib/slipway-buildkit}
RUN_DIR=${BUILDKITD_RUN:-/run/slipway-buildkit}
SOCKET=$RUN_DIR/buildkitd.sock
TLS_PORT=${BUILDKITD_TLS_PORT:-1234}
LOG=/var/log/slipway-buildkitd.log

build() {
  if [[ -x $CACHE/bin/buildkitd && -x $CACHE/bin/buildctl ]]; then return 0; fi
  echo "buildkitd: building BuildKit $VERSION from the Go module proxy (about 7 minutes cold)"
  command -v go >/dev/null || { echo "buildkitd: go is not installed" >&2; return 1; }
  local work mod
  work=$(mktemp -d)
  mod=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/moby/buildkit@$VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  cp -r "$mod" "$work/src"
  chmod -R u+w "$work/src"
  mkdir -p "$CACHE/bin.tmp"
  (cd "$work/src" && CGO_ENABLED=0 nice go build -trimpath \
    -ldflags "-s -w -X github.com/moby/buildkit/version.Version=$VERSION" \
    -o "$CACHE/bin.tmp/" ./cmd/buildkitd ./cmd/buildctl)
  rm -rf "$CACHE/bin" && mv "$CACHE/bin.tmp" "$CACHE/bin"
  rm -rf "$work"
}

# qemu-aarch64-static from Debian's qemu-user-static, unpacked (not installed: no binfmt_misc
# registration happens), under the name BuildKit looks up on its PATH.
emulators() {
  local dir=$CACHE/emulators
  if [[ -x $dir/buildkit-qemu-aarch64 ]]; then return 0; fi
  local work
  work=$(mktemp -d)
  (cd "$work" && apt-get download qemu-user-static >/dev/null 2>&1) || {
    echo "buildkitd: cannot download qemu-user-static (arm64 RUN steps will fail)" >&2
    rm -rf "$work"; return 0; }
  dpkg-deb -x "$work"/qemu-user-static_*.deb "$work/x"
  mkdir -p "$dir"
  cp "$work/x/usr/bin/qemu-aarch64-static" "$dir/buildkit-qemu-aarch64"
  rm -rf "$work"
}

# A CA, a server certificate for 127.0.0.1, a client certificate from that CA, and a second CA
# with a client certificate the daemon must refuse (for tests).
tls() {
  local d=$STATE/tls
  if [[ -f $d/client.pem && -f $d/rogue-client.pem ]]; then return 0; fi
  mkdir -p "$d"
  local ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
  openssl req -x509 $ec -days 3650 -subj "/CN=slipway buildkit test CA" \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req $ec -subj "/CN=127.0.0.1" -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 3650 -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
  openssl req $ec -subj "/CN=slipway-ctrl" -keyout "$d/client.key" -out "$d/client.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$d/client.ext"
  openssl x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 3650 -extfile "$d/client.ext" -out "$d/client.pem" 2>/dev/null
  openssl req -x509 $ec -days 3650 -subj "/CN=another CA" \
    -keyout "$d/rogue-ca.key" -out "$d/rogue-ca.pem" 2>/dev/null
  openssl req $ec -subj "/CN=stranger" -keyout "$d/rogue-client.key" -out "$d/rogue-client.csr" 2>/dev/null
  openssl x509 -req -in "$d/rogue-client.csr" -CA "$d/rogue-ca.pem" -CAkey "$d/rogue-ca.key" \
    -CAcreateserial -days 3650 -extfile "$d/client.ext" -out "$d/rogue-client.pem" 2>/dev/null
  rm -f "$d"/*.csr "$d"/*.ext "$d"/*.srl
}

running() {
  [[ -f $RUN_DIR/buildkitd.pid ]] && kill -0 "$(cat "$RUN_DIR/buildkitd.pid")" 2>/dev/null &&
    [[ -S $SOCKET ]]
}

start() {
  build
  emulators
  if running; then return 0; fi
  tls
  mkdir -p "$STATE/root" "$RUN_DIR"
  cat >"$STATE/buildkitd.toml" <<TOML
root = "$STATE/root"
[grpc]
  address = ["unix://$SOCKET", "tcp://127.0.0.1:$TLS_PORT"]
  [grpc.tls]
    cert = "$STATE/tls/server.pem"
    key = "$STATE/tls/server.key"
    ca = "$STATE/tls/ca.pem"
[worker.oci]
  enabled = true
  binary = "/usr/sbin/runc"
  snapshotter = "overlayfs"
  networkMode = "host"
  gc = true
  gckeepstorage = "10GB"
[worker.containerd]
  enabled = false
# No Docker Hub here: base images named like Hub images (slipway/busybox:1) come from the local
# registry, where scripts/services.sh base-images pushes them.
[registry."docker.io"]
  mirrors = ["127.0.0.1:5000"]
[registry."127.0.0.1:5000"]
  http = true
TOML
  echo "buildkitd: starting BuildKit $VERSION on unix://$SOCKET and tcp://127.0.0.1:$TLS_PORT (mTLS)"
  PATH=$CACHE/emulators:/usr/sbin:/usr/bin:/sbin:/bin nohup "$CACHE/bin/buildkitd" \
    --config "$STATE/buildkitd.toml" --oci-worker-net=host >>"$LOG" 2>&1 &
  echo $! >"$RUN_DIR/buildkitd.pid"
  for _ in $(seq 1 100); do
    if "$CACHE/bin/buildctl" --addr "unix://$SOCKET" debug workers >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "buildkitd: did not answer within 10 s; see $LOG" >&2
  tail -20 "$LOG" >&2 || true
  return 1
}

stop() {
  if [[ -f $RUN_DIR/buildkitd.pid ]]; then
    kill "$(cat "$RUN_DIR/buildkitd.pid")" 2>/dev/null || true
    rm -f "$RUN_DIR/buildkitd.pid"
  fi
}

env_lines() {  # $1: "tls" for the TCP port with mutual TLS, else the unix socket
  if [[ ${1:-} == tls ]]; then
    echo "BUILDKIT_HOST=tcp://127.0.0.1:$TLS_PORT"
    echo "BUILDKIT_TLS_CA=$STATE/tls/ca.pem"
    echo "BUILDKIT_TLS_CERT=$STATE/tls/client.pem"
    echo "BUILDKIT_TLS_KEY=$STATE/tls/client.key"
    echo "BUILDKIT_TLS_SERVER_NAME=127.0.0.1"
  else
    echo "BUILDKIT_HOST=unix://$SOCKET"
  fi
  echo "BUILDCTL=$CACHE/bin/buildctl"
}

case ${1:-start} in
  build) build && emulators ;;
  start) start ;;
  stop) stop ;;
  env) env_lines "${2:-}" ;;
  *) echo "usage: scripts/buildkitd.sh build|start|stop|env [tls]" >&2; exit 2 ;;
esac
