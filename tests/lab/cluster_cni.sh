#!/usr/bin/env bash
# zmesh-cni run exactly as a container runtime runs a network configuration list
# (scripts/lab/cni_runtime.py: CNI_* environment, the configuration on stdin, each plugin given the
# previous one's result), chained by the agent after the real bridge and host-local plugins, on a
# fresh pod netns that only the CNI ADD wires up (no zmesh.io/netns annotation, no IP in the API):
#   - ADD blocks while the pod cannot be enrolled (ztunnel down) and returns once it is: the pod's
#     netns cookie is in the maps (zmeshctl bpf pods) and its traffic goes through ztunnel;
#   - a pod outside the enrolled namespaces passes straight through;
#   - CHECK reports;
#   - with the agent down, ADD and CHECK fail (CNI error code 11) and DEL still succeeds;
#   - a restarted agent keeps the pod enrolled (its netns is known only from the ADD);
#   - a surge upgrade's new agent takes the node over and keeps the pod enrolled;
#   - DEL un-enrolls before it returns.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster_lib.sh"
require_binaries zmesh-agent ztunnel zmeshctl zmesh-cni fake-kube-apiserver
lab_up 'node node1
namespace demo ambient
namespace legacy
pod demo/server node1'
start_server server http 8080
kube_up
cni_dirs_up
kubectl apply-lab "$LAB_STATE"

# Two pods as the API server has them when the kubelet creates their sandboxes: scheduled here,
# no IP yet, no netns annotation.
WEB_UID=$(cat /proc/sys/kernel/random/uuid)
PLAIN_UID=$(cat /proc/sys/kernel/random/uuid)
new_pod() { # NS NAME UID SA
  kubectl create "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"$2\",\"namespace\":\"$1\",\"uid\":\"$3\",\"labels\":{\"app\":\"$2\"}},\"spec\":{\"nodeName\":\"$NODE1_NAME\",\"serviceAccountName\":\"$4\",\"containers\":[{\"name\":\"main\",\"image\":\"zmesh.io/lab-placeholder:latest\"}]},\"status\":{\"phase\":\"Pending\"}}"
}
new_pod demo web "$WEB_UID" web-sa
new_pod legacy plain "$PLAIN_UID" default

# Their sandboxes: empty network namespaces (lab-prefixed, so lab.sh down removes them) and
# cgroups in node1's tree, as a runtime would make them.
for p in web web2 plain; do
  ip netns add "$PREFIX-$p"
  mkdir -p "$NODE1_CGROUP/pod-$p"
done
in_sandbox() { # POD CMD...: run CMD in the sandbox's netns and cgroup, like a container
  local p=$1
  shift
  ( echo "$BASHPID" >"$NODE1_CGROUP/pod-$p/cgroup.procs" && exec nsenter --net="/var/run/netns/$PREFIX-$p" -- "$@" )
}

# cni CMD NS POD UID CONTAINER SANDBOX [OUT]: the runtime's call for the pod's sandbox (a netns
# made above), in node1's netns (where the bridge is).
cni() {
  local cmd=$1 ns=$2 pod=$3 uid=$4 cid=$5 sandbox=$6 out=${7:-/dev/stdout}
  "$LAB_SH" exec "$PREFIX" node1 -- python3 "$LAB_HELPERS/cni_runtime.py" --conf-dir "$CNI_CONF_DIR" \
    --bin-dir "$CNI_BIN_DIR" --cache-dir "$CNI_CACHE_DIR" "$cmd" --container-id "$cid" \
    --netns "/var/run/netns/$PREFIX-$sandbox" --ifname eth0 \
    --args "IgnoreUnknown=1;K8S_POD_NAMESPACE=$ns;K8S_POD_NAME=$pod;K8S_POD_INFRA_CONTAINER_ID=$cid;K8S_POD_UID=$uid" \
    >"$out"
}

mesh_up
wait_enrolled demo/server
assert_eq "bridge zmesh-cni" "$(conflist_plugins)" "chained plugins"

