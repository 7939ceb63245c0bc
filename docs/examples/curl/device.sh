#!/usr/bin/env bash
# The device side of devicegate with bash, curl and jq (docs/DEVICES.md):
#
#   DEVICEGATE_URL=https://devicegate.example.net DEVICEGATE_CLIENT_ID=tv bash device.sh
#   DEVICEGATE_URL=... DEVICEGATE_CLIENT_ID=tv bash device.sh refresh
#
# The first signs in (RFC 8628: shows the code, polls at the server's
# interval, 5 s slower after each slow_down) and writes the tokens to
# TOKEN_FILE (default tokens.json), readable by this user only; the second
# renews them with the refresh token. Needs curl and jq (Debian: apt-get
# install curl jq). scripts/e2e.sh runs both against devicegate -demo.
set -euo pipefail
base=${DEVICEGATE_URL:?set DEVICEGATE_URL}
base=${base%/}
client_id=${DEVICEGATE_CLIENT_ID:?set DEVICEGATE_CLIENT_ID}
file=${TOKEN_FILE:-tokens.json}

# post ENDPOINT FIELD...: a form POST to devicegate, the client's id (and
# secret, for a confidential client) in the body; prints the JSON answer
# whatever the status (errors are JSON too, RFC 6749 §5.2).
post() {
  local endpoint=$1
  shift
  local form=(--data-urlencode "client_id=$client_id")
  # The secret goes through a file descriptor, not the command line, where
  # other users could read it in the process list.
  if [ -n "${DEVICEGATE_CLIENT_SECRET:-}" ]; then
    curl -sS --max-time 30 "${form[@]}" --data-urlencode "client_secret@/dev/fd/3" "$@" "$base$endpoint" 3< <(printf %s "$DEVICEGATE_CLIENT_SECRET")
  else
    curl -sS --max-time 30 "${form[@]}" "$@" "$base$endpoint"
  fi
}

# save JSON: writes the tokens readable by this user only: a new file made
# with umask 077 next to the old one, renamed over it, so no reader or
# crash ever sees half a file or looser permissions.
save() {
  local tmp
  tmp=$(umask 077 && mktemp "$(dirname "$file")/.tokens-XXXXXX")
  if ! printf '%s\n' "$1" >"$tmp" || ! mv -f "$tmp" "$file"; then
    rm -f "$tmp"
    return 1
  fi
}

if [ "${1:-}" = refresh ]; then
  old=$(jq -r .refresh_token "$file")
  # The refresh token goes through standard input, not the command line
  # (printf: no trailing newline, which would become part of the token).
  tokens=$(printf %s "$old" | post /api/token --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token@-")
  if [ "$(jq -r '.access_token // empty' <<<"$tokens")" = "" ]; then
    echo "refresh failed: $(jq -r '.error // "no answer"' <<<"$tokens")" >&2
    exit 1
  fi
  # The server may keep the old refresh token.
  save "$(jq --arg old "$old" '.refresh_token //= $old' <<<"$tokens")"
  echo "Renewed; tokens saved to $file" >&2
  exit 0
fi

auth=$(post /api/authorize ${DEVICEGATE_SCOPE:+--data-urlencode "scope=$DEVICEGATE_SCOPE"})
device_code=$(jq -r '.device_code // empty' <<<"$auth")
if [ -z "$device_code" ]; then
  echo "device authorization failed: $(jq -r '.error // "no answer"' <<<"$auth")" >&2
  exit 1
fi
echo "To sign in, open $(jq -r .verification_uri <<<"$auth") and enter the code $(jq -r .user_code <<<"$auth")" >&2
complete=$(jq -r '.verification_uri_complete // empty' <<<"$auth")
[ -n "$complete" ] && echo "Or open: $complete" >&2
interval=$(jq -r '.interval // 5' <<<"$auth")
deadline=$((SECONDS + $(jq -r .expires_in <<<"$auth")))

while [ "$SECONDS" -lt "$deadline" ]; do
  sleep "$interval"
  tokens=$(printf %s "$device_code" | post /api/token \
    --data-urlencode grant_type=urn:ietf:params:oauth:grant-type:device_code --data-urlencode "device_code@-")
  case "$(jq -r '.error // empty' <<<"$tokens")" in
    "")
      save "$tokens"
      echo "Signed in; tokens saved to $file" >&2
      exit 0
      ;;
    authorization_pending) ;;
    slow_down) interval=$((interval + 5)) ;; # RFC 8628 §3.5: from now on
    *)
      echo "sign-in failed: $(jq -r .error <<<"$tokens")" >&2 # access_denied, expired_token
      exit 1
      ;;
  esac
done
echo "the code expired; run again" >&2
exit 1
