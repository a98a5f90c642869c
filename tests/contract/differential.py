#!/usr/bin/env python3
"""Differential test of signet's compat routes against the real packages.

Sends the same request matrix to signet (compat.simplejwt and compat.drf on) and to the reference
Django project of tests/contract/django (Django 5.2, DRF 3.16, simplejwt 5.5), step by step, each
side with its own tokens, and compares what clients read: the status, the JSON body (token values
replaced by their kind, since the tokens themselves differ by design) and the headers clients act
on (Content-Type, WWW-Authenticate, Retry-After, and Allow on a 405).

A difference explained by a rule in DELIBERATE (README "Deliberate differences from simplejwt and
DRF") is reported but does not fail the run; any other difference does.

usage: differential.py SIGNET_URL DJANGO_URL USERNAME PASSWORD
"""
import http.client
import json
import sys
import urllib.parse

HEADERS_CLIENTS_READ = ["content-type", "www-authenticate", "allow", "retry-after"]

# Deliberate, documented differences (README, "Deliberate differences from simplejwt and DRF"):
# name -> (why, rule). A rule rewrites one side's (status, body, headers) view so that answers
# differing only there compare equal; such a case is reported as DELIBERATE, not a failure.
def _json_parse_error(view):
    status, body, headers = view
    if isinstance(body, dict) and str(body.get("detail", "")).startswith("JSON parse error - "):
        body = dict(body, detail="JSON parse error - <parser's message>")
    return status, body, headers


DELIBERATE = {
    "JSON parse error wording": (
        "after DRF's 'JSON parse error - ' prefix comes the parser's own message, Python's json "
        "module there and serde_json's (without the offending text) in signet; clients match the prefix",
        _json_parse_error,
    ),
}

class Side:
    def __init__(self, name, base):
        self.name = name
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.tokens = {}

    def send(self, method, path, body=None, content_type=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=20)
        hdrs = {"Accept": "*/*"}
        if content_type:
            hdrs["Content-Type"] = content_type
        hdrs.update(headers or {})
        data = body.encode() if isinstance(body, str) else body
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        got = {k.lower(): v for k, v in resp.getheaders()}
        conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = {"<not json>": raw[:200].decode("utf-8", "replace")}
        return resp.status, parsed, got


def normalise(body):
    """Token values differ by design (different keys, ids, formats); keep only their kind."""
    if not isinstance(body, dict):
        return body
    out = dict(body)
    for key in ("access", "refresh"):
        if isinstance(out.get(key), str):
            out[key] = "<jwt>" if out[key].count(".") == 2 else "<not a jwt>"
    if isinstance(out.get("token"), str):
        out["token"] = "<token>" if out["token"] else "<empty>"
    return out


def header_view(status, headers):
    """The headers clients act on. Allow only on a 405: DRF also sends it on every other answer,
    where no client reads it (signet sends it where RFC 9110 requires it)."""
    view = {}
    for name in HEADERS_CLIENTS_READ:
        value = headers.get(name)
        if name == "content-type" and value:
            value = value.split(";")[0].strip()
        if name == "allow" and status != 405:
            value = None
        if name == "allow" and value:
            # DRF adds OPTIONS (its metadata endpoint); signet serves no OPTIONS metadata.
            value = ", ".join(m.strip() for m in value.split(",") if m.strip() != "OPTIONS")
        view[name] = value
    return view


def login(side, username, password, key):
    status, body, _ = side.send("POST", "/api/token/", json.dumps({"username": username, "password": password}),
                                "application/json")
    if status != 200:
        raise SystemExit(f"{side.name}: login for the matrix failed: {status} {body}")
    side.tokens[key + ".access"] = body["access"]
    side.tokens[key + ".refresh"] = body["refresh"]