# 1. ADD blocks while the pod cannot be enrolled. With ztunnel down the agent holds the answer.
lab mesh-down "$PREFIX" node1 ztunnel
agent_log=$LAB_STATE/logs/agent-node1.log
adds_before=$(log_count "$agent_log" "CNI add demo/web container c1")
add_out=$LAB_STATE/cni-add-web.json
add_rc=$LAB_STATE/cni-add-web.rc
( rc=0; cni ADD demo web "$WEB_UID" c1 web "$add_out" || rc=$?; echo "$rc" >"$add_rc" ) &
wait_log_line "$adds_before" 20 "$agent_log" "CNI add demo/web container c1"
# The agent has the request and the pod is in its namespace's mesh: no answer yet.
[[ ! -e $add_rc ]] || fail "ADD returned ($(cat "$add_rc")) while ztunnel was down: $(cat "$add_out")"
pod_not_listed demo/web || fail "demo/web is in the maps before ztunnel has its listeners"
say "ok: ADD still waiting while ztunnel is down"
mesh_up  # ztunnel back
wait_for 30 test -s "$add_rc"
assert_eq 0 "$(cat "$add_rc")" "ADD exit status"
# The moment ADD returned, the pod was captured: its netns cookie is in the maps.
pods=$(bpf_pods_json)
assert_eq True "$(json_query "$pods" "any(p.get('pod') == 'demo/web' and p.get('netns_cookie') for p in d['pods'])")" "demo/web in zmeshctl bpf pods with its cookie"
# The result is the bridge's, passed through: the pod's address from host-local.
web_ip=$(json_query "$(cat "$add_out")" "d['ips'][0]['address'].split('/')[0]")
[[ $web_ip == 198.18.1.1[0-5][0-9] ]] || fail "unexpected ADD result: $(cat "$add_out")"
assert_eq "$web_ip" "$(json_query "$pods" "[ip for p in d['pods'] if p.get('pod') == 'demo/web' for ip in p.get('ips', [])][0]")" "captured IP"
expect "demo/web status enrolled" status_is demo/web enrolled
# And its traffic goes through ztunnel, over HBONE to the server.
before=$(zt_count dir=outbound "dst=$POD_SERVER_IP:8080" via=hbone result=ok)
body=$(in_sandbox web curl -sS --max-time 5 "http://$POD_SERVER_IP:8080/") || fail "curl from demo/web failed: $body"
assert_eq "client=$web_ip" "${body%:*}" "server saw demo/web's address"
wait_zt_line "$before" 10 dir=outbound "dst=$POD_SERVER_IP:8080" via=hbone result=ok

# 2. CHECK reports the enrolled pod.
cni CHECK demo web "$WEB_UID" c1 web >/dev/null || fail "CHECK of the enrolled demo/web failed"
say "ok: CHECK of an enrolled pod succeeds"

# 3. A pod outside the enrolled namespaces passes straight through.
cni ADD legacy plain "$PLAIN_UID" p1 plain "$LAB_STATE/cni-add-plain.json" ||
  fail "ADD of legacy/plain failed: $(cat "$LAB_STATE/cni-add-plain.json")"
pod_not_listed legacy/plain || fail "legacy/plain was enrolled"
say "ok: legacy/plain passed through"

# 4. The agent down: ADD of a new sandbox fails (so the kubelet retries and the pod never runs
# unprotected), CHECK fails, DEL succeeds (a pod must stay deletable). Capture stays.
lab mesh-down "$PREFIX" node1 agent
rc=0
cni ADD demo web "$WEB_UID" c2 web2 "$LAB_STATE/cni-add-web-2.json" || rc=$?
((rc != 0)) || fail "ADD succeeded with the agent down: $(cat "$LAB_STATE/cni-add-web-2.json")"
err=$(cat "$LAB_STATE/cni-add-web-2.json")
assert_eq 11 "$(json_query "$err" "d['code']")" "CNI error code of ADD with the agent down"
assert_contains "$(json_query "$err" "d['details']")" "cannot reach the zmesh agent" "error details"
rc=0
cni CHECK demo web "$WEB_UID" c1 web "$LAB_STATE/cni-check-web.json" || rc=$?
((rc != 0)) || fail "CHECK succeeded with the agent down"
assert_eq 11 "$(json_query "$(cat "$LAB_STATE/cni-check-web.json")" "d['code']")" \
  "CNI error code of CHECK with the agent down ($(cat "$LAB_STATE/cni-check-web.json"))"
cni DEL demo web "$WEB_UID" c2 web2 >/dev/null || fail "DEL failed with the agent down"
pod_listed demo/web || fail "demo/web lost its capture while the agent was down"
say "ok: agent down: ADD and CHECK fail, DEL succeeds, capture stays"

