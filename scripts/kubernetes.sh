#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for krane's kubernetes backend tests:
#   build   compiles (about 22 minutes cold on 2 cores) kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl,
#           etcd and kwok from the Go module proxy into a cache outside the clone, keyed by
#           version (nothing to do the second time);
#   start   PKI, etcd, apiserver, controller-manager, scheduler, containerd + a real kubelet
#           (hostNetwork pods only: there is no pod network) and kwok with fake nodes; writes
#           the kubeconfig to $KUBE_STATE/kubeconfig. Idempotent;
#   stop    stops every process it started, by the PIDs it recorded.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
KUBE_CACHE=${KUBE_CACHE:-/var/cache/slipway/kubernetes-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION}
KUBE_BIN=$KUBE_CACHE/bin
KUBE_STATE=${KUBE_STATE:-/var/lib/slipway-kubernetes}
KUBE_LOG=${KUBE_LOG:-/var/log/slipway-kubernetes}
APISERVER_PORT=${APISERVER_PORT:-6443}
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl etcd kwok)

log() { echo "kubernetes: $*"; }

have_binaries() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x $KUBE_BIN/$b ]] || return 1; done
  [[ -f $KUBE_CACHE/kwok-stages.yaml ]]
}

# --- build ----------------------------------------------------------------------------------

build_kubernetes() {
  local w=$KUBE_CACHE/src/kubernetes
  mkdir -p "$w" "$KUBE_BIN"
  cd "$w"
  if [[ ! -f go.mod ]]; then
    go mod init slipway.local/kube-peers >/dev/null 2>&1
  fi
  # Kubernetes' go.mod requires its staging modules at v0.0.0 and replaces them with local
  # paths; a wrapper module pins each of them to the matching published v0.X.Y instead.
  local kmod staging minor
  go mod download k8s.io/kubernetes@"$K8S_VERSION"
  kmod=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod
  minor=v0.${K8S_VERSION#v1.}
  staging=$(awk '/^\t(k8s\.io\/[^ ]+) v0\.0\.0$/ {print $1}' "$kmod" | sort -u)
  {
    echo "module slipway.local/kube-peers"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    local m
    for m in $staging; do echo "replace $m => $m $minor"; done
  } >go.mod
  log "wrapper module pins $(echo "$staging" | wc -w) staging modules to $minor"
  local cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl) c
  for c in "${cmds[@]}"; do go get "k8s.io/kubernetes/cmd/$c@$K8S_VERSION"; done
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
  ld+=" -X k8s.io/component-base/version.gitMajor=1"
  ld+=" -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
  ld+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  for c in "${cmds[@]}"; do
    [[ -x $KUBE_BIN/$c ]] && continue
    log "building $c $K8S_VERSION"
    nice -n 10 go build -trimpath -ldflags "$ld" -o "$KUBE_BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$KUBE_BIN/$c.tmp" "$KUBE_BIN/$c"
  done
}

build_etcd() {
  [[ -x $KUBE_BIN/etcd ]] && return 0
  local w=$KUBE_CACHE/src/etcd
  mkdir -p "$w"
  cd "$w"
  [[ -f go.mod ]] || go mod init slipway.local/etcd-peer >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  log "building etcd $ETCD_VERSION"
  nice -n 10 go build -trimpath -ldflags "-s -w" -o "$KUBE_BIN/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$KUBE_BIN/etcd.tmp" "$KUBE_BIN/etcd"
}

