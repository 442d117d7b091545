#!/usr/bin/env bash
# deploy/ and docs/install.md, checked without a cluster (tests/README.md, tier unit):
#  1. `kubectl kustomize` renders deploy/, deploy/without-crds and the waypoint overlay the doc
#     writes, and `kubectl create --dry-run=client --validate=false` maps every object. kubectl
#     needs discovery even for a client-side dry run: fake_discovery.py serves it, with the
#     real scope of each kind. The rendered objects are exactly the expected ones.
#  2. check_deploy.py: RBAC, privileges, mounts, probes, tokens, CRD versions, ports that agree,
#     a doc that names only what exists, the Dockerfile's stages and COPY sources.
#  3. The doc's YAML blocks pass the same dry run.
#  4. Every RUN of the Dockerfile passes shellcheck (sh).
#  5. Every flag the manifests pass to a zmesh binary, and the doc shows, is in that binary's
#     --help ($ZMESH_BUILD_DIR/bin; not checked, with a message, when it is not built).
#  6. The runtime image installs the Debian package of every shared library the built binaries
#     link.
# KUBECTL=/path/to/kubectl picks another kubectl (e.g. Debian's 1.20, unpacked by hand).
set -euo pipefail

SRC=${ZMESH_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${ZMESH_BUILD_DIR:+$ZMESH_BUILD_DIR/bin}
KUBECTL=${KUBECTL:-kubectl}
HERE=$SRC/tests/deploy

if ! command -v "$KUBECTL" >/dev/null 2>&1; then
  echo "SKIPPED: no kubectl on PATH (scripts/bootstrap.sh installs Debian's kubernetes-client)"
  exit 0
fi

tmp=$(mktemp -d /tmp/zmesh-deploy-test.XXXXXX)
cleanup() {
  if [ -n "${DISCOVERY_PID:-}" ]; then
    kill "$DISCOVERY_PID" 2>/dev/null || true
    wait "$DISCOVERY_PID" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

echo "== kubectl: $("$KUBECTL" version --client 2>/dev/null | head -1)"

# The discovery server prints its port once it listens.
coproc DISCOVERY { exec python3 "$HERE/fake_discovery.py" 2>"$tmp/discovery.log"; }
port=""
if ! read -r -t 30 -u "${DISCOVERY[0]}" port || [ -z "$port" ]; then
  cat "$tmp/discovery.log" >&2
  echo "FAIL: the fake discovery server did not start"
  exit 1
fi
cat >"$tmp/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "http://127.0.0.1:$port"}}]
users: [{name: fake, user: {}}]
contexts: [{name: fake, context: {cluster: fake, user: fake, namespace: default}}]
current-context: fake
EOF
k() { HOME="$tmp" "$KUBECTL" --kubeconfig "$tmp/kubeconfig" --cache-dir "$tmp/cache" "$@"; }

# render NAME DIR [NAMESPACE]: kustomize, dry run, object names and JSON in $tmp/NAME.*
render() {
  local name=$1 dir=$2 ns=${3:-}
  local nsflag=()
  [ -n "$ns" ] && nsflag=(-n "$ns")
  if ! k kustomize "$dir" >"$tmp/$name.yaml" 2>"$tmp/$name.err"; then
    cat "$tmp/$name.err"
    fail "kubectl kustomize $dir"
    return 1
  fi
  if ! k create --dry-run=client --validate=false "${nsflag[@]}" -o name -f "$tmp/$name.yaml" \
      >"$tmp/$name.names" 2>"$tmp/$name.err" ||
     ! k create --dry-run=client --validate=false "${nsflag[@]}" -o json -f "$tmp/$name.yaml" \
      >"$tmp/$name.json" 2>>"$tmp/$name.err"; then
    cat "$tmp/$name.err"
    fail "kubectl create --dry-run=client of $dir"
    return 1
  fi
  echo "ok: $dir renders $(wc -l <"$tmp/$name.names") objects, every one mapped by the dry run"
}

# expect NAME: the rendered objects are exactly these (stdin), in any order.
expect() {
  local name=$1
  sort >"$tmp/$name.want"
  sort "$tmp/$name.names" >"$tmp/$name.got"
  if diff -u "$tmp/$name.want" "$tmp/$name.got" >"$tmp/$name.diff"; then
    echo "ok: $name: exactly the $(wc -l <"$tmp/$name.want") expected objects"
  else
    cat "$tmp/$name.diff"
    fail "$name: rendered objects differ from the expected ones (- expected, + rendered)"
  fi
}

core_objects() {
  cat <<'EOF'
namespace/zmesh-system
resourcequota/zmesh-node-critical-pods
serviceaccount/zmesh-node
serviceaccount/zmesh-ca
clusterrole.rbac.authorization.k8s.io/zmesh-agent
clusterrolebinding.rbac.authorization.k8s.io/zmesh-agent
clusterrole.rbac.authorization.k8s.io/zmesh-ca
clusterrolebinding.rbac.authorization.k8s.io/zmesh-ca
clusterrole.rbac.authorization.k8s.io/zmesh-waypoint
role.rbac.authorization.k8s.io/zmesh-ca
rolebinding.rbac.authorization.k8s.io/zmesh-ca
daemonset.apps/zmesh-node
deployment.apps/zmesh-ca
service/zmesh-ca
EOF
}

# 1. Render and dry-run.
render full "$SRC/deploy" && {
  core_objects
  for p in authorizationpolicies peerauthentications requestauthentications; do
    echo "customresourcedefinition.apiextensions.k8s.io/$p.security.istio.io"
  done
} | expect full
render without-crds "$SRC/deploy/without-crds" && core_objects | expect without-crds

# The waypoint, instantiated as the doc says: its overlay next to a deploy/ directory.
read -r overlay_dir waypoint_ns < <(python3 "$HERE/check_deploy.py" overlay "$SRC/docs/install.md" "$tmp") ||
  fail "docs/install.md: no waypoint overlay"
if [ -n "${overlay_dir:-}" ]; then
  ln -s "$SRC/deploy" "$tmp/doc-overlay/deploy"
  render waypoint "$tmp/doc-overlay/$overlay_dir" "$waypoint_ns" && expect waypoint <<EOF
serviceaccount/waypoint
clusterrolebinding.rbac.authorization.k8s.io/zmesh-waypoint-$waypoint_ns
deployment.apps/waypoint
service/waypoint
EOF
fi

if [ "$failures" -ne 0 ]; then
  echo "FAILED: $failures check(s); the structural checks need every rendering"
  exit 1
fi

# 2. Structure.
if python3 "$HERE/check_deploy.py" --source-dir "$SRC" --out-dir "$tmp" \
    --full "$tmp/full.json" --without-crds "$tmp/without-crds.json" \
    --waypoint "$tmp/waypoint.json" --waypoint-namespace "$waypoint_ns"; then
  echo "ok: structure of the manifests, the doc and the Dockerfile"
else
  fail "check_deploy.py (its FAIL lines above)"
fi

# 3. The doc's YAML blocks.
for f in "$tmp"/doc-yaml/*.yaml; do
  [ -e "$f" ] || continue
  if k create --dry-run=client --validate=false -o name -f "$f" >"$tmp/doc.names" 2>"$tmp/doc.err"; then
    echo "ok: docs/install.md YAML block $(basename "$f" .yaml): $(tr '\n' ' ' <"$tmp/doc.names")"
  else
    cat "$tmp/doc.err"
    fail "docs/install.md YAML block $(basename "$f" .yaml) does not pass the dry run"
  fi
done

# 4. The Dockerfile's RUN lines.
if command -v shellcheck >/dev/null 2>&1; then
  for f in "$tmp"/run/*.sh; do
    [ -e "$f" ] || continue
    if shellcheck -s sh "$f"; then
      echo "ok: shellcheck deploy/images/Dockerfile RUN #$(basename "$f" .sh)"
    else
      fail "shellcheck deploy/images/Dockerfile RUN #$(basename "$f" .sh)"
    fi
  done
else
  echo "note: shellcheck not installed: the Dockerfile's RUN lines are not linted"
fi

# 5. Flags against --help. Cluster mode (issue 6) is being added on other branches; its flags
# are tolerated as "pending" only while the binary has no cluster mode at all (its --help
# mentions none of them and no kubeconfig, in-cluster, TokenReview or Secret). As soon as it
# has, every flag must exist, so a name that differs between branches fails here.
declare -A PENDING=(
  ["zmesh-agent --in-cluster"]=1 ["zmesh-agent --cni-bin-dir"]=1 ["zmesh-agent --cni-conf-dir"]=1
  ["zmesh-ca --in-cluster"]=1 ["zmesh-ca --root-secret"]=1
)
help_of() {  # BINARY SUBCOMMANDS...: the help of the binary and of each subcommand prefix
  local b=$1
  shift
  timeout 10 "$BIN/$b" --help 2>&1 || true
  local prefix=()
  for s in "$@"; do
    prefix+=("$s")
    timeout 10 "$BIN/$b" "${prefix[@]}" --help 2>&1 || true
  done
}
declare -A unchecked=()
while IFS='|' read -r binary subs flag where; do
  [ "$subs" = - ] && subs=""
  if [ -z "$BIN" ] || [ ! -x "$BIN/$binary" ]; then
    unchecked[$binary]=1
    continue
  fi
  # shellcheck disable=SC2086  # subcommands are words
  help=$(help_of "$binary" $subs)
  if grep -Eq -- "(^|[[:space:],])$flag([[:space:]=,]|$)" <<<"$help"; then
    continue
  fi
  if [ -n "${PENDING["$binary $flag"]:-}" ] &&
     ! grep -Eqi -- '--in-cluster|--cni-|kubeconfig|tokenreview|secret' <<<"$help"; then
    echo "pending: $binary $flag (cluster mode, issue 6) is not in $BIN/$binary yet; used by $where"
    continue
  fi
  fail "$binary ${subs:+$subs }has no $flag (used by $where)"
done <"$tmp/flags.tsv"
for b in "${!unchecked[@]}"; do
  echo "note: flags of $b not checked: ${BIN:-\$ZMESH_BUILD_DIR/bin}/$b is not built"
done
echo "ok: flags checked against --help: $(cut -d"|" -f1 "$tmp/flags.tsv" | sort -u | tr '\n' ' ')(those built)"

# 6. Runtime libraries of the images.
if [ -n "$BIN" ] && command -v dpkg-query >/dev/null 2>&1; then
  python3 "$HERE/check_deploy.py" libraries "$BIN" "$tmp" || fail "runtime libraries (FAIL lines above)"
else
  echo "note: runtime libraries not checked (no build directory or no dpkg)"
fi

if [ "$failures" -ne 0 ]; then
  echo "FAILED: $failures check(s)"
  exit 1
fi
echo "PASSED"
