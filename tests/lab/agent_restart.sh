#!/usr/bin/env bash
# The agent is not on the data path: SIGKILL it while a loop of short curls runs, traffic keeps
# flowing and stays captured (pinned programs and maps); restart it (mesh-up), no request fails.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
standard_start
start_server server http 8080
mesh_up
wait_enrolled demo/client demo/server

stop=$LAB_STATE/stop-curlloop
loop_log=$LAB_STATE/logs/curlloop.log
# shellcheck disable=SC2016
lab spawn "$PREFIX" client curlloop -- bash -c '
  n=0
  while [ ! -e "$2" ]; do
    n=$((n + 1))
    if out=$(curl -sS --max-time 2 "http://$1:8080/" 2>&1); then echo "ok $n $out"; else echo "fail $n rc=$? $out"; fi
  done' _ "$POD_SERVER_IP" "$stop" >/dev/null
oks() { grep -c '^ok ' "$loop_log" 2>/dev/null || true; }
fails() { grep -c '^fail ' "$loop_log" 2>/dev/null || true; }
oks_at_least() { (($(oks) >= $1)); }

wait_for 10 oks_at_least 5
lab kill "$PREFIX" agent-node1 KILL
wait_for 10 proc_gone agent-node1
say "agent killed after $(oks) requests"

# With the agent gone, new connections still go through ztunnel.
before=$(zt_count dir=outbound "dst=$POD_SERVER_IP:8080")
n=$(oks)
wait_for 10 oks_at_least $((n + 5))
wait_zt_line "$before" 10 dir=outbound "dst=$POD_SERVER_IP:8080"

mesh_up
say "agent restarted"
n=$(oks)
wait_for 10 oks_at_least $((n + 5))
wait_for 20 oks_at_least 21
touch "$stop"
wait_for 10 proc_gone curlloop

total=$(($(oks) + $(fails)))
say "requests: $total, failed: $(fails)"
grep '^fail ' "$loop_log" | head -n 5 || true
assert_ge 21 "$total" "requests made"
assert_eq 0 "$(fails)" "failed requests"
