#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, starts the services the tests need, and
# runs ctest (unit and integration). Extra arguments go to ctest (e.g. -L unit, -R S3).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
scripts/services.sh dockerd registry base-images
cd build
ctest --output-on-failure -j "${TEST_JOBS:-2}" "$@"
