#!/usr/bin/env python3
"""Checks Web Push requests as a push service and a browser would, with
implementations independent of the server's: the VAPID token (RFC 8292)
with `py_vapid`, the payload (RFC 8291, aes128gcm) with `http_ece`.

Reads one JSON object per line on stdin — {"authorization": "vapid t=…,
k=…", "content_encoding": "…", "ttl": "…", "body": base64 of the request
body, "endpoint": the subscription's URL, "subject": the expected `sub`,
"vapid_public_key": the server's key (base64url), "browser_key": the
subscription's private key (PEM), "auth": its auth secret (base64url)} —
and writes one line per request: {"ok": true, "payload": the decrypted
text} when all checks pass, else {"ok": false, "error": "…"}. Exits 2 when
a package is missing.
"""

import base64
import json
import sys
import time
from urllib.parse import urlsplit

try:
    import http_ece
    from cryptography.hazmat.primitives import serialization
    from py_vapid import Vapid02
except ImportError as missing:  # pragma: no cover - reported to the test
    print(f"http_ece / py_vapid are not installed: {missing}", file=sys.stderr)
    sys.exit(2)


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check(request):
    scheme, _, params = request["authorization"].partition(" ")
    if scheme.lower() != "vapid":
        raise ValueError(f"Authorization scheme is {scheme!r}, not vapid")
    parts = dict(p.strip().split("=", 1) for p in params.split(","))
    token, key = parts.get("t"), parts.get("k")
    if not token or not key:
        raise ValueError("Authorization lacks t= or k=")
    if key != request["vapid_public_key"]:
        raise ValueError(f"k= is {key}, not the server's public key")
    # The signature, by py_vapid, against the key in k=.
    if not Vapid02.verify(f"vapid t={token},k={key}"):
        raise ValueError("the VAPID token's signature does not verify")
    header, claims, _ = token.split(".")
    header = json.loads(b64url(header))
    claims = json.loads(b64url(claims))
    if header.get("alg") != "ES256":
        raise ValueError(f"alg is {header.get('alg')}, not ES256")
    endpoint = urlsplit(request["endpoint"])
    origin = f"{endpoint.scheme}://{endpoint.netloc}"
    if claims.get("aud") != origin:
        raise ValueError(f"aud is {claims.get('aud')}, not {origin}")
    now = time.time()
    exp = claims.get("exp")
    if not isinstance(exp, int) or not (now < exp <= now + 24 * 3600 + 60):
        raise ValueError(f"exp {exp} is not within 24 h from now ({int(now)})")
    if claims.get("sub") != request["subject"]:
        raise ValueError(f"sub is {claims.get('sub')}, not {request['subject']}")
    if request["content_encoding"] != "aes128gcm":
        raise ValueError(f"Content-Encoding is {request['content_encoding']}")
    if not request["ttl"].isdigit():
        raise ValueError(f"TTL is {request['ttl']!r}")
    # The payload, by http_ece, as the browser holding the key decrypts it.
    private_key = serialization.load_pem_private_key(
        request["browser_key"].encode(), password=None
    )
    plain = http_ece.decrypt(
        base64.b64decode(request["body"]),
        private_key=private_key,
        auth_secret=b64url(request["auth"]),
        version="aes128gcm",
    )
    return plain.decode("utf-8")


for line in sys.stdin:
    if not line.strip():
        continue
    try:
        answer = {"ok": True, "payload": check(json.loads(line))}
    except Exception as error:  # every failure is the test's to report
        answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    print(json.dumps(answer), flush=True)
