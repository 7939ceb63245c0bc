#!/usr/bin/env bash
# Runs every test of devicegate: `bash scripts/test.sh`.
#
# It starts the Cosmos DB-compatible test server (npm, loopback only) so the
# Cosmos store's conformance suite runs too, and stops it afterwards. Set
# DEVICEGATE_TEST_COSMOS yourself to use another server.
set -euo pipefail
cd "$(dirname "$0")/.."

started=""
if [ -z "${DEVICEGATE_TEST_COSMOS:-}" ]; then
  if command -v node >/dev/null && command -v npm >/dev/null; then
    eval "$(bash scripts/cosmos-server.sh start)"
    export DEVICEGATE_TEST_COSMOS
    started=1
  elif [ -n "${CI:-}" ]; then
    echo "test.sh: node and npm are needed for the Cosmos DB test server" >&2
    exit 1
  else
    echo "test.sh: node/npm not found; the Cosmos store tests will be skipped" >&2
  fi
fi
cleanup() { [ -n "$started" ] && bash scripts/cosmos-server.sh stop; }
trap cleanup EXIT

go test -race -count=1 ./...
