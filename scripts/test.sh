#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, starts the services the tests need, and
# runs ctest (unit and integration; the kubernetes tests' cluster too). Extra arguments go to ctest
# (e.g. -L unit, -R S3, -L kubernetes).
#
# scripts/test.sh --sanitize [ctest arguments] instead builds the unit tests with
# AddressSanitizer and UndefinedBehaviorSanitizer into build-asan/ (the normal build/ is left
# alone) and runs the unit label there: any memory error, leak or undefined behaviour fails the
# test it happens in.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

if [[ ${1:-} == --sanitize ]]; then
  shift
  export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/slipway-ccache}
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(cd .. && pwd)}
  export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
  if [[ ! -f build-asan/build.ninja ]]; then
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLIPWAY_SANITIZE=ON \
      >/dev/null
  fi
  cmake --build build-asan -j "${JOBS:-2}" --target unit_tests
  cd build-asan
  # halt_on_error: the first report fails the test (UBSan's too: -fno-sanitize-recover).
  export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:strict_string_checks=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  exec ctest --output-on-failure -j "${TEST_JOBS:-2}" -L unit "$@"
fi

scripts/build.sh
scripts/services.sh dockerd registry base-images buildkitd kubernetes
cd build
ctest --output-on-failure -j "${TEST_JOBS:-2}" "$@"
