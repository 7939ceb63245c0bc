#!/usr/bin/env bash
# A Cosmos DB-compatible server on loopback for devicegate's tests.
#   scripts/cosmos-server.sh install   npm ci the pinned server and patch it
#   scripts/cosmos-server.sh start     start it; prints DEVICEGATE_TEST_COSMOS=<connection string>
#                                      and DEVICEGATE_COSMOS_STATE (its pidfile's folder) to eval
#   scripts/cosmos-server.sh stop      stop the one DEVICEGATE_COSMOS_STATE names (its whole process group)
# Usage in a script:  eval "$(bash scripts/cosmos-server.sh start)"; export DEVICEGATE_TEST_COSMOS
set -euo pipefail
cd "$(dirname "$0")/.."
dir=tools/cosmos-server
# Each start gets a state folder of its own (pidfile and log), named in
# what start prints (DEVICEGATE_COSMOS_STATE, exported by the eval), so two
# checkouts, or two test runs in one checkout, never stop each other's
# server; stop reads it from the environment.
state="${DEVICEGATE_COSMOS_STATE:-}"
if [ -z "$state" ] && [ "${1:-}" = start ]; then
  state=$(mktemp -d "${TMPDIR:-/tmp}/devicegate-cosmos.XXXXXX")
fi
pidfile="$state/server.pid"
logfile="$state/server.log"
# The public key of Microsoft's Cosmos DB emulator: a well-known test value, not a secret.
key='C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=='
readdoc="$dir/node_modules/@vercel/cosmosdb-server/lib/handler/read-document.js"

install() {
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
  # Reading a missing item answers 500 instead of 404 in 1.0.1; patch that
  # one comparison so a missing item is a 404 as in Cosmos DB.
  sed -i 's/if (data\[path\] !== clientKeys\[i\])/if (!data || data[path] !== clientKeys[i])/' "$readdoc"
  grep -q 'if (!data || data\[path\] !== clientKeys\[i\])' "$readdoc" || { echo "cosmos-server: patching $readdoc failed" >&2; exit 1; }
}

start() {
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "cosmos-server: a server from $state is still running (pid $(cat "$pidfile")); stop it first (bash scripts/cosmos-server.sh stop with DEVICEGATE_COSMOS_STATE=$state)" >&2
    exit 1
  fi
  [ -d "$dir/node_modules/@vercel/cosmosdb-server" ] || install
  port="${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
  # A process group of its own (job control on), so stop ends all of it.
  set -m
  node "$dir/node_modules/@vercel/cosmosdb-server/lib/cli.js" --no-ssl -p "$port" >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  set +m
  for _ in $(seq 1 1200); do # up to 2 minutes: a guard, node starts slowly on a loaded machine
    if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
      echo "DEVICEGATE_TEST_COSMOS='AccountEndpoint=http://127.0.0.1:$port/;AccountKey=$key;'; export DEVICEGATE_COSMOS_STATE='$state'"
      return 0
    fi
    sleep 0.1
  done
  echo "cosmos-server: did not start; see $logfile" >&2
  exit 1
}

stop() {
  if [ -z "$state" ]; then
    echo "cosmos-server: nothing to stop: DEVICEGATE_COSMOS_STATE is unset (eval what start printed, then stop from that shell)" >&2
    return 0
  fi
  if [ -f "$pidfile" ]; then
    . scripts/procs.sh
    stop_group_ids "$(cat "$pidfile")"
    rm -f "$pidfile"
  fi
  rm -rf "$state"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
