#!/bin/sh
# Starts devicegate's handler under the Azure Functions host, whatever the
# deploy did to the file modes.
#
# host.json names /bin/sh as the executable and this file as its argument,
# so nothing the host runs needs an executable bit. Why: the Static Web Apps
# deploy may drop the handler's exec bit, and run-from-package mounts the app
# read-only, where the host's own chmod of the handler fails and is only
# logged (azure-functions-host WorkerProcess.AssignUserExecutePermissionsIfNotExists).
#
# The host starts this with the working directory set to the app root and
# FUNCTIONS_APP_ROOT_PATH pointing there (HttpWorkerOptionsSetup,
# HttpWorkerProcess.CreateWorkerProcess). If the deployed handler can be run
# in place, it is exec'd directly (no cost). Otherwise it is copied once to a
# private temporary folder, made executable there, and exec'd: about 15 MB
# copied, a few tens of milliseconds of cold start (docs/DEPLOY.md).
#
# Everything it prints goes to stderr, which the host logs at Error level
# (HttpWorkerDescription.UseStdErrorStreamForErrorsOnly): a failure here is
# visible in Application Insights as the reason the handler did not start.
set -u

say() { echo "devicegate launcher: $*" >&2; }

root=${FUNCTIONS_APP_ROOT_PATH:-}
if [ -z "$root" ]; then
  root=$(cd "$(dirname "$0")" && pwd) || exit 1
fi
handler="$root/handler"

if [ ! -f "$handler" ]; then
  say "error: $handler is missing: the deployed API folder has no handler binary (see docs/DEPLOY.md#handler-did-not-start)"
  exit 1
fi

if [ -x "$handler" ]; then
  exec "$handler" "$@"
fi

# No exec bit, or a noexec/read-only mount: run a private copy. Copies left
# by earlier starts on this instance (more than a minute old, so their
# handler is long running or gone; Linux keeps a running program's file
# alive after unlink) are removed first, so restarts do not fill the disk.
for base in "${TMPDIR:-/tmp}" /tmp /dev/shm "${HOME:-/nonexistent}"; do
  if [ ! -d "$base" ] || [ ! -w "$base" ]; then continue; fi
  find "$base" -maxdepth 1 -name 'devicegate-handler.*' -type d -mmin +1 -exec rm -rf {} + 2>/dev/null
  dir=$(mktemp -d "$base/devicegate-handler.XXXXXX" 2>/dev/null) || continue
  if cp "$handler" "$dir/handler" && chmod 0700 "$dir/handler" && [ -x "$dir/handler" ]; then
    say "$handler is not executable in place (mode or mount); running a copy from $base"
    exec "$dir/handler" "$@"
  fi
  rm -rf "$dir"
done

say "error: $handler is not executable and no writable, executable temporary folder was found (tried ${TMPDIR:-/tmp}, /tmp, /dev/shm, \$HOME); see docs/DEPLOY.md#handler-did-not-start"
exit 1
