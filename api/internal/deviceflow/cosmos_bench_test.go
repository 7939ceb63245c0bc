//go:build cosmos

package deviceflow_test

// With the cosmos tag (bench/ builds the helper with it when this file
// exists), `flows` runs over the Cosmos DB backend when
// DEVICEGATE_TEST_COSMOS names a server, and reports the operations and
// request units the backend itself counted.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/cosmos"
)

func init() {
	benchOpenCosmos = func(conn string, now func() time.Time) (store.Store, func() benchCosmosStats, error) {
		st, err := cosmos.New(context.Background(), cosmos.Options{
			ConnectionString: conn, Database: "devicegate-bench",
			Container:       fmt.Sprintf("flows-%d", time.Now().UnixNano()),
			CreateIfMissing: true, Now: now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			return nil, nil, err
		}
		endpoint := "the Cosmos DB-compatible test server on loopback"
		return st, func() benchCosmosStats {
			s := st.Stats()
			return benchCosmosStats{
				Reads: int(s.PointReads), Writes: int(s.Creates + s.Replaces + s.Patches + s.Upserts), Deletes: int(s.Deletes),
				Queries: int(s.Queries), RU: s.RU, Endpoint: endpoint,
			}
		}, nil
	}
}
