package main

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/devicegate/devicegate/api/internal/admin"
	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/store/backend"
)

// devices is "devicegate devices …": the operator's list of signed-in
// devices, wired to the same settings, key and store as the server (the
// command itself is package admin).
func devices(ctx context.Context, args []string, environ []string, out, stderr io.Writer) error {
	cfg, err := config.Load(config.Getenv(environ), false)
	if err != nil {
		return config.Explain(err, environ, false)
	}
	if cfg.Store == "memory" {
		return errors.New("devices: the memory store lives inside the server process; there is nothing to list from outside it (use bolt or cosmos)")
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := backend.Open(cfg, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	// The same core as the server's, previous key included, so the key
	// census tells bindings under the previous key apart.
	key, err := secretKey(cfg, logger)
	if err != nil {
		return err
	}
	svc, err := service(cfg, st, key, 0)
	if err != nil {
		return err
	}
	return admin.Devices(ctx, args, admin.Options{
		Service: svc, Out: out,
		ClientName: func(id string) string {
			if c, ok := cfg.Client(id); ok {
				return c.Name
			}
			return ""
		},
	})
}
