#!/usr/bin/env bash
# Removes each protection SECURITY.md names, one at a time, and checks that
# the test SECURITY.md names for it fails: a protection whose removal no
# test notices is not proven. `bash scripts/mutants.sh [NAME]` runs all
# mutants (or those whose name contains NAME).
#
# Each mutant replaces one exact piece of source text, which must occur
# exactly once: when the code moves on, a stale mutant fails loudly here
# instead of silently testing nothing. A mutant runs only its named tests
# in its one package, without -race, in a private copy of the tree (one
# per worker, so the checkout is never touched and workers run side by
# side); -trimpath lets the copies share the build cache. A named test that
# is skipped does not count as failing. Mutants of the Cosmos store need
# its test server: started here (and stopped) unless DEVICEGATE_TEST_COSMOS
# is set.
set -euo pipefail
cd "$(dirname "$0")/.."
started=""
# The Cosmos mutants' names contain "Cosmos".
if [ -z "${DEVICEGATE_TEST_COSMOS:-}" ] && [[ -z "${1:-}" || "${1:-}" == *Cosmos* ]]; then
  if command -v node >/dev/null && command -v npm >/dev/null; then
    eval "$(bash scripts/cosmos-server.sh start)"
    export DEVICEGATE_TEST_COSMOS
    started=1
  fi
fi
cleanup() { [ -n "$started" ] && bash scripts/cosmos-server.sh stop; }
trap cleanup EXIT
python3 - "${1:-}" <<'PY'
import concurrent.futures, os, queue, shutil, signal, subprocess, sys, tempfile, time

# Stopped (CI timeout, ^C): unwind, so the copies below are removed.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

