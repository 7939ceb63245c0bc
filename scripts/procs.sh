# Sourced by the scripts that start servers. Each server runs in a process
# group of its own, and stopping it stops the whole group: killing only the
# PID a wrapper such as npx or a ( cd …; exec … ) subshell got would leave
# its children (the SWA CLI's node servers) running.
#
#   start_group LOG CMD [ARG...]   start CMD in the background, output to LOG;
#                                  its group id (= its PID) is appended to groups
#   stop_groups                    TERM every group started, wait up to 5 s,
#                                  then KILL what is left

groups=()

start_group() {
  local log=$1
  shift
  set -m # job control: the background job gets a process group of its own
  "$@" >"$log" 2>&1 &
  groups+=("$!")
  set +m
}

stop_group_ids() {
  local g alive
  for g in "$@"; do kill -TERM -- "-$g" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    alive=""
    for g in "$@"; do kill -0 -- "-$g" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && return 0
    sleep 0.1
  done
  for g in "$@"; do kill -KILL -- "-$g" 2>/dev/null || true; done
}

stop_groups() {
  [ "${#groups[@]}" -gt 0 ] && stop_group_ids "${groups[@]}"
  groups=()
}
