#!/usr/bin/env bash
# Benchmarks of devicegate (docs/BENCHMARKS.md).
#
#   bash scripts/bench.sh           full run (a few minutes); rewrites the
#                                   generated part of docs/BENCHMARKS.md and
#                                   docs/bench-throughput.svg
#   bash scripts/bench.sh --short   seconds; prints the report, writes nothing.
#                                   .ci/run calls this so the benchmark cannot
#                                   rot. It asserts on no time: it fails only
#                                   when the benchmark itself goes wrong (5xx,
#                                   unexpected answers, lost or repeated tokens,
#                                   a server that does not start or stop).
#
# Any other arguments go to `go run ./bench` (see -h). Everything runs on
# loopback; every process it starts is stopped before it exits.
set -euo pipefail
cd "$(dirname "$0")/.."

args=()
for a in "$@"; do
  case "$a" in
    --short) args+=(-short) ;;
    *) args+=("$a") ;;
  esac
done
echo "+ go run ./bench ${args[*]}" >&2
exec go run ./bench "${args[@]}"
