#!/usr/bin/env bash
# The TLS policy of a pod's 15008, as a scanner outside the mesh sees it (issue 3): testssl.sh
# and openssl s_client from the legacy pod against the server pod's 15008 must find TLS 1.3
# only, with TLS_AES_128_GCM_SHA256 and TLS_AES_256_GCM_SHA384 only (no ChaCha20, no CCM),
# ALPN h2 only, and no TLS 1.2/1.1/1.0, SSLv3 or SSLv2 — and ztunnel keeps serving a good client
# with the same process.
# 15008 refuses any ClientHello without ALPN h2 before its ServerHello, so testssl's own
# socket probes (which offer no ALPN) see no TLS at all. The main scan therefore runs testssl
# in --ssl-native mode through an openssl wrapper that adds what an HBONE client always sends
# (ALPN h2 unless testssl sets one, and a mesh client certificate); testssl still chooses every
# version and cipher. Debian's openssl cannot speak SSLv2/SSLv3, so a second, socket-mode scan
# covers those. testssl runs in a private mount namespace with a resolv.conf naming 127.0.0.1,
# so that its DNS lookups fail at once instead of leaving the lab.
source "$(dirname "${BASH_SOURCE[0]}")/hbone_neg_lib.sh"
command -v testssl >/dev/null || fail "missing tool 'testssl' (Debian testssl.sh; run scripts/bootstrap.sh)"
hbone_neg_start
good_client_works

printf '%s\n' 'nameserver 127.0.0.1' 'options timeout:1 attempts:1' >"$NEG_TLS/resolv.conf"
cat >"$NEG_TLS/openssl-h2" <<WRAP
#!/bin/sh
# openssl, whose s_client offers ALPN h2 (unless asked for another) and a mesh certificate.
if [ "\$1" = s_client ]; then
  shift
  case " \$* " in *" -alpn "*) set -- "\$@" ;; *) set -- -alpn h2 "\$@" ;; esac
  exec openssl s_client -cert "$CLIENT_CERT" -key "$CLIENT_KEY" "\$@"
fi
exec openssl "\$@"
WRAP
chmod +x "$NEG_TLS/openssl-h2"

# testssl_scan NAME ARGS...: testssl from the legacy pod, findings in $NEG_TLS/NAME.json.
testssl_scan() {
  local name=$1 rc=0 out t0
  shift
  t0=$(now_ms)
  # shellcheck disable=SC2016 # $0 and $@ belong to the inner sh
  out=$(lab exec "$PREFIX" legacy -- timeout 50 unshare -m sh -c \
    'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$NEG_TLS/resolv.conf" \
    testssl --quiet --color 0 --warnings off --nodns none --connect-timeout 5 --openssl-timeout 5 \
    --jsonfile "$NEG_TLS/$name.json" "$@" "$POD_SERVER_IP:15008" 2>&1) || rc=$?
  ((rc != 124)) || fail "testssl ($name) timed out: $out"
  [[ -s $NEG_TLS/$name.json ]] || fail "testssl ($name) wrote no findings (exit $rc): $out"
  say "testssl $name: exit $rc in $(($(now_ms) - t0)) ms"
}
# finding NAME ID: testssl's finding for ID ("-" if absent).
finding() {
  json_query "$(cat "$NEG_TLS/$1.json")" "next((f['finding'] for f in d if f['id'] == '$2'), '-')"
}

# 1. testssl --ssl-native with the ALPN h2 wrapper: protocols and every cipher per protocol.
testssl_scan native --ssl-native --openssl "$NEG_TLS/openssl-h2" -p -E
tls13=$(finding native TLS1_3)
[[ $tls13 == offered* ]] || fail "testssl: TLS 1.3 is '$tls13', not offered"
say "ok: testssl: TLS 1.3 '$tls13'"
for p in TLS1 TLS1_1 TLS1_2; do
  assert_eq "not offered" "$(finding native "$p")" "testssl: $p"
done
assert_eq "h2" "$(finding native ALPN_HTTP2)" "testssl: ALPN protocols accepted"
ciphers=$(json_query "$(cat "$NEG_TLS/native.json")" \
  "' '.join(sorted(f['finding'].split()[3] for f in d if f['id'].startswith('cipher-')))")
assert_eq "TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384" "$ciphers" "testssl: ciphers offered"
ids=$(json_query "$(cat "$NEG_TLS/native.json")" \
  "' '.join(sorted(f['id'] for f in d if f['id'].startswith('cipher-')))")
assert_eq "cipher-tls1_3_x1301 cipher-tls1_3_x1302" "$ids" "testssl: cipher finding ids"

# 2. testssl with its own sockets, protocols only: SSLv2 and SSLv3 (and the rest) not offered.
testssl_scan sockets -p
for p in SSLv2 SSLv3 TLS1 TLS1_1 TLS1_2; do
  assert_eq "not offered" "$(finding sockets "$p")" "testssl (sockets): $p"
done
say "testssl (sockets, no ALPN): TLS 1.3 '$(finding sockets TLS1_3)'"

# 3. openssl s_client -tls1_3 with ALPN h2 and the mesh certificate, one suite at a time.
s_client_suite() { # SUITE: s_client output, exit status kept
  lab exec "$PREFIX" legacy -- timeout 10 openssl s_client -connect "$POD_SERVER_IP:15008" \
    -CAfile "$CA_CERT" -cert "$CLIENT_CERT" -key "$CLIENT_KEY" -tls1_3 -alpn h2 \
    -ciphersuites "$1" </dev/null 2>&1
}
for suite in TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384; do
  before=$(zt_count dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS established ($suite)")
  out=$(s_client_suite "$suite") || fail "s_client with $suite failed: $out"
  assert_contains "$out" "Cipher is $suite" "s_client $suite"
  wait_zt_line "$before" 10 dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS established ($suite)"
done
for suite in TLS_CHACHA20_POLY1305_SHA256 TLS_AES_128_CCM_SHA256 TLS_AES_128_CCM_8_SHA256; do
  before=$(zt_count dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed" "no shared cipher")
  rc=0
  out=$(s_client_suite "$suite") || rc=$?
  ((rc != 0)) || fail "s_client with $suite succeeded: $out"
  assert_not_contains "$out" "Cipher is $suite" "s_client $suite"
  assert_contains "$out" "alert handshake failure" "s_client $suite"
  wait_zt_line "$before" 10 dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed" "no shared cipher"
done

hbone_neg_finish
