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
