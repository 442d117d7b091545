#!/usr/bin/env bash
# Runs after every other lab test: nothing with a lab-test prefix (zlt*) is left behind:
# no netns, no root-netns link, no cgroup, no bpffs pin dir, no state dir, no process.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

left=()
while read -r n _; do [[ $n == zlt* ]] && left+=("netns $n"); done < <(ip netns list)
while read -r n; do [[ $n == zlt* ]] && left+=("link $n"); done < <(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }')
cg=$(cgroup2_root)
[[ -n $cg ]] || fail "no cgroup2 mount found"
for d in "$cg"/zlt* /sys/fs/bpf/zmesh/zlt* "$LAB_RUN_DIR"/zlt*; do
  [[ -e $d ]] && left+=("$d")
done
# Processes in a zlt cgroup; zombies (already out of their cgroup, waiting for init) do not count.
for f in /proc/[0-9]*/cgroup; do
  if grep -q '^0::/zlt' "$f" 2>/dev/null; then
    pid=${f#/proc/}
    pid=${pid%/cgroup}
    state=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null) || continue
    [[ $state == Z ]] && continue
    left+=("process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)) in $(grep '^0::' "$f")")
  fi
done
if ((${#left[@]})); then
  printf '  leftover: %s\n' "${left[@]}" >&2
  fail "${#left[@]} lab leftovers (remove them with: scripts/lab.sh down-all)"
fi
say "ok: no zlt* netns, links, cgroups, pins, state or processes left"
