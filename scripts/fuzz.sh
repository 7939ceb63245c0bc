#!/usr/bin/env bash
# Runs every native Go fuzz target for a fixed number of executions
# (default 10000x each; FUZZTIME=200000x, or a duration such as 1m, for
# longer). The seeds in the code always run as part of the normal tests;
# this explores beyond them.
#
# A count, not a duration, by default: with a duration, Go 1.26's fuzz
# coordinator can report a bare "context deadline exceeded" failure when
# its deadline fires while a worker is mid-execution on a loaded machine
# (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
# It failed one of three parallel CI runs here that way, with no failing
# input written. A real finding still fails: it writes its input to
# testdata/fuzz/ and go test exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-10000x}"
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
  go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -timeout 15m
done
