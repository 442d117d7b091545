#!/usr/bin/env bash
# Installs every Debian package that zmesh's build, tests, demo and benchmarks need.
# Idempotent: packages already present are skipped, so a second run costs one dpkg query.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git clang llvm
  clang-format clang-tidy
  # eBPF
  libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
  # libraries
  libabsl-dev libprotobuf-dev protobuf-compiler libspdlog-dev libfmt-dev
  libasio-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libssl-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # TLS, HTTP/2 and gRPC (HBONE, the CA, the config stream)
  openssl libnghttp2-dev libgrpc++-dev protobuf-compiler-grpc
  # HTTP/1.x parsing in the waypoint (nodejs/http-parser 2.9)
  libhttp-parser-dev
  # lab, tests, demo and benchmarks
  iproute2 curl iperf3 python3 procps psmisc shellcheck nghttp2-client python3-h2
  # the real CNI plugins (bridge, host-local) zmesh-cni is chained after in the lab
  containernetworking-plugins
  tshark testssl.sh bsdextrautils
  # the peers the mTLS benchmark compares against
  stunnel4 haproxy
)
# kubectl (with its built-in kustomize) for tests/deploy: Debian's kubernetes-client, unless a
# kubectl is already installed (another package, e.g. Google's `kubectl`, owns /usr/bin/kubectl
# and the two cannot both be installed).
if ! command -v kubectl >/dev/null 2>&1; then
  packages+=(kubernetes-client)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap: these packages are missing and installing them needs root: ${missing[*]}" >&2
  exit 1
fi

echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
