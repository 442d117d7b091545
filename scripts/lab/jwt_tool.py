#!/usr/bin/env python3
"""ES256 keys and tokens for the lab and the demo (stdlib + the openssl CLI; no JWT library).

  jwt_tool.py keygen DIR                 DIR/key.pem (P-256) and DIR/jwks.json (kid "lab-key")
  jwt_tool.py mint DIR --iss ISS [--aud AUD] [--sub SUB] [--exp-in SECONDS] [--claim K=V ...]
                                         a compact JWS on stdout (exp-in may be negative)
"""
import base64
import json
import re
import subprocess
import sys
import time

KID = "lab-key"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_ecdsa_to_raw(der, size=32):
    # SEQUENCE { INTEGER r, INTEGER s } -> r || s, each left-padded to the curve size.
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\x00")
        out += v.rjust(size, b"\x00")
        i += 2 + n
    return out


def keygen(d):
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out",
                    f"{d}/key.pem"], check=True, capture_output=True)
    text = subprocess.run(["openssl", "ec", "-in", f"{d}/key.pem", "-text", "-noout"], check=True,
                          capture_output=True, text=True).stdout
    pub = re.search(r"pub:\s*((?:[0-9a-f]{2}:?\s*)+)", text).group(1)
    raw = bytes.fromhex(re.sub(r"[^0-9a-f]", "", pub))
    assert raw[0] == 4 and len(raw) == 65
    jwks = {"keys": [{"kty": "EC", "crv": "P-256", "kid": KID, "alg": "ES256", "use": "sig",
                      "x": b64url(raw[1:33]), "y": b64url(raw[33:])}]}
    with open(f"{d}/jwks.json", "w") as f:
        json.dump(jwks, f)


def mint(d, args):
    claims = {}
    exp_in = 3600
    while args:
        k = args.pop(0)
        v = args.pop(0)
        if k == "--iss":
            claims["iss"] = v
        elif k == "--aud":
            claims["aud"] = v
        elif k == "--sub":
            claims["sub"] = v
        elif k == "--exp-in":
            exp_in = int(v)
        elif k == "--claim":
            name, _, value = v.partition("=")
            claims[name] = value
        else:
            sys.exit("jwt_tool: unknown option " + k)
    now = int(time.time())
    claims.setdefault("sub", "lab-user")
    claims.update({"iat": now, "exp": now + exp_in})
    header = {"alg": "ES256", "typ": "JWT", "kid": KID}
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode())).encode()
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", f"{d}/key.pem"],
                         input=signing_input, check=True, capture_output=True).stdout
    print(signing_input.decode() + "." + b64url(der_ecdsa_to_raw(der)))


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("keygen", "mint"):
        sys.exit(__doc__)
    if sys.argv[1] == "keygen":
        keygen(sys.argv[2])
    else:
        mint(sys.argv[2], sys.argv[3:])


if __name__ == "__main__":
    main()
