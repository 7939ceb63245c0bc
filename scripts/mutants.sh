#!/usr/bin/env bash
# Removes each protection SECURITY.md names, one at a time, and checks that
# the test SECURITY.md names for it fails: a protection whose removal no
# test notices is not proven. `bash scripts/mutants.sh [NAME]` runs all
# mutants (or those whose name contains NAME); it restores every file it
# touched, even when interrupted.
#
# Each mutant replaces one exact piece of source text, which must occur
# exactly once: when the code moves on, a stale mutant fails loudly here
# instead of silently testing nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "${1:-}" <<'PY'
import os, subprocess, sys

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
     "i := max(0, len(entries)-hops)", "i := 0",
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
    ("slow_down capped at the code's life", "api/internal/deviceflow/poll.go",
     "return max(1, min(r.Interval+int(SlowDownStep/time.Second), left))",
     "return max(left-left+1, r.Interval+int(SlowDownStep/time.Second))",
     "./api/internal/deviceflow", "TestSlowDownNeverOutlivesTheCode"),
    ("PKCE verifier and passthrough code sealed", "api/internal/deviceflow/service.go",
     "b, err := s.c.Sealer.Seal([]byte(v), []byte(recordID))", "b, err := []byte(v), error(nil)",
     "./api/internal/deviceflow", "TestSealedValuesOpenOnlyWithTheSealer"),
    ("delivered marked in the swap", "api/internal/deviceflow/service.go",
     "\t\t\t\tr.Status = store.StatusDelivered\n", "\t\t\t\t_ = store.StatusDelivered\n",
     "./api/internal/deviceflow", "TestDeliveredOnceAndRemembered"),
    ("memory store holds its lock across Update", "api/internal/store/memory/memory.go",
     "\tif err := fn(cur); err != nil {\n\t\treturn nil, err\n\t}\n\told := s.records[id]",
     "\ts.mu.Unlock()\n\tferr := fn(cur)\n\ts.mu.Lock()\n\tif ferr != nil {\n\t\treturn nil, ferr\n\t}\n\told := s.records[id]",
     "./api/internal/store/memory", "TestConformance/UpdateIsAtomicAgainstInterleavedWrite"),
    ("key file readable by others refused", "api/main.go",
     'if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {',
     'if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS == "plan9" {',
     "./api", "TestKeyFileGuarded"),
    ("key file link refused", "api/main.go",
     "} else if fi.Mode()&fs.ModeSymlink != 0 {", "} else if false && fi.Mode()&fs.ModeSymlink != 0 {", "./api", "TestKeyFileGuarded"),
    ("pages not cached", "api/internal/pages/pages.go",
     '\th.Set("Pragma", "no-cache")\n', "", "./api/internal/httpapi", "TestSecurityHeaders"),
    ("translated message with names escaped", "api/internal/i18n/i18n.go",
     'v = "<strong>" + html.EscapeString(v) + "</strong>"', 'v = "<strong>" + v + "</strong>"',
     "./api/internal/i18n", "TestFillEscapes"),
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
    ("cosmos pacing overlays bounded", "api/internal/store/cosmos/pacing.go",
     "\t\tp.shed(now)\n", "", "./api/internal/store/cosmos", "TestPacerIsBounded"),
]

def run(name, path, old, new, pkg, tests):
    src = open(path).read()
    n = src.count(old)
    if n != 1:
        return f"STALE: the text to mutate occurs {n} times in {path}"
    try:
        open(path, "w").write(src.replace(old, new))
        p = subprocess.run(["go", "test", "-count=1", "-run", tests, pkg], capture_output=True, text=True)
    finally:
        open(path, "w").write(src)
    out = p.stdout + p.stderr
    if p.returncode == 0:
        return "SURVIVED: " + tests + " passed with the protection removed"
    if "--- FAIL" not in out:
        return "BROKEN: the mutant did not build or run:\n" + out[-2000:]
    return None

failed = 0
count = 0
for m in MUTANTS:
    if only and only not in m[0]:
        continue
    count += 1
    err = run(*m)
    print(("killed   " if err is None else "PROBLEM  ") + m[0] + ("" if err is None else "\n  " + err), flush=True)
    failed += err is not None
print(f"{count - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
