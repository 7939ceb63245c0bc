#!/usr/bin/env bash
# Runs every native Go fuzz target for a short fixed time (default 10s
# each; FUZZTIME=1m for longer). The seeds in the code always run as part
# of the normal tests; this explores beyond them.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-10s}"
targets=(
  "./api/internal/deviceflow FuzzNormalizeUserCode"
  "./api/internal/ratelimit FuzzParseHost"
  "./api/internal/store/bolt FuzzDecode"
  "./api/internal/httpapi FuzzAuthorize"
  "./api/internal/httpapi FuzzToken"
  "./api/internal/httpapi FuzzVerify"
  "./api/internal/httpapi FuzzCallback"
  "./api/internal/config FuzzParseClients"
)
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  echo "-- fuzz $name ($pkg, $fuzztime)"
  go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime"
done
