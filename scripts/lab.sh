#!/usr/bin/env bash
# zmesh netns lab: nodes and pods as network namespaces plus cgroup v2 subtrees on one machine.
# Rules: /work/shared/LAB.md. Addresses come from 198.18.0.0/15 only and live only inside lab
# namespaces; the root netns never gets an address or a route in that range, and no veth end
# ever lives in the root netns (pairs are created directly between lab namespaces).
#
# Usage:
#   lab.sh up PREFIX SPEC            build a lab from a spec file (format below)
#   lab.sh down PREFIX               remove everything of lab PREFIX (idempotent, crash-safe)
#   lab.sh down-all                  remove every lab whose prefix matches ^zl[a-z0-9]{1,6}$
#   lab.sh exec PREFIX POD|NODE -- CMD...          run CMD in the netns and cgroup of POD/NODE
#   lab.sh spawn PREFIX POD|NODE NAME -- CMD...    same, in the background, log STATE/logs/NAME.log
#   lab.sh kill PREFIX NAME [SIGNAL]               signal a spawned process by its recorded pid
#   lab.sh pid PREFIX NAME                         print the pid of NAME if it is alive (else exit 1)
#   lab.sh mesh-up PREFIX NODE                     start (what is missing of) agent + ztunnel, wait ready
#                                                  (ZMESH_AGENT_KUBECONFIG=FILE: the agent in cluster
#                                                  mode on that API server instead of the manifests;
#                                                  ZMESH_INSTANCE=NAME: a second pair, agent-NODE-NAME
#                                                  and ztunnel-NODE-NAME with sockets of their own, as
#                                                  the new pod of a surge upgrade)
#   lab.sh mesh-down PREFIX NODE [agent|ztunnel|all]  (ZMESH_INSTANCE=NAME: that pair)
#   lab.sh label PREFIX NAMESPACE on|off           add/remove zmesh.io/dataplane-mode=ambient
#   lab.sh annotate PREFIX POD KEY=VALUE|KEY-      set/remove a pod annotation
#   lab.sh pod-label PREFIX POD KEY=VALUE|KEY-     set/remove a pod label
#   lab.sh ip PREFIX POD|NODE                      print the pod IP / node bridge IP
#
# PREFIX: ^zl[a-z0-9]{1,6}$ ("zl" = zmesh lab, e.g. zl$$ or zlt4711). down-all and tests rely on
# this pattern: everything a lab creates is named PREFIX-<something> (netns, cgroup, pin dir),
# plus the state dir /run/zmesh-lab/PREFIX. Nothing else is ever touched.
#
# Spec (one directive per line, '#' starts a comment):
#   node node1                                  node1..node254; node N owns 198.18.N.0/24
#   namespace demo ambient                      labelled zmesh.io/dataplane-mode=ambient
#   namespace legacy
#   pod demo/client node1
#   pod demo/server node1 label=app=server annotation=zmesh.io/exclude-inbound-ports=9091 sa=api
#                                               (sa: serviceAccountName, default "default")
#
# Layout: node netns PREFIX-nodeN (lo, bridge br0 = 198.18.N.1/24, ip_forward=1, link "nodeM" to
# every other node: 198.19.255.N/32 with a host route to 198.19.255.M and a route for
# 198.18.M.0/24 via it); cgroup <cgroup2>/PREFIX-nodeN with children agent, ztunnel, pod-<pod>;
# pod netns PREFIX-<pod> (lo up incl. ::1, eth0 = 198.18.N.10.., default via 198.18.N.1).
# Processes enter namespaces with `nsenter --net` (not `ip netns exec`, which remounts /sys and
# so hides /sys/fs/cgroup/* and /sys/fs/bpf from the agent).
# State: /run/zmesh-lab/PREFIX/{env,pids,logs/,manifests/,db/,PREFIX-nodeN/}.
set -euo pipefail

LAB_RUN_DIR=/run/zmesh-lab
PIN_ROOT=/sys/fs/bpf/zmesh
PREFIX_RE='^zl[a-z0-9]{1,6}$'
NAME_RE='^[a-z0-9]([a-z0-9-]*[a-z0-9])?$'
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=${ZMESH_SOURCE_DIR:-$(cd "$SCRIPT_DIR/.." && pwd)}

die() { echo "lab: error: $*" >&2; exit 1; }
# shellcheck source=scripts/lab/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lab/common.sh"
note() { echo "lab: $*" >&2; }

usage() { sed -n '4,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root"; }

check_prefix() {
  [[ ${1:-} =~ $PREFIX_RE ]] || die "bad prefix '${1:-}': must match $PREFIX_RE"
}



cgroup2_root() {
  local root
  root=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo)
  [[ -n $root ]] || die "no cgroup2 mount in /proc/self/mountinfo"
  echo "$root"
}

ensure_bpffs() {
  if ! awk '$5 == "/sys/fs/bpf" { f = 1 } END { exit !f }' /proc/self/mountinfo; then
    mount -t bpf bpf /sys/fs/bpf || die "cannot mount bpffs at /sys/fs/bpf"
  fi
}