only = sys.argv[1]
# name, file, original text, mutated text, package, tests that must fail
MUTANTS = [
    ("verify budget covers decisions", "api/internal/httpapi/verify.go",
     'if ok, retry := s.allow(r, "verify", s.RateVerify); !ok {',
     'if ok, retry := s.allow(r, "verify", s.RateVerify); !ok && action == "" {',
     "./api/internal/httpapi", "TestGuessedDecisionsShareTheVerifyBudget|TestLockoutCountsOnlyWithinBudget"),
    ("decision token bound to the record", "api/internal/deviceflow/refresh.go",
     'return browserToken + "." + recordID }', 'return browserToken }',
     "./api/internal/httpapi", "TestDecisionTokenBoundToRecord"),
    ("decision token checked", "api/internal/httpapi/verify.go",
     "if !wellFormedToken(cookie) || !s.Service.CheckDecisionToken(cookie, recordID, token) {", "if !wellFormedToken(cookie) {",
     "./api/internal/httpapi", "TestDecisionTokenBoundToRecord"),
    ("foreign Origin refused", "api/internal/httpapi/verify.go",
     'if origin := r.Header.Get("Origin"); origin != "" && origin != "null" && config.NormalizeOrigin(origin) != s.publicOrigin {',
     'if origin := r.Header.Get("Origin"); false && config.NormalizeOrigin(origin) != "" {',
     "./api/internal/httpapi", "TestVerifyInputs"),
    ("lockout", "api/internal/deviceflow/service.go",
     "if r.Failures >= s.c.MaxFailures {", "if false && r.Failures >= s.c.MaxFailures {",
     "./api/internal/deviceflow", "TestLockout"),
    ("failure count logged", "api/internal/httpapi/verify.go",
     's.Logger.ErrorContext(r.Context(), "could not count a failed confirmation against its code", "err", ferr)',
     "_ = ferr", "./api/internal/httpapi", "TestFailedCountIsNotDropped"),
    ("callback state matches the browser's cookie", "api/internal/httpapi/verify.go",
     "if subtle.ConstantTimeCompare([]byte(state), []byte(cookieState)) != 1 {",
     "if false && subtle.ConstantTimeCompare([]byte(state), []byte(cookieState)) != 1 {",
     "./api/internal/httpapi", "TestCallbackStateOfAnotherRecord"),
    ("callback state spent once", "api/internal/deviceflow/service.go",
     '\t\tr.StateHash = ""\n\t\tsealed = r.CodeVerifier', "\t\tsealed = r.CodeVerifier",
     "./api/internal/deviceflow", "TestCallbackStateChecks"),
    ("PKCE on the authorize request", "api/internal/upstream/upstream.go",
     "opts = append(opts, oauth2.S256ChallengeOption(verifier))", "_ = verifier",
     "./api/internal/httpapi", "TestFullFlow"),
    ("mix-up: each provider its own callback", "api/internal/httpapi/verify.go",
     "if !sameCallback(r.URL.Path, up.RedirectURL()) || !up.CheckIssuer(q.Get(\"iss\")) {",
     "if !up.CheckIssuer(q.Get(\"iss\")) {", "./api/internal/httpapi", "TestCallbackAtAnotherProvidersPath"),
    ("mix-up: RFC 9207 iss", "api/internal/upstream/upstream.go",
     "return iss == p.preset.Issuer", "return true", "./api/internal/upstream", "TestCheckIssuer"),
    ("refresh bound to its client", "api/internal/deviceflow/refresh.go",
     "if same != 1 {", "if false && same != 1 {", "./api/internal/httpapi", "TestRefreshBoundToClient"),
    ("refresh binding moves on rotation", "api/internal/deviceflow/refresh.go",
     "err = s.c.Store.MoveBinding(ctx, g.binding.ID, next)", "err = s.c.Store.PutBinding(ctx, next)",
     "./api/internal/httpapi", "TestRefreshRotationMovesBinding"),
    ("refresh limited per address", "api/internal/httpapi/api.go",
     'if ok, retry := s.allow(r, "refresh", s.RateRefresh); !ok {',
     'if ok, retry := s.allow(r, "refresh", s.RateRefresh); false && !ok {',
     "./api/internal/httpapi", "TestJunkRefreshesLimited"),
    ("refresh limited per client", "api/internal/httpapi/api.go",
     'if ok, retry := s.Limiter.Allow(r.Context(), "refresh-client", s.RateRefreshClient, c.ID); !ok {',
     'if ok, retry := s.Limiter.Allow(r.Context(), "refresh-client", s.RateRefreshClient, c.ID); false && !ok {',
     "./api/internal/httpapi", "TestJunkRefreshesLimited"),
    ("granted scopes checked", "api/internal/httpapi/api.go",
     "if c.AllowsScope(sc) {\n\t\t\tcontinue", "if true {\n\t\t\tcontinue",
     "./api/internal/httpapi", "TestProviderWidensScopes"),
    ("X-Forwarded-For read from the right", "api/internal/ratelimit/ratelimit.go",
     "i := max(0, n-hops)", "i := 0",
     "./api/internal/httpapi", "TestSpoofedForwardedForPrefixes"),
    # Issue 19: no secret guessed, no prefix with a budget of its own.
    ("client-secret failures checked before comparing", "api/internal/httpapi/api.go",
     "\tif err := s.clientAuthBlocked(r, c); err != nil {\n\t\treturn nil, cred, err\n\t}\n\tif subtle", "\tif subtle",
     "./api", "TestClientSecretGuessingLimited"),
    ("client-secret failures counted per address", "api/internal/httpapi/api.go",
     "overAddr, retryAddr := s.Limiter.FailAddr(ctx, limitClientAuth, s.RateClientAuth, ip)", "overAddr, retryAddr := false, time.Duration(0)",
     "./api", "TestClientSecretGuessingLimited"),
    ("client-secret failures counted per client", "api/internal/httpapi/api.go",
     "overClient, retryClient := s.Limiter.Fail(ctx, limitClientAuthClient, s.RateClientAuthClient, c.ID)", "overClient, retryClient := false, time.Duration(0)",
     "./api", "TestClientSecretGuessingLimitedPerClient"),
    ("client-secret budgets wired", "api/main.go",
     "RateClientAuth: cfg.RateClientAuth, RateClientAuthClient: cfg.RateClientAuthClient,", "",
     "./api", "TestClientSecretGuessingLimited"),
    ("client-secret failures logged", "api/internal/httpapi/api.go",
     's.Logger.WarnContext(ctx, "client authentication failed", "client_id", c.ID, "address", ip.String())', "_ = ip",
     "./api", "TestClientSecretGuessingLimited"),
    ("the budget's last failure blocks the next try", "api/internal/ratelimit/ratelimit.go",
     "\tif n < rule.Limit {\n\t\treturn false, 0\n\t}", "\tif n <= rule.Limit {\n\t\treturn false, 0\n\t}",
     "./api", "TestClientSecretGuessingLimited"),
    ("passthrough secret: budget checked before the provider", "api/internal/httpapi/api.go",
     "\t\t\tif err := s.clientAuthBlocked(r, c); err != nil {\n\t\t\t\treturn nil, cred, err\n\t\t\t}\n", "",
     "./api/internal/httpapi", "TestPassthroughSecretGuessingLimited"),
    ("passthrough secret: refusals counted", "api/internal/httpapi/api.go",
     "_ = s.clientAuthFailed(ctx, ip, c)", "_ = ip", "./api/internal/httpapi", "TestPassthroughSecretGuessingLimited"),
    ("client secret compared in constant time", "api/internal/httpapi/api.go",
     "if subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {", "if _ = subtle.ConstantTimeCompare; secret != c.Secret {",
     "./api/internal/httpapi", "TestClientSecretComparedInConstantTime"),
    ("weak client secrets refused at start", "api/internal/config/clients.go",
     "} else if bits := SecretBits(cl.Secret); bits < MinSecretBits {", "} else if bits := SecretBits(cl.Secret); false && bits < MinSecretBits {",
     "./api/internal/config", "TestWeakClientSecretRefused"),
    ("IPv6 counted per /56 and /48", "api/internal/ratelimit/ratelimit.go",
     "return []Prefix{{p64.String(), 1}, {p56.String(), 4}, {p48.String(), 8}}", "return []Prefix{{p64.String(), 1}, {p56.String(), 1 << 20}, {p48.String(), 1 << 20}}",
     "./api", "TestPrefixBudgetsThroughTheWiring"),
    ("IPv4 counted per /24", "api/internal/ratelimit/ratelimit.go",
     "return []Prefix{{ip.String(), 1}, {p24.String(), 8}}", "return []Prefix{{ip.String(), 1}, {p24.String(), 1 << 20}}",
     "./api/internal/ratelimit", "TestNestedPrefixesShareABudget"),
    ("every network of the address counted", "api/internal/httpapi/router.go",
     "return s.Limiter.AllowAddr(r.Context(), name, rule, s.clientIP(r))", "return s.Limiter.Allow(r.Context(), name, rule, ratelimit.Key(s.clientIP(r)))",
     "./api", "TestPrefixBudgetsThroughTheWiring"),
    ("junk polls refused before the store", "api/internal/httpapi/api.go",
     "if b, retry := s.Limiter.BlockedAddr(limitPollMisses, ip); b {", "if b, retry := s.Limiter.BlockedAddr(limitPollMisses, ip); false && b {",
     "./api/internal/httpapi", "TestJunkPollsLimitedBeforeTheStore"),
    ("junk polls counted", "api/internal/httpapi/api.go",
     "if outcome == deviceflow.OutcomeUnknown {", "if false && outcome == deviceflow.OutcomeUnknown {",
     "./api/internal/httpapi", "TestJunkPollsLimitedBeforeTheStore"),
    ("poll-miss and code-miss budgets wired", "api/main.go",
     "RatePollMisses: cfg.RatePollMisses, RateCodeMisses: cfg.RateCodeMisses,", "",
     "./api", "TestJunkPollsThroughTheWiring|TestCodeMissCeilingThroughTheWiring"),
    ("code-miss ceiling slows every address", "api/internal/httpapi/verify.go",
     "if b, _ := s.Limiter.Blocked(limitCodeMisses, deploymentKey); b {", "if b, _ := s.Limiter.Blocked(limitCodeMisses, deploymentKey); false && b {",
     "./api/internal/httpapi", "TestCodeMissCeilingSlowsEveryAddress"),
    ("code misses counted against the ceiling", "api/internal/httpapi/verify.go",
     "\t\ts.codeMissed(r)\n", "", "./api/internal/httpapi", "TestCodeMissCeilingSlowsEveryAddress"),
    ("crossing the ceiling logged", "api/internal/httpapi/verify.go",
     's.Logger.ErrorContext(r.Context(), "ceiling of failed user-code lookups crossed', 's.Logger.DebugContext(r.Context(), "ceiling of failed user-code lookups crossed',
     "./api/internal/httpapi", "TestCodeMissCeilingSlowsEveryAddress"),
    ("public URL origin normalised", "api/internal/config/config.go",
     "\tu.Host = host\n", "", "./api", "TestPublicURLWithDefaultPort"),
    ("poll tolerance a fraction of the interval", "api/internal/deviceflow/poll.go",
     "return min(time.Second, interval/5)", "return time.Second",
     "./api/internal/deviceflow", "TestFastestIntervalStillSlowsDown"),
    ("a binding under the previous key moves to the current one", "api/internal/deviceflow/refresh.go",
     "target := g.current", "target := g.binding.ID",
     "./api", "TestKeyRotationKeepsDevicesSignedIn"),
    ("limits survive a failing counter", "api/internal/ratelimit/ratelimit.go",
     'n, reset, _ = l.local.Incr(ctx, name+"|"+key, rule.Window)', "n, reset = 1, time.Now()",
     "./api/internal/ratelimit", "TestCounterFailureFallsBackToLocal"),
    ("limits survive a failing counter: an address's networks", "api/internal/ratelimit/ratelimit.go",
     'counts, reset, _ = l.local.IncrMember(ctx, name+"|"+group, member, rule.Window)', "counts, reset = map[string]int{member: 1}, time.Now()",
     "./api/internal/ratelimit", "TestCounterFailureFallsBackToLocal"),
    ("a network counted with its members takes each only up to its own limit", "api/internal/ratelimit/ratelimit.go",
     "\t\tsum += min(n, narrow.Limit)\n", "\t\tsum += n\n",
     "./api/internal/ratelimit", "TestNestedPrefixesShareABudget"),
    ("slow_down capped at the code's life", "api/internal/deviceflow/poll.go",
     "return max(1, min(r.Interval+int(SlowDownStep/time.Second), left))",
     "return max(left-left+1, r.Interval+int(SlowDownStep/time.Second))",
     "./api/internal/deviceflow", "TestSlowDownNeverOutlivesTheCode"),
    ("PKCE verifier and passthrough code sealed", "api/internal/deviceflow/service.go",
     "b, err := s.c.Sealer.Seal([]byte(v), []byte(recordID))", "b, err := []byte(v), error(nil)",
     "./api/internal/deviceflow", "TestSealedValuesOpenOnlyWithTheSealer"),
    ("delivered marked in the swap", "api/internal/deviceflow/service.go",
     "\t\tr.Status = store.StatusDelivered\n\t\tr.Token = nil\n", "\t\t_ = store.StatusDelivered\n\t\tr.Token = nil\n",
     "./api/internal/deviceflow", "TestDeliveredOnceAndRemembered"),
    ("memory store holds its lock across Update", "api/internal/store/memory/memory.go",
     "\tif err := fn(cur); err != nil {\n\t\treturn nil, err\n\t}\n\tcur.ID, cur.UserCodeHash = oldID, oldUser",
     "\ts.mu.Unlock()\n\tferr := fn(cur)\n\ts.mu.Lock()\n\tif ferr != nil {\n\t\treturn nil, ferr\n\t}\n\tcur.ID, cur.UserCodeHash = oldID, oldUser",
     "./api/internal/store/memory", "TestConformance/UpdateIsAtomicAgainstInterleavedWrite"),
    ("key file readable by others refused", "api/internal/seal/keyfile.go",
     'if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {',
     'if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS == "plan9" {',
     "./api/internal/seal", "TestKeyFileGuarded"),
    ("key file link refused", "api/internal/seal/keyfile.go",
     "} else if fi.Mode()&fs.ModeSymlink != 0 {", "} else if false && fi.Mode()&fs.ModeSymlink != 0 {", "./api/internal/seal", "TestKeyFileGuarded"),
    ("pages not cached", "api/internal/pages/pages.go",
     '\th.Set("Pragma", "no-cache")\n', "", "./api/internal/httpapi", "TestSecurityHeaders"),
    ("translated message with names escaped", "api/i18n/i18n.go",
     'v = "<strong>" + html.EscapeString(v) + "</strong>"', 'v = "<strong>" + v + "</strong>"',
     "./api/i18n", "TestFillEscapes"),
    # Revocation (RFC 7009) and the operator's device list.
    ("revoke: the client must own the binding", "api/internal/deviceflow/refresh.go",
     "if same != 1 {", "if false && same != 1 {", "./api/internal/httpapi", "TestRevokeOtherClientsTokenIsNoOp"),
    ("revoke: client authenticated before revoking", "api/internal/httpapi/revoke.go",
     "c, cred, err := s.authenticateClient(r, form)",
     'c, cred, err := s.authenticateClient(r, form)\n\tif err != nil {\n\t\tc, _ = s.Clients(form.Get("client_id"))\n\t\terr = nil\n\t}',
     "./api/internal/httpapi", "TestRevokeAuthenticatesFirst"),
    ("revoke: limited per address", "api/internal/httpapi/revoke.go",
     'if ok, retry := s.allow(r, "refresh", s.RateRefresh); !ok {',
     'if ok, retry := s.allow(r, "refresh", s.RateRefresh); false && !ok {',
     "./api/internal/httpapi", "TestRevokeRateLimited"),
    ("revoke: limited per client", "api/internal/httpapi/revoke.go",
     'if ok, retry := s.Limiter.Allow(r.Context(), "refresh-client", s.RateRefreshClient, c.ID); !ok {',
     'if ok, retry := s.Limiter.Allow(r.Context(), "refresh-client", s.RateRefreshClient, c.ID); false && !ok {',
     "./api/internal/httpapi", "TestRevokePerClientLimit"),
    ("revoke: at the provider too", "api/internal/httpapi/revoke.go",
     "if err := up.Revoke(ctx, tok); err != nil {", "if err := error(nil); err != nil {",
     "./api/internal/httpapi", "TestRevokeEndsRefresh"),
    ("revoke: a passthrough secret the provider refuses is counted", "api/internal/httpapi/revoke.go",
     "if err := s.clientAuthFailed(ctx, s.clientIP(r), c); err != nil {", "if err := error(nil); err != nil {",
     "./api/internal/httpapi", "TestRevokePassthrough"),
    ("devices: the id is no binding key", "api/internal/deviceflow/devices.go",
     "return s.c.Hasher.Hash(kindDeviceID, bindingID)[:deviceIDLen]", "return bindingID",
     "./api/internal/httpapi", "TestDevicesListAndDisconnect"),
    ("my devices: the list keeps the account's own", "api/internal/deviceflow/account.go",
     "\t\tif a.owns(b) {\n\t\t\tout = append(out, s.device(b))", "\t\tif true {\n\t\t\tout = append(out, s.device(b))",
     "./api/internal/httpapi", "TestDevicesListsOnlyTheAccountsOwn"),
    ("my devices: another account's device refused", "api/internal/deviceflow/account.go",
     "if a.owns(b) && s.deviceID(b.ID) == id {", "if s.deviceID(b.ID) == id {",
     "./api/internal/httpapi", "TestDevicesRefusesAnotherAccountsDevice"),
    ("my devices: form token checked", "api/internal/httpapi/account.go",
     'if sess == nil || !s.Service.CheckFormToken(sess, form.Get("csrf")) {', "if sess == nil {",
     "./api/internal/httpapi", "TestDevicesRefusesForgedPosts"),
    ("my devices: form token bound to the session", "api/internal/deviceflow/account.go",
     "return s.c.Hasher.Hash(kindAccountCSRF, a.cookie)", 'return s.c.Hasher.Hash(kindAccountCSRF, "")',
     "./api/internal/httpapi", "TestDevicesRefusesForgedPosts"),
    ("my devices: foreign Origin refused", "api/internal/httpapi/account.go",
     "if err != nil || !s.sameOrigin(r) {", "if err != nil {",
     "./api/internal/httpapi", "TestDevicesRefusesForgedPosts"),
    ("my devices: callback needs this browser's login state", "api/internal/httpapi/account.go",
     'subtle.ConstantTimeCompare([]byte(state), []byte(r.URL.Query().Get("state"))) != 1 {', "subtle.ConstantTimeCompare(nil, nil) != 1 {",
     "./api/internal/httpapi", "TestDevicesSessionCannotBeFixedOrForged"),
    ("my devices: session MAC checked", "api/internal/deviceflow/account.go",
     "if subtle.ConstantTimeCompare([]byte(mac), []byte(s.c.Hasher.Hash(kindAccountSession, payload))) != 1 {", "if mac == \"\" {",
     "./api/internal/httpapi", "TestDevicesSessionCannotBeFixedOrForged"),
    ("my devices: session expires", "api/internal/deviceflow/account.go",
     "if err != nil || !s.c.Now().Before(time.Unix(exp, 0)) {", "if err != nil {",
     "./api/internal/httpapi", "TestDevicesSessionCannotBeFixedOrForged"),
    ("my devices: the person's-side budget", "api/internal/httpapi/account.go",
     'if ok, retry := s.allow(r, "devices", s.RateVerify); !ok {', 'if ok, retry := s.allow(r, "devices", s.RateVerify); false && !ok {',
     "./api/internal/httpapi", "TestDevicesRateLimited"),
    ("my devices: the session knows the account under every key in use", "api/internal/deviceflow/account.go",
     "\tfor _, h := range s.hashers() {\n\t\thashes = append(hashes, h.Hash(kindAccount, accountInput(upstream, account)))",
     "\tfor _, h := range s.hashers()[:1] {\n\t\thashes = append(hashes, h.Hash(kindAccount, accountInput(upstream, account)))",
     "./api/internal/deviceflow", "TestAccountDuringKeyRotation"),
    ("my devices: PKCE on the sign-in", "api/internal/httpapi/account.go",
     "t, err := up.Exchange(ctx, q.Get(\"code\"), s.Service.AccountVerifier(state))", "t, err := up.Exchange(ctx, q.Get(\"code\"), \"\")",
     "./api/internal/httpapi", "TestDevicesListsOnlyTheAccountsOwn"),
    ("form outcomes: Deny by POST/redirect/GET", "api/internal/httpapi/verify.go",
     "return s.redirectWithFlash(w, r, flash{Status: http.StatusOK, Kind: pages.ResultDenied})",
     "return s.Pages.Result(w, http.StatusOK, pages.Locale{Lang: langOf(r)}, pages.ResultData{Kind: pages.ResultDenied})",
     "./api/internal/httpapi", "TestVerifyOutcomesArePostRedirectGet"),
    ("form outcomes: a refused form by POST/redirect/GET", "api/internal/httpapi/router.go",
     "\t\tif r.Method == http.MethodPost {\n\t\t\t// A form's failure", "\t\tif false {\n\t\t\t// A form's failure",
     "./api/internal/httpapi", "TestVerifyOutcomesArePostRedirectGet"),
    ("form outcomes: Disconnect by POST/redirect/GET", "api/internal/httpapi/account.go",
     "return s.redirectWithFlash(w, r, flash{Status: http.StatusOK, Done: name})",
     "return s.Pages.Devices(w, http.StatusOK, pages.Locale{Lang: langOf(r)}, pages.DevicesData{View: pages.DevicesDone, DoneDevice: name})",
     "./api/internal/httpapi", "TestDisconnectIsPostRedirectGet"),
    ("form outcomes: the flash's MAC checked", "api/internal/httpapi/flash.go",
     "|| !s.Service.CheckFlashMAC(note, mac) {", '|| mac == "x" {',
     "./api/internal/httpapi", "TestFlashIsBoundAndShortLived"),
    ("form outcomes: the flash is short-lived", "api/internal/httpapi/flash.go",
     "|| age > flashLifetime ", "",
     "./api/internal/httpapi", "TestFlashIsBoundAndShortLived"),
    ("cosmos pacing overlays bounded", "api/internal/store/cosmos/pacing.go",
     "\t\tp.shed(now)\n", "", "./api/internal/store/cosmos", "TestPacerIsBounded"),
]

