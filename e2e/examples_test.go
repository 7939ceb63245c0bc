package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDeviceExamples runs each program of docs/DEVICES.md
// (docs/examples/<language>) as a device against devicegate -demo, so the
// documentation cannot drift from what works: it signs in while the test
// plays the person (confirmation page, Allow, the demo provider's consent),
// and must wait 5 s longer after a slow_down (the test's proxy answers the
// first poll with one, RFC 8628 §3.5) and never poll early enough for
// devicegate itself to answer slow_down; it must store the tokens readable
// by its user only, even over an existing world-readable file; then
// "refresh" must renew them through devicegate.
func TestDeviceExamples(t *testing.T) {
	t.Parallel()
	python := "/usr/bin/python3" // Debian's, where apt-get puts python3-authlib
	for _, tc := range []struct {
		name string
		cmd  []string
		need func(t *testing.T)
	}{
		{"go", []string{buildBinary(t, "./docs/examples/go")}, nil},
		{"python", []string{python, "../docs/examples/python/device.py"}, func(t *testing.T) {
			needTool(t, exec.Command(python, "-c", "import authlib, requests"), "python3-authlib and python3-requests (Debian)")
		}},
		{"node", []string{"node", "../docs/examples/node/device.mjs"}, func(t *testing.T) {
			needTool(t, exec.Command("test", "-d", "../docs/examples/node/node_modules/openid-client"), "docs/examples/node (npm ci)")
		}},
		{"curl", []string{"bash", "../docs/examples/curl/device.sh"}, func(t *testing.T) {
			needTool(t, exec.Command("jq", "--version"), "jq (Debian)")
			needTool(t, exec.Command("curl", "--version"), "curl (Debian)")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.need != nil {
				tc.need(t)
			}
			runExample(t, tc.cmd)
		})
	}
}

// needTool stops a test whose prerequisite is missing: a failure under CI
// (scripts/e2e.sh installs it), a skip elsewhere.
func needTool(t *testing.T, probe *exec.Cmd, what string) {
	t.Helper()
	if err := probe.Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (scripts/e2e.sh installs it): %v", what, err)
		}
		t.Skipf("%s not installed; run scripts/e2e.sh", what)
	}
}

// pollLog is what the proxy saw of the device's token requests.
type pollLog struct {
	mu        sync.Mutex
	polls     []time.Time // device_code grant requests, as they arrived
	slowDowns int         // slow_down answers from devicegate itself
	refreshes int
}

