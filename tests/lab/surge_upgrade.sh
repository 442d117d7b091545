#!/usr/bin/env bash
# A surge upgrade (DaemonSet maxSurge 1, maxUnavailable 0) on one node: while the old agent and
# ztunnel run, a new pair starts with its own sockets (the pod's emptyDir in deploy/) and the
# same ports. The new agent takes the node lease (the old one stands down), the new ztunnel
# joins the SO_REUSEPORT groups in every pod and gets the pods, and only then are both ready.
# Then the old pair gets SIGTERM: the old ztunnel stops accepting and drains.
# Old and new processes are in different cgroups, so zm_config's previous-ztunnel entry is what
# keeps the old ztunnel's upstream connects uncaptured. Throughout: a long-lived connection opened before the upgrade keeps working until it ends,
# and loops of short connections (outbound over HBONE, plaintext inbound) see no failure.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
standard_start
require_binaries zmeshctl
start_server server http 8080
start_server server echo 9000
mesh_up
wait_enrolled demo/client demo/server

NODE=$PREFIX-node1
old_agent=$(lab pid "$PREFIX" agent-node1)
old_zt=$(lab pid "$PREFIX" ztunnel-node1)

# The long-lived connection: client -> server over HBONE, opened through the old ztunnel.
long_stop=$LAB_STATE/stop-longconn
lab spawn "$PREFIX" client longconn -- python3 "$LAB_HELPERS/lineclient.py" \
  "$POD_SERVER_IP" 9000 --interval 0.1 --stop-file "$long_stop" >/dev/null
long_log=$LAB_STATE/logs/longconn.log
long_connected() { grep -q '^connected' "$long_log" 2>/dev/null; }
wait_for 10 long_connected

# Short connections in a loop, from an enrolled pod (outbound + HBONE) and from a legacy pod
# (plaintext inbound, steered by sk_lookup to the listener in zm_listeners).
loop_stop=$LAB_STATE/stop-loops
# shellcheck disable=SC2016
loop='n=0
  while [ ! -e "$2" ]; do
    n=$((n + 1))
    if out=$(curl -sS --max-time 3 "http://$1:8080/" 2>&1); then echo "ok $n"; else echo "fail $n rc=$? $out"; fi
    sleep 0.05
  done'
lab spawn "$PREFIX" client loop-hbone -- bash -c "$loop" _ "$POD_SERVER_IP" "$loop_stop" >/dev/null
lab spawn "$PREFIX" legacy loop-plain -- bash -c "$loop" _ "$POD_SERVER_IP" "$loop_stop" >/dev/null
oks() { grep -c '^ok ' "$LAB_STATE/logs/$1.log" 2>/dev/null || true; }
fails() { grep -c '^fail ' "$LAB_STATE/logs/$1.log" 2>/dev/null || true; }
both_progress() { (($(oks loop-hbone) >= $1 && $(oks loop-plain) >= $1)); }
wait_for 15 both_progress 5

# The new pair (lab.sh mesh-up with ZMESH_INSTANCE): same node, node lease, state and ports;
# sockets and cgroups of its own. mesh-up returns once both readiness files exist.
ZMESH_INSTANCE=new lab mesh-up "$PREFIX" node1 || fail "the new pair did not become ready"
new_agent=$(lab pid "$PREFIX" agent-node1-new)
new_zt=$(lab pid "$PREFIX" ztunnel-node1-new)
say "new pair ready: agent $new_agent, ztunnel $new_zt (old: agent $old_agent, ztunnel $old_zt)"

old_agent_log=$LAB_STATE/logs/agent-node1.log
assert_ge 1 "$(log_count "$old_agent_log" "handover: agent pid $new_agent takes over this node")" \
  "the old agent was asked to stand down"
assert_ge 1 "$(log_count "$old_agent_log" "stood down")" "the old agent stood down"
lab pid "$PREFIX" agent-node1 >/dev/null || fail "the old agent exited instead of standing by"

cfg=$(zmeshctl bpf config --node "$NODE" -o json) || fail "zmeshctl bpf config: $cfg"
assert_eq "$new_zt" "$(json_query "$cfg" "d['ztunnel_pid']")" "zm_config: the new ztunnel"
assert_eq "$old_zt" "$(json_query "$cfg" "d['ztunnel_prev_pid']")" "zm_config: the old ztunnel, draining"

# Both ztunnels serve now; let the loops run across the overlap.
n=$(oks loop-hbone)
wait_for 15 both_progress $((n + 10))

# The old pod goes: SIGTERM to both. The old ztunnel drains while the long connection lives.
lab kill "$PREFIX" ztunnel-node1 TERM
lab kill "$PREFIX" agent-node1 TERM
old_zt_log=$LAB_STATE/logs/ztunnel-node1.log
draining() { (($(log_count "$old_zt_log" "draining: listeners closed") >= 1)); }
wait_for 10 draining
wait_for 10 proc_gone agent-node1
n=$(oks loop-hbone)
wait_for 15 both_progress $((n + 10))
lab pid "$PREFIX" ztunnel-node1 >/dev/null || fail "the old ztunnel exited while a connection was in flight"
say "old ztunnel drains with the long-lived connection still open; new connections go to the new one"

# The long connection ends; the old ztunnel then has nothing in flight and exits.
touch "$long_stop"
wait_for 10 proc_gone longconn
wait_for 15 proc_gone ztunnel-node1
assert_ge 1 "$(log_count "$old_zt_log" "drained: no connection in flight")" "the old ztunnel drained"
long_done=$(grep '^done' "$long_log" || true)
say "long-lived connection: $long_done"
[[ $long_done =~ ^done\ sent=([0-9]+)\ ok=([0-9]+) ]] || fail "no done line from lineclient: $(tail -n 3 "$long_log")"
assert_eq "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "echoes of the long-lived connection"
assert_ge 50 "${BASH_REMATCH[2]}" "lines echoed across the upgrade"

prev_cleared() {
  local c
  c=$(zmeshctl bpf config --node "$NODE" -o json) || return 1
  [[ $(json_query "$c" "d['ztunnel_prev_pid']") == 0 ]]
}
wait_for 10 prev_cleared
say "zm_config forgot the old ztunnel once it exited"

n=$(oks loop-hbone)
wait_for 15 both_progress $((n + 10))
touch "$loop_stop"
wait_for 10 proc_gone loop-hbone
wait_for 10 proc_gone loop-plain
for l in loop-hbone loop-plain; do
  say "$l: $(oks $l) ok, $(fails $l) failed"
  grep '^fail ' "$LAB_STATE/logs/$l.log" | head -n 5 || true
  assert_eq 0 "$(fails $l)" "failed connections ($l)"
done
new_zt_log=$LAB_STATE/logs/ztunnel-node1-new.log
assert_ge 1 "$(log_count "$new_zt_log" dir=outbound "dst=$POD_SERVER_IP:8080")" \
  "the new ztunnel carried outbound connections"
assert_ge 1 "$(log_count "$new_zt_log" dir=inbound "dst=$POD_SERVER_IP:8080")" \
  "the new ztunnel carried plaintext inbound connections"