build_kwok() {
  if [[ ! -x $KUBE_BIN/kwok ]]; then
    log "building kwok $KWOK_VERSION"
    GOBIN=$KUBE_BIN nice -n 10 go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  fi
  # kwok exits with "no stages found" without a stage config: the module's own node and pod
  # stages (fast node, lease heartbeat, fast pod) make one.
  if [[ ! -f $KUBE_CACHE/kwok-stages.yaml ]]; then
    local src
    src=$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage
    [[ -d $src ]] || go mod download "sigs.k8s.io/kwok@$KWOK_VERSION"
    local f out=$KUBE_CACHE/kwok-stages.yaml.tmp
    : >"$out"
    for f in node/fast node/heartbeat-with-lease pod/fast; do
      local y
      for y in "$src/$f"/*.yaml; do
        [[ $(basename "$y") == kustomization.yaml ]] && continue
        echo "---" >>"$out"
        cat "$y" >>"$out"
      done
    done
    mv "$out" "$KUBE_CACHE/kwok-stages.yaml"
  fi
}

cmd_build() {
  if have_binaries; then
    log "binaries cached in $KUBE_BIN"
    return 0
  fi
  command -v go >/dev/null || { echo "kubernetes: go is needed to build the peers" >&2; exit 1; }
  log "building the control plane into $KUBE_BIN (about 22 minutes cold on 2 cores)"
  local start=$SECONDS
  (build_etcd)
  (build_kwok)
  (build_kubernetes)
  have_binaries || { echo "kubernetes: build finished without every binary" >&2; exit 1; }
  log "built in $((SECONDS - start)) s"
}

# --- start / stop ---------------------------------------------------------------------------

PKI=$KUBE_STATE/pki
PIDS=$KUBE_STATE/pids
RUN_DIR=/run/slipway-kubernetes
CONTAINERD_SOCK=$RUN_DIR/containerd/containerd.sock
KUBECONFIG_OUT=$KUBE_STATE/kubeconfig
CGROUP_ROOT=slipway-kubelet
PAUSE_IMAGE=slipway.local/pause:1
KWOK_NODES=${KWOK_NODES:-4}
ETCD_CLIENT=127.0.0.1:12379
ETCD_PEER=127.0.0.1:12380
KWOK_SERVER=127.0.0.1:10347

apiserver_ready() {
  curl -fsS --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null 2>&1
}

kubectl_() { "$KUBE_BIN/kubectl" --kubeconfig "$KUBECONFIG_OUT" "$@"; }
kubectl_quiet() { kubectl_ "$@" >/dev/null 2>&1; }

# A process that exited but was not reaped (a zombie: its parent may be a PID 1 that reaps
# nothing) is not alive.
running_pid() {
  [[ -r /proc/$1/stat ]] && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]
}
pid_alive() { [[ -f $PIDS/$1.pid ]] && running_pid "$(cat "$PIDS/$1.pid")"; }

# Runs a daemon in the background, logging to $KUBE_LOG/<name>.log, and records its PID.
launch() {
  local name=$1
  shift
  nohup "$@" >"$KUBE_LOG/$name.log" 2>&1 &
  echo $! >"$PIDS/$name.pid"
}

wait_for() {  # wait_for SECONDS WHAT COMMAND...
  local secs=$1 what=$2
  shift 2
  local i
  for ((i = 0; i < secs * 5; i++)); do
    if "$@"; then return 0; fi
    sleep 0.2
  done
  echo "kubernetes: $what not ready within $secs s; logs in $KUBE_LOG" >&2
  return 1
}

cert() {  # cert NAME SUBJECT [SAN] : an EC P-256 key and a certificate signed by the CA
  local name=$1 subject=$2 san=${3:-}
  [[ -f $PKI/$name.crt ]] && return 0
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subject" -out "$PKI/$name.csr" 2>/dev/null
  local ext=$PKI/$name.ext
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [[ -n $san ]] && echo "subjectAltName=$san"
  } >"$ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
}

make_pki() {
  mkdir -p "$PKI"
  if [[ ! -f $PKI/ca.crt ]]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=slipway-test-ca" -days 3650 \
      -sha256 -out "$PKI/ca.crt" 2>/dev/null
  fi
  cert apiserver "/CN=kube-apiserver" \
    "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc"
  cert admin "/O=system:masters/CN=slipway-admin"
  cert kubelet "/O=system:nodes/CN=system:node:127.0.0.1"
  cert kubelet-serving "/CN=127.0.0.1" "IP:127.0.0.1,DNS:localhost"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  if [[ ! -f $PKI/sa.key ]]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/sa.key" 2>/dev/null
    openssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  if [[ ! -f $PKI/tokens.csv ]]; then
    echo "$(openssl rand -hex 24),slipway-admin,slipway-admin-uid,\"system:masters\"" >"$PKI/tokens.csv"
  fi
  chmod 600 "$PKI"/*.key
}

write_kubeconfig() {  # write_kubeconfig FILE CERT_NAME
  cat >"$1" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: slipway-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: slipway-test
  context:
    cluster: slipway-test
    user: $2
current-context: slipway-test
YAML
}

etcd_healthy() { curl -fsS --max-time 1 -o /dev/null "http://$ETCD_CLIENT/health" 2>/dev/null; }

start_etcd() {
  pid_alive etcd && return 0
  # A new cluster each time: objects left by an earlier run (pods holding the real node's CPU)
  # must not decide whether this run's tests fit.
  rm -rf "$KUBE_STATE/etcd" "$KUBE_STATE/kubelet"
  log "starting etcd on $ETCD_CLIENT"
  launch etcd "$KUBE_BIN/etcd" --name default --data-dir "$KUBE_STATE/etcd" \
    --listen-client-urls "http://$ETCD_CLIENT" --advertise-client-urls "http://$ETCD_CLIENT" \
    --listen-peer-urls "http://$ETCD_PEER" --initial-advertise-peer-urls "http://$ETCD_PEER" \
    --initial-cluster "default=http://$ETCD_PEER" --unsafe-no-fsync --log-level warn
  wait_for 20 etcd etcd_healthy
}

start_apiserver() {
  pid_alive kube-apiserver && apiserver_ready && return 0
  log "starting kube-apiserver on 127.0.0.1:$APISERVER_PORT"
  launch kube-apiserver "$KUBE_BIN/kube-apiserver" \
    --etcd-servers "http://$ETCD_CLIENT" \
    --bind-address 127.0.0.1 --secure-port "$APISERVER_PORT" --advertise-address 127.0.0.1 \
    --endpoint-reconciler-type none \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" --token-auth-file "$PKI/tokens.csv" \
    --authorization-mode Node,RBAC \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 --allow-privileged=true --profiling=false \
    --watch-cache=true
  wait_for 60 kube-apiserver apiserver_ready
}

start_controllers() {
  if ! pid_alive kube-controller-manager; then
    log "starting kube-controller-manager and kube-scheduler"
    launch kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
      --kubeconfig "$KUBECONFIG_OUT" --leader-elect=false \
      --use-service-account-credentials=false \
      --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
      --bind-address 127.0.0.1
  fi
  if ! pid_alive kube-scheduler; then
    launch kube-scheduler "$KUBE_BIN/kube-scheduler" --kubeconfig "$KUBECONFIG_OUT" \
      --leader-elect=false --bind-address 127.0.0.1
  fi
}

# A pause image made here: a static C++ program that waits for a signal, imported into
# containerd's k8s.io namespace as an OCI archive built by hand (no registry, no dockerd).
make_pause_image() {
  local dir=$KUBE_STATE/pause
  if [[ ! -f $dir/pause.tar ]]; then
    rm -rf "$dir" && mkdir -p "$dir/rootfs" "$dir/oci/blobs/sha256"
    cat >"$dir/pause.cc" <<'CC'
#include <csignal>
#include <unistd.h>
#include <sys/wait.h>
static void Quit(int) { _exit(0); }
static void Reap(int) { while (waitpid(-1, nullptr, WNOHANG) > 0) {} }
int main() {
  std::signal(SIGTERM, Quit);
  std::signal(SIGINT, Quit);
  std::signal(SIGCHLD, Reap);
  for (;;) pause();
}
CC
    g++ -O2 -static -o "$dir/rootfs/pause" "$dir/pause.cc"
    tar -C "$dir/rootfs" --owner=0 --group=0 --mtime=@0 -cf "$dir/layer.tar" pause
    local layer_sha layer_size config_sha config_size manifest_sha manifest_size
    layer_sha=$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
    layer_size=$(stat -c %s "$dir/layer.tar")
    cp "$dir/layer.tar" "$dir/oci/blobs/sha256/$layer_sha"
    printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
      "$layer_sha" >"$dir/config.json"
    config_sha=$(sha256sum "$dir/config.json" | cut -d' ' -f1)
    config_size=$(stat -c %s "$dir/config.json")
    cp "$dir/config.json" "$dir/oci/blobs/sha256/$config_sha"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
      "$config_sha" "$config_size" "$layer_sha" "$layer_size" >"$dir/manifest.json"
    manifest_sha=$(sha256sum "$dir/manifest.json" | cut -d' ' -f1)
    manifest_size=$(stat -c %s "$dir/manifest.json")
    cp "$dir/manifest.json" "$dir/oci/blobs/sha256/$manifest_sha"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci/oci-layout"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"1"}}]}' \
      "$manifest_sha" "$manifest_size" "$PAUSE_IMAGE" >"$dir/oci/index.json"
    tar -C "$dir/oci" -cf "$dir/pause.tar" .
  fi
  ctr -a "$CONTAINERD_SOCK" -n k8s.io images import --no-unpack=false "$dir/pause.tar" >/dev/null
  ctr -a "$CONTAINERD_SOCK" -n k8s.io images label "$PAUSE_IMAGE" io.cri-containerd.pinned=pinned >/dev/null
}

write_node_config() {
  local d=$KUBE_STATE/node
  mkdir -p "$d/certs.d/127.0.0.1:5000" "$d/cni/net.d" "$RUN_DIR/containerd"
  cat >"$d/containerd.toml" <<TOML
version = 2
root = "$KUBE_STATE/containerd"
state = "$RUN_DIR/containerd/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$RUN_DIR/containerd/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$d/certs.d"
TOML
  cat >"$d/certs.d/127.0.0.1:5000/hosts.toml" <<TOML
server = "http://127.0.0.1:5000"
[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
TOML
  # Only loopback: pods here use host networking; the file makes the node report network ready.
  cat >"$d/cni/net.d/10-loopback.conflist" <<'JSON'
{"cniVersion": "1.0.0", "name": "slipway-loopback", "plugins": [{"type": "loopback"}]}
JSON
  cat >"$d/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
address: 127.0.0.1
port: 10250
healthzBindAddress: 127.0.0.1
healthzPort: 10248
readOnlyPort: 0
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
failSwapOn: false
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
syncFrequency: 5s
resolvConf: /etc/resolv.conf
localStorageCapacityIsolation: false
YAML
  # The six sysctls the kubelet insists on changing get plain files bound over them inside its
  # mount namespace, so the host keeps its own values.
  mkdir -p "$d/sysctl"
  local s
  for s in vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops \
    kernel/keys/root_maxkeys kernel/keys/root_maxbytes; do
    cat "/proc/sys/$s" >"$d/sysctl/${s//\//_}"
  done
  # cgroup v1: the kubelet's root must exist in every hierarchy (cpuset copies its parent's).
  local h
  for h in /sys/fs/cgroup/*/; do
    [[ -d $h && ! -L ${h%/} ]] || continue
    mkdir -p "$h$CGROUP_ROOT" 2>/dev/null || continue
    if [[ -f ${h}cpuset.cpus ]]; then
      cat "${h}cpuset.cpus" >"$h$CGROUP_ROOT/cpuset.cpus" 2>/dev/null || true
      cat "${h}cpuset.mems" >"$h$CGROUP_ROOT/cpuset.mems" 2>/dev/null || true
    fi
  done
  cat >"$d/node.sh" <<SH
#!/usr/bin/env bash
# Runs inside its own mount namespace: containerd, then the kubelet.
set -eu
for s in vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes; do
  mount --bind "$d/sysctl/\${s//\//_}" "/proc/sys/\$s"
done
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
# No iptables on this PATH for the kubelet: it then leaves the host's tables alone.
/usr/bin/containerd --config "$d/containerd.toml" >"$KUBE_LOG/containerd.log" 2>&1 &
echo \$! >"$PIDS/containerd.pid"
for i in \$(seq 1 100); do [ -S "$CONTAINERD_SOCK" ] && break; sleep 0.1; done
touch "$RUN_DIR/containerd-ready"
while [ ! -f "$RUN_DIR/pause-ready" ]; do sleep 0.1; done
exec env PATH=/usr/bin:/bin "$KUBE_BIN/kubelet" --config "$d/kubelet.yaml" \
  --kubeconfig "$KUBE_STATE/kubelet.kubeconfig" --hostname-override 127.0.0.1 \
  --root-dir "$KUBE_STATE/kubelet" --cert-dir "$KUBE_STATE/kubelet-pki" \
  --v 1
SH
  chmod +x "$d/node.sh"
}

