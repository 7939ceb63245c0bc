// Package e2e proves devicegate with software nobody here wrote: the
// zitadel example OpenID provider upstream, headless Chromium as the
// person, and three independent device clients (golang.org/x/oauth2,
// github.com/cli/oauth, openid-client). Run it with scripts/e2e.sh.
package e2e
