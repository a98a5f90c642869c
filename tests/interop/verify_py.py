"""Verifies signet's tokens with Python's PyJWT or jwcrypto, keys straight from signet's JWKS.

Usage: verify_py.py {pyjwt|jwcrypto} CASES.json RESULTS.json

CASES.json comes from make_cases.py. Each case is verified the way a Python service would
verify an access token: the key is the JWKS key named by the token's `kid`, the algorithms
allowed are that key's only, and `iss`, `aud`, `exp` (plus `iat`, `sub`; `nbf` when present), the header's
`typ: at+jwt` and the `roles` claim are required. Every outcome is classified (valid, or the
reason for the rejection) and compared with the case's expectation. Exit status 1 if any
outcome is unexpected.
"""

import json
import sys
import urllib.request

LEEWAY = 30


class Rejected(Exception):
    """A rejection by our own checks (the libraries do not check the header's typ)."""

    def __init__(self, reason, detail):
        super().__init__(detail)
        self.reason = reason


def check_access_claims(header, claims):
    """What PyJWT and jwcrypto leave to us: the header's typ and signet's own claims."""
    if header.get("typ") != "at+jwt":
        raise Rejected("typ", f"header typ is {header.get('typ')!r}, expected 'at+jwt'")
    if not isinstance(claims.get("sub"), str):
        raise Rejected("missing_claim", "no string sub")
    roles = claims.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Rejected("missing_claim", "no roles array")
    return claims


# --- PyJWT -----------------------------------------------------------------------------------

def make_pyjwt(jwks_url):
    import jwt

    # One client per service: it fetches the JWKS once and caches it (and refetches when a
    # token names a kid it does not know).
    jwks_client = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300)

    def verify(token, issuer, audience):
        signing_key = jwks_client.get_signing_key_from_jwt(token)  # by kid
        decoded = jwt.decode_complete(
            token,
            signing_key.key,
            algorithms=[signing_key.algorithm_name],  # the key's algorithm, nothing else
            issuer=issuer,
            audience=audience,
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},  # nbf checked if present
        )
        return check_access_claims(decoded["header"], decoded["payload"])

    def classify(exc):
        if isinstance(exc, Rejected):
            return exc.reason
        table = [
            (jwt.InvalidSignatureError, "signature"),
            (jwt.InvalidAudienceError, "audience"),
            (jwt.InvalidIssuerError, "issuer"),
            (jwt.InvalidAlgorithmError, "alg"),
            (jwt.ExpiredSignatureError, "expired"),
            (jwt.ImmatureSignatureError, "not_yet_valid"),
            (jwt.MissingRequiredClaimError, "missing_claim"),
            (jwt.PyJWKClientConnectionError, None),  # JWKS unreachable: an error, not a verdict
            (jwt.PyJWKClientError, "key"),
            (jwt.DecodeError, "malformed"),
        ]
        for cls, reason in table:
            if isinstance(exc, cls):
                return reason
        return None

    return verify, classify


# --- jwcrypto --------------------------------------------------------------------------------

def make_jwcrypto(jwks_url):
    from jwcrypto import jwk, jws, jwt as jjwt
    from jwcrypto.common import JWException, json_decode

    with urllib.request.urlopen(jwks_url, timeout=10) as resp:
        keyset = jwk.JWKSet.from_json(resp.read())

    def verify(token, issuer, audience):
        # Pick the key by kid ourselves, so that the algorithms allowed are that key's only.
        unverified = jws.JWS()
        unverified.deserialize(token)
        kid = unverified.jose_header.get("kid")
        key = keyset.get_key(kid) if kid else None
        if key is None:
            raise Rejected("key", f"no JWKS key with kid {kid!r}")
        checked = jjwt.JWT(
            algs=[key["alg"]],
            expected_type="JWS",
            strict_serialization=True,  # compact JWS only
            check_claims={
                "iss": issuer,
                "aud": audience,
                "exp": None,  # None: required, checked against now (with leeway)
                "iat": None,
                "sub": None,
            },  # nbf: checked when present (jwcrypto's default)
        )
        checked.leeway = LEEWAY  # a property, not a constructor argument (default 60 s)
        # The one key named by kid. (Given the whole JWKSet, jwcrypto reports every failure,
        # a bad signature included, as "No working key found in key set".)
        checked.deserialize(token, key)
        return check_access_claims(checked.token.jose_header, json_decode(checked.claims))

    def classify(exc):
        if isinstance(exc, Rejected):
            return exc.reason
        text = str(exc)
        if isinstance(exc, jjwt.JWTExpired):
            return "expired"
        if isinstance(exc, jjwt.JWTNotYetValid):
            return "not_yet_valid"
        if isinstance(exc, jjwt.JWTMissingClaim):
            return "missing_claim"
        if isinstance(exc, jjwt.JWTInvalidClaimValue):
            if "'aud'" in text:
                return "audience"
            if "'iss'" in text:
                return "issuer"
            return "claim"
        # JWS.verify tries the key and reports every failure as InvalidJWSSignature, with
        # the underlying error in its message: an algorithm outside `algs` shows up there.
        if isinstance(exc, (jws.InvalidJWSOperation, jws.InvalidJWSSignature)):
            if "not allowed" in text:
                return "alg"
            if isinstance(exc, jws.InvalidJWSSignature):
                return "signature"
        if isinstance(exc, (jjwt.JWTMissingKey, jws.JWKeyNotFound)):
            return "key"
        if isinstance(exc, (jws.InvalidJWSObject, JWException, ValueError)):
            return "malformed"
        return None

    return verify, classify


# --- driver ----------------------------------------------------------------------------------

def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("pyjwt", "jwcrypto"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    lib, cases_path, results_path = sys.argv[1:]
    with open(cases_path) as f:
        doc = json.load(f)

    if lib == "pyjwt":
        import jwt
        version = jwt.__version__
        verify, classify = make_pyjwt(doc["jwks_url"])
    else:
        import jwcrypto
        version = getattr(jwcrypto, "__version__", None)
        if version is None:
            from importlib.metadata import version as dist_version
            version = dist_version("jwcrypto")
        verify, classify = make_jwcrypto(doc["jwks_url"])
    impl = f"{'PyJWT' if lib == 'pyjwt' else 'jwcrypto'} {version}"

    results = []
    for case in doc["cases"]:
        try:
            claims = verify(case["token"], case["issuer"], case["audience"])
            got = "valid"
            detail = f"sub={claims['sub']} roles={claims['roles']}"
        except Exception as exc:  # classified below; an unclassified error fails the case
            reason = classify(exc)
            got = f"rejected:{reason}" if reason else f"error:{type(exc).__name__}"
            detail = f"{type(exc).__name__}: {exc}"[:300]
        expect = case["expect"]
        ok = got == "valid" if expect == "valid" else got in {f"rejected:{r}" for r in expect}
        want = expect if expect == "valid" else "rejected:" + "|".join(expect)
        results.append({"case": case["name"], "ok": ok, "got": got, "expect": want, "detail": detail})
        mark = "ok  " if ok else "FAIL"
        print(f"  [{mark}] {doc['alg']:<6} {impl:<16} {case['name']:<22} {got:<22} {detail}")

    with open(results_path, "w") as f:
        json.dump({"alg": doc["alg"], "impl": impl, "results": results}, f, indent=1)
    bad = [r for r in results if not r["ok"]]
    for r in bad:
        print(
            f"FAIL: {impl} / {doc['alg']} / {r['case']}: expected {r['expect']}, got {r['got']} ({r['detail']})",
            file=sys.stderr,
        )
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
