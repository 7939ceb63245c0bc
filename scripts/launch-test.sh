#!/usr/bin/env bash
# Proves the assembled Functions app starts when the platform has stripped the
# handler's executable bit and mounted the app read-only, as run-from-package
# does: every file of dist/api is set to 0644, the folder is bind-mounted
# read-only and noexec in a private mount namespace, and the app is launched
# the way the Functions host launches it (e2e/cmd/funchost: host.json's
# defaultExecutablePath, arguments, working directory, port variable, the
# host's own chmod attempt). /api/health must answer through it.
#
# The Flex Consumption package (dist/functionapp) is launched the same way,
# by the stand-in in flex mode, and must serve / and /api/health.
#
# It also measures the launcher's cold-start cost: time from launch to the
# first healthy answer with the copy (0644, read-only) against a direct exec
# (0755, writable).
#
# Loopback only; everything it starts runs in its own process group and is
# stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=launch-test
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
now_ms() { date +%s%3N; }

echo "== assemble dist/ and build the Functions host stand-in"
GOOS=$(go env GOHOSTOS) GOARCH=$(go env GOHOSTARCH) bash scripts/assemble.sh >/dev/null
(cd e2e && go build -o "$work/funchost" ./cmd/funchost)

# How the folder is made read-only: a read-only, noexec bind mount in a
# private mount namespace (as root, or as an unprivileged user through a user
# namespace). Both are tried; without either, the test cannot make its point
# and fails rather than pass on a writable folder.
ns=()
probe="$work/probe"; mkdir -p "$probe"
if unshare -m sh -c "mount --bind '$probe' '$probe' && mount -o remount,bind,ro,noexec '$probe'" 2>/dev/null; then
  ns=(unshare -m)
elif unshare -rm sh -c "mount --bind '$probe' '$probe' && mount -o remount,bind,ro,noexec '$probe'" 2>/dev/null; then
  ns=(unshare -rm)
elif sudo -n unshare -m sh -c "mount --bind '$probe' '$probe' && mount -o remount,bind,ro,noexec '$probe'" 2>/dev/null; then
  # GitHub's Ubuntu runners forbid unprivileged user namespaces but allow sudo.
  ns=(sudo -n unshare -m)
else
  fail "cannot make a read-only mount here (needs a mount namespace: root, or unprivileged user namespaces)"
fi

env_common=(
  DEVICEGATE_STORE=memory
  DEVICEGATE_SECRET_KEY="$(head -c 32 /dev/urandom | base64)"
  DEVICEGATE_UPSTREAM=spotify
  DEVICEGATE_UPSTREAM_CLIENT_ID=launch-test
  DEVICEGATE_UPSTREAM_CLIENT_SECRET="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
  DEVICEGATE_CLIENTS='[{"client_id":"devicegate-check","name":"Deployment check","scopes":["user-read-email"]}]'
  DEVICEGATE_LOG_FORMAT=json
)

# launch MODE: copies dist/api to a fresh app folder, sets its modes, starts
# the host stand-in on it (read-only mount for MODE=readonly) and waits for
# /api/health. Sets ms (time to the first 200), app, port, tmp and pgid.
n=0
launch() {
  local mode=$1 log
  n=$((n + 1)); app="$work/app-$mode-$n"
  cp -r "dist/${pkg:-api}" "$app"
  tmp=${reuse_tmp:-"$app.tmp"}; mkdir -p "$tmp"
  port=$(freeport)
  log="$work/$mode.log"
  if [ "$mode" = readonly ]; then
    find "$app" -type f -exec chmod 0644 {} +
    find "$app" -type d -exec chmod 0755 {} +
  else
    chmod 0755 "$app/handler"
  fi
  local t0; t0=$(now_ms)
  if [ "$mode" = readonly ]; then
    # env comes after the namespace command: sudo would drop the variables.
    bg "$log" "${ns[@]}" env "${env_common[@]}" DEVICEGATE_PUBLIC_URL="http://127.0.0.1:$port" TMPDIR="$tmp" \
      sh -c 'mount --bind "$1" "$1" && mount -o remount,bind,ro,noexec "$1" && exec "$2" -mode "$4" -root "$1" -addr "$3"' \
      sh "$app" "$work/funchost" "127.0.0.1:$port" "${host_mode:-swa}"
  else
    bg "$log" env "${env_common[@]}" DEVICEGATE_PUBLIC_URL="http://127.0.0.1:$port" TMPDIR="$tmp" \
      "$work/funchost" -mode "${host_mode:-swa}" -root "$app" -addr "127.0.0.1:$port"
  fi
  local ok=""
  # Up to 2 minutes, a guard against hanging (a count of 10 ms sleeps
  # was about 6 s, too little for a launch on a loaded machine).
  while [ $(( $(now_ms) - t0 )) -lt 120000 ]; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/health" || true)
    if [ "$code" = 200 ]; then ok=1; break; fi
    if [ "$code" = 503 ] && [ -n "${expect_fail:-}" ]; then break; fi
    sleep 0.01
  done
  if [ -z "$ok" ]; then
    [ -n "${expect_fail:-}" ] && return 1
    fail "$mode: /api/health never answered 200"
  fi
  ms=$(( $(now_ms) - t0 ))
}