# 5. The agent back: demo/web is adopted from pinned state (its netns known from its ADD only).
adopted_before=$(log_count "$agent_log" "adopted demo/web from pinned state")
mesh_up
pod_listed demo/web || fail "demo/web is not enrolled after the agent restarted"
(($(log_count "$agent_log" "adopted demo/web from pinned state") > adopted_before)) ||
  fail "the restarted agent did not adopt demo/web (it must not re-enroll it: a capture gap)"
cni CHECK demo web "$WEB_UID" c1 web >/dev/null || fail "CHECK of demo/web failed after the restart"
say "ok: the restarted agent kept demo/web"

# 6. A surge upgrade in cluster mode: a second pair (sockets of its own, the node's lease, state
# and CNI socket) takes the node over. demo/web, whose netns the agents know only from its ADD,
# stays captured; the old agent stands down; zmesh-cni now reaches the new agent.
ZMESH_INSTANCE=new lab mesh-up "$PREFIX" node1 || fail "the new pair did not become ready"
new_log=$LAB_STATE/logs/agent-node1-new.log
assert_ge 1 "$(log_count "$new_log" "adopted demo/web from pinned state")" "the new agent adopted demo/web"
assert_ge 1 "$(log_count "$agent_log" "stood down")" "the old agent stood down"
# The old agent is asked to stand down only once the new one has the API server's objects, so
# that the node is without an acting agent only for the moments of the handover.
first_line() { grep -nF "$2" "$1" | head -n 1 | cut -d: -f1; }
synced_at=$(first_line "$new_log" "cluster objects synced")
asked_at=$(first_line "$new_log" "asking it to stand down")
[[ -n $synced_at && -n $asked_at ]] || fail "the new agent's log lacks the sync or the stand-down request"
((synced_at < asked_at)) || fail "the new agent asked for the node (line $asked_at) before it had synced (line $synced_at)"
say "ok: the new agent synced (log line $synced_at) before it asked the old one to stand down (line $asked_at)"
pod_listed demo/web || fail "demo/web lost its capture in the handover"
checks_before=$(log_count "$new_log" "CNI check demo/web container c1")
cni CHECK demo web "$WEB_UID" c1 web >/dev/null || fail "CHECK of demo/web failed after the handover"
assert_eq $((checks_before + 1)) "$(log_count "$new_log" "CNI check demo/web container c1")" \
  "the new agent answered the CHECK"
lab mesh-down "$PREFIX" node1 all
wait_for 10 proc_gone agent-node1
wait_for 30 proc_gone ztunnel-node1
before=$(log_count "$LAB_STATE/logs/ztunnel-node1-new.log" dir=outbound "dst=$POD_SERVER_IP:8080" via=hbone result=ok)
body=$(in_sandbox web curl -sS --max-time 5 "http://$POD_SERVER_IP:8080/") || fail "curl from demo/web after the handover failed: $body"
wait_log_line "$before" 10 "$LAB_STATE/logs/ztunnel-node1-new.log" dir=outbound "dst=$POD_SERVER_IP:8080" via=hbone result=ok
say "ok: the new pair serves the node; demo/web kept its capture"

# 7. DEL un-enrolls before it returns.
cni DEL demo web "$WEB_UID" c1 web >/dev/null || fail "DEL of demo/web failed"
pod_not_listed demo/web || fail "demo/web still in the maps after DEL returned"
expect "demo/web status pending again" status_is demo/web pending
cni DEL legacy plain "$PLAIN_UID" p1 plain >/dev/null || fail "DEL of legacy/plain failed"
say "ok: DEL un-enrolled demo/web"

# 8. Uninstall removes the agent's record of the sandboxes (kept on the node's disk across agent
# pods) along with the pins.
cni_state=$LAB_STATE/$NODE1_NAME/state/cni-pods.json
[[ -f $cni_state ]] || fail "no $cni_state: the agent did not record the sandboxes zmesh-cni reported"
ZMESH_INSTANCE=new lab mesh-down "$PREFIX" node1 all
"$ZMESH_BIN/zmesh-agent" uninstall --node "$NODE1_NAME" --pin-root "$LAB_PIN_ROOT" \
  --state-dir "$LAB_STATE/$NODE1_NAME/state" >"$LAB_STATE/logs/uninstall.log" 2>&1 ||
  fail "zmesh-agent uninstall failed: $(cat "$LAB_STATE/logs/uninstall.log")"
[[ ! -e $cni_state ]] || fail "$cni_state still there after uninstall"
say "ok: uninstall removed $cni_state"
