// The device side of devicegate in Node.js, with openid-client
// (docs/DEVICES.md):
//
//   DEVICEGATE_URL=https://devicegate.example.net DEVICEGATE_CLIENT_ID=tv node device.mjs
//   DEVICEGATE_URL=... DEVICEGATE_CLIENT_ID=tv node device.mjs refresh
//
// The first signs in (RFC 8628: shows the code, polls at the server's
// interval, 5 s slower after each slow_down) and writes the tokens to
// TOKEN_FILE (default tokens.json), readable by this user only; the second
// renews them with the refresh token. Install with `npm ci` (package.json
// and its lockfile). scripts/e2e.sh runs both against devicegate -demo.
import * as client from 'openid-client';
import { open, rename, rm, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

const base = (process.env.DEVICEGATE_URL || '').replace(/\/+$/, '');
const clientId = process.env.DEVICEGATE_CLIENT_ID;
const file = process.env.TOKEN_FILE || 'tokens.json';
if (!base || !clientId) {
  console.error('set DEVICEGATE_URL and DEVICEGATE_CLIENT_ID');
  process.exit(1);
}

// Writes the tokens readable by this user only: a new file created 0600
// (exclusively, so never an existing one) next to the old one, renamed
// over it, so no reader or crash ever sees half a file or looser modes.
async function save(tokens) {
  const tmp = join(dirname(file), `.tokens-${randomBytes(8).toString('hex')}`);
  const f = await open(tmp, 'wx', 0o600);
  try {
    await f.writeFile(JSON.stringify(tokens, null, 2));
    await f.close();
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

// devicegate's RFC 8414 metadata names its endpoints. A confidential
// client's secret goes in the form body (client_secret_post).
const secret = process.env.DEVICEGATE_CLIENT_SECRET;
// Plain http only to this computer (devicegate -demo); anything else https.
const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(base).hostname);
const options = base.startsWith('http://') && loopback ? { execute: [client.allowInsecureRequests] } : {};
const config = await client.discovery(new URL(base), clientId, undefined,
  secret ? client.ClientSecretPost(secret) : client.None(), { algorithm: 'oauth2', ...options });

if (process.argv[2] === 'refresh') {
  const old = JSON.parse(await readFile(file, 'utf8'));
  const tokens = await client.refreshTokenGrant(config, old.refresh_token);
  await save({ ...tokens, refresh_token: tokens.refresh_token || old.refresh_token });
  console.error(`Renewed; tokens saved to ${file}`);
} else {
  const scope = process.env.DEVICEGATE_SCOPE;
  const auth = await client.initiateDeviceAuthorization(config, scope ? { scope } : {});
  console.error(`To sign in, open ${auth.verification_uri} and enter the code ${auth.user_code}`);
  if (auth.verification_uri_complete) console.error(`Or open: ${auth.verification_uri_complete}`);
  // Waits auth.interval between polls, 5 s more after each slow_down
  // (RFC 8628 §3.5), and gives up when the code expires.
  const tokens = await client.pollDeviceAuthorizationGrant(config, auth);
  await save({ ...tokens });
  console.error(`Signed in; tokens saved to ${file}`);
}