# Issue 19, "a test behind every protection": SECURITY.md's table line by
# line, and the defaults it relies on.
HA, DF, MAIN = "./api/internal/httpapi", "./api/internal/deviceflow", "./api"
MUTANTS += [
    # CSRF on the confirmation
    ("decision with an empty form token refused", "api/internal/httpapi/verify.go",
     "if !wellFormedToken(cookie) || !s.Service.CheckDecisionToken(cookie, recordID, token) {",
     'if !wellFormedToken(cookie) || token != "" && !s.Service.CheckDecisionToken(cookie, recordID, token) {',
     HA, "TestDecisionNeedsItsFormToken"),
    ("decision token check refuses an empty token", "api/internal/deviceflow/refresh.go",
     "\treturn ok == 1\n}", '\treturn ok == 1 || presented == ""\n}', HA, "TestDecisionNeedsItsFormToken"),
    ("foreign Sec-Fetch-Site refused", "api/internal/httpapi/verify.go",
     'if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {',
     'if site := r.Header.Get("Sec-Fetch-Site"); false && site != "" {', HA, "TestVerifyInputs"),
    ("cookies __Host- over https", "api/internal/httpapi/verify.go",
     'return "__Host-" + base', "return base", HA, "TestCookiesOverHTTPS"),
    ("cookies Secure over https", "api/internal/httpapi/verify.go",
     "Secure:   s.secure,", "Secure:   false,", HA, "TestCookiesOverHTTPS"),
    ("cookies HttpOnly", "api/internal/httpapi/verify.go",
     "HttpOnly: true,", "HttpOnly: false,", HA, "TestCookiesOverHTTPS"),
    ("cookies SameSite=Lax", "api/internal/httpapi/verify.go",
     "SameSite: http.SameSiteLaxMode,", "SameSite: http.SameSiteNoneMode,", HA, "TestCookiesOverHTTPS"),
    ("cookies read only under the __Host- name", "api/internal/httpapi/verify.go",
     "\tc, err := r.Cookie(s.cookieName(name))\n\tif err != nil {",
     "\tc, err := r.Cookie(s.cookieName(name))\n\tif err != nil {\n\t\tc, err = r.Cookie(name)\n\t}\n\tif err != nil {",
     HA, "TestHTTPSCookieWithoutPrefixIgnored"),
    ("HSTS over https", "api/internal/httpapi/router.go",
     "\t\tif isSecure {", "\t\tif false && isSecure {", HA, "TestCookiesOverHTTPS"),
    # client authentication
    ("client secret: a prefix refused", "api/internal/httpapi/api.go",
     "if subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {",
     "if _ = subtle.ConstantTimeCompare; !strings.HasPrefix(c.Secret, secret) {", HA, "TestClientSecretComparedWhole"),
    ("client secret: case counts", "api/internal/httpapi/api.go",
     "if subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {",
     "if _ = subtle.ConstantTimeCompare; !strings.EqualFold(secret, c.Secret) {", HA, "TestClientSecretComparedWhole"),
    ("client secret compared in constant time (the source check of every comparison)", "api/internal/httpapi/api.go",
     "if subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {",
     "if _ = subtle.ConstantTimeCompare; secret != c.Secret {", MAIN, "TestSecretsComparedInConstantTime"),
    ("callback state compared in constant time", "api/internal/httpapi/verify.go",
     "if subtle.ConstantTimeCompare([]byte(state), []byte(cookieState)) != 1 {",
     "if _ = subtle.ConstantTimeCompare; state != cookieState {", MAIN, "TestSecretsComparedInConstantTime"),
    ("decision token compared in constant time", "api/internal/deviceflow/refresh.go",
     "ok |= subtle.ConstantTimeCompare([]byte(presented), []byte(h.Hash(kindDecision, decisionInput(browserToken, recordID))))",
     "if presented == h.Hash(kindDecision, decisionInput(browserToken, recordID)) {\n\t\t\tok = 1\n\t\t}",
     MAIN, "TestSecretsComparedInConstantTime"),
    ("stored state hash compared in constant time", "api/internal/deviceflow/service.go",
     "match |= subtle.ConstantTimeCompare([]byte(r.StateHash), []byte(h.Hash(kindState, state)))",
     "_ = subtle.ConstantTimeCompare\n\t\t\tif r.StateHash == h.Hash(kindState, state) {\n\t\t\t\tmatch = 1\n\t\t\t}",
     MAIN, "TestSecretsComparedInConstantTime"),
    ("refresh binding compared in constant time", "api/internal/deviceflow/refresh.go",
     "same := subtle.ConstantTimeCompare([]byte(b.ClientID), []byte(clientID)) &\n\t\tsubtle.ConstantTimeCompare([]byte(b.Upstream), []byte(upstream))",
     "same := 0\n\tif b.ClientID == clientID && b.Upstream == upstream {\n\t\tsame = 1\n\t}",
     MAIN, "TestSecretsComparedInConstantTime"),
    # client addresses, through run()
    ("DEVICEGATE_TRUSTED_PROXY defaults to false", "api/internal/config/config.go",
     'c.TrustedProxy = l.boolean("DEVICEGATE_TRUSTED_PROXY", false)', 'c.TrustedProxy = l.boolean("DEVICEGATE_TRUSTED_PROXY", true)',
     MAIN, "TestClientAddressThroughTheWiring"),
    ("DEVICEGATE_TRUSTED_PROXY_HOPS defaults to 1", "api/internal/config/config.go",
     "\tc.ProxyHops = 1\n", "\tc.ProxyHops = 2\n", MAIN, "TestClientAddressThroughTheWiring"),
    ("X-Forwarded-For ignored unless trusted (wiring)", "api/main.go",
     "\tif !cfg.TrustedProxy {\n", "\tif false {\n", MAIN, "TestClientAddressThroughTheWiring"),
    ("X-Forwarded-For ignored unless trusted (rate-limit key)", "api/internal/httpapi/router.go",
     "\treturn ratelimit.ClientIP(r, s.ProxyHops)\n", "\treturn ratelimit.ClientIP(r, 1)\n",
     MAIN, "TestClientAddressThroughTheWiring"),
    # default limits and lifetimes
    ("default DEVICEGATE_RATE_VERIFY 20/10m", "api/internal/config/config.go",
     'l.rule("DEVICEGATE_RATE_VERIFY", "20/10m")', 'l.rule("DEVICEGATE_RATE_VERIFY", "40/10m")', MAIN, "TestClientAddressThroughTheWiring"),
    ("default DEVICEGATE_RATE_AUTHORIZE 30/10m", "api/internal/config/config.go",
     'l.rule("DEVICEGATE_RATE_AUTHORIZE", "30/10m")', 'l.rule("DEVICEGATE_RATE_AUTHORIZE", "60/10m")', MAIN, "TestDefaultLimitsThroughTheWiring"),
    ("default DEVICEGATE_RATE_REFRESH 30/10m", "api/internal/config/config.go",
     'l.rule("DEVICEGATE_RATE_REFRESH", "30/10m")', 'l.rule("DEVICEGATE_RATE_REFRESH", "60/10m")', MAIN, "TestDefaultLimitsThroughTheWiring"),
    ("default DEVICEGATE_RATE_REFRESH_CLIENT 600/10m", "api/internal/config/config.go",
     'l.rule("DEVICEGATE_RATE_REFRESH_CLIENT", "600/10m")', 'l.rule("DEVICEGATE_RATE_REFRESH_CLIENT", "1200/10m")', MAIN, "TestDefaultLimitsThroughTheWiring"),
    ("the verify limit wired", "api/main.go", "RateVerify: cfg.RateVerify,", "", MAIN, "TestClientAddressThroughTheWiring"),
    ("the refresh limits wired", "api/main.go",
     "RateRefresh: cfg.RateRefresh, RateRefreshClient: cfg.RateRefreshClient,", "", MAIN, "TestDefaultLimitsThroughTheWiring"),
    ("the authorize limit wired", "api/main.go", "RateAuthorize: cfg.RateAuthorize,", "", MAIN, "TestDefaultLimitsThroughTheWiring"),
    ("the authorize limit applied", "api/internal/httpapi/api.go",
     'if ok, retry := s.allow(r, "authorize", s.RateAuthorize); !ok {', 'if ok, retry := s.allow(r, "authorize", s.RateAuthorize); false && !ok {',
     HA, "TestRateLimits"),
    ("the verify limit applied to showing a code", "api/internal/httpapi/verify.go",
     'if ok, retry := s.allow(r, "verify", s.RateVerify); !ok {', 'if ok, retry := s.allow(r, "verify", s.RateVerify); !ok && action != "" {',
     HA, "TestRateLimits"),
    ("default refresh lifetime 90 days (config)", "api/internal/config/config.go",
     'l.duration("DEVICEGATE_REFRESH_LIFETIME", 90*24*time.Hour,', 'l.duration("DEVICEGATE_REFRESH_LIFETIME", 180*24*time.Hour,',
     "./api/internal/config", "TestDefaults"),
    ("default refresh lifetime 90 days (core)", "api/internal/deviceflow/refresh.go",
     "const DefaultRefreshLifetime = 90 * 24 * time.Hour", "const DefaultRefreshLifetime = 180 * 24 * time.Hour", DF, "TestBindingLapsesWithoutRefresh"),
    ("a binding never refreshed lapses", "api/internal/deviceflow/refresh.go",
     "Scopes: slices.Clone(scopes), ExpiresAt: s.c.Now().Add(s.c.RefreshLifetime),",
     "Scopes: slices.Clone(scopes), ExpiresAt: s.c.Now().Add(2 * s.c.RefreshLifetime),", DF, "TestBindingLapsesWithoutRefresh"),
    ("a refresh renews its binding", "api/internal/deviceflow/refresh.go",
     "\t\terr = s.c.Store.PutBinding(ctx, next)\n", "\t\t_ = next\n", DF, "TestRefreshBinding"),
    ("the memory store refuses an expired binding", "api/internal/store/memory/binding.go",
     "if !ok || b.Expired(s.now()) {", "if !ok {", "./api/internal/store/memory", "TestConformance/Binding"),
    # mix-up and PKCE
    ("RFC 9207 issuer kept at discovery", "api/internal/upstream/discover.go",
     "Issuer:        d.Issuer,", 'Issuer:        "",', "./api/internal/upstream", "TestDiscoveredIssuerGuardsTheCallback"),
    ("RFC 9207 iss promise kept at discovery", "api/internal/upstream/discover.go",
     "IssParameter:  d.IssParameterSupported,", "IssParameter:  false,", "./api/internal/upstream", "TestDiscoveredIssuerGuardsTheCallback"),
    ("RFC 9207 iss required when promised", "api/internal/upstream/upstream.go",
     "\t\treturn !p.preset.IssParameter\n", "\t\treturn true\n", "./api/internal/upstream", "TestCheckIssuer"),
    ("the callback checks iss", "api/internal/httpapi/verify.go",
     "if !sameCallback(r.URL.Path, up.RedirectURL()) || !up.CheckIssuer(q.Get(\"iss\")) {",
     "if !sameCallback(r.URL.Path, up.RedirectURL()) {", HA, "TestCallbackChecksTheIssuer"),
    ("PKCE from discovery", "api/internal/upstream/discover.go",
     'PKCE:          slices.Contains(d.CodeChallengeMethodsSupported, "S256"),', "PKCE:          false,",
     "./api/internal/upstream", "TestDiscover$"),
    ("PKCE verifier of 43 characters", "api/internal/deviceflow/service.go",
     "verifier, err := randomToken(s.c.Rand, 32)", "verifier, err := randomToken(s.c.Rand, 24)", HA, "TestFullFlow"),
    # codes
    ("user-code alphabet", "api/internal/deviceflow/codes.go",
     'const UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"', 'const UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXA"', DF, "TestNewUserCodeAlphabetAndLength"),
    ("user-code length", "api/internal/deviceflow/codes.go",
     "const UserCodeLength = 8", "const UserCodeLength = 6", DF, "TestNewUserCodeAlphabetAndLength"),
    ("device-code entropy", "api/internal/deviceflow/codes.go",
     "const deviceCodeBytes = 32", "const deviceCodeBytes = 8", DF, "TestNewDeviceCode"),
    ("codes stored hashed", "api/internal/deviceflow/codes.go",
     "func (h *Hasher) Hash(kind, code string) string {\n", "func (h *Hasher) Hash(kind, code string) string {\n\tif kind != kindDecision {\n\t\treturn kind + \"-\" + code\n\t}\n",
     DF, "TestSecretsAreSealedAtRest"),
    ("code lifetime default 10 minutes", "api/internal/config/config.go",
     'l.duration("DEVICEGATE_CODE_LIFETIME", 10*time.Minute,', 'l.duration("DEVICEGATE_CODE_LIFETIME", 30*time.Minute,',
     "./api/internal/config", "TestDefaults"),
    ("an expired code is refused at the poll", "api/internal/deviceflow/poll.go",
     "\tcase r.Expired(now):\n\t\treturn OutcomeExpired\n", "\tcase false:\n\t\treturn OutcomeExpired\n", DF, "TestDecide"),
    ("five failures lock (default)", "api/internal/deviceflow/service.go",
     "const DefaultMaxFailures = 5", "const DefaultMaxFailures = 8", HA, "TestLockoutAfterFailedConfirmations"),
    ("tokens sealed at rest", "api/internal/deviceflow/service.go",
     "box, err := s.c.Sealer.Seal(b, []byte(recordID))", "box, err := b, error(nil)", DF, "TestSecretsAreSealedAtRest"),
    ("the record kept as a tombstone after delivery", "api/internal/deviceflow/service.go",
     "\tvar t Tokens\n\tplain, err := s.c.Sealer.Open(token, []byte(id))",
     "\t_ = s.c.Store.Delete(ctx, id)\n\tvar t Tokens\n\tplain, err := s.c.Sealer.Open(token, []byte(id))",
     DF, "TestDeliveredOnceAndRemembered"),
    # Cosmos ttl
    ("Cosmos: record ttl", "api/internal/store/cosmos/cosmos.go",
     "\treturn max(1, int((left+time.Second-1)/time.Second))\n", "\treturn -1 + 0*int(left)\n",
     "./api/internal/store/cosmos", "TestTTLFollowsTheRecord"),
    ("Cosmos: binding ttl", "api/internal/store/cosmos/binding.go",
     "TTL: max(1, int((left+time.Second-1)/time.Second))}", "TTL: -1 + 0*int(left/time.Second)}",
     "./api/internal/store/cosmos", "TestTTLOnBindingsAndCounters"),
    ("Cosmos: record writes compare-and-swap on the ETag (Update, UpdateKnown)", "api/internal/store/cosmos/cosmos.go",
     "&azcosmos.ItemOptions{IfMatchEtag: &etag})", "(*azcosmos.ItemOptions)(nil))",
     "./api/internal/store/cosmos", "TestConformance|TestContentionRetriesOnETag"),
    ("Cosmos: a write over a stale known read goes on as Update", "api/internal/store/cosmos/cosmos.go",
     "\tcase err == nil:\n\t\treturn cur, nil\n", "\tcase err == nil || status(err) == http.StatusPreconditionFailed:\n\t\treturn cur, nil\n",
     "./api/internal/store/cosmos", "TestConformance"),
    ("Cosmos: rate counter ttl", "api/internal/store/cosmos/cosmos.go",
     "TTL: max(1, int(reset.Sub(now)/time.Second)+60)}", "TTL: -1}",
     "./api/internal/store/cosmos", "TestTTLOnBindingsAndCounters"),
    # the server and the key file
    ("server ReadHeaderTimeout", "api/internal/serve/serve.go", "\t\tReadHeaderTimeout: 5 * time.Second,\n", "", MAIN, "TestServerLimits"),
    ("server ReadTimeout", "api/internal/serve/serve.go", "\t\tReadTimeout:       15 * time.Second,\n", "", MAIN, "TestServerLimits"),
    ("server WriteTimeout", "api/internal/serve/serve.go", "\t\tWriteTimeout:      40 * time.Second,\n", "", MAIN, "TestServerLimits"),
    ("server IdleTimeout", "api/internal/serve/serve.go", "\t\tIdleTimeout:       90 * time.Second,\n", "", MAIN, "TestServerLimits"),
    ("server header cap", "api/internal/serve/serve.go", "\t\tMaxHeaderBytes:    32 << 10,\n", "", MAIN, "TestServerLimits"),
    ("key file read with O_NOFOLLOW", "api/internal/seal/keyfile.go",
     "f, err := os.OpenFile(path, os.O_RDONLY|oNoFollow, 0)", "f, err := os.OpenFile(path, os.O_RDONLY, 0)",
     "./api/internal/seal", "TestKeyFileLinkSwappedInAfterTheCheck"),
    ("key file created 0600", "api/internal/seal/keyfile.go",
     "os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)", "os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, 0o644)",
     "./api/internal/seal", "TestKeyFileIsCreatedOnceWithMode0600"),
    ("a key is required in production", "api/internal/config/config.go",
     'if c.SecretKey == nil && l.get("DEVICEGATE_SECRET_KEY") == "" &&', 'if false && c.SecretKey == nil &&', "./api/internal/config", "TestProductionNeedsAKey"),
    # headers on every answer
    ("X-Frame-Options on every answer", "api/internal/httpapi/router.go",
     '\t\th["X-Frame-Options"] = deny\n', "\t\t_ = deny\n", HA, "TestEveryAnswerCarriesSecurityHeaders"),
    ("X-Content-Type-Options on every answer", "api/internal/httpapi/router.go",
     '\t\th["X-Content-Type-Options"] = nosniff\n', "\t\t_ = nosniff\n", HA, "TestEveryAnswerCarriesSecurityHeaders"),
    ("Referrer-Policy on every answer", "api/internal/httpapi/router.go",
     '\t\th["Referrer-Policy"] = noRef\n', "\t\t_ = noRef\n", HA, "TestEveryAnswerCarriesSecurityHeaders"),
    ("Cross-Origin-Opener-Policy on every answer", "api/internal/httpapi/router.go",
     '\t\th["Cross-Origin-Opener-Policy"] = coop\n', "\t\t_ = coop\n", HA, "TestEveryAnswerCarriesSecurityHeaders"),
    ("Permissions-Policy on every answer", "api/internal/httpapi/router.go",
     '\t\th["Permissions-Policy"] = perms\n', "\t\t_ = perms\n", HA, "TestEveryAnswerCarriesSecurityHeaders"),
    ("the API's own CSP", "api/internal/httpapi/router.go",
     "\t\t\tcsp = apiCSP\n", "\t\t\t_ = apiCSP\n", HA, "TestEveryAnswerCarriesSecurityHeaders"),
    ("CSP frame-ancestors on pages", "api/internal/httpapi/router.go",
     "\"; frame-ancestors 'none'; base-uri 'none'\"", "\"; base-uri 'none'\"", HA, "TestEveryAnswerCarriesSecurityHeaders"),
    ("CSP: no inline script on pages", "api/internal/httpapi/router.go",
     "script-src 'self'; style-src 'self';", "script-src 'self' 'unsafe-inline'; style-src 'self';", HA, "TestEveryAnswerCarriesSecurityHeaders"),
    ("no-store on every API answer", "api/internal/oauth/oauth.go",
     '\th["Content-Type"] = jsonType\n\tNoStore(h)\n', '\th["Content-Type"] = jsonType\n', HA, "TestEveryAnswerCarriesSecurityHeaders"),
    ("no-store on pages", "api/internal/pages/pages.go",
     '\th.Set("Cache-Control", "no-store")\n', "", HA, "TestEveryAnswerCarriesSecurityHeaders"),
    # requests
    ("form bodies capped at 16 KiB", "api/internal/httpapi/api.go",
     "const maxFormBytes = 16 << 10", "const maxFormBytes = 16 << 20", HA, "TestMalformedRequests"),
    ("form-encoded bodies only", "api/internal/httpapi/api.go",
     "if err != nil || mt != formType {", "if _ = mt; err != nil {", HA, "TestFormBodiesOnly"),
    ("repeated parameters refused", "api/internal/httpapi/api.go",
     "\t\tif len(v) > 1 {\n", "\t\tif false && len(v) > 1 {\n", HA, "TestMalformedRequests"),
    ("query parameters not read as the form", "api/internal/httpapi/api.go",
     "\t\tif _, qerr := url.ParseQuery(r.URL.RawQuery); err == nil {\n",
     "\t\tq, qerr := url.ParseQuery(r.URL.RawQuery)\n\t\tfor k, v := range q {\n\t\t\tform[k] = append(form[k], v...)\n\t\t}\n\t\tif err == nil {\n",
     HA, "TestQueryParametersNotRead"),
    ("scopes beyond the client's list refused at authorize", "api/internal/httpapi/api.go",
     "\t\tif !c.AllowsScope(sc) {\n\t\t\treturn nil, oauth.ErrInvalidScope", "\t\tif false {\n\t\t\treturn nil, oauth.ErrInvalidScope",
     HA, "TestMalformedRequests"),
    ("a device code polled by another client refused", "api/internal/deviceflow/service.go",
     "\tif r.ClientID != p.clientID {\n\t\treturn errWrongClient", "\tif false {\n\t\treturn errWrongClient",
     DF, "TestPollErrors"),
    # remote phishing: what the person sees before approving (RFC 8628 §5.4)
    ("the phishing warning on the confirmation", "api/internal/pages/templates/confirm.html",
     '<p class="warning" role="note"><strong>{{$l.T "confirm.warning_strong"}}</strong>{{$l.SentenceGap}}{{$l.T "confirm.warning_rest"}}</p>\n',
     "", "./api/internal/pages", "TestConfirm"),
    ("the code shown for comparison", "api/internal/pages/templates/confirm.html",
     '  <p class="code" aria-label="{{$l.T "confirm.code_label" "code" $d.UserCode}}">{{$d.UserCode}}</p>\n', "", "./api/internal/pages", "TestConfirm"),
    ("the provider named on the confirmation", "api/internal/pages/templates/confirm.html",
     '{{$l.TStrong "confirm.lead" "client" $d.ClientName "provider" $d.ProviderName}}', '{{$l.TStrong "confirm.lead" "client" $d.ClientName "provider" ""}}', "./api/internal/pages", "TestConfirm"),
    ("pages escaped by html/template", "api/internal/pages/pages.go",
     '\t"html/template"\n', '\t"text/template"\n', "./api/internal/pages", "TestConfirm"),
    # more of the edge
    ("a callback with another record's state counts against the code", "api/internal/httpapi/verify.go",
     "if locked, _ := s.Service.RecordCallbackFailure(r.Context(), recordID); locked {", "if locked := false; locked {",
     HA, "TestLockoutAfterFailedConfirmations"),
    ("no scope change on refresh", "api/internal/httpapi/api.go",
     'if form.Get("scope") != "" {', 'if false && form.Get("scope") != "" {', HA, "TestRefreshThroughDevicegate"),
    ("a passthrough poll needs the provider's secret", "api/internal/httpapi/api.go",
     "if err := cred.requireUpstreamSecret(); err != nil {", "if err := error(nil); err != nil {", HA, "TestPassthroughFlow"),
    ("the provider's error code passed on only in its shape", "api/internal/httpapi/verify.go",
     "\tif len(e) > 64 {\n", "\treturn e\n\tif len(e) > 64 {\n", HA, "TestProviderErrorCodeShapeChecked"),
    # logs
    ("access log without the query", "api/internal/httpapi/router.go",
     "\t\tpath := r.URL.Path\n\t\tif len(path) > 100 {", "\t\tpath := r.URL.RequestURI()\n\t\tif len(path) > 1000 {",
     HA, "TestFullFlow"),
]

