#!/usr/bin/env bash
# In-place agent restart/upgrade: the pinned cgroup links survive (same link ids, updated in
# place with BPF_LINK_UPDATE) and traffic is still captured afterwards.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
standard_start
require_binaries zmeshctl
start_server server http 8080
mesh_up
wait_enrolled demo/client demo/server

links() {
  local out
  out=$(zmeshctl bpf status --node "$PREFIX-node1" -o json 2>&1) || fail "zmeshctl bpf status failed: $out"
  json_query "$out" "' '.join(sorted('%s=%s' % (l['name'], l['id']) for l in d['links'] if not l.get('defunct')))"
}
before=$(links)
say "links before: $before"
for l in connect4 connect6 sockops getsockopt; do assert_contains "$before" "$l=" "links before restart"; done

lab mesh-down "$PREFIX" node1 agent
wait_for 10 proc_gone agent-node1
mesh_up
after=$(links)
say "links after:  $after"
assert_eq "$before" "$after" "cgroup link ids across an agent restart"

wait_enrolled demo/client demo/server
out_before=$(zt_count dir=outbound "dst=$POD_SERVER_IP:8080")
must_get client "http://$POD_SERVER_IP:8080/" >/dev/null
wait_zt_line "$out_before" 10 dir=outbound "dst=$POD_SERVER_IP:8080"
