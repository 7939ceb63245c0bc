// oidc-provider (panva, pinned in package-lock.json) as devicegate's second
// real upstream in the end-to-end suite: an OpenID provider written
// independently of the first one (ZITADEL's example OP), stricter in
// places. Its development interactions sign in any login with any password
// and ask for consent ("Continue", or "[ Cancel ]" to deny).
//
//   node oidc-provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
//
// The client secret arrives in the environment (OP_CLIENT_SECRET) when not
// given. Prints "ready ISSUER" once it listens; stops on SIGTERM/SIGINT.
import Provider from "oidc-provider";

const [port, clientId, secretArg, redirectUri] = process.argv.slice(2);
const clientSecret = secretArg || process.env.OP_CLIENT_SECRET;
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  // PKCE for every client, the confidential one devicegate uses included
  // (the default asks it of public clients only).
  pkce: { required: () => true },
  claims: { openid: ["sub"], profile: ["name"] },
  async findAccount(_ctx, id) {
    return { accountId: id, async claims() { return { sub: id, name: id }; } };
  },
  // Revocation (RFC 7009, advertised as revocation_endpoint) so that
  // devicegate's /api/revoke reaches it; introspection (RFC 7662) so the
  // test can ask whether a token is still alive here.
  features: { devInteractions: { enabled: true }, revocation: { enabled: true }, introspection: { enabled: true } },
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, RefreshToken: 3600, Grant: 3600, Interaction: 600, Session: 3600 },
});

const server = provider.listen(Number(port), "127.0.0.1", () => console.log("ready " + issuer));
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