ROOT = os.getcwd()

def copy_tree():
    """A private copy of the working tree (tracked and untracked files that
    git does not ignore), for one worker."""
    dst = tempfile.mkdtemp(prefix="devicegate-mutants-")
    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"],
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for f in files:
        if not f or not os.path.isfile(f):
            continue
        os.makedirs(os.path.join(dst, os.path.dirname(f)), exist_ok=True)
        shutil.copy2(f, os.path.join(dst, f))
    return dst

def run(tree, name, path, old, new, pkg, tests):
    target = os.path.join(tree, path)
    src = open(target).read()
    n = src.count(old)
    if n != 1:
        return f"STALE: the text to mutate occurs {n} times in {path}"
    try:
        open(target, "w").write(src.replace(old, new))
        p = subprocess.run(["go", "test", "-trimpath", "-count=1", "-run", tests, pkg],
                           capture_output=True, text=True, cwd=tree)
    finally:
        open(target, "w").write(src)
    out = p.stdout + p.stderr
    if p.returncode == 0:
        if "--- SKIP" in out or "[no tests to run]" in out:
            return "SKIPPED: " + tests + " did not run (a server missing?):\n" + out[-1000:]
        return "SURVIVED: " + tests + " passed with the protection removed"
    if "--- FAIL" not in out:
        return "BROKEN: the mutant did not build or run:\n" + out[-2000:]
    return None

selected = [m for m in MUTANTS if not only or only in m[0]]
names = [m[0] for m in MUTANTS]
dups = {n for n in names if names.count(n) > 1}
if dups:
    print("duplicate mutant names:", ", ".join(sorted(dups)))
    sys.exit(1)
workers = max(1, min(len(selected), int(os.environ.get("MUTANTS_JOBS", "0")) or min(4, os.cpu_count() or 1)))
trees = queue.Queue()
made = [copy_tree() for _ in range(workers)]
for t in made:
    trees.put(t)

def job(m):
    tree = trees.get()
    try:
        return m, run(tree, *m)
    finally:
        trees.put(tree)

start = time.time()
failed = 0
try:
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for m, err in pool.map(job, selected):
            print(("killed   " if err is None else "PROBLEM  ") + m[0] + ("" if err is None else "\n  " + err), flush=True)
            failed += err is not None
finally:
    for t in made:
        shutil.rmtree(t, ignore_errors=True)
print(f"{len(selected) - failed} of {len(selected)} mutants killed, {failed} problems, {time.time() - start:.0f}s with {workers} workers")
sys.exit(1 if failed else 0)
PY