def matrix(username, password):
    """(case name, request builder) pairs, in order; a builder maps a Side to send() arguments.
    Some steps only set up tokens (name None): their answers are compared too."""
    creds = json.dumps({"username": username, "password": password})
    form = urllib.parse.urlencode({"username": username, "password": password})
    j = "application/json"
    f = "application/x-www-form-urlencoded"

    def tok(key):
        return lambda s: s.tokens[key]

    def body_with(field, key):
        return lambda s: json.dumps({field: s.tokens[key]})

    cases = [
        ("login JSON", "POST", "/api/token/", creds, j),
        ("login form", "POST", "/api/token/", form, f),
        ("login wrong password", "POST", "/api/token/", json.dumps({"username": username, "password": "nope-" + password}), j),
        ("login unknown user", "POST", "/api/token/", json.dumps({"username": "nobody-" + username, "password": password}), j),
        ("login missing fields", "POST", "/api/token/", "{}", j),
        ("login blank fields", "POST", "/api/token/", json.dumps({"username": "", "password": ""}), j),
        ("login no body", "POST", "/api/token/", None, None),
        ("login bad JSON", "POST", "/api/token/", '{"username": ', j),
        ("login JSON list", "POST", "/api/token/", "[]", j),
        ("login text/plain", "POST", "/api/token/", creds, "text/plain"),
        ("login GET", "GET", "/api/token/", None, None),
        ("login PUT", "PUT", "/api/token/", creds, j),
        ("refresh ok", "POST", "/api/token/refresh/", body_with("refresh", "a.refresh"), j),
        ("refresh reused", "POST", "/api/token/refresh/", body_with("refresh", "a.refresh"), j),
        ("refresh garbage", "POST", "/api/token/refresh/", json.dumps({"refresh": "garbage"}), j),
        ("refresh access-as-refresh", "POST", "/api/token/refresh/", body_with("refresh", "b.access"), j),
        ("refresh missing", "POST", "/api/token/refresh/", "{}", j),
        ("refresh blank", "POST", "/api/token/refresh/", json.dumps({"refresh": ""}), j),
        ("refresh text/plain", "POST", "/api/token/refresh/", "refresh=x", "text/plain"),
        ("refresh GET", "GET", "/api/token/refresh/", None, None),
        ("verify access", "POST", "/api/token/verify/", body_with("token", "b.access"), j),
        ("verify refresh", "POST", "/api/token/verify/", body_with("token", "b.refresh"), j),
        ("verify garbage", "POST", "/api/token/verify/", json.dumps({"token": "garbage"}), j),
        ("verify missing", "POST", "/api/token/verify/", "{}", j),
        ("verify GET", "GET", "/api/token/verify/", None, None),
        ("blacklist ok", "POST", "/api/token/blacklist/", body_with("refresh", "b.refresh"), j),
        ("blacklist again", "POST", "/api/token/blacklist/", body_with("refresh", "b.refresh"), j),
        ("blacklist garbage", "POST", "/api/token/blacklist/", json.dumps({"refresh": "garbage"}), j),
        ("blacklist access", "POST", "/api/token/blacklist/", body_with("refresh", "c.access"), j),
        ("blacklist missing", "POST", "/api/token/blacklist/", "{}", j),
        ("blacklist GET", "GET", "/api/token/blacklist/", None, None),
        ("refresh after blacklist", "POST", "/api/token/refresh/", body_with("refresh", "b.refresh"), j),
        ("verify blacklisted refresh", "POST", "/api/token/verify/", body_with("token", "b.refresh"), j),
        ("obtain_auth_token form", "POST", "/api-token-auth/", form, f),
        ("obtain_auth_token JSON", "POST", "/api-token-auth/", creds, j),
        ("obtain_auth_token wrong", "POST", "/api-token-auth/", json.dumps({"username": username, "password": "x"}), j),
        ("obtain_auth_token missing", "POST", "/api-token-auth/", "{}", j),
        ("obtain_auth_token blank", "POST", "/api-token-auth/", json.dumps({"username": "", "password": ""}), j),
        ("obtain_auth_token bad JSON", "POST", "/api-token-auth/", "{", j),
        ("obtain_auth_token text/plain", "POST", "/api-token-auth/", creds, "text/plain"),
        ("obtain_auth_token GET", "GET", "/api-token-auth/", None, None),
    ]
    return cases


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    signet_url, django_url, username, password = sys.argv[1:]
    sides = [Side("signet", signet_url), Side("django", django_url)]
    for side in sides:
        for key in ("a", "b", "c"):
            login(side, username, password, key)

    differences, deliberate = [], []
    cases = matrix(username, password)
    for name, method, path, body, ctype in cases:
        views = []
        for side in sides:
            payload = body(side) if callable(body) else body
            status, parsed, headers = side.send(method, path, payload, ctype)
            views.append((status, normalise(parsed), header_view(status, headers)))
        problems = compare(*views)
        used = []
        if problems:
            for rule_name, (_, rule) in DELIBERATE.items():
                if compare(*(rule(v) for v in views)) != problems:
                    views = [rule(v) for v in views]
                    used.append(rule_name)
            if not compare(*views):
                deliberate.append((name, used))
        mark = "same" if not problems else ("DELIBERATE" if not compare(*views) else "DIFFERENT")
        print(f"{mark:10} {views[1][0]} {name}")
        for p in problems:
            print(f"           {p}")
        if compare(*views):
            differences.append(name)

    print(f"\ndifferential: {len(cases)} requests, {len(cases) - len(differences) - len(deliberate)} identical, "
          f"{len(deliberate)} deliberate (documented), {len(differences)} different")
    for rule_name, (why, _) in DELIBERATE.items():
        hits = [name for name, used in deliberate if rule_name in used]
        if hits:
            print(f"  deliberate '{rule_name}' ({len(hits)}): {why}")
    if differences:
        print("differential: FAIL: " + "; ".join(differences), file=sys.stderr)
        sys.exit(1)
    print("differential: signet's compat routes answer as the real simplejwt/DRF do")


def compare(signet, django):
    (s_status, s_body, s_hdrs), (d_status, d_body, d_hdrs) = signet, django
    problems = []
    if s_status != d_status:
        problems.append(f"status: signet {s_status}, django {d_status}")
    if s_body != d_body:
        problems.append(f"body: signet {json.dumps(s_body)}, django {json.dumps(d_body)}")
    for h in HEADERS_CLIENTS_READ:
        if s_hdrs[h] != d_hdrs[h]:
            problems.append(f"header {h}: signet {s_hdrs[h]!r}, django {d_hdrs[h]!r}")
    return problems

if __name__ == "__main__":
    main()
