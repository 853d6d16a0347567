#!/usr/bin/env bash
# Installs everything slipway needs to build, run and test on Debian 12, and nothing twice:
# when every package is present it returns in about a second. Both README commands call it.
set -euo pipefail
cd "$(dirname "$0")/.."

# The product's build dependencies (Debian packages only) and the real peers its tests use.
PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config clang-format clang
  libboost1.81-dev libboost-url1.81-dev
  protobuf-compiler libprotobuf-dev
  libcurl4-openssl-dev libssl-dev zlib1g-dev
  libsqlite3-dev libpq-dev libarchive-dev libisal-dev libdeflate-dev
  libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libyaml-cpp-dev
  libgrpc++-dev protobuf-compiler-grpc
  libgtest-dev libgmock-dev libbenchmark-dev
  curl jq sqlite3 awscli nodejs npm python3-boto3 python3-venv python3-pip python3-prometheus-client
  docker.io docker-registry busybox-static postgresql wrk
  runc openssl apache2-utils containerd containernetworking-plugins
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  # nodejs/npm may come from elsewhere on a developer machine: skip them when node works.
  if command -v node >/dev/null && command -v npm >/dev/null; then
    filtered=()
    for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || filtered+=("$p"); done
    missing=("${filtered[@]}")
  fi
fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Test peers written by others (AWS SDK for JavaScript, s3rver, Connect for Node), from npm.
peers=tests/peers
if [[ -f $peers/package-lock.json ]]; then
  stamp=$peers/node_modules/.slipway-lock-sha
  want=$(sha256sum "$peers/package-lock.json" | cut -d' ' -f1)
  if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    echo "setup: installing test peers from npm"
    (cd "$peers" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
  fi
fi

# A current boto3 from PyPI, beside Debian's, for the object store's conformance tests.
scripts/s3-test-venv.sh >/dev/null

# oasdiff, the reference OpenAPI diff tool the contract diff is compared with, built once per
# version from the Go module proxy into /var/cache/slipway (tests/peers/oasdiff/build.sh).
tests/peers/oasdiff/build.sh >/dev/null
