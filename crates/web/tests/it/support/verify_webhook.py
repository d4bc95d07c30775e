#!/usr/bin/env python3
"""Verifies webhook deliveries with the `standardwebhooks` package (the
Standard Webhooks reference library): an implementation independent of
the server's.

Reads one JSON object per line on stdin — {"secret": "whsec_…",
"headers": {…}, "body": "…"} — and writes one line per request:
{"ok": true, "payload": …} when the signature verifies (and the body has
the `type`, `timestamp` and `data` Standard Webhooks lays out), else
{"ok": false, "error": "…"}. Exits 2 when the package is missing.
"""

import json
import sys

try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError as missing:  # pragma: no cover - reported to the test
    print(f"standardwebhooks is not installed: {missing}", file=sys.stderr)
    sys.exit(2)


def verify(request):
    try:
        payload = Webhook(request["secret"]).verify(request["body"], request["headers"])
    except WebhookVerificationError as error:
        return {"ok": False, "error": f"verification failed: {error}"}
    except Exception as error:  # a malformed header is a failure too
        return {"ok": False, "error": f"{type(error).__name__}: {error}"}
    missing = [key for key in ("type", "timestamp", "data") if key not in payload]
    if missing:
        return {"ok": False, "error": f"body lacks {missing}"}
    return {"ok": True, "payload": payload}


for line in sys.stdin:
    if line.strip():
        print(json.dumps(verify(json.loads(line))), flush=True)