// exampleProxy stands between the example and devicegate: it answers the
// first device_code poll with slow_down itself, records every poll, counts
// devicegate's own slow_down answers, and rewrites the RFC 8414 metadata
// so that clients that discover the endpoints come through it too.
func exampleProxy(t *testing.T, base string, log *pollLog) string {
	target, _ := url.Parse(base)
	rp := httputil.NewSingleHostReverseProxy(target)
	var self string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/oauth-authorization-server" {
			res, err := http.Get(base + r.URL.Path)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			w.Header().Set("Content-Type", "application/json")
			w.Write(bytes.ReplaceAll(b, []byte(base), []byte(self)))
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/api/token" {
			rp.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		r.Body = io.NopCloser(bytes.NewReader(body))
		log.mu.Lock()
		switch form.Get("grant_type") {
		case "urn:ietf:params:oauth:grant-type:device_code":
			log.polls = append(log.polls, time.Now())
			if len(log.polls) == 1 {
				log.mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Cache-Control", "no-store")
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error":"slow_down"}`)
				return
			}
		case "refresh_token":
			log.refreshes++
		}
		log.mu.Unlock()
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		if bytes.Contains(rec.Body.Bytes(), []byte(`"slow_down"`)) {
			log.mu.Lock()
			log.slowDowns++
			log.mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	self = srv.URL
	return srv.URL
}

func runExample(t *testing.T, command []string) {
	base := startDemo(t)
	var log pollLog
	proxy := exampleProxy(t, base, &log)
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens.json")
	// A world-readable file already there: the example must not keep its mode.
	if err := os.WriteFile(file, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (*exec.Cmd, *bufio.Scanner, *bytes.Buffer) {
		cmd := exec.Command(command[0], append(command[1:], args...)...)
		cmd.Env = append(os.Environ(), "DEVICEGATE_URL="+proxy, "DEVICEGATE_CLIENT_ID=demo", "TOKEN_FILE="+file)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, bufio.NewScanner(stderr), &out
	}

	cmd, lines, out := run()
	var complete string
	var said strings.Builder
	for lines.Scan() {
		said.WriteString(lines.Text() + "\n")
		if u, ok := strings.CutPrefix(lines.Text(), "Or open: "); ok {
			complete = u
			break
		}
	}
	if complete == "" {
		cmd.Wait()
		t.Fatalf("the example showed no verification_uri_complete:\n%s%s", said.String(), out)
	}
	rest := drain(lines)
	// The person approves only after the device has polled past the
	// slow_down, so the wait after it is measured.
	waitFor(t, func() bool { log.mu.Lock(); defer log.mu.Unlock(); return len(log.polls) >= 2 })
	approveDemo(t, base, complete)
	waitExit(t, cmd, rest, &said)

	first := readTokens(t, file)
	log.mu.Lock()
	polls, slowDowns := log.polls, log.slowDowns
	log.mu.Unlock()
	if gap := polls[1].Sub(polls[0]); gap < 6*time.Second {
		t.Errorf("the poll after slow_down came %v after the one before; the interval (1 s) plus 5 s is 6 s", gap.Round(time.Millisecond))
	}
	if slowDowns > 0 {
		t.Errorf("devicegate answered slow_down %d times: the example polls faster than the interval", slowDowns)
	}

	cmd, lines, _ = run("refresh")
	var said2 strings.Builder
	waitExit(t, cmd, drain(lines), &said2)
	second := readTokens(t, file)
	log.mu.Lock()
	refreshes := log.refreshes
	log.mu.Unlock()
	if refreshes != 1 {
		t.Errorf("refresh made %d refresh_token requests, want 1", refreshes)
	}
	if second.AccessToken == first.AccessToken {
		t.Error("refresh left the same access token in the file")
	}
}

type savedTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// readTokens reads the example's token file and checks that only its
// owner can read it. The tokens themselves are never printed.
func readTokens(t *testing.T, file string) savedTokens {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the token file has mode %04o, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var tok savedTokens
	if err := json.Unmarshal(b, &tok); err != nil {
		t.Fatalf("the token file is not JSON: %v", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("the token file lacks access_token or refresh_token (has %d bytes)", len(b))
	}
	return tok
}

// drain reads the rest of an example's messages; the channel gets them
// all once it closes its standard error.
func drain(lines *bufio.Scanner) chan string {
	rest := make(chan string, 1)
	go func() {
		var b strings.Builder
		for lines.Scan() {
			b.WriteString(lines.Text() + "\n")
		}
		rest <- b.String()
	}()
	return rest
}

func waitExit(t *testing.T, cmd *exec.Cmd, rest chan string, said *strings.Builder) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		s := <-rest
		said.WriteString(s)
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the example failed (%v):\n%s", err, said.String())
		}
	case <-time.After(3 * time.Minute): // against hanging only: a loaded machine is slow
		t.Fatalf("the example did not finish within 3 minutes:\n%s", said.String())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) { // a guard
		if cond() {
			return
		}
	}
	t.Fatal("timed out")
}

var (
	csrfField   = regexp.MustCompile(`name="csrf" value="([^"]*)"`)
	hiddenField = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)
)

// approveDemo plays the person with plain HTTP, as scripts/swa-e2e.sh does
// with curl: the confirmation page from the complete link, Allow (with
// the page's CSRF token and this origin), the demo provider's consent
// form, and the callback's result page.
func approveDemo(t *testing.T, base, complete string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a guard
	defer cancel()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, u string, form url.Values) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, u, body)
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", base)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(b)
	}
	cu, err := url.Parse(complete)
	if err != nil || !strings.HasPrefix(complete, base+"/") {
		t.Fatalf("verification_uri_complete %q is not on %s", complete, base)
	}
	_, page := do("GET", complete, nil)
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no confirmation form at the complete link")
	}
	res, _ := do("POST", base+"/api/verify", url.Values{"user_code": {cu.Query().Get("user_code")}, "csrf": {html.UnescapeString(m[1])}, "action": {"allow"}})
	loc := res.Header.Get("Location")
	if !strings.HasPrefix(loc, base+"/demo/authorize?") {
		t.Fatalf("Allow answered %d, Location %q", res.StatusCode, loc)
	}
	_, consent := do("GET", loc, nil)
	form := url.Values{"decision": {"allow"}, "username": {"examples"}}
	for _, f := range hiddenField.FindAllStringSubmatch(consent, -1) {
		form.Set(f[1], html.UnescapeString(f[2]))
	}
	res, _ = do("POST", base+"/demo/authorize", form)
	back := res.Header.Get("Location")
	if !strings.HasPrefix(back, base+"/api/callback?") {
		t.Fatalf("the demo provider answered %d, Location %q", res.StatusCode, back)
	}
	if _, result := do("GET", back, nil); !strings.Contains(result, "all set") {
		t.Fatalf("the callback did not show success")
	}
}
