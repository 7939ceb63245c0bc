package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func loginBinary(t *testing.T) string { return buildBinary(t, "./cmd/devicegate-login") }

// needNode stops a test that needs the npm package pkg from e2e/node when
// it is not installed: a failure under CI, a skip elsewhere.
func needNode(t *testing.T, pkg string) {
	t.Helper()
	if _, err := os.Stat("node/node_modules/" + pkg); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("e2e/node is not installed (scripts/e2e.sh runs npm ci)")
		}
		t.Skip("e2e/node not installed; run scripts/e2e.sh")
	}
}

// renderTerminal paints terminal text as a terminal would: each character
// a cell cellW×cellH pixels, the half blocks lighting the top or bottom
// half in the foreground colour, all else the background colour, with a
// margin of background around — a screenshot of the terminal, as RGBA.
func renderTerminal(text string, fg, bg byte) (pix []byte, width, height int) {
	const cellW, cellH, margin = 6, 12, 24
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	cols := 0
	for _, l := range lines {
		cols = max(cols, len([]rune(l)))
	}
	width, height = cols*cellW+2*margin, len(lines)*cellH+2*margin
	pix = make([]byte, width*height*4)
	for i := range width * height {
		pix[i*4], pix[i*4+1], pix[i*4+2], pix[i*4+3] = bg, bg, bg, 255
	}
	paint := func(x0, y0, w, h int) {
		for y := y0; y < y0+h; y++ {
			for x := x0; x < x0+w; x++ {
				i := (y*width + x) * 4
				pix[i], pix[i+1], pix[i+2] = fg, fg, fg
			}
		}
	}
	for row, l := range lines {
		for col, r := range []rune(l) {
			x, y := margin+col*cellW, margin+row*cellH
			switch r {
			case '█':
				paint(x, y, cellW, cellH)
			case '▀':
				paint(x, y, cellW, cellH/2)
			case '▄':
				paint(x, y+cellH/2, cellW, cellH/2)
			}
		}
	}
	return pix, width, height
}

// scan decodes the QR code in a terminal drawing with jsQR, as a phone's
// camera would: a decoder nobody here wrote.
func scan(t *testing.T, drawing string, fg, bg byte) string {
	t.Helper()
	pix, w, h := renderTerminal(drawing, fg, bg)
	file := filepath.Join(t.TempDir(), "terminal.rgba")
	if err := os.WriteFile(file, pix, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("node", "node/qr.mjs", file, fmt.Sprint(w), fmt.Sprint(h)).Output()
	if err != nil {
		t.Fatalf("jsQR: %v", err)
	}
	var res struct {
		OK   bool   `json:"ok"`
		Text string `json:"text"`
	}
	if json.Unmarshal(out, &res) != nil || !res.OK {
		t.Fatalf("jsQR found no QR code in the terminal drawing (fg %d on bg %d):\n%s", fg, bg, drawing)
	}
	return res.Text
}

// TestCLILoginScannableQR: a person at a terminal runs devicegate-login;
// the QR code it draws is read by an independent decoder from a rendering
// of the terminal (dark and light themes); the decoded link is opened in
// the browser and approved; the CLI writes working tokens to a 0600 file,
// and later refreshes them through devicegate.
func TestCLILoginScannableQR(t *testing.T) {
	t.Parallel()
	needNode(t, "jsqr")
	s := newStack(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 270*time.Second)
	defer cancel()
	out := filepath.Join(t.TempDir(), "tokens.json")
	cmd := exec.CommandContext(ctx, loginBinary(t), "-client-id", "tv", "-scope", "openid profile offline_access", "-out", out, s.base)
	stderr := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const intro = "Or scan this with your phone:\n\n"
	var drawing, userCode string
	for deadline := time.Now().Add(2 * time.Minute); ; { // against hanging only
		text := stderr.String()
		if i := strings.Index(text, intro); i >= 0 {
			if j := strings.Index(text[i+len(intro):], "\n\n"); j >= 0 {
				drawing = text[i+len(intro) : i+len(intro)+j+1]
				if m := regexp.MustCompile(`enter the code  ([A-Z]{4}-[A-Z]{4})`).FindStringSubmatch(text); m != nil {
					userCode = m[1]
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("devicegate-login drew no QR code:\n%s", text)
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := s.base + "/api/verify?user_code=" + url.QueryEscape(userCode)
	link := scan(t, drawing, 0xdd, 0x1e) // light blocks on a dark terminal
	if link != want {
		t.Fatalf("the QR code reads %q, want %q", link, want)
	}
	if light := scan(t, drawing, 0x20, 0xf8); light != want { // dark blocks on a light terminal
		t.Errorf("on a light terminal the QR code reads %q", light)
	}

	b := newBrowser(t, "devicegate-login-phone", 390, 844)
	if result := b.approve(link, ""); !strings.Contains(result, "all set") {
		t.Errorf("result page: %q", result)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("devicegate-login: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "Signed in. Tokens written to "+out+" (readable by you only)") {
		t.Errorf("stderr: %s", stderr.String())
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v", err)
	}
	read := func() (access, refresh string) {
		var tf struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		b, _ := os.ReadFile(out)
		if json.Unmarshal(b, &tf) != nil || tf.AccessToken == "" {
			t.Fatal("the token file holds no access token")
		}
		if strings.Contains(stderr.String(), tf.AccessToken) {
			t.Error("the access token was printed to the terminal")
		}
		return tf.AccessToken, tf.RefreshToken
	}
	access, refresh := read()
	if refresh == "" {
		t.Fatal("no refresh token though offline_access was asked for")
	}
	s.userinfo(access)

	// Later: renew through devicegate, which authenticates at the provider.
	ref := exec.CommandContext(ctx, loginBinary(t), "-client-id", "tv", "-refresh", out, s.base)
	ref.Stdout, ref.Stderr = io.Discard, stderr
	if err := ref.Run(); err != nil {
		t.Fatalf("refresh: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "Refreshed. New tokens written to "+out) {
		t.Errorf("the refresh did not say what it did: %s", stderr.String())
	}
	if fresh, _ := read(); fresh == access {
		t.Error("the refresh kept the old access token")
	} else {
		s.userinfo(fresh)
	}
}
