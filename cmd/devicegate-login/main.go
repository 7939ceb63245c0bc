// Command devicegate-login signs a device or a terminal in through a
// devicegate server, with the OAuth 2.0 Device Authorization Grant:
//
//	devicegate-login -client-id tv https://devicegate.example.net > tokens.json
//
// It discovers the endpoints from the server's RFC 8414 metadata, shows the
// code, the address and a QR code to scan with a phone, waits while the
// person approves (keeping to the polling interval and slow_down), and
// writes the tokens as JSON to a file (mode 0600) or standard output.
// With -refresh it renews tokens from such a file through devicegate,
// which holds the provider's client secret; with -logout it revokes the
// file's refresh token (RFC 7009) and removes the file.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/devicegate/devicegate/internal/version"
	"golang.org/x/oauth2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, isTerminal(os.Stderr))
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "devicegate-login:", err)
		os.Exit(1)
	}
}

const usage = `Usage: devicegate-login [flags] DEVICEGATE_URL

Signs this device in through devicegate (OAuth 2.0 device flow): shows a
code and a QR code, waits while you approve on your phone, and prints the
tokens as JSON (or writes them to -out, readable by you only).

Examples:
  devicegate-login -client-id tv https://devicegate.example.net > tokens.json
  devicegate-login -client-id tv -scope "user-read-currently-playing" -out tokens.json http://127.0.0.1:8080
  devicegate-login -client-id tv -refresh tokens.json http://127.0.0.1:8080
  devicegate-login -client-id tv -logout tokens.json http://127.0.0.1:8080

Flags:
`

type options struct {
	base, clientID, clientSecret, scope, out, refresh, logout string
	noQR                                                      bool
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, tty bool) error {
	fs := flag.NewFlagSet("devicegate-login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.clientID, "client-id", getenv("DEVICEGATE_CLIENT_ID"), "the device client's client_id (or $DEVICEGATE_CLIENT_ID)")
	fs.StringVar(&o.scope, "scope", "", "scopes to ask for, space-separated (default: the client's defaults)")
	fs.StringVar(&o.out, "out", "", "write the tokens to this file (mode 0600) instead of standard output")
	fs.StringVar(&o.refresh, "refresh", "", "renew the tokens in this file and write them back")
	fs.StringVar(&o.logout, "logout", "", "revoke the refresh token in this file at devicegate (and, where it can, at the provider), then remove the file")
	fs.BoolVar(&o.noQR, "no-qr", false, "do not draw the QR code")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
		fmt.Fprintln(stderr, "\nA confidential client's secret is read from $DEVICEGATE_CLIENT_SECRET and sent in the request body.")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		_, err := fmt.Fprintln(stdout, version.Line("devicegate-login"))
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("give the devicegate URL, e.g. https://devicegate.example.net")
	}
	base, err := baseURL(fs.Arg(0))
	if err != nil {
		return err
	}
	o.base = base
	o.clientSecret = getenv("DEVICEGATE_CLIENT_SECRET")
	if o.clientID == "" {
		return errors.New("-client-id is required")
	}
	if o.refresh != "" && o.logout != "" {
		return errors.New("give -refresh or -logout, not both")
	}
	cfg, m, err := discover(ctx, o)
	if err != nil {
		return err
	}
	if o.logout != "" {
		return logout(ctx, cfg, m, o, stderr)
	}
	if o.refresh != "" {
		return refresh(ctx, cfg, o, stderr)
	}
	return login(ctx, cfg, o, stdout, stderr, tty)
}

// baseURL checks the devicegate URL given on the command line. A bare
// host:port is the usual slip (127.0.0.1:8080 from the server's log); it
// gets a suggestion with the scheme instead of a bare "not a URL".
func baseURL(arg string) (string, error) {
	arg = strings.TrimRight(strings.TrimSpace(arg), "/")
	u, err := url.Parse(arg)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return arg, nil
	}
	if err == nil && u.Scheme != "" && u.Host != "" {
		return "", fmt.Errorf("%q is not an http or https URL", arg)
	}
	if strings.Contains(arg, "://") || arg == "" || (err == nil && (u.Scheme == "http" || u.Scheme == "https")) {
		return "", fmt.Errorf("%q is not a URL; give devicegate's address, e.g. https://devicegate.example.net", arg)
	}
	scheme := "https://"
	if h, err := url.Parse("http://" + arg); err == nil && isLoopbackHost(h.Hostname()) {
		scheme = "http://"
	}
	return "", fmt.Errorf("%q has no scheme; did you mean %s%s ?", arg, scheme, arg)
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// metadata is the RFC 8414 document devicegate serves.
type metadata struct {
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
	TokenEndpoint               string `json:"token_endpoint"`
	RevocationEndpoint          string `json:"revocation_endpoint"`
}

