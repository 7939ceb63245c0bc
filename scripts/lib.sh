# shellcheck shell=bash
# Shared by scripts that start servers: source it after `set -euo pipefail`
# with NAME set (the script's name for messages). It gives a scratch folder
# $work, and runs every server in a process group of its own, all of which
# are stopped, with everything they started, when the script exits.

work=$(mktemp -d)
pgids=()
cleanup() {
  for g in "${pgids[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
  sleep 0.3
  for g in "${pgids[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# fail MESSAGE: prints it with the tail of every log in $work, and exits 1.
fail() {
  echo "$NAME: FAIL: $*" >&2
  for f in "$work"/*.log "$work"/*.out; do [ -f "$f" ] && { echo "--- $f" >&2; tail -25 "$f" >&2; }; done
  exit 1
}

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# bg LOG CMD...: starts CMD in a new process group, output to LOG; sets pgid.
# (In a script, a background job is not a group leader, so setsid execs in
# place and $! is the new group's id.)
bg() { local log=$1; shift; setsid "$@" >"$log" 2>&1 & pgid=$!; pgids+=("$pgid"); }

# stop PGID: ends that process group and waits for its leader.
stop() { kill -TERM -- "-$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
