// Package e2e proves devicegate with software nobody here wrote: two
// independently written OpenID providers upstream (the zitadel example OP
// in-process, and oidc-provider from npm run by node/oidc-provider.mjs),
// headless Chromium as the person (every page also checked with axe-core
// for WCAG 2.1 AA, in light and dark, at 200% zoom and by keyboard alone),
// and three independent device clients (golang.org/x/oauth2,
// github.com/cli/oauth, openid-client). Run it with scripts/e2e.sh.
//
// What the second upstream, oidc-provider 9.13.3, needed that the first
// did not:
//
//   - It drops offline_access from a request without prompt=consent, as
//     OpenID Connect Core §11 allows, and then issues no refresh token.
//     devicegate now sends prompt=consent whenever it asks for
//     offline_access (upstream.Provider.AuthCodeURL), unless a preset sets
//     its own prompt. The zitadel OP accepts both.
//   - It always shows a consent page after the login ("Continue", or
//     "[ Cancel ]", which returns access_denied: the provider-side deny),
//     and a browser signed in there skips the login next time; the
//     scenarios drive each page and use a fresh browser per person.
//   - Its issuer has no trailing slash (zitadel's has one) and its
//     authorization response carries iss (RFC 9207), which its discovery
//     document promises; neither needed a change: devicegate compares
//     issuers without the trailing slash, and as oidc it checks iss
//     against the discovered issuer (as generic it knows no issuer).
//   - PKCE is required of confidential clients only because the test
//     configures it so (pkce.required); devicegate sends S256 either way,
//     configured as oidc (from discovery) or generic (pkce true).
//   - It warns that Node 20 is not a supported runtime (it asks for 22);
//     it runs correctly on the Node 20 CI has.
package e2e