var client = &http.Client{Timeout: 30 * time.Second}

// discover reads the endpoints from the server's metadata.
func discover(ctx context.Context, o options) (*oauth2.Config, *metadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.base+"/.well-known/oauth-authorization-server", nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%q is not a URL", o.base)
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach devicegate at %s: %w", o.base, err)
	}
	defer res.Body.Close()
	var m metadata
	if res.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&m) != nil || m.DeviceAuthorizationEndpoint == "" || m.TokenEndpoint == "" {
		return nil, nil, fmt.Errorf("%s does not look like a devicegate server (no usable /.well-known/oauth-authorization-server)", o.base)
	}
	var scopes []string
	if o.scope != "" {
		scopes = strings.Fields(o.scope)
	}
	return &oauth2.Config{
		ClientID:     o.clientID,
		ClientSecret: o.clientSecret,
		Scopes:       scopes,
		// In the body, not Basic: Azure Static Web Apps overwrites the
		// Authorization header on its way to devicegate.
		Endpoint: oauth2.Endpoint{DeviceAuthURL: m.DeviceAuthorizationEndpoint, TokenURL: m.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams},
	}, &m, nil
}

func login(ctx context.Context, cfg *oauth2.Config, o options, stdout, stderr io.Writer, tty bool) error {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, client)
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return explain("could not start", err)
	}
	link := da.VerificationURIComplete
	if link == "" {
		link = da.VerificationURI
	}
	fmt.Fprintf(stderr, "\nTo sign in, open  %s\nand enter the code  %s\n", da.VerificationURI, da.UserCode)
	if onlyHere(da.VerificationURI) {
		fmt.Fprint(stderr, loopbackNote)
	}
	if !o.noQR {
		fmt.Fprintf(stderr, "\nOr scan this with your phone:\n\n")
		if err := writeQR(stderr, link); err != nil {
			fmt.Fprintln(stderr, "(no QR code:", err, ")")
		}
	}
	fmt.Fprintln(stderr)

	done := make(chan struct{})
	defer close(done)
	if tty {
		go spinner(stderr, da.Expiry, done)
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if tty {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if err != nil {
		return explain("sign-in did not complete", err)
	}
	if err := writeTokens(tok, o.out, stdout); err != nil {
		return err
	}
	if o.out != "" {
		fmt.Fprintf(stderr, "Signed in. Tokens written to %s (readable by you only)%s.\n", o.out, validity(tok))
	} else {
		fmt.Fprintln(stderr, "Signed in.")
	}
	return nil
}

// loopbackNote is shown under a link to a loopback address, which only
// this computer can open: a phone scanning the QR code would reach itself.
const loopbackNote = `
That address is on this computer only: open it in a browser here. A phone
cannot reach it. To approve on a phone, deploy devicegate (docs/DEPLOY.md)
or run it behind HTTPS at home — see "Reaching it from your phone" in
README.md.
`

// onlyHere reports whether link points at a loopback address.
func onlyHere(link string) bool {
	u, err := url.Parse(link)
	return err == nil && isLoopbackHost(u.Hostname())
}

// spinner shows that we are waiting and how long the code has left.
func spinner(w io.Writer, expiry time.Time, done <-chan struct{}) {
	frames := []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
	t := time.NewTicker(120 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		left := time.Until(expiry).Round(time.Second)
		if left < 0 {
			left = 0
		}
		fmt.Fprintf(w, "\r\033[K%c Waiting for you to approve… %d:%02d left", frames[i%len(frames)], int(left.Minutes()), int(left.Seconds())%60)
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// explain turns the device flow's errors into sentences.
func explain(what string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		switch re.ErrorCode {
		case "access_denied":
			return fmt.Errorf("%s: access was denied (%s)", what, re.ErrorDescription)
		case "expired_token":
			return fmt.Errorf("%s: the code expired before it was approved; run again for a new one", what)
		case "invalid_client":
			return fmt.Errorf("%s: devicegate does not know this client_id, or its secret is wrong", what)
		case "":
			return fmt.Errorf("%s: devicegate answered HTTP %d", what, re.Response.StatusCode)
		}
		return fmt.Errorf("%s: %s (%s)", what, re.ErrorCode, re.ErrorDescription)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: the code expired before it was approved; run again for a new one", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// writeTokens writes the tokens as JSON, to a file only its owner may read.
func writeTokens(tok *oauth2.Token, path string, stdout io.Writer) error {
	b, err := json.MarshalIndent(tokenFile{
		AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken,
		Expiry: tok.Expiry, Scope: scopeOf(tok),
	}, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "" {
		_, err := stdout.Write(b)
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	// An existing file keeps its mode on open; tighten it.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type tokenFile struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	Scope        string    `json:"scope,omitempty"`
}

func scopeOf(t *oauth2.Token) string {
	s, _ := t.Extra("scope").(string)
	return s
}

// validity says how long an access token lasts, for the closing line.
func validity(tok *oauth2.Token) string {
	if tok.Expiry.IsZero() {
		return ""
	}
	return fmt.Sprintf("; the access token is valid until %s", tok.Expiry.Local().Format("15:04:05"))
}

// refresh renews the tokens in o.refresh through devicegate.
func refresh(ctx context.Context, cfg *oauth2.Config, o options, stderr io.Writer) error {
	b, err := os.ReadFile(o.refresh)
	if err != nil {
		return err
	}
	var tf tokenFile
	if err := json.Unmarshal(b, &tf); err != nil || tf.RefreshToken == "" {
		return fmt.Errorf("%s holds no refresh token", o.refresh)
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, client)
	tok, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tf.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	if err != nil {
		return explain("refresh failed", err)
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = tf.RefreshToken
	}
	if err := writeTokens(tok, o.refresh, nil); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "Refreshed. New tokens written to %s%s.\n", o.refresh, validity(tok))
	return nil
}

// logout revokes the refresh token in o.logout at devicegate's revocation
// endpoint (RFC 7009; client authentication in the body, as at the token
// endpoint) and, once devicegate answered 200, removes the file. On any
// failure the file stays, so the person can try again.
func logout(ctx context.Context, cfg *oauth2.Config, m *metadata, o options, stderr io.Writer) error {
	b, err := os.ReadFile(o.logout)
	if err != nil {
		return err
	}
	var tf tokenFile
	if err := json.Unmarshal(b, &tf); err != nil {
		return fmt.Errorf("%s is not a tokens file written by devicegate-login", o.logout)
	}
	if tf.RefreshToken != "" {
		if m.RevocationEndpoint == "" {
			return fmt.Errorf("%s offers no revocation endpoint (an older devicegate?); %s is kept", o.base, o.logout)
		}
		form := url.Values{"client_id": {cfg.ClientID}, "token": {tf.RefreshToken}, "token_type_hint": {"refresh_token"}}
		if cfg.ClientSecret != "" {
			form.Set("client_secret", cfg.ClientSecret)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.RevocationEndpoint, strings.NewReader(form.Encode()))
		if err != nil {
			return fmt.Errorf("the revocation endpoint %q is not a URL", m.RevocationEndpoint)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("cannot reach devicegate to revoke (%s is kept): %w", o.logout, err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			_ = json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&e)
			if e.Error == "" {
				return fmt.Errorf("devicegate answered the revocation with HTTP %d; %s is kept", res.StatusCode, o.logout)
			}
			return fmt.Errorf("devicegate refused the revocation: %s (%s); %s is kept", e.Error, e.Description, o.logout)
		}
	}
	if err := os.Remove(o.logout); err != nil {
		return fmt.Errorf("revoked, but removing %s failed: %w", o.logout, err)
	}
	if tf.RefreshToken == "" {
		fmt.Fprintf(stderr, "%s held no refresh token; removed it. Its access token lapses on its own.\n", o.logout)
	} else {
		fmt.Fprintf(stderr, "Signed out: the refresh token is revoked and %s removed. Its access token lapses on its own.\n", o.logout)
	}
	return nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
