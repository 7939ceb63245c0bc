package main

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/devicegate/devicegate/api/internal/admin"
	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/deviceflow"
	"github.com/devicegate/devicegate/api/internal/seal"
)

// devices is "devicegate devices …": the operator's list of signed-in
// devices, wired to the same settings, key and store as the server (the
// command itself is package admin).
func devices(ctx context.Context, args []string, environ []string, out, stderr io.Writer) error {
	vars := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	cfg, err := config.Load(func(k string) string { return vars[k] }, false)
	if err != nil {
		return explainConfig(err, environ, func(k string) string { return vars[k] }, false)
	}
	if cfg.Store == "memory" {
		return errors.New("devices: the memory store lives inside the server process; there is nothing to list from outside it (use bolt or cosmos)")
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := openStore(cfg, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	key, err := secretKey(cfg, logger)
	if err != nil {
		return err
	}
	hasher, err := deviceflow.NewHasher(key)
	if err != nil {
		return err
	}
	// The sealer is required by the service but unused here: the command
	// reads and deletes bindings only.
	sealer, err := seal.New(rand.Reader, seal.DeriveKey(key))
	if err != nil {
		return err
	}
	svc, err := deviceflow.New(deviceflow.Config{
		Store: st, Hasher: hasher, Sealer: sealer, Now: time.Now, Rand: rand.Reader,
		Lifetime: cfg.CodeLifetime, Interval: cfg.PollInterval, RefreshLifetime: cfg.RefreshLifetime,
	})
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
