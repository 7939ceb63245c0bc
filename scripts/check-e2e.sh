#!/usr/bin/env bash
# Runs the deployment check (cmd/devicegate-check) against real local
# deployments, and proves it names the right cause for broken ones:
#   1. `devicegate -demo`, the local binary serving pages and API;
#   2. the assembled dist/ behind the Static Web Apps CLI, the API started
#      from dist/api by the Functions host stand-in (e2e/cmd/funchost) through
#      host.json and launch.sh, configured as a fork for another provider
#      (a generic provider at https://auth.fork.example): Allow must not be
#      blocked by any Content-Security-Policy;
#   3. the same with the handler binary missing, with a handler that cannot
#      run (built for another platform), with a wrong public URL, with
#      X-Forwarded-For trusted though the front does not append to it, and
#      with an unknown check client: the check must fail with the matching
#      diagnosis;
#   4. the Flex Consumption package, dist/functionapp, behind the stand-in
#      alone in Flex mode (request proxying, one catch-all function): pages,
#      assets, /.well-known and the API on one origin, the check passing with
#      X-Forwarded-For trusted (the proxying host sets it itself), and a
#      chunked POST read whole. (A whole flow with a browser through it is
#      e2e/funchost_test.go.)
# It also records whether the SWA CLI adds staticwebapp.config.json's
# globalHeaders to /api answers.
# Loopback only; every process runs in its own process group, stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
NAME=check-e2e
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# up waits up to 2 minutes (a guard against hanging: node servers start slowly on a loaded machine).
up() { for _ in $(seq 1 1200); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = "${2:-200}" ] && return 0; sleep 0.1; done; fail "$1 did not answer ${2:-200}"; }

echo "== build: devicegate, the check, the Functions host stand-in; install the SWA CLI (pinned)"
go build -o "$work/devicegate" ./api
go build -o "$work/check" ./cmd/devicegate-check
(cd e2e && go build -o "$work/funchost" ./cmd/funchost)
(cd tools/swa && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
GOOS=$(go env GOHOSTOS) GOARCH=$(go env GOHOSTARCH) bash scripts/assemble.sh >/dev/null

passed=0
# expect_pass NAME URL [check flags]; expect_fail NAME ANCHOR URL [flags]
expect_pass() {
  local name=$1 url=$2; shift 2
  "$work/check" "$@" "$url" >"$work/$name.out" 2>&1 || { cat "$work/$name.out"; fail "$name: the check failed"; }
  sed 's/^/   /' "$work/$name.out"
  passed=$((passed + 1))
}
expect_fail() {
  local name=$1 anchor=$2 url=$3; shift 3
  local rc=0
  "$work/check" "$@" "$url" >"$work/$name.out" 2>&1 || rc=$?
  [ "$rc" = 1 ] || { cat "$work/$name.out"; fail "$name: the check exited $rc, want 1"; }
  grep -q "see docs/DEPLOY.md#$anchor\$" "$work/$name.out" || { cat "$work/$name.out"; fail "$name: no diagnosis pointing at #$anchor"; }
  grep -A2 '^FAIL' "$work/$name.out" | head -3 | sed 's/^/   /'
  passed=$((passed + 1))
}

echo "== 1. the check against devicegate -demo"
port=$(freeport)
bg "$work/demo.log" env DEVICEGATE_STORE=memory "$work/devicegate" -demo -addr "127.0.0.1:$port"
up "http://127.0.0.1:$port/api/health"
expect_pass demo "http://127.0.0.1:$port" # no -client-id: -demo registers devicegate-check
stop "$pgid"

echo "== 2. the check against dist/ behind the SWA CLI, a fork for another provider"
api_port=$(freeport)
swa_port=$(freeport)
site="http://127.0.0.1:$swa_port"
app="$work/api"
fork_env=(
  DEVICEGATE_STORE=memory
  DEVICEGATE_SECRET_KEY="$(head -c 32 /dev/urandom | base64)"
  DEVICEGATE_UPSTREAM=generic
  DEVICEGATE_UPSTREAM_NAME="Fork Provider"
  DEVICEGATE_UPSTREAM_AUTH_URL=https://auth.fork.example/oauth/authorize
  DEVICEGATE_UPSTREAM_TOKEN_URL=https://auth.fork.example/oauth/token
  DEVICEGATE_UPSTREAM_CLIENT_ID=fork-client
  DEVICEGATE_UPSTREAM_CLIENT_SECRET="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
  DEVICEGATE_CLIENTS='[{"client_id":"devicegate-check","name":"Deployment check","scopes":["read"]}]'
  DEVICEGATE_LOG_FORMAT=json
)
# The SWA CLI passes X-Forwarded-For through without appending (SECURITY.md),
# so here, unlike in Azure, DEVICEGATE_TRUSTED_PROXY stays false; case 3
# shows the check catching it set to true.
# api VARIANT [env...]: (re)starts the Functions host stand-in on a fresh
# copy of dist/api, changed as VARIANT says, on the same port behind SWA.
api() {
  local variant=$1; shift
  [ -n "${api_pgid:-}" ] && stop "$api_pgid"
  rm -rf "$app"; cp -r dist/api "$app"
  case $variant in
    good) ;;
    missing) rm "$app/handler" ;;
    wrong-platform) printf '\x7fELF\x02\x01\x01\x00 not a program for this machine\n' >"$app/handler"; chmod 0755 "$app/handler" ;;
  esac
  bg "$work/api-$variant.log" env "${fork_env[@]}" "$@" "$work/funchost" -mode swa -root "$app" -addr "127.0.0.1:$api_port"
  api_pgid=$pgid
  up "http://127.0.0.1:$api_port/api/health" "${expect_code:-200}"
}
api good DEVICEGATE_PUBLIC_URL="$site"
bg "$work/swa.log" bash -c 'cd tools/swa && exec npx --no-install swa start "$1/dist/site" --swa-config-location "$1/dist/site" --api-devserver-url "http://127.0.0.1:$2" --host 127.0.0.1 --port "$3"' \
  sh "$root" "$api_port" "$swa_port"
