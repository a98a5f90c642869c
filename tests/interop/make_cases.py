"""Builds the interop cases from one signet run: the real access and refresh tokens plus forgeries.

Usage: make_cases.py --alg ALG --issuer URL --jwks-url URL --jwks FILE \
                     --access-token FILE --refresh-token FILE --out cases.json

Before building anything it checks what the verifiers rely on: the JWKS holds public keys
only, each with `kid`, `alg` and `use: sig`; the access token's header is `typ: at+jwt` with
the configured `alg` and a `kid` that the JWKS publishes with that same `alg`.

Each case names the token, the issuer/audience the verifier must demand, and the expected
outcome: "valid", or the reasons for which a rejection counts (a rejection for any other
reason, e.g. a network error, is a failure of the test).
"""

import argparse
import base64
import hashlib
import hmac
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fail(message: str) -> None:
    print(f"make_cases: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def foreign_private_key(alg: str):
    """A fresh key of the same algorithm as signet's, unrelated to it."""
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fail(f"no foreign-key generator for {alg}")


def main() -> None:
    ap = argparse.ArgumentParser()
    for name in ("alg", "issuer", "jwks-url", "jwks", "access-token", "refresh-token", "out"):
        ap.add_argument(f"--{name}", required=True)
    args = ap.parse_args()

    with open(args.jwks) as f:
        jwks = json.load(f)
    access = open(args.access_token).read().strip()
    refresh = open(args.refresh_token).read().strip()

    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        fail(f"JWKS has no keys: {jwks!r}")
    for key in keys:
        leaked = PRIVATE_MEMBERS & set(key)
        if leaked:
            fail(f"JWKS key {key.get('kid')} publishes private members {sorted(leaked)}")
        for member in ("kid", "alg", "kty"):
            if member not in key:
                fail(f"JWKS key lacks {member!r}: {key!r}")
        if key.get("use") != "sig":
            fail(f"JWKS key {key['kid']} has use={key.get('use')!r}, expected 'sig'")

    h64, p64, s64 = access.split(".")
    header = json.loads(unb64url(h64))
    payload = json.loads(unb64url(p64))
    if header.get("typ") != "at+jwt":
        fail(f"access token header typ is {header.get('typ')!r}, expected 'at+jwt'")
    if header.get("alg") != args.alg:
        fail(f"access token header alg is {header.get('alg')!r}, configured {args.alg}")
    kid = header.get("kid")
    published = [k for k in keys if k["kid"] == kid]
    if len(published) != 1:
        fail(f"access token kid {kid!r} is not published once in the JWKS")
    if published[0]["alg"] != args.alg:
        fail(f"JWKS key {kid} has alg {published[0]['alg']!r}, configured {args.alg}")
    for claim in ("iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "sid", "roles"):
        if claim not in payload:
            fail(f"access token lacks the {claim!r} claim")
    if payload["iss"] != args.issuer:
        fail(f"access token iss is {payload['iss']!r}, configured {args.issuer!r}")
    audience = payload["aud"] if isinstance(payload["aud"], str) else payload["aud"][0]

    # 1. The payload changed (a user makes themselves admin), header and signature kept.
    forged_payload = dict(payload, roles=["admin"])
    tampered = ".".join(
        [h64, b64url(json.dumps(forged_payload, separators=(",", ":")).encode()), s64]
    )

    # 2. The very same header (signet's kid) and payload, signed by another key of the same alg.
    signing_input = f"{h64}.{p64}".encode()
    algo = jwt.algorithms.get_default_algorithms()[args.alg]
    foreign_sig = algo.sign(signing_input, foreign_private_key(args.alg))
    foreign = f"{h64}.{p64}.{b64url(foreign_sig)}"

    # 3. alg "none", no signature.
    none_header = dict(header, alg="none")
    none_h64 = b64url(json.dumps(none_header, separators=(",", ":")).encode())
    alg_none = f"{none_h64}.{p64}."

    # 4. Algorithm confusion: HS256 keyed with the public key's PEM (the classic RS256 attack).
    public_pem = (
        jwt.PyJWK(published[0])
        .key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    hs_header = dict(header, alg="HS256")
    hs_h64 = b64url(json.dumps(hs_header, separators=(",", ":")).encode())
    hs_mac = hmac.new(public_pem, f"{hs_h64}.{p64}".encode(), hashlib.sha256).digest()
    hs256_pubkey = f"{hs_h64}.{p64}.{b64url(hs_mac)}"

    iss = args.issuer
    cases = [
        # name, token, issuer demanded, audience demanded, expected
        ("valid", access, iss, audience, "valid"),
        ("tampered_payload", tampered, iss, audience, ["signature"]),
        ("foreign_key_same_kid", foreign, iss, audience, ["signature"]),
        ("wrong_audience", access, iss, "other", ["audience"]),
        ("wrong_issuer", access, "http://issuer.invalid", audience, ["issuer"]),
        # The refresh token is signed by the same key and its aud is the issuer itself, so
        # demanding that audience leaves the typ check as the only thing that can refuse it.
        ("refresh_as_access", refresh, iss, iss, ["typ"]),
        ("alg_none", alg_none, iss, audience, ["alg"]),
        ("hs256_with_public_key", hs256_pubkey, iss, audience, ["alg"]),
    ]
    doc = {
        "alg": args.alg,
        "jwks_url": args.jwks_url,
        "cases": [
            {"name": n, "token": t, "issuer": i, "audience": a, "expect": e}
            for (n, t, i, a, e) in cases
        ],
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
