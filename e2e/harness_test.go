package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/devicegate/devicegate/e2e/op"
)

// builds holds the programs built for this run, each built once.
var (
	buildMu sync.Mutex
	builds  = map[string]*built{}
)

type built struct {
	once sync.Once
	path string
	err  error
}

// buildBinary builds the main package pkg of devicegate's module (e.g.
// "./api") once for the whole run and returns the program's path.
func buildBinary(t *testing.T, pkg string) string {
	t.Helper()
	buildMu.Lock()
	b := builds[pkg]
	if b == nil {
		b = &built{}
		builds[pkg] = b
	}
	buildMu.Unlock()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "devicegate-e2e-")
		if err != nil {
			b.err = err
			return
		}
		name := filepath.Base(pkg)
		if name == "api" {
			name = "devicegate"
		}
		b.path = filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", b.path, pkg)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func devicegateBinary(t *testing.T) string { return buildBinary(t, "./api") }

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects a subprocess's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// stack is one devicegate process with the zitadel provider in front of it.
type stack struct {
	t        *testing.T
	base     string // devicegate's public URL
	provider *op.Server
	discover providerMetadata
	logs     *syncBuffer
	args     []string // devicegate's command-line arguments

	mu      sync.Mutex
	secrets []string // codes and tokens this test saw, never to be logged
}

// remember notes codes and tokens the test received; when the test ends,
// devicegate's log must contain none of them.
func (s *stack) remember(values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		if v != "" {
			s.secrets = append(s.secrets, v, strings.ReplaceAll(v, "-", ""))
		}
	}
}

// start starts cmd and, when the test ends, interrupts it and waits up to
// grace for it to exit before killing it, so no test leaves it running.
func start(t *testing.T, cmd *exec.Cmd, grace time.Duration) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(grace):
			cmd.Process.Kill()
			<-done
		}
	})
}