up "$site/device"
# The SWA CLI listens on loopback, which the check would take for a local
# devicegate: -hosting says what it stands in for.
expect_pass swa "$site" -hosting staticWebApp
grep -q 'auth.fork.example' "$work/swa.out" || fail "the Allow redirect did not go to the fork's provider"
# The SWA CLI passes a chunked body on; the forwarding host refuses it.
grep -q 'chunked form .*refused by the Functions host' "$work/swa.out" || fail "a chunked form through the SWA CLI and the forwarding host was not refused as the host refuses it"

echo "-- do globalHeaders reach /api answers in the SWA CLI?"
# /assets/app.css is a static file; /, /device and misses are rewritten to
# the handler (/api/home, /api/device, /api/notfound).
hsts_page=$(curl -s -o /dev/null -D - "$site/assets/app.css" | grep -ci '^strict-transport-security' || true)
hsts_api=$(curl -s -o /dev/null -D - "$site/api/health" | grep -ci '^strict-transport-security' || true)
[ "$hsts_page" = 1 ] || fail "the SWA CLI did not apply globalHeaders to a static file"
if [ "$hsts_api" = 0 ]; then
  echo "   no: /assets/app.css carries the globalHeaders (Strict-Transport-Security), /api/health does not; API answers carry only the handler's headers"
else
  echo "   yes: /api/health carries globalHeaders too; the confirmation page's CSP must therefore allow every provider"
fi

echo "== 3. broken deployments: the check names the cause"
echo "-- the handler binary is missing from dist/api"
expect_code=503 api missing DEVICEGATE_PUBLIC_URL="$site"
expect_fail missing handler-did-not-start "$site" -hosting staticWebApp
grep -q "the Static Web App's managed Functions host runs" "$work/missing.out" || fail "the diagnosis does not speak of the Static Web App's Functions host"
echo "-- the handler cannot run (built for another platform)"
expect_code=503 api wrong-platform DEVICEGATE_PUBLIC_URL="$site"
expect_fail wrong-platform handler-did-not-start "$site" -hosting staticWebApp
echo "-- DEVICEGATE_PUBLIC_URL is not the site's address (e.g. a custom domain was added)"
api good DEVICEGATE_PUBLIC_URL=https://devicegate.example.org
expect_fail wrong-url wrong-public-url "$site" -hosting staticWebApp
echo "-- DEVICEGATE_TRUSTED_PROXY=true behind a front that does not append to X-Forwarded-For"
api good DEVICEGATE_PUBLIC_URL="$site" DEVICEGATE_TRUSTED_PROXY=true
expect_fail spoofable forwarded-for-spoofable "$site" -hosting staticWebApp
echo "-- the check client is not configured"
api good DEVICEGATE_PUBLIC_URL="$site"
expect_fail no-client check-client "$site" -client-id not-configured -hosting staticWebApp

stop "$api_pgid"

echo "== 4. Flex Consumption: dist/functionapp behind the stand-in alone (-mode flex), one origin"
flex_port=$(freeport)
flex="http://127.0.0.1:$flex_port"
rm -rf "$work/functionapp"; cp -r dist/functionapp "$work/functionapp"
bg "$work/flex.log" env "${fork_env[@]}" DEVICEGATE_PUBLIC_URL="$flex" DEVICEGATE_TRUSTED_PROXY=true \
  "$work/funchost" -mode flex -root "$work/functionapp" -addr "127.0.0.1:$flex_port"
up "$flex/api/health"
echo "-- pages, assets and metadata come from the handler on the same origin"
for path in / /device /assets/app.css /.well-known/oauth-authorization-server; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$flex$path")
  [ "$code" = 200 ] || fail "Flex: $path answered $code"
done
curl -s "$flex/.well-known/oauth-authorization-server" | grep -q "\"token_endpoint\":\"$flex/api/token\"" || fail "Flex: metadata does not name this origin's token endpoint"
curl -s -D - -o /dev/null "$flex/device" | grep -qi '^content-security-policy:.*form-action' || fail "Flex: the page lacks the handler's CSP"
echo "-- a chunked POST reaches the handler whole (curl sends Transfer-Encoding: chunked)"
chunked=$(curl -s -H 'Transfer-Encoding: chunked' -d client_id=devicegate-check "$flex/api/authorize")
echo "$chunked" | grep -q '"device_code"' || fail "Flex: chunked device authorization: $(echo "$chunked" | head -c 200)"
echo "   chunked POST /api/authorize: 200 with a device code"
expect_pass flex "$flex" -hosting functionApp
grep -q 'auth.fork.example' "$work/flex.out" || fail "Flex: the Allow redirect did not go to the fork's provider"
grep -q 'chunked form .*reaches devicegate whole' "$work/flex.out" || fail "Flex: the check did not see a chunked form reach devicegate"

for f in "$work"/*.out "$work"/*.log; do
  if grep -q -e 'device_code":"[A-Za-z0-9_-]\{20,\}' -e 'access_token' "$f"; then fail "$f holds a code or token"; fi
done
echo "check-e2e: $passed passed, 0 failed"
