#!/usr/bin/env bash
# Plays the attacker against a real devicegate process (-demo, memory store,
# DEVICEGATE_RATE_VERIFY=3/10m), as SECURITY.md's "done when" asks:
#   1. 60 guessed Allow posts carrying a valid form token taken from the
#      attacker's own code: at most 3 requests processed; the victim's
#      live code, guessed among them, is neither sent upstream nor denied,
#      and the victim's device still gets authorization_pending.
#   2. Two public clients of one provider: B refreshing A's refresh token
#      gets invalid_grant; A refreshing it gets new tokens.
#   3. 120 junk refreshes from one address: 429 after the limit.
#   4. 3,000 client-secret guesses from one address: at most the budget
#      (DEVICEGATE_RATE_CLIENT_AUTH, 10/10m) compared, the rest 429, each
#      failure logged with client and address and no secret in the log;
#      a 4-digit client secret is refused at start.
#   5. 2,500 guessed user codes from 100 /64s of one /48: at most the /48's
#      budget (8 × DEVICEGATE_RATE_VERIFY) processed.
# Addresses are told apart by X-Forwarded-For (DEVICEGATE_TRUSTED_PROXY).
# Loopback only; the server's whole process group is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
go build -o "$work/devicegate" ./api
cleanup() {
  [ -n "${pgid:-}" ] && kill -- "-$pgid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
clients='[{"client_id":"demo","name":"Demo device","scopes":["profile"]},{"client_id":"radio","name":"Kitchen radio","scopes":["profile"]},{"client_id":"console","name":"Console","scopes":["profile"],"secret_env":"CONSOLE_SECRET"}]'
# A 4-digit client secret stops the start (config is read before listening).
if weak=$(cd "$work" && DEVICEGATE_STORE=memory DEVICEGATE_CLIENTS="$clients" CONSOLE_SECRET=4711 timeout 120 ./devicegate -demo -addr 127.0.0.1:0 2>&1); then
  echo "FAIL  a 4-digit client secret was accepted at start"; exit 1
elif grep -q "CONSOLE_SECRET" <<<"$weak" && grep -q "openssl rand -base64 32" <<<"$weak" && ! grep -q 4711 <<<"$weak"; then
  echo "ok    a 4-digit client secret is refused at start: $(grep -o 'the secret in CONSOLE_SECRET[^;]*' <<<"$weak")"
else
  echo "FAIL  refusal of a weak secret does not say how to fix it, or shows it: $weak"; exit 1
fi
secret=$(head -c 32 /dev/urandom | base64)
(cd "$work" && exec setsid env DEVICEGATE_STORE=memory DEVICEGATE_RATE_VERIFY=3/10m DEVICEGATE_RATE_REFRESH=30/10m \
  DEVICEGATE_TRUSTED_PROXY=true DEVICEGATE_CLIENTS="$clients" CONSOLE_SECRET="$secret" \
  ./devicegate -demo -addr "127.0.0.1:$port") >"$work/server.log" 2>&1 &
pgid=$!
for _ in $(seq 1 1200); do curl -s -o /dev/null "http://127.0.0.1:$port/api/health" && break; sleep 0.1; done # up to 2 minutes, a guard
python3 - "http://127.0.0.1:$port" "$work/server.log" "$secret" <<'PY'
import http.cookiejar, json, re, html, sys, time, urllib.error, urllib.parse, urllib.request

base, server_log, real_secret = sys.argv[1], sys.argv[2], sys.argv[3]
ok = True

def check(cond, what):
    global ok
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    ok &= bool(cond)

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None

def client(ip):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    def call(method, path, form=None):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(path if path.startswith("http") else base + path, data=data, method=method)
        req.add_header("X-Forwarded-For", ip)
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
            req.add_header("Origin", base)
        try:
            r = opener.open(req)
        except urllib.error.HTTPError as e:
            r = e
        return r.status, dict(r.headers), r.read().decode()
    return call

def authorize(call, client_id):
    st, _, body = call("POST", "/api/authorize", {"client_id": client_id})
    assert st == 200, body
    return json.loads(body)

def poll(call, client_id, dc):
    st, _, body = call("POST", "/api/token", {"client_id": client_id, "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": dc})
    return st, json.loads(body)

def csrf(page):
    return re.search(r'name="csrf" value="([^"]*)"', page).group(1)

def sign_in(ip, client_id):
    call = client(ip)
    g = authorize(call, client_id)
    st, _, page = call("GET", "/api/verify?user_code=" + g["user_code"])
    st, hd, _ = call("POST", "/api/verify", {"user_code": g["user_code"], "csrf": csrf(page), "action": "allow"})
    st, _, consent = call("GET", hd["Location"])
    fields = {k: html.unescape(v) for k, v in re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', consent)}
    fields.update(decision="allow", username="person")
    st, hd, _ = call("POST", "/demo/authorize", fields)
    st, _, result = call("GET", hd["Location"])
    assert "all set" in result, result
    st, tok = poll(call, client_id, g["device_code"])
    assert st == 200, tok
    return tok

# 1. Guessed decisions with a token from the attacker's own code.
victim = client("198.51.100.10")
v = authorize(victim, "demo")
attacker = client("203.0.113.66")
own = authorize(attacker, "demo")
st, _, page = attacker("GET", "/api/verify?user_code=" + own["user_code"])
token = csrf(page)
alphabet = "BCDFGHJKLMNPQRSTVWXZ"
processed, limited, retry_after = 1, 0, True
for i in range(60):
    code = "".join(alphabet[(i * 7 + j) % 20] for j in range(8))
    code = code[:4] + "-" + code[4:]
    if i == 30:
        code = v["user_code"]
    st, hd, _ = attacker("POST", "/api/verify", {"user_code": code, "csrf": token, "action": "allow"})
    if st == 303 and hd.get("Location", "").startswith("/api/verify"):
        # POST/redirect/GET: the decision's outcome is shown by the GET
        # it redirects to (from a flash cookie); its status is the answer.
        st, hd, _ = attacker("GET", hd["Location"])
    if st == 429:
        limited += 1
        retry_after &= "Retry-After" in hd
    else:
        processed += 1
check(processed <= 3, f"60 guessed Allow posts with a valid token under 3/10m: {processed} requests processed (incl. the attacker's own page), {limited} answered 429")
check(retry_after, "every 429 carries Retry-After")
st, m = poll(victim, "demo", v["device_code"])
check(st == 400 and m.get("error") == "authorization_pending", f"the victim's device still gets authorization_pending ({m.get('error')})")

# 2. Two public clients of one provider.
a = sign_in("198.51.100.21", "demo")
b = client("198.51.100.22")
st, _, body = b("POST", "/api/token", {"client_id": "radio", "grant_type": "refresh_token", "refresh_token": a["refresh_token"]})
check(st == 400 and json.loads(body)["error"] == "invalid_grant", f"client B refreshing A's refresh token: {st} {json.loads(body)['error']}")
st, _, body = client("198.51.100.21")("POST", "/api/token", {"client_id": "demo", "grant_type": "refresh_token", "refresh_token": a["refresh_token"]})
check(st == 200 and json.loads(body).get("access_token"), f"client A refreshing its own: {st}")

# 3. Junk refreshes from one address.
junk = client("203.0.113.99")
codes = []
for i in range(120):
    st, hd, body = junk("POST", "/api/token", {"client_id": "demo", "grant_type": "refresh_token", "refresh_token": f"junk-{i}"})
    codes.append(st)
first429 = codes.index(429) if 429 in codes else None
check(first429 == 30 and all(c == 429 for c in codes[30:]) and all(c == 400 for c in codes[:30]),
      f"120 junk refreshes: {codes.count(400)} invalid_grant, then 429 from request {first429 + 1 if first429 is not None else None}")
# 4. Client-secret guesses from one address.
guesser = client("203.0.113.77")
statuses, t0 = {}, time.monotonic()
for i in range(3000):
    st, hd, body = guesser("POST", "/api/token", {"client_id": "console", "client_secret": "guess%04d" % i,
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "x"})
    key = (st, json.loads(body).get("error"), "Retry-After" in hd)
    statuses[key] = statuses.get(key, 0) + 1
took = time.monotonic() - t0
compared = statuses.get((401, "invalid_client", False), 0)
refused = statuses.get((429, "slow_down", True), 0)
check(compared <= 10 and compared + refused == 3000,
      f"3,000 secret guesses from one address in {took:.1f} s: {compared} compared (invalid_client), {refused} refused 429 slow_down with Retry-After; all answers: {statuses}")
st, _, body = guesser("POST", "/api/token", {"client_id": "console", "client_secret": real_secret,
    "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "x"})
check(st == 429, f"the right secret from the blocked address is refused before comparing: {st}")
st, _, body = client("198.51.100.78")("POST", "/api/authorize", {"client_id": "console", "client_secret": real_secret})
check(st == 200, f"the right secret from another address authenticates: {st}")
log = open(server_log).read()
logged = log.count('msg="client authentication failed" client_id=console address=203.0.113.77')
check(logged == compared, f"{logged} failed authentications logged with client and address (want {compared})")
check("guess" not in log and real_secret not in log, "no guessed or real secret in the log")

# 5. Guessed user codes from 100 /64s of one /48 (each /64 in its own /56).
processed, t0 = 0, time.monotonic()
for i in range(2500):
    ip = "2001:db8:77:%x00::%x" % (i % 100, i + 1)
    code = "".join(alphabet[(i * 13 + j * 7 + 3) % 20] for j in range(8))
    st, _, _ = client(ip)("GET", "/api/verify?user_code=" + code[:4] + "-" + code[4:])
    processed += st != 429
took = time.monotonic() - t0
check(processed <= 8 * 3, f"2,500 guessed codes from 100 /64s of one /48 in {took:.1f} s: {processed} processed (the /48's budget is 8 x 3 = 24)")
print("attack: %d passed, %d failed" % ((1, 0) if ok else (0, 1)))
sys.exit(0 if ok else 1)
PY