type providerMetadata struct {
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	UserinfoEndpoint      string `json:"userinfo_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

var clientSeq atomic.Int64

// newStack starts the provider and devicegate (memory store unless extra
// says otherwise) and stops both when the test ends.
func newStack(t *testing.T, extra map[string]string) *stack {
	t.Helper()
	s := newStackAt(t)
	env := s.withProvider()
	for k, v := range extra {
		env[k] = v
	}
	if env["DEVICEGATE_UPSTREAM"] == "oidc" {
		// Endpoints from the provider's discovery document, not from us.
		env["DEVICEGATE_UPSTREAM_ISSUER"] = s.provider.Issuer
		delete(env, "DEVICEGATE_UPSTREAM_AUTH_URL")
		delete(env, "DEVICEGATE_UPSTREAM_TOKEN_URL")
	}
	s.startDevicegate(env, op.ClientSecret)
	return s
}

// withProvider starts the zitadel provider with a fresh client whose
// redirect URI is s.base's callback, stops it when the test ends, and
// returns baseEnv with devicegate's settings for it.
func (s *stack) withProvider() map[string]string {
	t := s.t
	t.Helper()
	clientID := fmt.Sprintf("devicegate-%d", clientSeq.Add(1))
	var err error
	if s.provider, err = op.Start(clientID, s.base+"/api/callback"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.provider.Close() })
	s.readDiscovery(s.provider.Issuer + ".well-known/openid-configuration")
	env := s.baseEnv()
	maps.Copy(env, map[string]string{
		"DEVICEGATE_UPSTREAM":               "generic",
		"DEVICEGATE_UPSTREAM_NAME":          "Zitadel example",
		"DEVICEGATE_UPSTREAM_AUTH_URL":      s.discover.AuthorizationEndpoint,
		"DEVICEGATE_UPSTREAM_TOKEN_URL":     s.discover.TokenEndpoint,
		"DEVICEGATE_UPSTREAM_CLIENT_ID":     clientID,
		"DEVICEGATE_UPSTREAM_CLIENT_SECRET": op.ClientSecret,
		"DEVICEGATE_RATE_VERIFY":            "100/1m",
	})
	return env
}

// newStackAt is a stack for a devicegate on a free loopback port, not yet
// started.
func newStackAt(t *testing.T) *stack {
	return &stack{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), logs: &syncBuffer{}}
}

// readDiscovery reads the provider's OpenID discovery document at u.
func (s *stack) readDiscovery(u string) {
	s.t.Helper()
	res, err := http.Get(u)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&s.discover); err != nil {
		s.t.Fatalf("discovery document %s: %v", u, err)
	}
}

// baseEnv is the devicegate configuration every stack shares: its address,
// the device client "tv" (E2E TV), the memory store, a 1 s interval, a
// fresh secret key and debug logs. The upstream is the caller's to add.
func (s *stack) baseEnv() map[string]string {
	key := make([]byte, 32)
	rand.Read(key)
	return map[string]string{
		"DEVICEGATE_ADDR":          strings.TrimPrefix(s.base, "http://"),
		"DEVICEGATE_PUBLIC_URL":    s.base,
		"DEVICEGATE_CLIENTS":       `[{"client_id":"tv","name":"E2E TV","scopes":["openid","profile","offline_access"],"default_scopes":["openid","profile"]}]`,
		"DEVICEGATE_STORE":         "memory",
		"DEVICEGATE_POLL_INTERVAL": "1s",
		"DEVICEGATE_SECRET_KEY":    base64.StdEncoding.EncodeToString(key),
		"DEVICEGATE_LOG_LEVEL":     "debug",
	}
}

// startDevicegate runs devicegate's binary with env (and nothing else from
// this process's environment) until the test ends, and waits until it
// answers. At the end its log must not hold secrets nor the secret key.
func (s *stack) startDevicegate(env map[string]string, secrets ...string) {
	t := s.t
	t.Helper()
	binary := devicegateBinary(t)
	var asUser *syscall.Credential
	if img, ok := env[imageBinary]; ok {
		// Container mode: the image's binary, as the image's user, the port
		// from the platform's PORT variable instead of DEVICEGATE_ADDR.
		binary, asUser = img, containerUser()
		delete(env, imageBinary)
		env["PORT"] = strings.TrimPrefix(env["DEVICEGATE_ADDR"], "127.0.0.1:")
		delete(env, "DEVICEGATE_ADDR")
	}
	cmd := exec.Command(binary, s.args...)
	if mode, ok := env[functionsHost]; ok {
		// Under the Functions host stand-in, which listens on the public
		// address and gives the handler its port.
		delete(env, functionsHost)
		cmd = functionsHostCommand(t, mode, binary, strings.TrimPrefix(env["DEVICEGATE_ADDR"], "http://"))
		delete(env, "DEVICEGATE_ADDR")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: asUser}
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	t.Cleanup(func() { // registered first, so it runs once the process has stopped
		s.mu.Lock()
		all := slices.Concat(secrets, []string{env["DEVICEGATE_SECRET_KEY"]}, s.secrets)
		s.mu.Unlock()
		for _, secret := range all {
			if secret != "" && strings.Contains(s.logs.String(), secret) {
				t.Errorf("a secret (%d characters) appears in devicegate's log", len(secret))
			}
		}
	})
	start(t, cmd, 10*time.Second)
	deadline := time.Now().Add(2 * time.Minute) // against hanging only: a loaded machine starts slowly
	for {
		res, err := http.Get(s.base + "/api/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("devicegate did not start:\n%s", s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// poll sends one raw token request, as a device would.
func (s *stack) poll(deviceCode string) (int, map[string]any) {
	s.t.Helper()
	res, err := http.PostForm(s.base+"/api/token", url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {"tv"}, "device_code": {deviceCode}})
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

// userinfo checks that an access token works at the provider.
func (s *stack) userinfo(accessToken string) map[string]any {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.discover.UserinfoEndpoint, nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	if res.StatusCode != 200 {
		s.t.Fatalf("userinfo with the delivered token: %d", res.StatusCode)
	}
	return m
}

// browser is a headless Chromium for one person.
type browser struct {
	t      *testing.T
	ctx    context.Context
	name   string
	shotNo int
}

func chromiumPath(t *testing.T) string {
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("Chromium is not installed (scripts/e2e.sh installs the Debian package)")
	}
	t.Skip("Chromium not installed; run scripts/e2e.sh")
	return ""
}

// newBrowser opens a fresh browser profile with a phone-sized window. Its
// three minutes only guard against hanging: on a busy 2-core machine
// running several Chromiums, a person's minute-long walk can take longer.
func newBrowser(t *testing.T, name string, width, height int) *browser {
	t.Helper()
	return newBrowserFor(t, name, width, height, 3*time.Minute)
}

// newBrowserFor is newBrowser for a test whose person takes longer than a
// minute in all.
func newBrowserFor(t *testing.T, name string, width, height int, limit time.Duration) *browser {
	t.Helper()
	// Not t.TempDir: Chromium's helpers may still write to the profile for
	// a moment after the browser is told to stop.
	profile, err := os.MkdirTemp("", "devicegate-e2e-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(width, height),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, limit)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		cancelAlloc()
		time.Sleep(100 * time.Millisecond)
		os.RemoveAll(profile)
	})
	b := &browser{t: t, ctx: ctx, name: name}
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return b
}

// run runs browser actions, failing the test with a screenshot on error.
func (b *browser) run(step string, actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.shot("failed-" + step)
		var loc string
		chromedp.Run(b.ctx, chromedp.Location(&loc))
		b.t.Fatalf("%s: %v (page %s)", step, err, redactURL(loc))
	}
}

// shot saves a PNG of what the person sees to e2e/out/.
func (b *browser) shot(step string) {
	var png []byte
	if err := chromedp.Run(b.ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		return
	}
	b.shotNo++
	os.MkdirAll("out", 0o755)
	os.WriteFile(filepath.Join("out", fmt.Sprintf("%s-%02d-%s.png", b.name, b.shotNo, step)), png, 0o644)
}

// text returns the visible text of the page's main element.
func (b *browser) text() string {
	var s string
	b.run("read page", chromedp.Text("body", &s, chromedp.ByQuery))
	return s
}

// redactURL keeps codes and state out of test output.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "?"
	}
	p.RawQuery = ""
	return p.String()
}

// approve is the person's whole path from a link or the entry page to the
// provider and back: it returns the text of the result page.
func (b *browser) approve(start string, typed string) string {
	b.t.Helper()
	if typed == "" {
		// verification_uri_complete leads straight to the confirmation.
		b.run("open", chromedp.Navigate(start), chromedp.WaitVisible(`button[value=allow]`, chromedp.ByQuery))
	} else {
		b.run("open", chromedp.Navigate(start), chromedp.WaitVisible(`#user_code`, chromedp.ByID))
		b.run("type code", chromedp.SendKeys(`#user_code`, typed, chromedp.ByID))
		b.shot("entry")
		b.run("continue", chromedp.Click(`button[type=submit]`, chromedp.ByQuery), chromedp.WaitVisible(`button[value=allow]`, chromedp.ByQuery))
	}
	b.shot("confirm")
	confirm := b.text()
	for _, want := range []string{"E2E TV", "openid", "profile", "Zitadel example", "Only continue if you started this"} {
		if !strings.Contains(confirm, want) {
			b.t.Errorf("the confirmation screen lacks %q", want)
		}
	}
	b.run("allow", chromedp.Click(`button[value=allow]`, chromedp.ByQuery), chromedp.WaitVisible(`#username`, chromedp.ByID))
	b.run("log in", chromedp.SendKeys(`#username`, op.Username, chromedp.ByID), chromedp.SendKeys(`#password`, op.Password, chromedp.ByID))
	b.shot("provider-login")
	b.run("submit login", chromedp.Submit(`#password`, chromedp.ByID), chromedp.WaitVisible(`.result`, chromedp.ByQuery))
	b.shot("result")
	return b.text()
}

var _ = io.Discard
