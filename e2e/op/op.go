// Package op runs the example OpenID provider of github.com/zitadel/oidc/v3
// as devicegate's upstream in end-to-end tests: a real authorization server
// that nobody here wrote, with a login form, PKCE (S256), refresh tokens
// and a userinfo endpoint.
package op

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

// ClientSecret is the secret of the confidential web clients devicegate
// uses at the provider.
const (
	ClientSecret = "e2e-upstream-secret"
	// Username and Password are the example provider's test user on
	// "localhost".
	Username = "test-user@localhost"
	Password = "verysecure"
)

// Server is a running provider.
type Server struct {
	Issuer string
	srv    *http.Server
}

// Start runs the provider on a free loopback port. Its issuer is
// http://localhost:PORT/ (the example's user store derives the test user's
// name from the issuer's host). It registers a confidential web client
// clientID whose one redirect URI is devicegate's callback; client ids are
// global to the example's storage, so each devicegate gets its own.
func Start(clientID, redirectURI string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	issuer := fmt.Sprintf("http://localhost:%d/", ln.Addr().(*net.TCPAddr).Port)
	storage.RegisterClients(storage.WebClient(clientID, ClientSecret, redirectURI))
	st := storage.NewStorage(storage.NewUserStore(issuer))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	router := exampleop.SetupServer(issuer, st, quiet, false)
	s := &Server{Issuer: issuer, srv: &http.Server{Handler: router, ReadHeaderTimeout: 5 * time.Second}}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the provider.
func (s *Server) Close() error { return s.srv.Close() }
