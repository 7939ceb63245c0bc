package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"rsc.io/qr"
)

// server is devicegate itself (the real binary, -demo, memory store).
type server struct {
	base string
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func startDevicegate(t *testing.T, env ...string) *server {
	t.Helper()
	buildOnce.Do(func() {
		dir, _ := os.MkdirTemp("", "devicegate-login-test-")
		binPath = filepath.Join(dir, "devicegate")
		out, err := exec.Command("go", "build", "-o", binPath, "../../api").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	// The port is picked before devicegate starts (its public URL names
	// it), so another process can take it in between: then devicegate
	// exits saying so, and it starts again on another. Ready means its
	// "devicegate is ready" line, not a poll of a port someone else may
	// hold; the budget only guards against hanging, since a loaded
	// machine can take many seconds to start a -race binary.
attempts:
	for attempt := 1; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		cmd := exec.Command(binPath, "-demo")
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "DEVICEGATE_STORE=memory", "DEVICEGATE_ADDR=" + addr,
			"DEVICEGATE_POLL_INTERVAL=1s"}, env...)
		logs := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(logs.String(), "devicegate is ready"); time.Sleep(20 * time.Millisecond) {
			select {
			case <-exited:
				if attempt < 3 && strings.Contains(logs.String(), "already in use") {
					t.Logf("port %s was taken; starting again", addr)
					continue attempts
				}
				t.Fatalf("devicegate ended before it was ready:\n%s", logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("devicegate not ready after two minutes:\n%s", logs.String())
			}
		}
		return &server{base: "http://" + addr}
	}
}

// lockedBuffer is stderr, read while the command still writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// codeRe finds the code in what the tool shows, in any language: it is
// the only thing in the form BCDF-GHJK.
var codeRe = regexp.MustCompile(`  ([A-Z]{4}-[A-Z]{4})(?:  |\n)`)

// startLogin runs the command in the background and returns once it shows a
// code; wait returns its result.
func startLogin(t *testing.T, s *server, args ...string) (code string, stdout *bytes.Buffer, stderr *lockedBuffer, wait func() error) {
	t.Helper()
	return startLoginEnv(t, s, nil, args...)
}

// startLoginEnv is startLogin with these environment variables.
func startLoginEnv(t *testing.T, s *server, env map[string]string, args ...string) (code string, stdout *bytes.Buffer, stderr *lockedBuffer, wait func() error) {
	t.Helper()
	stdout, stderr = &bytes.Buffer{}, &lockedBuffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- run(context.Background(), append(args, s.base), func(k string) string { return env[k] }, stdout, stderr, false)
	}()
	deadline := time.Now().Add(time.Minute) // against hanging only
	for {
		if m := codeRe.FindStringSubmatch(stderr.String()); m != nil {
			return m[1], stdout, stderr, func() error { return <-errc }
		}
		select {
		case err := <-errc:
			t.Fatalf("the command ended early: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no code shown:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// person confirms the code on devicegate and decides at the demo provider.
func person(t *testing.T, s *server, code, ourChoice, providerChoice string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	page := func(res *http.Response, err error) string {
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	confirm := page(c.Get(s.base + "/api/verify?" + url.Values{"user_code": {code}}.Encode())) // as the entry form sends it
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(confirm)
	if m == nil {
		t.Fatalf("no confirmation page: %s", confirm)
	}
	res, err := c.PostForm(s.base+"/api/verify", url.Values{"user_code": {code}, "csrf": {m[1]}, "action": {ourChoice}})
	if ourChoice == "deny" {
		page(res, err)
		return
	}
	res.Body.Close()
	consent := page(c.Get(res.Header.Get("Location")))
	form := url.Values{"decision": {providerChoice}, "username": {"cli"}}
	for _, f := range regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`).FindAllStringSubmatch(consent, -1) {
		form.Set(f[1], html.UnescapeString(f[2]))
	}
	res, err = c.PostForm(s.base+"/demo/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	page(c.Get(res.Header.Get("Location")))
}

func TestLoginHappyPathAndRefresh(t *testing.T) {
	t.Parallel()
	s := startDevicegate(t)
	out := filepath.Join(t.TempDir(), "tokens.json")
	os.WriteFile(out, []byte("old"), 0o644) // an existing, too-open file
	code, _, stderr, wait := startLogin(t, s, "-client-id", "demo", "-out", out)
	person(t, s, code, "allow", "allow")
	if err := wait(); err != nil {
		t.Fatalf("login: %v\n%s", err, stderr.String())
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi.Mode(), err)
	}
	var tf tokenFile
	b, _ := os.ReadFile(out)
	if json.Unmarshal(b, &tf) != nil || tf.AccessToken == "" || tf.RefreshToken == "" || tf.Expiry.IsZero() {
		t.Fatalf("token file holds %+v", tf)
	}
	if !strings.Contains(stderr.String(), "Signed in. Tokens written to "+out+" (readable by you only); the access token is valid until ") || !strings.Contains(stderr.String(), s.base+"/device") {
		t.Errorf("stderr: %s", stderr.String())
	}
	if strings.Contains(stderr.String(), tf.AccessToken) {
		t.Error("the access token was printed to the terminal")
	}

	// The QR code drawn on stderr is verification_uri_complete.
	link := s.base + "/api/verify?user_code=" + url.QueryEscape(code)
	want, _ := qr.Encode(link, qr.M)
	drawn := stderr.String()
	start := strings.Index(drawn, "Or scan this with your phone:\n\n") + len("Or scan this with your phone:\n\n")
	end := strings.Index(drawn[start:], "\n\n") + start
	matrix, err := parseQR(drawn[start:end] + "\n")
	if err != nil {
		t.Fatal(err)
	}
	for y := -quiet; y < want.Size+quiet; y++ {
		for x := -quiet; x < want.Size+quiet; x++ {
			if matrix[y+quiet][x+quiet] != want.Black(x, y) {
				t.Fatalf("the drawn QR code differs from %q at (%d,%d)", link, x, y)
			}
		}
	}

	// Refresh through devicegate; it says what it did, and nothing secret.
	var refreshOut, refreshErr bytes.Buffer
	if err := run(context.Background(), []string{"-client-id", "demo", "-refresh", out, s.base}, func(string) string { return "" }, &refreshOut, &refreshErr, false); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if got := refreshErr.String(); !regexp.MustCompile(`^Refreshed\. New tokens written to `+regexp.QuoteMeta(out)+`; the access token is valid until \d\d:\d\d:\d\d\.\n$`).MatchString(got) || refreshOut.Len() != 0 {
		t.Errorf("refresh printed %q to stderr and %q to stdout", got, refreshOut.String())
	}
	var tf2 tokenFile
	b, _ = os.ReadFile(out)
	json.Unmarshal(b, &tf2)
	if tf2.AccessToken == "" || tf2.AccessToken == tf.AccessToken || tf2.RefreshToken != tf.RefreshToken {
		t.Errorf("after refresh: new access token %v, refresh token kept %v", tf2.AccessToken != tf.AccessToken, tf2.RefreshToken == tf.RefreshToken)
	}
}

func TestLoginStdoutAndDenials(t *testing.T) {
	t.Parallel()
	s := startDevicegate(t)
	code, stdout, stderr, wait := startLogin(t, s, "-client-id", "demo", "-no-qr")
	person(t, s, code, "allow", "allow")
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	var tf tokenFile
	if json.Unmarshal(stdout.Bytes(), &tf) != nil || tf.AccessToken == "" {
		t.Errorf("stdout: %s", stdout)
	}
	if strings.Contains(stderr.String(), "written to") || !strings.HasSuffix(stderr.String(), "Signed in.\n") {
		t.Errorf("stderr after a login to stdout ends %q", stderr.String())
	}
	// The link is a loopback address: the person is told a phone cannot
	// open it, and where to read how to make one that can.
	if !strings.Contains(stderr.String(), "That address is on this computer only: open it in a browser here. A phone\ncannot reach it.") ||
		!strings.Contains(stderr.String(), "docs/DEPLOY.md") || !strings.Contains(stderr.String(), `"Reaching it from your phone" in`) {
		t.Errorf("no loopback note under the link:\n%s", stderr.String())
	}

	for _, tc := range []struct{ ours, provider string }{{"deny", ""}, {"allow", "deny"}} {
		code, _, stderr, wait := startLogin(t, s, "-client-id", "demo", "-no-qr")
		if strings.Contains(stderr.String(), "scan") {
			t.Error("-no-qr drew a QR code")
		}
		person(t, s, code, tc.ours, tc.provider)
		if err := wait(); err == nil || !strings.Contains(err.Error(), "access was denied") {
			t.Errorf("denied (%s/%s): %v", tc.ours, tc.provider, err)
		}
	}
}

func TestLoginExpiry(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("waits a minute for a code to expire")
	}
	s := startDevicegate(t, "DEVICEGATE_CODE_LIFETIME=60s")
	_, _, _, wait := startLogin(t, s, "-client-id", "demo", "-no-qr")
	if err := wait(); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expiry: %v", err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "give the devicegate URL"},
		{[]string{"http://127.0.0.1:1"}, "-client-id is required"},
		{[]string{"-client-id", "x", "http://127.0.0.1:1"}, "cannot reach devicegate at http://127.0.0.1:1"},
		// A bare host:port gets the scheme suggested: http for loopback,
		// https for anything else.
		{[]string{"-client-id", "x", "127.0.0.1:8080"}, `"127.0.0.1:8080" has no scheme; did you mean http://127.0.0.1:8080 ?`},
		{[]string{"-client-id", "x", "localhost:8080"}, `"localhost:8080" has no scheme; did you mean http://localhost:8080 ?`},
		{[]string{"-client-id", "x", "devicegate.example.net"}, `"devicegate.example.net" has no scheme; did you mean https://devicegate.example.net ?`},
		{[]string{"-client-id", "x", "ftp://devicegate.example.net"}, `"ftp://devicegate.example.net" is not an http or https URL`},
		{[]string{"-client-id", "x", "http://"}, `"http:" is not a URL`},
	} {
		err := run(context.Background(), tc.args, func(string) string { return "" }, io.Discard, io.Discard, false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestOnlyHere: which links get the note that a phone cannot open them.
func TestOnlyHere(t *testing.T) {
	for link, want := range map[string]bool{
		"http://127.0.0.1:8080/device":             true,
		"http://127.0.0.2:8080/device":             true,
		"http://[::1]:8080/device":                 true,
		"http://localhost:8080/device":             true,
		"https://devicegate.example.net/device":    false,
		"https://dg.azurestaticapps.net/device":    false,
		"https://192.0.2.10/device":                false,
		"https://127.0.0.1.nip.example.net/device": false,
	} {
		if got := onlyHere(link); got != want {
			t.Errorf("onlyHere(%q) = %v, want %v", link, got, want)
		}
	}
}

// TestLogout: -logout revokes the file's refresh token at devicegate and
// removes the file; a copy of it no longer refreshes (invalid_grant). A
// failed revocation keeps the file.
func TestLogout(t *testing.T) {
	t.Parallel()
	s := startDevicegate(t)
	out := filepath.Join(t.TempDir(), "tokens.json")
	code, _, stderr, wait := startLogin(t, s, "-client-id", "demo", "-out", out)
	person(t, s, code, "allow", "allow")
	if err := wait(); err != nil {
		t.Fatalf("login: %v\n%s", err, stderr.String())
	}
	b, _ := os.ReadFile(out)
	var tf tokenFile
	if json.Unmarshal(b, &tf) != nil || tf.RefreshToken == "" {
		t.Fatalf("token file holds no refresh token")
	}
	kept := filepath.Join(t.TempDir(), "copy.json")
	os.WriteFile(kept, b, 0o600)
	noenv := func(string) string { return "" }

	// Another client's logout fails at its client authentication first
	// (unknown client) and keeps the file.
	var o, e bytes.Buffer
	if err := run(context.Background(), []string{"-client-id", "nobody", "-logout", out, s.base}, noenv, &o, &e, false); err == nil || !strings.Contains(err.Error(), "is kept") {
		t.Fatalf("logout as an unknown client: %v", err)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("the file was removed after a refused revocation: %v", err)
	}
	e.Reset()
	if err := run(context.Background(), []string{"-client-id", "demo", "-logout", out, s.base}, noenv, &o, &e, false); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("the tokens file is still there: %v", err)
	}
	if !strings.HasPrefix(e.String(), "Signed out: the refresh token is revoked") || strings.Contains(e.String()+o.String(), tf.RefreshToken) {
		t.Errorf("logout printed %q / %q", e.String(), o.String())
	}
	err := run(context.Background(), []string{"-client-id", "demo", "-refresh", kept, s.base}, noenv, &o, &e, false)
	if err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("refresh with the revoked token: %v, want invalid_grant", err)
	}
}

// TestLoginSpeaksGerman: with LANG=de_DE.UTF-8 (and nothing set that
// outranks it) every message of a sign-in, a refusal, a refresh and a
// sign-out is German, from the same catalogs as the pages; the tokens
// file is the same JSON whatever the language.
func TestLoginSpeaksGerman(t *testing.T) {
	t.Parallel()
	s := startDevicegate(t)
	de := map[string]string{"LANG": "de_DE.UTF-8"}
	getenv := func(k string) string { return de[k] }
	out := filepath.Join(t.TempDir(), "tokens.json")
	code, _, stderr, wait := startLoginEnv(t, s, de, "-client-id", "demo", "-out", out)
	person(t, s, code, "allow", "allow")
	if err := wait(); err != nil {
		t.Fatalf("login: %v\n%s", err, stderr.String())
	}
	got := stderr.String()
	for _, want := range []string{
		"Zum Anmelden öffne  " + s.base + "/device\nund gib den Code  " + code + "  ein",
		"Diese Adresse gibt es nur auf diesem Computer",
		"Oder scanne das hier mit deinem Handy:",
		"Angemeldet. Die Tokens stehen in " + out + " (nur für dich lesbar); das Zugriffstoken gilt bis ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Signed in") || strings.Contains(got, "To sign in") || strings.Contains(got, "scan this") {
		t.Errorf("English among the German:\n%s", got)
	}
	var tf tokenFile
	if b, _ := os.ReadFile(out); json.Unmarshal(b, &tf) != nil || tf.RefreshToken == "" {
		t.Fatal("the tokens file is not the usual JSON")
	}

	var o, e bytes.Buffer
	if err := run(context.Background(), []string{"-client-id", "demo", "-refresh", out, s.base}, getenv, &o, &e, false); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if !strings.HasPrefix(e.String(), "Erneuert. Die neuen Tokens stehen in "+out+"; das Zugriffstoken gilt bis ") {
		t.Errorf("refresh said %q", e.String())
	}
	e.Reset()
	if err := run(context.Background(), []string{"-client-id", "demo", "-logout", out, s.base}, getenv, &o, &e, false); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if !strings.HasPrefix(e.String(), "Abgemeldet: Das Refresh-Token ist widerrufen und "+out+" gelöscht.") {
		t.Errorf("logout said %q", e.String())
	}

	code, _, stderr, wait = startLoginEnv(t, s, de, "-client-id", "demo", "-no-qr")
	person(t, s, code, "deny", "")
	if err := wait(); err == nil || !strings.HasPrefix(err.Error(), "Anmeldung nicht abgeschlossen: Der Zugriff wurde verweigert (") {
		t.Errorf("a refusal in German: %v", err)
	}
	if err := run(context.Background(), []string{"-client-id", "x", "http://127.0.0.1:1"}, getenv, io.Discard, io.Discard, false); err == nil || !strings.HasPrefix(err.Error(), "devicegate unter http://127.0.0.1:1 ist nicht erreichbar: ") {
		t.Errorf("an unreachable server in German: %v", err)
	}
}
