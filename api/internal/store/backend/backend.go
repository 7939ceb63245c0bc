// Package backend opens the store a configuration names: Cosmos DB, bbolt
// or memory. It only chooses and opens; each backend is its own package,
// and the rest of devicegate sees only store.Store.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/bolt"
	"github.com/devicegate/devicegate/api/internal/store/cosmos"
	"github.com/devicegate/devicegate/api/internal/store/memory"
)

// Open opens cfg.Store. A bbolt file another devicegate holds is refused
// with what to do about it.
func Open(cfg *config.Config, logger *slog.Logger) (store.Store, error) {
	switch cfg.Store {
	case "cosmos":
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return cosmos.New(ctx, cosmos.Options{
			ConnectionString: cfg.Cosmos.ConnectionString, Endpoint: cfg.Cosmos.Endpoint, Key: cfg.Cosmos.Key,
			Database: cfg.Cosmos.Database, Container: cfg.Cosmos.Container, CreateIfMissing: cfg.Cosmos.CreateIfMissing,
			Now: time.Now, Logger: logger,
		})
	case "memory":
		return memory.New(time.Now), nil
	case "bolt":
		st, err := bolt.Open(cfg.BoltPath, bolt.Options{Now: time.Now, Logger: logger})
		if errors.Is(err, bolt.ErrLocked) {
			return nil, fmt.Errorf("%w\nAnother devicegate is running from this folder (on another port, or in another terminal). Stop it, "+
				"or run this one with DEVICEGATE_STORE=memory (nothing kept across restarts), or start it from another folder "+
				"(or point DEVICEGATE_BOLT_PATH at another file)", err)
		}
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	return nil, fmt.Errorf("unknown store %q", cfg.Store)
}
