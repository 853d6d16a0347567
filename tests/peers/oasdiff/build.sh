#!/usr/bin/env bash
# Builds oasdiff (Go module github.com/oasdiff/oasdiff), the reference OpenAPI diff tool that
# slipway's contract diff is compared with, from the Go module proxy, once per version, into a
# cache outside the clone. Prints the binary's path. The module download stays in the Go module
# cache, where the agreement test reads oasdiff's own test specs (`build.sh specs` prints their
# folder).
set -euo pipefail

VERSION=${OASDIFF_VERSION:-v1.37.0}
CACHE=${SLIPWAY_PEER_CACHE:-/var/cache/slipway}/oasdiff-$VERSION
export PATH=$PATH:/usr/local/go/bin

module_dir() {
  local work
  work=$(mktemp -d)
  (cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/oasdiff/oasdiff@$VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  rm -rf "$work"
}

build() {
  if [[ -x $CACHE/bin/oasdiff ]]; then return 0; fi
  echo "oasdiff: building oasdiff $VERSION from the Go module proxy" >&2
  command -v go >/dev/null || { echo "oasdiff: go is not installed" >&2; return 1; }
  local work mod
  mod=$(module_dir)
  work=$(mktemp -d)
  cp -r "$mod" "$work/src"
  chmod -R u+w "$work/src"
  mkdir -p "$CACHE/bin.tmp"
  (cd "$work/src" && CGO_ENABLED=0 nice go build -trimpath -ldflags "-s -w" \
    -o "$CACHE/bin.tmp/oasdiff" . >&2)
  rm -rf "$CACHE/bin" && mv "$CACHE/bin.tmp" "$CACHE/bin"
  rm -rf "$work"
}

case ${1:-build} in
  build) build && echo "$CACHE/bin/oasdiff" ;;
  specs) echo "$(module_dir)/data" ;;
  *) echo "usage: $0 [build|specs]" >&2; exit 2 ;;
esac