node_ready() {
  kubectl_ get node 127.0.0.1 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' \
    2>/dev/null | grep -q True
}

start_node() {
  pid_alive kubelet && return 0
  command -v containerd >/dev/null || { echo "kubernetes: containerd is missing (scripts/setup.sh installs it)" >&2; return 1; }
  write_node_config
  write_kubeconfig "$KUBE_STATE/kubelet.kubeconfig" kubelet
  rm -f "$RUN_DIR/containerd-ready" "$RUN_DIR/pause-ready"
  log "starting containerd ($CONTAINERD_SOCK) and the kubelet in their own mount namespace"
  launch kubelet unshare --mount --propagation slave "$KUBE_STATE/node/node.sh"
  wait_for 20 containerd test -f "$RUN_DIR/containerd-ready"
  make_pause_image
  touch "$RUN_DIR/pause-ready"
  wait_for 60 "the kubelet's node" node_ready
}

start_kwok() {
  if ! pid_alive kwok; then
    log "starting kwok with $KWOK_NODES fake nodes"
    launch kwok "$KUBE_BIN/kwok" --kubeconfig "$KUBECONFIG_OUT" \
      --manage-nodes-with-label-selector type=kwok --cidr 127.1.0.0/16 --node-ip 127.0.0.1 \
      --node-lease-duration-seconds 40 --server-address "$KWOK_SERVER" \
      -c "$KUBE_CACHE/kwok-stages.yaml"
  fi
  local i nodes=""
  for ((i = 0; i < KWOK_NODES; i++)); do
    nodes+="
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-$i}
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: \"0\"}
spec:
  taints: [{key: kwok.x-k8s.io/node, value: fake, effect: NoSchedule}]
