# shellcheck shell=bash
# Shell helpers shared by scripts/lab.sh, the demo, the benchmark and the lab tests.
# Sourced, not run.

now_ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((t / 1000)); }

# poll SECONDS CMD...: run CMD every 50 ms until it succeeds (0) or the deadline passes (1).
poll() {
  local end=$(($(now_ms) + $1 * 1000))
  shift
  until "$@"; do
    (($(now_ms) < end)) || return 1
    sleep 0.05
  done
}

# tail_logs DIR [LINES]: the tail of every *.log in DIR, to stderr, for failure reports.
tail_logs() {
  local f
  for f in "$1"/*.log; do
    [[ -f $f ]] || continue
    echo "----- tail of ${f##*/}" >&2
    tail -n "${2:-10}" "$f" >&2
  done
}

# use_zmesh_bin SRC: ZMESH_BIN (default SRC/build/bin; relative paths are taken from SRC) and
# ZMESH_SOURCE_DIR, exported for lab.sh and the binaries it starts.
use_zmesh_bin() {
  ZMESH_BIN=${ZMESH_BIN:-build/bin}
  [[ $ZMESH_BIN == /* ]] || ZMESH_BIN=$1/$ZMESH_BIN
  export ZMESH_BIN ZMESH_SOURCE_DIR=$1
}

# make_mesh_root DIR [SUBJECT]: an ECDSA P-256 mesh root (DIR/root-cert.pem, DIR/root-key.pem
# mode 0600) for labs whose agents must share one, as a cluster's do.
make_mesh_root() {
  local dir=$1 subject=${2:-/O=zmesh-lab root}
  mkdir -p "$dir" || return 1
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "$subject" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/root-key.pem" -out "$dir/root-cert.pem" 2>/dev/null || return 1
  chmod 600 "$dir/root-key.pem"
}

# cpu_ticks PID...: utime+stime (fields 14, 15 of /proc/PID/stat) of every process, summed.
cpu_ticks() {
  local p sum=0 stat
  for p in "$@"; do
    stat=$(cat "/proc/$p/stat") || return 1
    stat=${stat##*) }
    local -a f
    read -ra f <<<"$stat"
    sum=$((sum + f[11] + f[12]))
  done
  echo "$sum"
}

# waypoint_manifests NS ISSUER JWKS_FILE: the waypoint Service `waypoint` of NS (its pods are
# labelled app=waypoint; VIP 198.19.200.1) and a RequestAuthentication `jwt` attached to it by
# targetRefs, trusting ISSUER with the key set in JWKS_FILE inline.
waypoint_manifests() {
  cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: waypoint, namespace: $1}
spec:
  selector: {app: waypoint}
  clusterIP: 198.19.200.1
  ports: [{name: hbone, port: 15008, targetPort: 15008}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: $1}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  jwtRules: [{issuer: "$2", jwks: '$(cat "$3")'}]
YAML
}
