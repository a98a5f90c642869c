"""Checks a signet access token's revocation status the way a Python service would: PyJWT for the
signatures (keys straight from signet's JWKS) and the standard library's zlib for the list.

Usage: status_py.py ACCESS_TOKEN_FILE ISSUER {valid|revoked} [WAIT_SECS]

Follows draft-ietf-oauth-status-list: the token's `status.status_list` names a list `uri` and an
index `idx`; the list is a JWT with header `typ: statuslist+jwt`, signed by a key of the same JWKS,
whose `sub` is the URI and whose `status_list.lst` is base64url(zlib(bytes)); the status of index
i is bit i % 8 of byte i // 8, least significant first (1 bit per entry: 1 = invalid). The list is
only fetched from under the issuer (never from a URL a token chose). With `revoked`, the list is
refetched until the bit is set or WAIT_SECS pass (the list's `ttl` bounds how stale a copy may be).
Exit status 0 when the token's status is the expected one, 1 otherwise.
"""

import base64
import json
import sys
import time
import urllib.request
import zlib

import jwt  # PyJWT

LEEWAY = 30


def fetch(url, accept):
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def key_for(jwks, token):
    kid = jwt.get_unverified_header(token).get("kid")
    for jwk in jwks["keys"]:
        if jwk.get("kid") == kid:
            return jwt.PyJWK.from_dict(jwk)
    raise SystemExit(f"status_py: no JWKS key for kid {kid!r}")


def verify(jwks, token, typ, issuer, audience=None):
    header = jwt.get_unverified_header(token)
    if header.get("typ") != typ:
        raise SystemExit(f"status_py: header typ {header.get('typ')!r}, expected {typ!r}")
    key = key_for(jwks, token)
    options = {"require": ["exp", "iat", "iss"], "verify_aud": audience is not None}
    return jwt.decode(token, key, algorithms=[key.algorithm_name], issuer=issuer, audience=audience,
                      leeway=LEEWAY, options=options)


def status_bit(jwks, issuer, uri, idx):
    if not uri.startswith(issuer.rstrip("/") + "/v1/status-lists/"):
        raise SystemExit(f"status_py: refusing a status list outside the issuer: {uri}")
    claims = verify(jwks, fetch(uri, "application/statuslist+jwt"), "statuslist+jwt", issuer)
    if claims.get("sub") != uri:
        raise SystemExit(f"status_py: list sub {claims.get('sub')!r} is not {uri!r}")
    status_list = claims["status_list"]
    if status_list["bits"] != 1:
        raise SystemExit(f"status_py: expected 1 bit per entry, got {status_list['bits']}")
    lst = status_list["lst"]
    raw = zlib.decompress(base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4)))
    if idx // 8 >= len(raw):
        raise SystemExit(f"status_py: index {idx} beyond the list ({len(raw) * 8} entries)")
    return (raw[idx // 8] >> (idx % 8)) & 1


def main():
    token_file, issuer, expected = sys.argv[1:4]
    wait = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    token = open(token_file).read().strip()
    jwks = json.loads(fetch(issuer.rstrip("/") + "/.well-known/jwks.json", "application/json"))
    claims = verify(jwks, token, "at+jwt", issuer, audience="signet")
    ref = claims["status"]["status_list"]
    deadline = time.monotonic() + wait
    while True:
        bit = status_bit(jwks, issuer, ref["uri"], ref["idx"])
        status = "revoked" if bit == 1 else "valid"
        if status == expected or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    print(f"status_py (PyJWT {jwt.__version__}): index {ref['idx']} of {ref['uri']} is {status}")
    return 0 if status == expected else 1


if __name__ == "__main__":
    sys.exit(main())
