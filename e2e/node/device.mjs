// A device using openid-client (panva) against devicegate: discovers the
// endpoints from RFC 8414 metadata, starts a device authorization, prints
// one JSON line with verification_uri_complete, polls until the person has
// decided, and prints one JSON line with the outcome, read by the Go test
// over a pipe (which never logs it).
import * as client from 'openid-client';
import { createHash } from 'node:crypto';

const [base, clientId, scope] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

try {
  const config = await client.discovery(new URL(base), clientId, undefined, client.None(), {
    algorithm: 'oauth2',
    execute: [client.allowInsecureRequests],
  });
  const auth = await client.initiateDeviceAuthorization(config, { scope });
  out({ verification_uri_complete: auth.verification_uri_complete, user_code: auth.user_code, interval: auth.interval, expires_in: auth.expires_in });
  const tokens = await client.pollDeviceAuthorizationGrant(config, auth);
  out({
    ok: true,
    token_type: tokens.token_type,
    has_refresh_token: Boolean(tokens.refresh_token),
    access_token: tokens.access_token,
    access_token_sha256: createHash('sha256').update(tokens.access_token).digest('hex'),
  });
} catch (err) {
  out({ ok: false, error: err.error || err.code || String(err.name), error_description: err.error_description || '' });
}