zmesh_bin() {
  local b=${ZMESH_BIN:-build/bin}
  [[ $b == /* ]] || b=$REPO_DIR/$b
  echo "$b"
}

state_dir() { echo "$LAB_RUN_DIR/$1"; }

# ---------------------------------------------------------------------------------------------
# processes

# proc_start PID: the process start time (field 22 of /proc/PID/stat), to tell a recycled pid.
proc_start() {
  local stat rest
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  rest=${stat##*) }
  local -a f
  read -ra f <<<"$rest"
  echo "${f[19]}"
}

dead() { ! alive "$@"; }

# alive PID START: the recorded process is still the same process and not a zombie.
alive() {
  local s state
  s=$(proc_start "$1") || return 1
  [[ $s == "$2" ]] || return 1
  state=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $state != Z ]]
}

# lookup STATE NAME: prints "PID START" of the last record named NAME.
lookup() {
  [[ -f $1/pids ]] || return 1
  awk -v n="$2" '$1 == n { p = $2 " " $3 } END { if (p == "") exit 1; print p }' "$1/pids"
}

# resolve_name STATE NAME: exact name, or agent/ztunnel as a shorthand when exactly one node has it.
resolve_name() {
  local st=$1 name=$2 m
  if [[ -f $st/pids ]] && awk -v n="$name" '$1 == n { f = 1 } END { exit !f }' "$st/pids"; then
    echo "$name"
    return
  fi
  if [[ $name == agent || $name == ztunnel ]] && [[ -f $st/pids ]]; then
    m=$(awk -v n="$name" 'index($1, n "-") == 1 { print $1 }' "$st/pids" | sort -u)
    if [[ -n $m && $(wc -l <<<"$m") -eq 1 ]]; then
      echo "$m"
      return
    fi
  fi
  return 1
}

name_pid() { # STATE NAME -> pid if alive
  local rec pid start
  rec=$(lookup "$1" "$2") || return 1
  read -r pid start <<<"$rec"
  alive "$pid" "$start" || return 1
  echo "$pid"
}

# stop_pid PID START TIMEOUT: SIGTERM, wait, SIGKILL, wait.
stop_pid() {
  local pid=$1 start=$2 t=$3
  alive "$pid" "$start" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  if ! poll "$t" dead "$pid" "$start"; then
    kill -KILL "$pid" 2>/dev/null || true
    poll 5 dead "$pid" "$start" || note "pid $pid did not exit after SIGKILL"
  fi
}

# ---------------------------------------------------------------------------------------------
# targets

load_target() { # STATE PREFIX TARGET -> T_NETNS T_CGROUP
  local st=$1 prefix=$2 t=$3 cg node
  cg=$(cat "$st/cgroup2")
  if [[ -f $st/db/nodes/$t ]]; then
    T_NETNS=$prefix-$t
    T_CGROUP=$cg/$prefix-$t
  elif [[ -d $st/db/pods/$t ]]; then
    node=$(cat "$st/db/pods/$t/node")
    T_NETNS=$prefix-$t
    T_CGROUP=$cg/$prefix-$node/pod-$t
  else
    die "lab $prefix has no pod or node named '$t'"
  fi
}

# spawn_into STATE NAME NETNS CGROUP CMD...: background process in netns + cgroup, pid recorded.
spawn_into() {
  local st=$1 name=$2 ns=$3 cg=$4 pid start
  shift 4
  [[ $name =~ ^[A-Za-z0-9_.@-]+$ ]] || die "bad process name '$name'"
  if name_pid "$st" "$name" >/dev/null; then
    die "a process named '$name' is already running (pid $(name_pid "$st" "$name"))"
  fi
  mkdir -p "$st/logs"
  printf '=== %s start: %s\n' "$(date -u +%FT%T.%3NZ)" "$*" >>"$st/logs/$name.log"
  (
    echo "$BASHPID" >"$cg/cgroup.procs"
    exec nsenter --net="/var/run/netns/$ns" -- "$@"
  ) >>"$st/logs/$name.log" 2>&1 </dev/null &
  pid=$!
  start=$(proc_start "$pid") || start=0
  printf '%s %s %s %s\n' "$name" "$pid" "$start" "$ns" >>"$st/pids"
  echo "$pid"
}

# ---------------------------------------------------------------------------------------------
# manifests

yq() { # YAML double-quoted scalar
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

atomic_write() { # FILE; content on stdin
  local dir tmp
  dir=$(dirname "$1")
  tmp=$dir/.$(basename "$1").tmp.$$
  cat >"$tmp"
  mv -f "$tmp" "$1"
}

write_namespaces() {
  local st=$1 ns first=1
  {
    while read -r ns; do
      [[ -n $ns ]] || continue
      ((first)) || echo "---"
      first=0
      echo "apiVersion: v1"
      echo "kind: Namespace"
      echo "metadata:"
      echo "  name: $(yq "$ns")"
      echo "  labels:"
      echo "    kubernetes.io/metadata.name: $(yq "$ns")"
      if [[ $(cat "$st/db/ns/$ns") == ambient ]]; then
        echo "    zmesh.io/dataplane-mode: \"ambient\""
      fi
    done <"$st/db/ns.order"
  } | atomic_write "$st/manifests/namespaces.yaml"
}

write_kv_block() { # FILE INDENT
  local k v
  while IFS= read -r line; do
    [[ -n $line ]] || continue
    k=${line%%=*}
    v=${line#*=}
    echo "$2$(yq "$k"): $(yq "$v")"
  done <"$1"
}

write_pod() {
  local st=$1 prefix=$2 pod=$3 d
  d=$st/db/pods/$pod
  {
    echo "apiVersion: v1"
    echo "kind: Pod"
    echo "metadata:"
    echo "  name: $(yq "$pod")"
    echo "  namespace: $(yq "$(cat "$d/ns")")"
    echo "  uid: $(yq "$(cat "$d/uid")")"
    if [[ -s $d/labels ]]; then
      echo "  labels:"
      write_kv_block "$d/labels" "    "
    fi
    echo "  annotations:"
    write_kv_block "$d/annotations" "    "
    echo "spec:"
    echo "  nodeName: $(yq "$prefix-$(cat "$d/node")")"
    echo "  serviceAccountName: $(yq "$(cat "$d/sa" 2>/dev/null || echo default)")"
    echo "  containers:"
    echo "  - name: main"
    echo "    image: \"zmesh.io/lab-placeholder:latest\""
    echo "status:"
    echo "  phase: Running"
    echo "  hostIP: $(cat "$d/node_ip")"
    echo "  podIP: $(cat "$d/ip")"
    echo "  podIPs:"
    echo "  - ip: $(cat "$d/ip")"
  } | atomic_write "$st/manifests/pod-$pod.yaml"
}

kv_set() { # FILE KEY=VALUE | KEY-
  local file=$1 arg=$2 key tmp
  if [[ $arg == *=* ]]; then key=${arg%%=*}; else key=${arg%-}; fi
  [[ -n $key ]] || die "bad key in '$arg'"
  tmp=$file.tmp.$$
  awk -v k="$key" 'index($0, k "=") != 1' "$file" >"$tmp" || true
  if [[ $arg == *=* ]]; then printf '%s\n' "$arg" >>"$tmp"; fi
  mv -f "$tmp" "$file"
}

envname() { local s=${1^^}; echo "${s//[^A-Z0-9]/_}"; }

write_env() {
  local st=$1 prefix=$2 n p d cg v
  cg=$(cat "$st/cgroup2")
  {
    printf 'LAB_PREFIX=%q\n' "$prefix"
    printf 'LAB_STATE=%q\n' "$st"
    printf 'LAB_CGROUP2=%q\n' "$cg"
    printf 'LAB_PIN_ROOT=%q\n' "$PIN_ROOT"
    printf 'LAB_NODES=%q\n' "$(tr '\n' ' ' <"$st/db/nodes.order" | sed 's/ $//')"
    printf 'LAB_PODS=%q\n' "$(tr '\n' ' ' <"$st/db/pods.order" | sed 's/ $//')"
    while read -r n; do
      v=$(envname "$n")
      printf '%s_NAME=%q\n' "$v" "$prefix-$n"
      printf '%s_NETNS=%q\n' "$v" "$prefix-$n"
      printf '%s_IP=%q\n' "$v" "198.18.$(cat "$st/db/nodes/$n").1"
      printf '%s_LINK_IP=%q\n' "$v" "198.19.255.$(cat "$st/db/nodes/$n")"
      printf '%s_CGROUP=%q\n' "$v" "$cg/$prefix-$n"
      printf '%s_PIN_DIR=%q\n' "$v" "$PIN_ROOT/$prefix-$n"
      printf '%s_ZDS_SOCKET=%q\n' "$v" "$st/$prefix-$n/zds.sock"
    done <"$st/db/nodes.order"
    while read -r p; do
      d=$st/db/pods/$p
      v=POD_$(envname "$p")
      printf '%s_IP=%q\n' "$v" "$(cat "$d/ip")"
      printf '%s_NETNS=%q\n' "$v" "$prefix-$p"
      printf '%s_NAMESPACE=%q\n' "$v" "$(cat "$d/ns")"
      printf '%s_NODE=%q\n' "$v" "$(cat "$d/node")"
      printf '%s_UID=%q\n' "$v" "$(cat "$d/uid")"
      printf '%s_CGROUP=%q\n' "$v" "$cg/$prefix-$(cat "$d/node")/pod-$p"
    done <"$st/db/pods.order"
  } | atomic_write "$st/env"
}

# ---------------------------------------------------------------------------------------------
# up

nsx() { local ns=$1; shift; nsenter --net="/var/run/netns/$ns" -- "$@"; }

UP_PREFIX=""
up_failed() {
  local rc=$?
  trap - EXIT INT TERM
  if ((rc != 0)) && [[ -n $UP_PREFIX ]]; then
    note "up failed, cleaning up lab $UP_PREFIX"
    cmd_down "$UP_PREFIX" || true
  fi
  exit "$rc"
}

cmd_up() {
  need_root
  local prefix=${1:-} spec=${2:-}
  check_prefix "$prefix"
  [[ -f $spec ]] || die "spec file '$spec' not found"
  local st
  st=$(state_dir "$prefix")
  [[ ! -e $st ]] || die "lab $prefix already exists ($st); run 'lab.sh down $prefix' first"

  # parse ---------------------------------------------------------------------------------
  local -a nodes=() namespaces=() pods=()
  local -A node_idx=() ns_mode=() pod_ns=() pod_node=() pod_labels=() pod_ann=() pod_sa=()
  local lineno=0 line kw a b extra
  while IFS= read -r line || [[ -n $line ]]; do
    lineno=$((lineno + 1))
    line=${line%%#*}
    read -r kw a b extra <<<"$line" || true
    [[ -n ${kw:-} ]] || continue
    case $kw in
      node)
        [[ $a =~ ^node([0-9]+)$ ]] || die "$spec:$lineno: node name must be node1..node254"
        local n=${BASH_REMATCH[1]}
        ((n >= 1 && n <= 254)) || die "$spec:$lineno: node index out of range"
        [[ -z ${node_idx[$a]:-} ]] || die "$spec:$lineno: duplicate node $a"
        [[ -z ${b:-} ]] || die "$spec:$lineno: unexpected '$b'"
        node_idx[$a]=$((10#$n))
        nodes+=("$a")
        ;;
      namespace)
        [[ $a =~ $NAME_RE ]] || die "$spec:$lineno: bad namespace name '$a'"
        [[ -z ${ns_mode[$a]+x} ]] || die "$spec:$lineno: duplicate namespace $a"
        case ${b:-} in
          ambient) ns_mode[$a]=ambient ;;
          "") ns_mode[$a]="" ;;
          *) die "$spec:$lineno: unknown namespace mode '$b'" ;;
        esac
        [[ -z ${extra:-} ]] || die "$spec:$lineno: unexpected '$extra'"
        namespaces+=("$a")
        ;;
      pod)
        [[ $a == */* ]] || die "$spec:$lineno: pod must be NAMESPACE/NAME"
        local pns=${a%%/*} pname=${a#*/}
        [[ $pname =~ $NAME_RE && ${#pname} -le 40 ]] || die "$spec:$lineno: bad pod name '$pname'"
        [[ $pname != node* ]] || die "$spec:$lineno: pod names may not start with 'node'"
        [[ -n ${ns_mode[$pns]+x} ]] || die "$spec:$lineno: namespace $pns not declared before"
        [[ -n ${b:-} && -n ${node_idx[$b]:-} ]] || die "$spec:$lineno: node '${b:-}' not declared before"
        [[ -z ${pod_ns[$pname]:-} ]] || die "$spec:$lineno: duplicate pod name $pname"
        pod_ns[$pname]=$pns
        pod_node[$pname]=$b
        pod_labels[$pname]=""
        pod_ann[$pname]=""
        pod_sa[$pname]=default
        local -a opts=()
        read -ra opts <<<"${extra:-}"
        local o
        for o in "${opts[@]}"; do
          case $o in
            label=*=*) pod_labels[$pname]+="${o#label=}"$'\n' ;;
            annotation=*=*) pod_ann[$pname]+="${o#annotation=}"$'\n' ;;
            sa=*)
              [[ ${o#sa=} =~ $NAME_RE ]] || die "$spec:$lineno: bad service account in '$o'"
              pod_sa[$pname]=${o#sa=}
              ;;
            *) die "$spec:$lineno: unknown pod option '$o' (label=K=V, annotation=K=V or sa=NAME)" ;;
          esac
        done
        pods+=("$pname")
        ;;
      *) die "$spec:$lineno: unknown directive '$kw'" ;;
    esac
  done <"$spec"
  ((${#nodes[@]} > 0)) || die "$spec: no node"

  # build ---------------------------------------------------------------------------------
  ensure_bpffs
  local cg
  cg=$(cgroup2_root)
  mkdir -p "$st/logs" "$st/manifests" "$st/db/nodes" "$st/db/ns" "$st/db/pods"
  echo "$cg" >"$st/cgroup2"
  cp "$spec" "$st/spec"
  : >"$st/pids"
  # From here on a failure (or a signal) tears down what was built.
  UP_PREFIX=$prefix
  trap up_failed EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  local node i ns
  for node in "${nodes[@]}"; do
    i=${node_idx[$node]}
    ns=$prefix-$node
    echo "$i" >"$st/db/nodes/$node"
    echo "$node" >>"$st/db/nodes.order"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # A fixed (locally administered) MAC: otherwise a bridge takes the lowest MAC of its ports
    # and changes it as pods come and go, which the CNI bridge plugin's CHECK reports as an error.
    ip -n "$ns" link add br0 address "$(printf '02:5a:00:00:00:%02x' "$i")" type bridge forward_delay 0 stp_state 0
    ip -n "$ns" addr add "198.18.$i.1/24" dev br0
    ip -n "$ns" link set br0 up
    nsx "$ns" sysctl -qw net.ipv4.ip_forward=1
    mkdir -p "$cg/$ns/agent" "$cg/$ns/ztunnel"
    mkdir -p "$st/$ns"
  done

  local x y ix iy
  for ((x = 0; x < ${#nodes[@]}; x++)); do
    for ((y = x + 1; y < ${#nodes[@]}; y++)); do
      ix=${node_idx[${nodes[x]}]}
      iy=${node_idx[${nodes[y]}]}
      ip -n "$prefix-${nodes[x]}" link add "${nodes[y]}" type veth peer name "${nodes[x]}" netns "$prefix-${nodes[y]}"
      ip -n "$prefix-${nodes[x]}" addr add "198.19.255.$ix/32" dev "${nodes[y]}"
      ip -n "$prefix-${nodes[y]}" addr add "198.19.255.$iy/32" dev "${nodes[x]}"
      ip -n "$prefix-${nodes[x]}" link set "${nodes[y]}" up
      ip -n "$prefix-${nodes[y]}" link set "${nodes[x]}" up
      ip -n "$prefix-${nodes[x]}" route add "198.19.255.$iy/32" dev "${nodes[y]}" src "198.19.255.$ix"
      ip -n "$prefix-${nodes[y]}" route add "198.19.255.$ix/32" dev "${nodes[x]}" src "198.19.255.$iy"
      ip -n "$prefix-${nodes[x]}" route add "198.18.$iy.0/24" via "198.19.255.$iy" dev "${nodes[y]}"
      ip -n "$prefix-${nodes[y]}" route add "198.18.$ix.0/24" via "198.19.255.$ix" dev "${nodes[x]}"
    done
  done

  for ns in "${namespaces[@]}"; do
    echo "${ns_mode[$ns]}" >"$st/db/ns/$ns"
    echo "$ns" >>"$st/db/ns.order"
  done
  : >>"$st/db/ns.order"

  local -A next_host=()
  local pod d host pns
  for pod in "${pods[@]}"; do
    node=${pod_node[$pod]}
    i=${node_idx[$node]}
    host=${next_host[$node]:-10}
    ((host <= 254)) || die "too many pods on $node"
    next_host[$node]=$((host + 1))
    pns=$prefix-$pod
    d=$st/db/pods/$pod
    mkdir -p "$d"
    echo "${pod_ns[$pod]}" >"$d/ns"
    echo "${pod_sa[$pod]}" >"$d/sa"
    echo "$node" >"$d/node"
    echo "198.18.$i.$host" >"$d/ip"
    echo "198.18.$i.1" >"$d/node_ip"
    cat /proc/sys/kernel/random/uuid >"$d/uid"
    printf '%s' "${pod_labels[$pod]}" >"$d/labels"
    if ! grep -q '^app=' "$d/labels"; then echo "app=$pod" >>"$d/labels"; fi
    printf '%s' "${pod_ann[$pod]}" >"$d/annotations"
    kv_set "$d/annotations" "zmesh.io/netns=/var/run/netns/$pns"
    echo "$pod" >>"$st/db/pods.order"

    ip netns add "$pns"
    ip -n "$pns" link set lo up
    if [[ -d /proc/sys/net/ipv6 ]]; then
      nsx "$pns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.lo.disable_ipv6=0
    fi
    ip -n "$prefix-$node" link add "veth$host" type veth peer name eth0 netns "$pns"
    ip -n "$prefix-$node" link set "veth$host" master br0 up
    ip -n "$pns" addr add "198.18.$i.$host/24" dev eth0
    ip -n "$pns" link set eth0 up
    ip -n "$pns" route add default via "198.18.$i.1" dev eth0
    mkdir -p "$cg/$prefix-$node/pod-$pod"
  done
  : >>"$st/db/pods.order"

  write_namespaces "$st"
  for pod in "${pods[@]}"; do write_pod "$st" "$prefix" "$pod"; done
  write_env "$st" "$prefix"

  trap - EXIT INT TERM
  note "lab $prefix is up: nodes: ${nodes[*]}; pods: ${pods[*]:-none}; state: $st"
}

# ---------------------------------------------------------------------------------------------
# down

lab_netns() { # PREFIX: lab netns names
  ip netns list 2>/dev/null | awk -v p="$1-" 'index($1, p) == 1 { print $1 }'
}

lab_node_cgroups() { # PREFIX CGROUP2
  local d
  for d in "$2/$1"-node*; do
    [[ -d $d ]] && echo "$d"
  done
  return 0
}

cgroup_empty() { # DIR: no process in DIR or below
  local f
  while IFS= read -r f; do
    [[ -s $f ]] && return 1
  done < <(find "$1" -name cgroup.procs 2>/dev/null)
  return 0
}

cmd_down() {
  need_root
  local prefix=${1:-}
  check_prefix "$prefix"
  local st cg bin
  st=$(state_dir "$prefix")
  cg=$(cgroup2_root)
  bin=$(zmesh_bin)

  # 1. recorded processes: SIGTERM all, then SIGKILL the ones that stay.
  if [[ -f $st/pids ]]; then
    local name pid start rest
    local -a left=()
    while read -r name pid start rest; do
      [[ -n ${pid:-} ]] || continue
      if alive "$pid" "$start"; then
        kill -TERM "$pid" 2>/dev/null || true
        left+=("$pid:$start")
      fi
    done <"$st/pids"
    local e
    for e in "${left[@]}"; do
      poll 5 dead "${e%%:*}" "${e#*:}" || kill -KILL "${e%%:*}" 2>/dev/null || true
    done
  fi

  # 2. everything still in the lab's cgroups (children of recorded processes, exec'd commands).
  local d
  while IFS= read -r d; do
    [[ -n $d ]] || continue
    local k
    while IFS= read -r k; do
      echo 1 >"$k" 2>/dev/null || true
    done < <(find "$d" -name cgroup.kill 2>/dev/null)
    poll 10 cgroup_empty "$d" || note "processes left in $d: $(find "$d" -name cgroup.procs -exec cat {} + | tr '\n' ' ')"
  done < <(lab_node_cgroups "$prefix" "$cg")

  # 3. anything else living in a lab netns (only lab.sh puts processes there).
  local n p
  while IFS= read -r n; do
    [[ -n $n ]] || continue
    for p in $(ip netns pids "$n" 2>/dev/null); do
      kill -KILL "$p" 2>/dev/null || true
    done
  done < <(lab_netns "$prefix")

  # 4. the agent's own uninstall (detaches links, removes pins), then remove what is left.
  local node
  for d in "$PIN_ROOT/$prefix"-node*; do
    [[ -e $d ]] || continue
    node=$(basename "$d")
    if [[ -x $bin/zmesh-agent ]]; then
      mkdir -p "$st/logs" 2>/dev/null || true
      timeout 20 "$bin/zmesh-agent" uninstall --node "$node" >>"$st/logs/uninstall-$node.log" 2>&1 ||
        note "zmesh-agent uninstall --node $node failed (see $st/logs/uninstall-$node.log); removing pins by hand"
    fi
    rm -rf "$d"
  done

  # 5. namespaces (their veths and bridges go with them).
  while IFS= read -r n; do
    [[ -n $n ]] || continue
    ip netns del "$n" 2>/dev/null || note "cannot delete netns $n"
  done < <(lab_netns "$prefix")
  # No veth is ever created in the root netns; remove one only if it carries the prefix.
  while IFS= read -r n; do
    [[ -n $n ]] || continue
    ip link del "$n" 2>/dev/null || true
  done < <(ip -o link show 2>/dev/null | awk -F': ' -v p="$prefix-" '{ sub(/@.*/, "", $2) } index($2, p) == 1 { print $2 }')

  # 6. cgroups, leaf first, once empty.
  while IFS= read -r d; do
    [[ -n $d ]] || continue
    poll 10 rmdir_tree "$d" || note "cannot remove cgroup $d"
  done < <(lab_node_cgroups "$prefix" "$cg")

  # 7. state.
  rm -rf "$st"
  return 0
}

rmdir_tree() {
  find "$1" -depth -type d -exec rmdir {} + 2>/dev/null
  [[ ! -d $1 ]]
}

cmd_down_all() {
  need_root
  local cg p
  cg=$(cgroup2_root)
  local -A seen=()
  {
    for p in "$LAB_RUN_DIR"/zl* "$cg"/zl*-node* "$PIN_ROOT"/zl*-node*; do
      [[ -e $p ]] && basename "$p" | sed -n 's/^\(zl[a-z0-9]\{1,6\}\)\(-node[0-9]*\)\{0,1\}$/\1/p'
    done
    ip netns list 2>/dev/null | awk '{ print $1 }' | sed -n 's/^\(zl[a-z0-9]\{1,6\}\)-.*/\1/p'
  } | while IFS= read -r p; do
    [[ $p =~ $PREFIX_RE ]] && echo "$p"
  done | sort -u >"/tmp/zmesh-lab-down-all.$$"
  while IFS= read -r p; do
    [[ -z ${seen[$p]:-} ]] || continue
    seen[$p]=1
    note "removing lab $p"
    cmd_down "$p"
  done <"/tmp/zmesh-lab-down-all.$$"
  rm -f "/tmp/zmesh-lab-down-all.$$"
}

# ---------------------------------------------------------------------------------------------
# exec / spawn / kill

open_lab() { # PREFIX -> ST
  check_prefix "${1:-}"
  ST=$(state_dir "$1")
  [[ -d $ST/db ]] || die "lab $1 is not up (no $ST)"
}

cmd_exec() {
  need_root
  local prefix=${1:-} target=${2:-}
  open_lab "$prefix"
  [[ ${3:-} == -- ]] || die "usage: lab.sh exec PREFIX POD|NODE -- CMD..."
  shift 3
  (($#)) || die "missing command"
  load_target "$ST" "$prefix" "$target"
  echo "$BASHPID" >"$T_CGROUP/cgroup.procs"
  exec nsenter --net="/var/run/netns/$T_NETNS" -- "$@"
}

cmd_spawn() {
  need_root
  local prefix=${1:-} target=${2:-} name=${3:-}
  open_lab "$prefix"
  [[ ${4:-} == -- ]] || die "usage: lab.sh spawn PREFIX POD|NODE NAME -- CMD..."
  shift 4
  (($#)) || die "missing command"
  load_target "$ST" "$prefix" "$target"
  spawn_into "$ST" "$name" "$T_NETNS" "$T_CGROUP" "$@"
}

cmd_kill() {
  local prefix=${1:-} name=${2:-} sig=${3:-TERM} pid rname
  open_lab "$prefix"
  rname=$(resolve_name "$ST" "$name") || die "no process named '$name' in lab $prefix"
  pid=$(name_pid "$ST" "$rname") || die "process '$rname' is not running"
  kill -s "$sig" "$pid"
}

cmd_pid() {
  local prefix=${1:-} name=${2:-} rname
  open_lab "$prefix"
  rname=$(resolve_name "$ST" "$name") || return 1
  name_pid "$ST" "$rname"
}

cmd_ip() {
  local prefix=${1:-} t=${2:-}
  open_lab "$prefix"
  if [[ -f $ST/db/nodes/$t ]]; then
    echo "198.18.$(cat "$ST/db/nodes/$t").1"
  elif [[ -f $ST/db/pods/$t/ip ]]; then
    cat "$ST/db/pods/$t/ip"
  else
    die "no pod or node named '$t'"
  fi
}

# ---------------------------------------------------------------------------------------------
# mesh

http_ok() { # NETNS URL
  nsx "$1" curl -sf -o /dev/null --max-time 1 "$2" 2>/dev/null
}

mesh_ready() { # NETNS
  http_ok "$1" http://127.0.0.1:15030/healthz/ready || return 1
  # DESIGN §10 puts readiness on 15021; the lab brief on 15020. Either answering 200 is ready.
  http_ok "$1" http://127.0.0.1:15021/healthz/ready || http_ok "$1" http://127.0.0.1:15020/healthz/ready
}

mesh_alive_or_fail() { # ST NODE: both processes still running (stop waiting early otherwise)
  name_pid "$1" "agent-$2" >/dev/null && name_pid "$1" "ztunnel-$2" >/dev/null
}

ready_files() { [[ -f $1/agent-ready && -f $1/ztunnel-ready ]]; } # SOCKET_DIR

show_logs() {
  local f
  for f in "$@"; do
    [[ -f $f ]] || continue
    echo "----- tail of $f" >&2
    tail -n 40 "$f" >&2
  done
}

cmd_mesh_up() {
  need_root
  local prefix=${1:-} node=${2:-}
  open_lab "$prefix"
  [[ -f $ST/db/nodes/$node ]] || die "lab $prefix has no node '$node'"
  local bin cg ns
  bin=$(zmesh_bin)
  for b in zmesh-agent ztunnel; do
    [[ -x $bin/$b ]] || die "binary $bin/$b not found or not executable (build first, or set ZMESH_BIN)"
  done
  ensure_bpffs
  cg=$(cat "$ST/cgroup2")/$prefix-$node
  ns=$prefix-$node
  # The pair's name and its own socket directory (a second pair: the new pod of a surge
  # upgrade, whose agent<->ztunnel sockets live in the pod's own emptyDir in deploy/). The node
  # lease, the CNI socket and the state stay the node's.
  # Its processes get cgroups of their own (another pod's containers): the capture must tell
  # both ztunnels apart from the pods by pid and cgroup.
  local id=$node sock=$ST/$ns acg=$cg/agent zcg=$cg/ztunnel
  if [[ -n ${ZMESH_INSTANCE:-} ]]; then
    [[ $ZMESH_INSTANCE =~ $NAME_RE ]] || die "ZMESH_INSTANCE must match $NAME_RE"
    id=$node-$ZMESH_INSTANCE
    sock=$ST/$ns/$ZMESH_INSTANCE
    acg=$cg/agent-$ZMESH_INSTANCE
    zcg=$cg/ztunnel-$ZMESH_INSTANCE
    mkdir -p "$acg" "$zcg"
  fi
  mkdir -p "$sock"
  local -a agent_extra=() zt_extra=()
  read -ra agent_extra <<<"${ZMESH_AGENT_EXTRA_ARGS:-}"
  read -ra zt_extra <<<"${ZTUNNEL_EXTRA_ARGS:-}"
  local -a source_args=(--manifests "$ST/manifests")
  if [[ -n ${ZMESH_AGENT_KUBECONFIG:-} ]]; then
    source_args=(--kubeconfig "$ZMESH_AGENT_KUBECONFIG" --cni-socket "$ST/$ns/cni.sock")
  fi
  if ! name_pid "$ST" "agent-$id" >/dev/null; then
    spawn_into "$ST" "agent-$id" "$ns" "$acg" "$bin/zmesh-agent" \
      --node "$ns" "${source_args[@]}" --cgroup-root "$cg" --pin-root "$PIN_ROOT" \
      --zds-socket "$sock/zds.sock" --admin-addr 127.0.0.1:15030 --node-run-dir "$ST/$ns" \
      --state-dir "$ST/$ns/state" --ca-socket "$sock/ca.sock" \
      --config-socket "$sock/config.sock" --ready-file "$sock/agent-ready" \
      "${agent_extra[@]}" >/dev/null
  fi
  if ! name_pid "$ST" "ztunnel-$id" >/dev/null; then
    spawn_into "$ST" "ztunnel-$id" "$ns" "$zcg" "$bin/ztunnel" \
      --node "$ns" --zds-socket "$sock/zds.sock" --metrics-addr 127.0.0.1:15020 --workers 2 \
      --ca-address "unix:$sock/ca.sock" --config-address "unix:$sock/config.sock" \
      --ready-file "$sock/ztunnel-ready" "${zt_extra[@]}" >/dev/null
  fi
  local end=$(($(now_ms) + 20000))
  # Each process's own readiness file (both pairs of a surge share the node's 127.0.0.1); the
  # node's pair must also answer on its HTTP ports.
  until ready_files "$sock" && { [[ -n ${ZMESH_INSTANCE:-} ]] || mesh_ready "$ns"; }; do
    if ! mesh_alive_or_fail "$ST" "$id"; then
      show_logs "$ST/logs/agent-$id.log" "$ST/logs/ztunnel-$id.log"
      die "mesh on $node: a process exited before becoming ready"
    fi
    if (($(now_ms) >= end)); then
      show_logs "$ST/logs/agent-$id.log" "$ST/logs/ztunnel-$id.log"
      die "mesh on $node not ready within 20 s"
    fi
    sleep 0.1
  done
  note "mesh on $prefix-$node is ready (agent pid $(name_pid "$ST" "agent-$id"), ztunnel pid $(name_pid "$ST" "ztunnel-$id"))"
}

cmd_mesh_down() {
  local prefix=${1:-} node=${2:-} what=${3:-all} rec pid start c
  open_lab "$prefix"
  [[ -f $ST/db/nodes/$node ]] || die "lab $prefix has no node '$node'"
  local -a comps
  case $what in
    agent) comps=(agent) ;;
    ztunnel) comps=(ztunnel) ;;
    all) comps=(ztunnel agent) ;;
    *) die "mesh-down: agent|ztunnel|all" ;;
  esac
  local id=$node
  [[ -z ${ZMESH_INSTANCE:-} ]] || id=$node-$ZMESH_INSTANCE
  for c in "${comps[@]}"; do
    rec=$(lookup "$ST" "$c-$id") || continue
    read -r pid start <<<"$rec"
    stop_pid "$pid" "$start" 10
  done
}

# ---------------------------------------------------------------------------------------------
# manifests edits

cmd_label() {
  local prefix=${1:-} ns=${2:-} mode=${3:-}
  open_lab "$prefix"
  [[ -f $ST/db/ns/$ns ]] || die "lab $prefix has no namespace '$ns'"
  case $mode in
    on) echo ambient >"$ST/db/ns/$ns" ;;
    off) echo "" >"$ST/db/ns/$ns" ;;
    *) die "usage: lab.sh label PREFIX NAMESPACE on|off" ;;
  esac
  write_namespaces "$ST"
}

cmd_pod_kv() { # which(annotations|labels) PREFIX POD KEY=VALUE|KEY-
  local which=$1 prefix=${2:-} pod=${3:-} kv=${4:-}
  open_lab "$prefix"
  [[ -d $ST/db/pods/$pod ]] || die "lab $prefix has no pod '$pod'"
  [[ -n $kv ]] || die "missing KEY=VALUE"
  if [[ $which == annotations && ${kv%%=*} == zmesh.io/netns ]]; then
    die "zmesh.io/netns is managed by the lab"
  fi
  kv_set "$ST/db/pods/$pod/$which" "$kv"
  write_pod "$ST" "$prefix" "$pod"
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    down-all) cmd_down_all ;;
    exec) cmd_exec "$@" ;;
    spawn) cmd_spawn "$@" ;;
    kill) cmd_kill "$@" ;;
    pid) cmd_pid "$@" ;;
    ip) cmd_ip "$@" ;;
    mesh-up) cmd_mesh_up "$@" ;;
    mesh-down) cmd_mesh_down "$@" ;;
    label) cmd_label "$@" ;;
    annotate) cmd_pod_kv annotations "$@" ;;
    pod-label) cmd_pod_kv labels "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
