#!/usr/bin/env bash
# Makes (once) the virtualenv with a current boto3 from PyPI that the object store's
# conformance tests run beside Debian's python3-boto3. It lives outside the build directory,
# so a fresh build reuses it; prints its python.
set -euo pipefail
venv=${SLIPWAY_BOTO3_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/slipway/boto3-venv}
if ! "$venv/bin/python" -c 'import boto3' 2>/dev/null; then
  echo "setup: installing a current boto3 from PyPI into $venv" >&2
  mkdir -p "$(dirname "$venv")"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check boto3 >&2
fi
echo "$venv/bin/python"