status:
  allocatable: {cpu: \"32\", memory: 64Gi, pods: \"110\"}
  capacity: {cpu: \"32\", memory: 64Gi, pods: \"110\"}"
  done
  echo "$nodes" | kubectl_ apply -f - >/dev/null
}

cmd_start() {
  cmd_build
  mkdir -p "$KUBE_STATE" "$KUBE_LOG" "$PIDS" "$RUN_DIR"
  make_pki
  write_kubeconfig "$KUBECONFIG_OUT" admin
  start_etcd
  start_apiserver
  start_controllers
  wait_for 30 "the default service account" kubectl_quiet get serviceaccount default -n default
  start_node
  start_kwok
  log "ready: KUBECONFIG=$KUBECONFIG_OUT ($(kubectl_ get nodes --no-headers | wc -l) nodes)"
}

stop_pid() {  # stop_pid NAME: SIGTERM, then SIGKILL after 5 s
  local f=$PIDS/$1.pid pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if running_pid "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 25; i++)); do running_pid "$pid" || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

cmd_stop() {
  # The pods' processes, as our containerd lists them (TASK PID STATUS), stopped by PID.
  local tasks=""
  if [[ -S $CONTAINERD_SOCK ]]; then
    tasks=$(ctr -a "$CONTAINERD_SOCK" -n k8s.io tasks ls 2>/dev/null | awk 'NR > 1 {print $2}')
  fi
  local n
  for n in kwok kubelet kube-scheduler kube-controller-manager; do stop_pid "$n" & done
  wait
  for n in $tasks; do kill -KILL "$n" 2>/dev/null || true; done
  stop_pid containerd
  # containerd-shim processes of our socket, found by the socket path they were given.
  local shim
  for shim in $(pgrep -f -- "-address $CONTAINERD_SOCK" 2>/dev/null || true); do
    kill -KILL "$shim" 2>/dev/null || true
  done
  stop_pid kube-apiserver
  stop_pid etcd
  log "stopped"
}

cmd_restart_apiserver() {
  stop_pid kube-apiserver
  start_apiserver
}

case ${1:-} in
  build) cmd_build ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart-apiserver) cmd_restart_apiserver ;;
  kubeconfig) echo "$KUBECONFIG_OUT" ;;
  bin) echo "$KUBE_BIN" ;;
  *) echo "usage: scripts/kubernetes.sh build|start|stop|restart-apiserver|kubeconfig|bin" >&2; exit 2 ;;
esac
