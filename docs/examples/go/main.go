// Command go is the device side of devicegate in Go, with
// golang.org/x/oauth2 (docs/DEVICES.md):
//
//	DEVICEGATE_URL=https://devicegate.example.net DEVICEGATE_CLIENT_ID=tv go run ./docs/examples/go
//	DEVICEGATE_URL=… DEVICEGATE_CLIENT_ID=tv go run ./docs/examples/go refresh
//
// The first signs in (RFC 8628: shows the code, polls at the server's
// interval, 5 s slower after each slow_down) and writes the tokens to
// TOKEN_FILE (default tokens.json), readable by this user only; the second
// renews them with the refresh token. scripts/e2e.sh runs both against
// devicegate -demo.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	base := strings.TrimRight(os.Getenv("DEVICEGATE_URL"), "/")
	file := os.Getenv("TOKEN_FILE")
	if file == "" {
		file = "tokens.json"
	}
	cfg := &oauth2.Config{
		ClientID:     os.Getenv("DEVICEGATE_CLIENT_ID"),
		ClientSecret: os.Getenv("DEVICEGATE_CLIENT_SECRET"), // confidential clients only
		Scopes:       strings.Fields(os.Getenv("DEVICEGATE_SCOPE")),
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: base + "/api/authorize",
			TokenURL:      base + "/api/token",
			// devicegate takes the client's credentials in the form body.
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
	if base == "" || cfg.ClientID == "" {
		return fmt.Errorf("set DEVICEGATE_URL and DEVICEGATE_CLIENT_ID")
	}

	if len(os.Args) > 1 && os.Args[1] == "refresh" {
		var tok oauth2.Token
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &tok); err != nil {
			return err
		}
		// An expired token makes the TokenSource use the refresh token.
		tok.AccessToken, tok.Expiry = "", time.Unix(1, 0)
		fresh, err := cfg.TokenSource(ctx, &tok).Token()
		if err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "Renewed; the access token is valid until", fresh.Expiry.Format(time.RFC3339))
		return save(file, fresh)
	}

	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "To sign in, open %s and enter the code %s\n", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(os.Stderr, "Or open: %s\n", da.VerificationURIComplete)
	}
	// DeviceAccessToken waits da.Interval between polls and adds 5 s on
	// every slow_down (RFC 8628 §3.5); it stops when the code expires.
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "Signed in; tokens saved to", file)
	return save(file, tok)
}

// save writes the tokens so that only this user can read them: a new file
// created 0600 next to the old one, then renamed over it, so that neither
// a reader nor a crash ever sees half a file or looser permissions.
func save(file string, tok *oauth2.Token) error {
	b, err := json.MarshalIndent(tok, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(file), ".tokens-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), file)
}
