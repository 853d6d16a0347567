#!/usr/bin/env bash
# Starts the local services slipway's demo and tests use, when they are not running already:
#   dockerd   (Debian docker.io) on /var/run/docker.sock, with no bridge and no iptables, so
#             containers and builds only ever use host networking on loopback;
#   registry  (Debian docker-registry) on 127.0.0.1:5000, storage under /var/lib/slipway-registry;
#   base-images  slipway/busybox:1, made locally from busybox-static (needs dockerd);
#   buildkitd (BuildKit from the Go module proxy, built once and cached) on
#             unix:///run/slipway-buildkit/buildkitd.sock and tcp://127.0.0.1:1234 with mTLS:
#             scripts/buildkitd.sh, whose `env` prints the settings that reach it;
#   kubernetes   a real control plane, a kubelet and kwok nodes on loopback (scripts/kubernetes.sh;
#             built once and cached, about 22 minutes the first time).
# Idempotent. Logs go to /var/log/slipway-*.log.
set -euo pipefail

start_dockerd() {
  if [[ -S /var/run/docker.sock ]] && /usr/bin/docker version >/dev/null 2>&1; then
    return 0
  fi
  echo "services: starting dockerd (--bridge=none --iptables=false)"
  nohup /usr/sbin/dockerd --bridge=none --iptables=false --ip6tables=false \
    >/var/log/slipway-dockerd.log 2>&1 &
  for _ in $(seq 1 100); do
    if /usr/bin/docker version >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "services: dockerd did not answer within 20 s; see /var/log/slipway-dockerd.log" >&2
  tail -20 /var/log/slipway-dockerd.log >&2 || true
  return 1
}

start_registry() {
  if curl -fsS -o /dev/null http://127.0.0.1:5000/v2/ 2>/dev/null; then
    return 0
  fi
  echo "services: starting docker-registry on 127.0.0.1:5000"
  mkdir -p /var/lib/slipway-registry /etc/slipway
  cat >/etc/slipway/registry.yml <<'YML'
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/slipway-registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
YML
  nohup /usr/bin/docker-registry serve /etc/slipway/registry.yml \
    >/var/log/slipway-registry.log 2>&1 &
  for _ in $(seq 1 50); do
    if curl -fsS -o /dev/null http://127.0.0.1:5000/v2/ 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "services: the registry did not answer within 10 s; see /var/log/slipway-registry.log" >&2
  return 1
}

# slipway/busybox:1: a two-megabyte base image made from Debian's busybox-static: /bin/busybox
# and /bin/sh. examples/ and tests build FROM it; dockerd has it locally, BuildKit pulls it from
# the local registry.
ensure_base_images() {
  if ! /usr/bin/docker image inspect slipway/busybox:1 >/dev/null 2>&1; then
    make_busybox_image
  fi
  # BuildKit daemons see registries, not dockerd's images: the local registry (their Docker Hub
  # mirror, see scripts/buildkitd.sh) carries the base image under the same name.
  if curl -fsS -o /dev/null http://127.0.0.1:5000/v2/ 2>/dev/null &&
    ! curl -fsS -o /dev/null -I http://127.0.0.1:5000/v2/slipway/busybox/manifests/1 2>/dev/null; then
    echo "services: pushing slipway/busybox:1 to the local registry (for BuildKit builds)"
    /usr/bin/docker tag slipway/busybox:1 127.0.0.1:5000/slipway/busybox:1
    /usr/bin/docker push -q 127.0.0.1:5000/slipway/busybox:1 >/dev/null
  fi
}

make_busybox_image() {
  echo "services: making the base image slipway/busybox:1 from /bin/busybox"
  local root
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/www"
  cp /bin/busybox "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"
  tar -C "$root" -c . | /usr/bin/docker import -c 'CMD ["/bin/sh"]' - slipway/busybox:1 >/dev/null
  rm -rf "$root"
}

for s in "${@:-dockerd registry base-images}"; do
  for one in $s; do
    case $one in
      dockerd) start_dockerd ;;
      registry) start_registry ;;
      base-images) start_dockerd && ensure_base_images ;;
      buildkitd) "$(dirname "$0")/buildkitd.sh" start ;;
      kubernetes) start_registry && "$(dirname "$0")/kubernetes.sh" start ;;
      *) echo "services: unknown service $one" >&2; exit 2 ;;
    esac
  done
done
