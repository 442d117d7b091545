# shellcheck shell=bash
# Shared helpers for the netns lab tests (tests/lab/*.sh). Source it first thing:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Each test gets its own lab prefix (zlt + 5 digits; tests/lab/no_leftovers.sh checks that no
# zlt* lab is left), a trap that tears the lab down on EXIT/INT/TERM, and polling helpers.
# Exit status: 0 pass, 1 fail; a skip prints "SKIPPED: reason" and exits 0 (ctest's
# SKIP_REGULAR_EXPRESSION turns that into a skip).
set -euo pipefail

LAB_SRC=${ZMESH_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LAB_SH=$LAB_SRC/scripts/lab.sh
LAB_HELPERS=$LAB_SRC/scripts/lab
# shellcheck source=scripts/lab/common.sh
source "$LAB_HELPERS/common.sh"
TEST_NAME=$(basename "$0" .sh)
use_zmesh_bin "$LAB_SRC"
LAB_RUN_DIR=/run/zmesh-lab
PREFIX=""
LAB_STATE=""
LAB_KEEP_LOGS=${LAB_KEEP_LOGS:-/tmp/zmesh-lab-logs}

say() { echo "[$TEST_NAME] $*"; }

skip() {
  echo "SKIPPED: $*"
  exit 0
}

# fail MSG...: print the message and the context (tails of every lab log), exit 1.
fail() {
  echo "[$TEST_NAME] FAIL: $*" >&2
  [[ -n $LAB_STATE && -d $LAB_STATE/logs ]] && tail_logs "$LAB_STATE/logs" 25
  exit 1
}



# wait_for SECONDS CMD...: poll, and fail the test on timeout.
wait_for() {
  local secs=$1
  shift
  poll "$secs" "$@" || fail "timed out after ${secs}s waiting for: $*"
}

assert_eq() { # EXPECTED ACTUAL [WHAT]
  [[ $1 == "$2" ]] || fail "${3:-value}: expected '$1', got '$2'"
  say "ok: ${3:-value} = '$2'"
}

assert_contains() { # HAYSTACK NEEDLE [WHAT]
  [[ $1 == *"$2"* ]] || fail "${3:-output} does not contain '$2'; it is: '$1'"
  say "ok: ${3:-output} contains '$2'"
}

assert_not_contains() { # HAYSTACK NEEDLE [WHAT]
  [[ $1 != *"$2"* ]] || fail "${3:-output} contains '$2' but must not; it is: '$1'"
  say "ok: ${3:-output} does not contain '$2'"
}

assert_ge() { # MIN ACTUAL [WHAT]
  (($2 >= $1)) || fail "${3:-value}: expected >= $1, got $2"
  say "ok: ${3:-value} = $2 (>= $1)"
}

lab() { "$LAB_SH" "$@"; }

cleanup() {
  local rc=$? down_log
  trap - EXIT INT TERM
  # A closed stdout (e.g. `| head`) must not abort the teardown half-way.
  trap '' PIPE
  if [[ -n $PREFIX ]]; then
    if ((rc != 0)) && [[ -d $LAB_STATE/logs ]]; then
      mkdir -p "$LAB_KEEP_LOGS/$TEST_NAME-$PREFIX"
      cp -r "$LAB_STATE/logs/." "$LAB_KEEP_LOGS/$TEST_NAME-$PREFIX/" 2>/dev/null || true
      echo "[$TEST_NAME] logs kept in $LAB_KEEP_LOGS/$TEST_NAME-$PREFIX" >&2 || true
    fi
    down_log=$(mktemp)
    "$LAB_SH" down "$PREFIX" >"$down_log" 2>&1 || echo "[$TEST_NAME] lab.sh down $PREFIX failed" >&2 || true
    cat "$down_log" >&2 2>/dev/null || true
    rm -f "$down_log"
  fi
  if ((rc == 0)); then say "PASS" || true; else echo "[$TEST_NAME] FAILED (exit $rc)" >&2 || true; fi
  exit "$rc"
}

[[ $(id -u) -eq 0 ]] || skip "$TEST_NAME needs root (network namespaces, cgroup v2, bpffs)"
for tool in ip nsenter curl python3 ss; do
  command -v "$tool" >/dev/null || fail "missing tool '$tool' (run scripts/bootstrap.sh)"
done

proc_start() { # PID: start time (field 22 of /proc/PID/stat)
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  local -a f
  read -ra f <<<"$stat"
  echo "${f[19]}"
}

# A test killed with SIGKILL (ctest timeout) cannot clean up; the next test removes zlt* labs
# whose owner process is gone, and zlt* netns/cgroups/pins that have no state dir at all.
reap_stale_labs() {
  local d p owner start s
  for d in "$LAB_RUN_DIR"/zlt*; do
    [[ -d $d ]] || continue
    p=${d##*/}
    if [[ -f $d/owner ]]; then
      read -r owner start <"$d/owner" || true
      s=$(proc_start "$owner" 2>/dev/null) || s=""
      # Alive and not a zombie: the lab belongs to a running test.
      if [[ -n $s && $s == "$start" ]] && ! awk '{ sub(/.*\) /, ""); exit $1 != "Z" }' "/proc/$owner/stat" 2>/dev/null; then
        continue
      fi
    else
      # Being built right now by someone? Leave it alone for two minutes.
      [[ -n $(find "$d" -maxdepth 0 -mmin +2 2>/dev/null) ]] || continue
    fi
    echo "[$TEST_NAME] removing stale lab $p" >&2
    "$LAB_SH" down "$p" >/dev/null 2>&1 || true
  done
  local cg
  cg=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo)
  {
    ip netns list 2>/dev/null | awk '{ print $1 }'
    for d in "$cg"/zlt*-node* /sys/fs/bpf/zmesh/zlt*-node*; do
      if [[ -e $d ]]; then echo "${d##*/}"; fi
    done
  } | sed -n 's/^\(zlt[0-9]\{5\}\)-.*/\1/p' | sort -u | while read -r p; do
    [[ -d $LAB_RUN_DIR/$p ]] && continue
    echo "[$TEST_NAME] removing orphaned lab objects of $p" >&2
    "$LAB_SH" down "$p" >/dev/null 2>&1 || true
  done
  return 0
}
[[ $TEST_NAME == no_leftovers ]] || reap_stale_labs

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# require_binaries NAME...: the test cannot run without the mesh binaries; fail (not hang).
require_binaries() {
  local b
  for b in "$@"; do
    [[ -x $ZMESH_BIN/$b ]] || fail "binary $ZMESH_BIN/$b not found: build zmesh first (or set ZMESH_BIN)"
  done
}

# lab_up SPEC_TEXT: pick a fresh zlt prefix, build the lab, source its env.
lab_up() {
  local n=$(($$ % 100000)) spec
  while [[ -e $LAB_RUN_DIR/$(printf 'zlt%05d' "$n") ]]; do n=$(((n + 1) % 100000)); done
  PREFIX=$(printf 'zlt%05d' "$n")
  LAB_STATE=$LAB_RUN_DIR/$PREFIX
  spec=$(mktemp)
  printf '%s\n' "$1" >"$spec"
  "$LAB_SH" up "$PREFIX" "$spec" || { rm -f "$spec"; fail "lab.sh up failed"; }
  rm -f "$spec"
  echo "$$ $(proc_start $$)" >"$LAB_STATE/owner"
  # shellcheck disable=SC1091
  source "$LAB_STATE/env"
  say "lab $PREFIX up"
}

# The standard lab: one node; demo (enrolled) with client and server; legacy (not enrolled).
STANDARD_SPEC='node node1
namespace demo ambient
namespace legacy
pod demo/client node1
pod demo/server node1
pod legacy/legacy node1'

listening() { # POD PORT
  "$LAB_SH" exec "$PREFIX" "$1" -- ss -Hltn "sport = :$2" 2>/dev/null | grep -q LISTEN
}

# start_server POD MODE PORT...: whoami.py in the pod, logged to STATE/logs/<pod>-MODE.log.
start_server() {
  local pod=$1 mode=$2 p
  shift 2
  lab spawn "$PREFIX" "$pod" "$pod-$mode" -- python3 "$LAB_HELPERS/whoami.py" "$mode" "$@" >/dev/null
  for p in "$@"; do wait_for 10 listening "$pod" "$p"; done
}

mesh_up() { # node1
  lab mesh-up "$PREFIX" node1 || fail "lab.sh mesh-up node1 failed"
}

# http_get FROM URL [CURL ARGS...]: the response body on stdout, curl's exit status returned.
http_get() {
  local from=$1 url=$2
  shift 2
  "$LAB_SH" exec "$PREFIX" "$from" -- curl -sS --max-time 5 "$@" "$url"
}

# must_get FROM URL [CURL ARGS]: body, or fail with curl's error.
must_get() {
  local out rc=0
  out=$(http_get "$@" 2>&1) || rc=$?
  ((rc == 0)) || fail "curl from $1 to $2 failed (exit $rc): $out"
  echo "$out"
}

zt_log() { echo "$LAB_STATE/logs/ztunnel-node1.log"; }

# log_count FILE STRING...: number of lines of FILE containing every STRING.
log_count() {
  local f=$1
  shift
  [[ -f $f ]] || { echo 0; return; }
  awk -v pats="$(printf '%s\n' "$@")" '
    BEGIN { n = split(pats, p, "\n") }
    { ok = 1; for (i = 1; i <= n; i++) if (p[i] != "" && index($0, p[i]) == 0) { ok = 0; break } ; if (ok) c++ }
    END { print c + 0 }' "$f"
}

log_count_above() { # N FILE STRING...
  local n=$1
  shift
  (($(log_count "$@") > n))
}

# wait_log_line BEFORE SECONDS FILE STRING...: wait until more than BEFORE lines of FILE match.
wait_log_line() {
  local before=$1 secs=$2 f=$3
  shift 3
  poll "$secs" log_count_above "$before" "$f" "$@" ||
    fail "no new line in $(basename "$f") containing [$*] within ${secs}s (had $before)"
  say "ok: $(basename "$f") logged [$*]"
}

# zt_count STRING...: number of ztunnel (node1) log lines containing every STRING.
zt_count() { log_count "$(zt_log)" "$@"; }

zt_count_above() { # N STRING...
  local n=$1
  shift
  (($(zt_count "$@") > n))
}

# wait_zt_line BEFORE SECONDS STRING...: wait until more than BEFORE matching lines exist.
wait_zt_line() {
  local before=$1 secs=$2
  shift 2
  wait_log_line "$before" "$secs" "$(zt_log)" "$@"
}

# server_hits POD MODE PEER_IP [PORT]: accepted connections from PEER_IP in whoami's log.
server_hits() {
  local f=$LAB_STATE/logs/$1-$2.log pat="peer=$3:"
  [[ -f $f ]] || { echo 0; return; }
  if [[ -n ${4:-} ]]; then
    grep -F -- "port=$4 " "$f" | grep -cF -- "$pat" || true
  else
    grep -cF -- "$pat" "$f" || true
  fi
}

# json_query JSON PYTHON_EXPR: evaluate EXPR with `d` bound to the parsed JSON.
json_query() {
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

zmeshctl() { "$ZMESH_BIN/zmeshctl" "$@"; }

# bpf_pods_json: zmeshctl bpf pods for node1 as JSON (fails the test if the command fails).
bpf_pods_json() {
  local out
  out=$(zmeshctl bpf pods --node "$PREFIX-node1" -o json 2>&1) || fail "zmeshctl bpf pods failed: $out"
  echo "$out"
}

pod_listed() { # NS/NAME: listed by zmeshctl bpf pods
  local out
  out=$(zmeshctl bpf pods --node "$PREFIX-node1" -o json 2>/dev/null) || return 1
  [[ $(json_query "$out" "any(p.get('pod') == '$1' for p in d.get('pods', []))") == True ]]
}

pod_not_listed() {
  local out
  out=$(zmeshctl bpf pods --node "$PREFIX-node1" -o json 2>/dev/null) || return 1
  [[ $(json_query "$out" "any(p.get('pod') == '$1' for p in d.get('pods', []))") == False ]]
}

proc_gone() { ! "$LAB_SH" pid "$PREFIX" "$1" >/dev/null 2>&1; }

# wait_enrolled NS/POD...: with zmeshctl built, wait until `zmeshctl bpf pods` lists each pod;
# without it, rely on the agent's readiness (it reconciles every pod before reporting ready).
wait_enrolled() {
  [[ -x $ZMESH_BIN/zmeshctl ]] || return 0
  local p
  for p in "$@"; do wait_for 20 pod_listed "$p"; done
}

# Standard start for the capture tests: binaries, then the lab from $SPEC (default: standard).
SPEC=$STANDARD_SPEC
standard_start() {
  require_binaries zmesh-agent ztunnel
  lab_up "$SPEC"
}

# expect WHAT CMD...: CMD holds within 10 s (agents debounce manifest changes), else fail.
expect() {
  local what=$1
  shift
  poll 10 "$@" || fail "$what: '$*' still false after 10 s"
  say "ok: $what"
}

# apply NAME YAML: write $LAB_STATE/manifests/NAME.yaml atomically (the agents watch the dir).
apply() {
  printf '%s\n' "$2" >"$LAB_STATE/manifests/.$1.tmp"
  mv "$LAB_STATE/manifests/.$1.tmp" "$LAB_STATE/manifests/$1.yaml"
}

# share_mesh_root: one mesh root for every agent of the lab (--ca-cert/--ca-key), in
# $LAB_STATE/mesh-root; sets MESH_ROOT.
share_mesh_root() {
  MESH_ROOT=$LAB_STATE/mesh-root
  make_mesh_root "$MESH_ROOT" || fail "cannot make the mesh root"
  export ZMESH_AGENT_EXTRA_ARGS="${ZMESH_AGENT_EXTRA_ARGS:-} --ca-cert $MESH_ROOT/root-cert.pem --ca-key $MESH_ROOT/root-key.pem"
}

cgroup2_root() {
  awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo
}
