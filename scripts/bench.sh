#!/usr/bin/env bash
# Benchmarks of devicegate (docs/BENCHMARKS.md).
#
#   bash scripts/bench.sh           full run (about a quarter of an hour);
#                                   rewrites the generated part of
#                                   docs/BENCHMARKS.md and
#                                   docs/bench-throughput.svg
#   bash scripts/bench.sh --short   a few minutes at most; prints the report,
#                                   writes nothing. .ci/run calls this so the
#                                   benchmark cannot rot. It asserts on no
#                                   time: it fails only when the benchmark
#                                   itself goes wrong (5xx, unexpected
#                                   answers, lost or repeated tokens, a server
#                                   that does not start or stop).
#
# The load generator (bombardier) is pinned in tools/go.mod and the peer
# (ZITADEL's example OP) lives in e2e/cmd/benchpeer; both are built by the
# benchmark. It starts the Cosmos DB-compatible test server, as
# scripts/test.sh does, so the store-cost count also runs on the cosmos
# backend; set DEVICEGATE_TEST_COSMOS yourself to use another server.
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

started=""
bin=""
if [ -z "${DEVICEGATE_TEST_COSMOS:-}" ] && command -v node >/dev/null && command -v npm >/dev/null; then
  eval "$(bash scripts/cosmos-server.sh start)"
  export DEVICEGATE_TEST_COSMOS
  started=1
fi
bench_pid=""
cleanup() {
  # The benchmark stops its own servers; this covers an interrupted run: its
  # whole process group (servers, load generator, valgrind) is stopped.
  if [ -n "$bench_pid" ] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -TERM -- "-$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
    sleep 1 # the servers shut down on SIGTERM; whatever has not by now is killed
    kill -KILL -- "-$bench_pid" 2>/dev/null || true
  fi
  if [ -n "$bin" ]; then rm -f "$bin"; fi
  if [ -n "$started" ]; then bash scripts/cosmos-server.sh stop; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "+ go run ./bench ${args[*]}" >&2
bin="${TMPDIR:-/tmp}/devicegate-bench.$$"
go build -o "$bin" ./bench
# Its own process group (job control on), so cleanup can stop all of it.
set -m
"$bin" "${args[@]}" &
bench_pid=$!
set +m
status=0
wait "$bench_pid" || status=$?
bench_pid=""
exit "$status"
