"""signet's OAuth 2.0 endpoints driven by Authlib (requests integration), as a service would.

Usage: client_py.py BASE CLIENT_ID CLIENT_SECRET REFRESH_TOKEN
Discovery, client credentials (client_secret_basic and client_secret_post), introspection,
token exchange, refresh as the public client `signet`, revocation (access and refresh
tokens). Exits non-zero at the first surprise.
"""

import base64
import json
import sys

import requests
from authlib.integrations.requests_client import OAuth2Session

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"


def claims(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def check(cond, what):
    if not cond:
        raise SystemExit(f"authlib: FAIL: {what}")
    print(f"authlib: ok: {what}")


def main(base, client_id, client_secret, refresh_token):
    meta = requests.get(f"{base}/.well-known/openid-configuration", timeout=10).json()
    check(meta["token_endpoint"] == f"{base}/oauth/token", "discovery names /oauth/token")
    token_url, introspect_url, revoke_url = (
        meta["token_endpoint"], meta["introspection_endpoint"], meta["revocation_endpoint"])
    check("client_credentials" in meta["grant_types_supported"], "discovery lists client_credentials")

    # Client credentials, both authentication methods.
    for method in ["client_secret_basic", "client_secret_post"]:
        session = OAuth2Session(client_id, client_secret, token_endpoint_auth_method=method)
        token = session.fetch_token(token_url, grant_type="client_credentials", scope="reports.read")
        check(token["token_type"] == "Bearer" and token["scope"] == "reports.read", f"client credentials ({method})")
        c = claims(token["access_token"])
        check(c["sub"] == client_id and c["client_id"] == client_id and c["roles"] == ["reports.read"],
              f"RFC 9068 claims ({method})")

    service = OAuth2Session(client_id, client_secret, token_endpoint_auth_method="client_secret_basic",
                            revocation_endpoint_auth_method="client_secret_basic")
    token = service.fetch_token(token_url, grant_type="client_credentials")
    access = token["access_token"]

    # Introspection.
    info = service.introspect_token(introspect_url, token=access).json()
    check(info["active"] is True and info["client_id"] == client_id, "introspection: active")

    # A wrong secret is invalid_client.
    bad = OAuth2Session(client_id, client_secret + "x", token_endpoint_auth_method="client_secret_basic")
    try:
        bad.fetch_token(token_url, grant_type="client_credentials")
        check(False, "a wrong secret is refused")
    except Exception as err:  # authlib raises OAuthError with the RFC 6749 error code
        check("invalid_client" in str(err), "a wrong secret is invalid_client")

    # Token exchange of the user's token for the client's audience.
    user = OAuth2Session("signet", token_endpoint_auth_method="none")
    pair = user.refresh_token(token_url, refresh_token=refresh_token)
    check(pair.get("refresh_token") not in (None, refresh_token), "refresh (public client signet) rotates")
    exchanged = service.fetch_token(token_url, grant_type=EXCHANGE, subject_token=pair["access_token"],
                                    subject_token_type=ACCESS, audience="orders")
    ex = claims(exchanged["access_token"])
    check(ex["aud"] == "orders" and ex["act"] == {"sub": client_id} and ex["sub"] == claims(pair["access_token"])["sub"],
          "token exchange narrows the audience and names the actor")

    # The old refresh token is spent: invalid_grant.
    try:
        user.refresh_token(token_url, refresh_token=refresh_token)
        check(False, "a reused refresh token is refused")
    except Exception as err:
        check("invalid_grant" in str(err), "a reused refresh token is invalid_grant")

    # Revocation of the client-credentials token, then of an unknown token (still 200).
    res = service.revoke_token(revoke_url, token=access)
    check(res.status_code == 200, "revocation: 200")
    info = service.introspect_token(introspect_url, token=access).json()
    check(info == {"active": False}, "introspection after revocation: inactive, nothing else")
    check(service.revoke_token(revoke_url, token="no-such-token").status_code == 200, "unknown token: 200")


if __name__ == "__main__":
    main(*sys.argv[1:5])
    print("authlib: all checks passed")
