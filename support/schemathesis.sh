#!/usr/bin/env bash
# Runs schemathesis against /api/openapi.json of a demo server: every
# documented operation is called with generated valid and invalid input,
# signed in as the demo store's owner, and each answer is checked against
# the document (status, content type, headers, body schema) and for server
# errors. Any failure fails the script.
#
#   support/schemathesis.sh [BINARY]
#
# BINARY defaults to $CARGO_TARGET_DIR/debug/ordertrack (what `cargo test`
# builds). SCHEMATHESIS_MAX_EXAMPLES (default 15) bounds the examples per
# operation and phase; SCHEMATHESIS_MAX_TIME (default 240 s) the whole run.
set -euo pipefail
cd "$(dirname "$0")/.."

binary="${1:-${CARGO_TARGET_DIR:-target}/debug/ordertrack}"
[ -x "$binary" ] || { echo "no ordertrack binary at $binary (cargo build first)"; exit 1; }
command -v schemathesis >/dev/null || { echo "schemathesis is not installed (pip install schemathesis)"; exit 1; }

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# A free port: the kernel picks one, the server binds it right after.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"

# Demo data in a fresh folder. Generous limits: the run registers, signs in
# and writes far faster than people do, and a 429 would only hide what the
# operation itself answers.
"$binary" demo --bind "127.0.0.1:$port" --data-dir "$work/data" \
  --registrations-per-ip 100000 --writes-per-token 0 \
  --login-failures-per-account 100000 --login-failures-per-ip 100000 \
  --webhooks-allow-private \
  >"$work/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 60); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 1
done
curl -fsS "$base/readyz" >/dev/null

# Data for the run to find: an order of the demo restaurant (placed by a
# customer) and a webhook endpoint. Their ids, the tracking token and the
# store's slug go into the run's dictionaries, so operations on one order,
# product or endpoint get real ones half of the time — not only 404s.
python3 - "$base" >"$work/schemathesis.toml" <<'PY'
import json, sys, urllib.request

base = sys.argv[1]

def call(method, path, body=None, token=None):
    request = urllib.request.Request(base + path, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(request, data) as response:
        return json.load(response)

def login(email):
    return call("POST", "/api/v1/auth/login", {"email": email, "password": "demo-password"})["token"]

slug = "demo-restaurant"
owner, customer = login("owner@demo.test"), login("alice@demo.test")
products = call("GET", f"/api/v1/stores/{slug}/products")
order = call("POST", "/api/v1/orders", {
    "store": slug,
    "items": [{"product": products[0]["id"], "quantity": 1}],
    "fulfilment": {"type": "pickup"},
}, customer)
webhook = call("POST", f"/api/v1/stores/{slug}/webhooks",
               {"url": "http://127.0.0.1:9/hook", "events": ["*"]}, owner)
ids = [order["id"], products[0]["id"], webhook["id"]]
print(f'headers = {{ Authorization = "Bearer {owner}" }}')
print("[dictionaries.ids]")
print(f"values = {json.dumps(ids)}")
print("[dictionaries.items]")
print(f"values = {json.dumps([item['id'] for item in order['items']])}")
print("[dictionaries.slugs]")
print(f'values = ["{slug}"]')
print("[dictionaries.tokens]")
print(f'values = ["{order["tracking_token"]}"]')
print("[parameters]")
for name, dictionary in [("id", "ids"), ("item_id", "items"), ("slug", "slugs"), ("token", "tokens")]:
    print(f'"path.{name}" = {{ dictionary = "{dictionary}", probability = 0.5 }}')
PY

# Left out: the streams (SSE and the WebSocket never end by themselves, so
# no single response can be checked), and signing out (it would end the
# session every later call is made with).
# Every check but `positive_data_acceptance`: input the schema allows is
# still refused by rules no schema states (an unknown product, a move the
# workflow forbids), with a documented 4xx. From the temporary folder:
# schemathesis keeps a cache where it runs.
status=0
(cd "$work" && schemathesis --config-file "$work/schemathesis.toml" run "$base/api/openapi.json" \
  --checks all \
  --exclude-checks positive_data_acceptance \
  --exclude-path-regex '/events$' \
  --exclude-path /api/v1/ws \
  --exclude-path /api/v1/auth/logout \
  --phases examples,coverage,fuzzing \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-15}" \
  --max-time "${SCHEMATHESIS_MAX_TIME:-240}" \
  --request-timeout 10 \
  --seed "${SCHEMATHESIS_SEED:-20261129}" \
  --generation-deterministic \
  --suppress-health-check all \
  --no-color \
  --report junit --report-dir "$work/report") || status=$?
if [ "$status" -ne 0 ]; then
  echo "== server log (last 50 lines)"
  tail -n 50 "$work/server.log"
fi
exit "$status"
