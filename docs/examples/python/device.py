#!/usr/bin/env python3
"""The device side of devicegate in Python, with Authlib (docs/DEVICES.md).

    DEVICEGATE_URL=https://devicegate.example.net DEVICEGATE_CLIENT_ID=tv python3 device.py
    DEVICEGATE_URL=... DEVICEGATE_CLIENT_ID=tv python3 device.py refresh

The first signs in (RFC 8628: shows the code, polls at the server's
interval, 5 s slower after each slow_down) and writes the tokens to
TOKEN_FILE (default tokens.json), readable by this user only; the second
renews them with the refresh token. Needs Authlib and requests (Debian:
apt-get install python3-authlib python3-requests; or pip install authlib
requests). scripts/e2e.sh runs both against devicegate -demo.
"""
import json
import os
import sys
import tempfile
import time

from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"


def save(path, token):
    """Write the tokens readable by this user only: a new 0600 file next to
    the old one, renamed over it, so no reader or crash ever sees half a
    file or looser permissions."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tokens-")
    try:
        with os.fdopen(fd, "w") as f:  # mkstemp creates it 0600
            json.dump(dict(token), f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    base = os.environ.get("DEVICEGATE_URL", "").rstrip("/")
    client_id = os.environ.get("DEVICEGATE_CLIENT_ID", "")
    if not base or not client_id:
        sys.exit("set DEVICEGATE_URL and DEVICEGATE_CLIENT_ID")
    path = os.environ.get("TOKEN_FILE", "tokens.json")
    token_url = base + "/api/token"
    # devicegate takes the client's credentials in the form body.
    session = OAuth2Session(
        client_id,
        os.environ.get("DEVICEGATE_CLIENT_SECRET"),  # confidential clients only
        token_endpoint_auth_method="client_secret_post" if os.environ.get("DEVICEGATE_CLIENT_SECRET") else "none",
        scope=os.environ.get("DEVICEGATE_SCOPE") or None,
    )

    if sys.argv[1:] == ["refresh"]:
        with open(path) as f:
            old = json.load(f)
        token = session.refresh_token(token_url, refresh_token=old["refresh_token"])
        if "refresh_token" not in token:  # the server may keep the old one
            token["refresh_token"] = old["refresh_token"]
        save(path, token)
        print("Renewed; tokens saved to", path, file=sys.stderr)
        return

    form = {"client_id": client_id}
    if session.scope:
        form["scope"] = session.scope
    res = session.post(base + "/api/authorize", data=form, withhold_token=True, timeout=30)
    da = res.json()
    if res.status_code != 200:
        sys.exit("device authorization failed: %s" % da.get("error"))
    print("To sign in, open %s and enter the code %s" % (da["verification_uri"], da["user_code"]), file=sys.stderr)
    if "verification_uri_complete" in da:
        print("Or open: %s" % da["verification_uri_complete"], file=sys.stderr, flush=True)

    interval = da.get("interval", 5)
    deadline = time.monotonic() + da["expires_in"]
    while time.monotonic() < deadline:
        time.sleep(interval)
        try:
            token = session.fetch_token(token_url, grant_type=DEVICE_CODE, device_code=da["device_code"], timeout=30)
        except OAuthError as e:
            if e.error == "authorization_pending":
                continue
            if e.error == "slow_down":  # RFC 8628 §3.5: 5 s more, from now on
                interval += 5
                continue
            sys.exit("sign-in failed: %s" % e.error)  # access_denied, expired_token
        save(path, token)
        print("Signed in; tokens saved to", path, file=sys.stderr)
        return
    sys.exit("the code expired; run again")


if __name__ == "__main__":
    main()
