# shellcheck shell=bash
# Cluster mode in the lab (source after lib.sh): the fake API server (tests/testutil's, as a
# process) inside node1's netns, a kubeconfig with a token file for the agent, a tiny kubectl
# (scripts/lab/kubectl.py) that talks to it like kubectl does, and CNI directories holding the
# real loopback, bridge and host-local plugins of containernetworking-plugins (/usr/lib/cni): the
# last two chained in one network configuration list, for the agent to chain zmesh-cni after
# (loopback runs first as a network of its own, as containerd does).

KUBE_TOKEN=lab-token-$$
KUBE_URL=""

# kube_up: fake-kube-apiserver in node1; exports ZMESH_AGENT_KUBECONFIG (lab.sh mesh-up then
# starts the agent in cluster mode).
kube_up() {
  local url_file=$LAB_STATE/kube-url
  lab spawn "$PREFIX" node1 kubeapi -- "$ZMESH_BIN/fake-kube-apiserver" --port 0 \
    --token "$KUBE_TOKEN" --url-file "$url_file" >/dev/null
  wait_for 10 test -s "$url_file"
  KUBE_URL=$(cat "$url_file")
  printf '%s\n' "$KUBE_TOKEN" >"$LAB_STATE/kube-token"
  cat >"$LAB_STATE/kubeconfig" <<EOF_KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: $KUBE_URL
users:
- name: zmesh-agent
  user:
    tokenFile: $LAB_STATE/kube-token
contexts:
- name: lab
  context: {cluster: lab, user: zmesh-agent}
current-context: lab
EOF_KUBECONFIG
  export ZMESH_AGENT_KUBECONFIG=$LAB_STATE/kubeconfig
  say "fake API server at $KUBE_URL (in node1)"
}

# kubectl ARGS...: scripts/lab/kubectl.py against the lab's API server, from node1's netns.
kubectl() {
  "$LAB_SH" exec "$PREFIX" node1 -- env KUBE_URL="$KUBE_URL" KUBE_TOKEN="$KUBE_TOKEN" \
    python3 "$LAB_HELPERS/kubectl.py" "$@"
}

pod_status() { kubectl annotation pod "$1" zmesh.io/status; }          # NS/NAME
status_is() { [[ $(pod_status "$1" 2>/dev/null) == "$2" ]]; }         # NS/NAME VALUE
status_absent() { local s; s=$(pod_status "$1") && [[ -z $s ]]; }     # NS/NAME

# cni_dirs_up: $CNI_CONF_DIR with 10-lab.conflist (bridge on node1's br0 + host-local from
# 198.18.1.100-150), $CNI_BIN_DIR with loopback, bridge and host-local, $CNI_CACHE_DIR for the
# runtime;
# the agent is told to install zmesh-cni there.
cni_dirs_up() {
  CNI_CONF_DIR=$LAB_STATE/cni/net.d
  CNI_BIN_DIR=$LAB_STATE/cni/bin
  CNI_CACHE_DIR=$LAB_STATE/cni/cache
  mkdir -p "$CNI_CONF_DIR" "$CNI_BIN_DIR" "$CNI_CACHE_DIR" "$LAB_STATE/cni/ipam"
  local p
  for p in loopback bridge host-local; do
    [[ -x /usr/lib/cni/$p ]] || fail "/usr/lib/cni/$p missing (scripts/bootstrap.sh installs containernetworking-plugins)"
    ln -sf "/usr/lib/cni/$p" "$CNI_BIN_DIR/$p"
  done
  cat >"$CNI_CONF_DIR/10-lab.conflist" <<EOF_CONFLIST
{
  "cniVersion": "1.0.0",
  "name": "lab",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "br0",
      "isGateway": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "$LAB_STATE/cni/ipam",
        "ranges": [[{"subnet": "198.18.1.0/24", "rangeStart": "198.18.1.100",
                     "rangeEnd": "198.18.1.150", "gateway": "198.18.1.1"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF_CONFLIST
  export ZMESH_AGENT_EXTRA_ARGS="${ZMESH_AGENT_EXTRA_ARGS:-} --cni-conf-dir $CNI_CONF_DIR --cni-bin-dir $CNI_BIN_DIR --cni-timeout 20"
}

# conflist_plugins: the plugin types of the lab network, space-separated.
conflist_plugins() {
  python3 -c 'import json,sys; print(" ".join(p["type"] for p in json.load(open(sys.argv[1]))["plugins"]))' \
    "$CNI_CONF_DIR/10-lab.conflist"
}
