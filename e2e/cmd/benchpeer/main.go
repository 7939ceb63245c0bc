// Command benchpeer runs the zitadel example OpenID provider (through
// e2e/op) as the peer in devicegate's throughput benchmark (go run ./bench):
// a device-flow implementation nobody here wrote, answering a pending
// device poll with client authentication. It registers one confidential
// device client, prints
//
//	READY <host:port> <client id> <client secret>
//
// and serves until its stdin closes or it is interrupted, so it cannot
// outlive the benchmark that started it.
package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/devicegate/devicegate/e2e/op"
)

// DeviceClientID is the confidential device client the benchmark polls as.
const deviceClientID = "bench-device"

func main() {
	// Clients are global to the example's storage and must be registered
	// before it is created (op.Start creates it).
	storage.RegisterClients(storage.DeviceClient(deviceClientID, op.ClientSecret))
	s, err := op.Start("bench-web", "http://127.0.0.1:1/api/callback")
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchpeer:", err)
		os.Exit(1)
	}
	defer s.Close()
	u, err := url.Parse(s.Issuer)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchpeer:", err)
		os.Exit(1)
	}
	fmt.Printf("READY 127.0.0.1:%s %s %s\n", u.Port(), deviceClientID, op.ClientSecret)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-ctx.Done():
	case <-stdinClosed:
	}
}
