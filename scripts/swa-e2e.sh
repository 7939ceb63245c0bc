#!/usr/bin/env bash
# Proves devicegate's Azure shape locally: the assembled dist/ behind the
# Azure Static Web Apps CLI, the handler started and reached through the
# Functions host stand-in in its Static Web Apps mode (e2e/cmd/funchost
# -mode swa: host.json, launch.sh, request forwarding), the Cosmos store on the
# Cosmos DB-compatible test server, and the demo provider upstream. It walks
# a whole device flow through the SWA port. Loopback only; every process it
# starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
. scripts/procs.sh
cleanup() {
  stop_groups
  bash scripts/cosmos-server.sh stop
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "swa-e2e: FAIL: $*" >&2; for f in "$work"/*.log; do echo "--- $f" >&2; tail -20 "$f" >&2; done; exit 1; }
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# waitfor waits up to 2 minutes (a guard against hanging: the SWA CLI starts slowly on a loaded machine).
waitfor() { for _ in $(seq 1 1200); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; fail "$1 did not come up"; }

echo "== install the SWA CLI (pinned) and the Cosmos test server"
(cd tools/swa && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
eval "$(bash scripts/cosmos-server.sh start)"

echo "== assemble dist/"
GOOS=$(go env GOHOSTOS) GOARCH=$(go env GOHOSTARCH) bash scripts/assemble.sh

api_port=$(freeport)
swa_port=$(freeport)
base="http://127.0.0.1:$swa_port"
secret=$(head -c 32 /dev/urandom | base64 | tr -d "/+=")

worker_port=$(freeport)
echo "== start the Functions host stand-in (-mode swa, port $api_port) on dist/api, the handler with -demo on port $worker_port"
# The stand-in's copy of dist/api runs the handler with -demo, on a fixed
# port (customHandler.port, as HttpWorkerOptionsSetup reads it), because the
# demo provider the browser visits lives in the handler, outside the API.
(cd e2e && go build -o "$work/funchost" ./cmd/funchost)
cp -r dist/api "$work/api"
python3 - "$work/api/host.json" "$worker_port" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))
h["customHandler"]["description"]["arguments"] = ["launch.sh", "-demo"]
h["customHandler"]["port"] = sys.argv[2]
json.dump(h, open(sys.argv[1], "w"))
PY
start_group "$work/handler.log" env \
  DEVICEGATE_PUBLIC_URL="$base" \
  DEVICEGATE_STORE=cosmos \
  DEVICEGATE_COSMOS_CONNECTION_STRING="$DEVICEGATE_TEST_COSMOS" \
  DEVICEGATE_COSMOS_CREATE=true \
  DEVICEGATE_COSMOS_CONTAINER="swa-$(date +%s%N)" \
  DEVICEGATE_SECRET_KEY="$(head -c 32 /dev/urandom | base64)" \
  DEVICEGATE_TRUSTED_PROXY=true \
  DEVICEGATE_LOG_FORMAT=json \
  DEVICEGATE_LOG_LEVEL=debug \
  DEVICEGATE_CLIENTS='[{"client_id":"tv","name":"SWA TV","scopes":["profile"],"default_scopes":["profile"],"secret_env":"SWA_TV_SECRET"}]' \
  SWA_TV_SECRET="$secret" \
  "$work/funchost" -mode swa -root "$work/api" -addr "127.0.0.1:$api_port"
waitfor "http://127.0.0.1:$api_port/api/health"

echo "== start the SWA CLI in front (port $swa_port)"
# npx starts swa, which starts node servers of its own: the whole group is
# stopped on exit, not just npx.
start_group "$work/swa.log" env -C tools/swa npx --no-install swa start "$root/dist/site" --swa-config-location "$root/dist/site" \
  --api-devserver-url "http://127.0.0.1:$api_port" --host 127.0.0.1 --port "$swa_port"
waitfor "$base/device"

jar="$work/jar"
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

echo "-- health through SWA"
[ "$(curl -s "$base/api/health" | json "['store']")" = ok ] || fail "health"

echo "-- /device page"
curl -s "$base/device" | grep -q 'action="/api/verify"' || fail "/device is not the code-entry page"

echo "-- /device in the browser's language (SWA rewrites it to the handler, which reads Accept-Language)"
curl -s -H 'Accept-Language: ja-JP,ja;q=0.9' "$base/device" >"$work/device-ja.html"
grep -q '<html lang="ja">' "$work/device-ja.html" && grep -q 'デバイスに表示されたコードを入力' "$work/device-ja.html" || fail "/device ignores Accept-Language behind SWA"
grep -q 'href="/api/device?lang=fr"' "$work/device-ja.html" || fail "/device has no link to itself in French"
# The switcher links to /api/device, which no rewrite stands between: the
# SWA CLI drops the query string when it rewrites /device.
curl -s -D "$work/device-fr.headers" -c "$work/langjar" -H 'Accept-Language: de' "$base/api/device?lang=fr" >"$work/device-fr.html"
grep -q '<html lang="fr">' "$work/device-fr.html" || fail "?lang=fr was not honoured behind SWA"
grep -i '^set-cookie: devicegate-lang=fr;' "$work/device-fr.headers" | grep -qi 'samesite=lax' || fail "the language choice was not remembered in a SameSite=Lax cookie behind SWA"
curl -s -b "$work/langjar" -H 'Accept-Language: de' "$base/device" | grep -q '<html lang="fr">' || fail "the remembered language did not outrank Accept-Language behind SWA"

echo "-- / and a missing page in the browser's language (rewrite and navigationFallback to the handler)"
for path in / /index.html; do
  curl -s -D "$work/home.headers" -H 'Accept-Language: de-DE,de;q=0.9' "$base$path" >"$work/home-de.html"
  grep -q '<html lang="de">' "$work/home-de.html" && grep -q '<h1>Melde deine Geräte an</h1>' "$work/home-de.html" || fail "$path is not the start page in German behind SWA"
  grep -qi "^content-security-policy: default-src 'none'; script-src 'self'" "$work/home.headers" || fail "$path lacks the pages' CSP behind SWA"
done
grep -q 'href="/api/home?lang=ja"' "$work/home-de.html" || fail "the start page has no link to itself in Japanese"
curl -s -b "$work/langjar" "$base/api/home?lang=es" | grep -q '<html lang="es">' || fail "?lang=es on the start page was not honoured behind SWA"
nf=$(curl -s -o "$work/nf-fr.html" -w '%{http_code}' -H 'Accept-Language: fr-FR' "$base/no/such/page")
[ "$nf" = 404 ] || fail "a missing page answered $nf behind SWA, not 404"
grep -q '<html lang="fr">' "$work/nf-fr.html" && grep -q '<h1>Page introuvable</h1>' "$work/nf-fr.html" || fail "a missing page is not the not-found page in French behind SWA"

echo "-- .well-known rewrite to /api/metadata"
[ "$(curl -s "$base/.well-known/oauth-authorization-server" | json "['token_endpoint']")" = "$base/api/token" ] || fail "metadata rewrite"

echo "-- device authorization (secret in the body)"
auth=$(curl -s -d client_id=tv -d "client_secret=$secret" "$base/api/authorize")
dc=$(echo "$auth" | json "['device_code']")
uc=$(echo "$auth" | json "['user_code']")
[ -n "$dc" ] && [ -n "$uc" ] || fail "authorize: $auth"

poll() { curl -s "$@" -d client_id=tv -d "client_secret=$secret" -d grant_type=urn:ietf:params:oauth:grant-type:device_code -d "device_code=$dc" "$base/api/token"; }
echo "-- poll before approval, secret in the body"
[ "$(poll | json "['error']")" = authorization_pending ] || fail "first poll"

echo "-- the person: the code typed (sent by GET, as the entry form does), confirmation page, Allow"
typed=$(echo "$uc" | tr 'A-Z' 'a-z' | tr -d -)
# A code posted without a decision (an entry page from before) is sent on
# to the GET with 303: no page in the browser's history answers a POST.
prg=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -d "user_code=$typed" "$base/api/verify")
[ "$prg" = "303 $base/api/verify?user_code=$typed" ] || fail "a posted code was not redirected to its GET: $prg"
curl -s -G -c "$jar" -b "$jar" --data-urlencode "user_code=$typed" "$base/api/verify" >"$work/confirm.html"
grep -q "SWA TV" "$work/confirm.html" || fail "confirmation page"
grep -q '<html lang="en">' "$work/confirm.html" || fail "the confirmation page is not in English for a browser that names no language"
csrf=$(grep -o 'name="csrf" value="[^"]*"' "$work/confirm.html" | sed 's/.*value="//;s/"$//')
loc=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" -H "Origin: $base" \
  -d "user_code=$uc" -d "csrf=$csrf" -d action=allow "$base/api/verify")
case "$loc" in "$base/demo/authorize?"*) ;; *) fail "allow redirected to $loc" ;; esac

echo "-- the demo provider (reached directly: it is not part of the SWA app)"
demo="http://127.0.0.1:$worker_port/demo/authorize?${loc#*\?}"
curl -s -c "$jar" -b "$jar" "$demo" >"$work/consent.html"
python3 - "$work/consent.html" >"$work/consent.form" <<'PY'
import html, re, sys, urllib.parse
page = open(sys.argv[1]).read()
fields = {k: html.unescape(v) for k, v in re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', page)}
fields.update(decision="allow", username="swa")
print(urllib.parse.urlencode(fields))
PY
back=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" -d @"$work/consent.form" "http://127.0.0.1:$worker_port/demo/authorize")
case "$back" in "$base/api/callback?"*) ;; *) fail "the demo provider sent the browser to $back" ;; esac

echo "-- callback through SWA"
curl -s -c "$jar" -b "$jar" "$back" >"$work/result.html"
grep -q "all set" "$work/result.html" || { grep -o "<h1>.*\|<p>.*" "$work/result.html" >&2; fail "callback did not show success"; }

echo "-- poll with an Authorization header present (SWA overwrites it in Azure), secret in the body"
tok=$(poll -H "Authorization: Bearer swa-internal-token")
[ -n "$(echo "$tok" | json ".get('access_token','')")" ] || fail "poll after approval: $tok"
[ "$(poll | json "['error']")" = invalid_grant ] || fail "second poll after delivery"

echo "-- refresh through SWA"
rt=$(echo "$tok" | json "['refresh_token']")
[ -n "$(curl -s -d client_id=tv -d "client_secret=$secret" -d grant_type=refresh_token -d "refresh_token=$rt" "$base/api/token" | json ".get('access_token','')")" ] || fail "refresh"

grep -q '"store":"cosmos"' "$work/handler.log" || fail "the handler did not run on the cosmos store"
echo "-- Cosmos operations for this one flow (authorize, 3 polls, confirm, allow, callback, refresh, rate-limit counts):"
python3 - "$work/handler.log" <<'PY'
import collections, json, sys
ops, ru = collections.Counter(), 0.0
for line in open(sys.argv[1]):
    # The stand-in relays the handler's lines behind a prefix of its own.
    try:
        e = json.loads(line[line.find("{"):])
    except ValueError:
        continue
    if e.get("msg") == "cosmos operation":
        ops[e["op"]] += 1
        ru += e.get("ru", 0)
print("   ", ", ".join(f"{k} {v}" for k, v in sorted(ops.items())), f"| total {sum(ops.values())} operations, {ru:.1f} RU as charged by the test server")
PY
if grep -q -e "$dc" -e "$secret" -e "$rt" "$work/handler.log"; then fail "a secret reached the handler's log"; fi
echo "swa-e2e: 1 passed, 0 failed"