echo "== launch with every file 0644 on a read-only, noexec mount (${ns[*]})"
launch readonly
curl -s "http://127.0.0.1:$port/api/health" | grep -q '"status":"ok"' || fail "health body"
grep -q 'not executable in place' "$work/readonly.log" || fail "the launcher did not report running a copy"
grep -q 'error while assigning execute permission' "$work/readonly.log" && fail "the host tried to chmod a file it runs; host.json should name /bin/sh"
grep -q '\[worker Information\].*devicegate is ready' "$work/readonly.log" || fail "routine lines should reach the host on stdout (logged as Information)"
grep -q '\[worker Error\].*"level":"INFO"' "$work/readonly.log" && fail "an INFO line went to stderr, which the host logs as an error"
[ "$(stat -c %a "$app/handler")" = 644 ] || fail "the deployed handler's mode changed"
ls -d "$tmp"/devicegate-handler.* >/dev/null 2>&1 || fail "no private copy in TMPDIR"
echo "   /api/health 200 after ${ms} ms (launcher copied the handler to TMPDIR)"
cold_copy=$ms
stop "$pgid"

echo "== the Flex Consumption package, every file 0644 on a read-only, noexec mount, under the stand-in in flex mode"
pkg=functionapp host_mode=flex launch readonly
curl -s "http://127.0.0.1:$port/api/health" | grep -q '"status":"ok"' || fail "Flex: health body"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")" = 200 ] || fail "Flex: / is not served by the handler"
grep -q 'not executable in place' "$work/readonly.log" || fail "Flex: the launcher did not report running a copy"
echo "   Flex: / and /api/health 200 after ${ms} ms"
stop "$pgid"

echo "== launch a second time on the same instance: the old copy is not reused, a stale one is swept"
old=$(ls -d "$tmp"/devicegate-handler.*)
touch -d '2 minutes ago' "$old"
reuse_tmp=$tmp launch readonly
if [ -d "$old" ]; then fail "a stale copy was not swept"; fi
stop "$pgid"

echo "== control: the same folder with host.json running the handler directly does not start"
host_json=$(cat dist/api/host.json)
python3 - dist/api/host.json <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))
h["customHandler"]["description"].update(defaultExecutablePath="handler", arguments=[])
json.dump(h, open(sys.argv[1], "w"))
PY
launch_status=0
expect_fail=1 launch readonly || launch_status=$?
printf '%s\n' "$host_json" >dist/api/host.json
[ "$launch_status" != 0 ] || fail "the control started: the read-only mount did not bite"
[ "$(curl -s "http://127.0.0.1:$port/api/health")" = "Function host is not running." ] || fail "control: no 503 from the host"
grep -q 'error while assigning execute permission' "$work/readonly.log" || fail "control: the host's chmod should have failed on the read-only mount"
stop "$pgid"

echo "== cold-start cost: five launches each, copy (0644, read-only) against direct exec (0755)"
copies=() directs=()
for _ in 1 2 3 4 5; do
  launch readonly; copies+=("$ms"); stop "$pgid"
  launch direct; directs+=("$ms"); stop "$pgid"
done
median() { printf '%s\n' "$@" | sort -n | sed -n 3p; }
size=$(stat -c %s dist/api/handler)
echo "   handler $((size / 1024 / 1024)) MB; launch to first /api/health: copy median $(median "${copies[@]}") ms (${copies[*]}), direct median $(median "${directs[@]}") ms (${directs[*]})"
echo "launch-test: 4 passed, 0 failed (first read-only launch ${cold_copy} ms)"
