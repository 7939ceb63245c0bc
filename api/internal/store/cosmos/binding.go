package cosmos

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/devicegate/devicegate/api/internal/store"
)

// bindingItem is a refresh-token binding: id = "b." + the token's hash.
// Its ttl is the binding's remaining life, so Cosmos DB drops it on its own.
type bindingItem struct {
	ID      string         `json:"id"`
	Binding *store.Binding `json:"bind"`
	TTL     int            `json:"ttl"`
}

func bindingKey(hash string) string { return "b." + hash }

// PutBinding implements store.Bindings with one upsert.
func (s *Store) PutBinding(ctx context.Context, b *store.Binding) error {
	left := b.ExpiresAt.Sub(s.now())
	body, err := json.Marshal(bindingItem{ID: bindingKey(b.ID), Binding: b, TTL: max(1, int((left+time.Second-1)/time.Second))})
	if err != nil {
		return err
	}
	resp, err := s.container.UpsertItem(ctx, pk(bindingKey(b.ID)), body, nil)
	if err != nil {
		s.chargeErr(ctx, "upsert", &s.upserts, err)
		return fmt.Errorf("store/cosmos: binding: %w", err)
	}
	s.charge(ctx, "upsert", &s.upserts, resp.Response)
	return nil
}

// GetBinding implements store.Bindings with one point read.
func (s *Store) GetBinding(ctx context.Context, id string) (*store.Binding, error) {
	resp, err := s.read(ctx, bindingKey(id))
	if err != nil {
		return nil, err
	}
	var it bindingItem
	if err := json.Unmarshal(resp.Value, &it); err != nil || it.Binding == nil || it.Binding.ID != id {
		return nil, fmt.Errorf("store/cosmos: stored binding is undecodable")
	}
	// The TTL sweep is lazy: an expired item can still be read.
	if it.Binding.Expired(s.now()) {
		return nil, store.ErrNotFound
	}
	return it.Binding, nil
}

// MoveBinding implements store.Bindings: the new binding is written before
// the old one is deleted. Each item is its own partition, so the two cannot
// share a transaction; this order means a failure in between leaves the
// old binding too (for a token the provider has already rotated out), never
// neither.
func (s *Store) MoveBinding(ctx context.Context, oldID string, b *store.Binding) error {
	if err := s.PutBinding(ctx, b); err != nil {
		return err
	}
	return s.DeleteBinding(ctx, oldID)
}

// DeleteBinding implements store.Bindings.
func (s *Store) DeleteBinding(ctx context.Context, id string) error {
	return s.deleteItem(ctx, bindingKey(id))
}

// EachBinding implements store.Bindings with the one query devicegate
// makes: binding items across every partition (each item is its own), a
// filter the gateway serves for cross-partition queries (azcosmos
// ContainerClient.NewQueryItemsPager). It is for the operator's list only.
func (s *Store) EachBinding(ctx context.Context, fn func(*store.Binding) error) error {
	pager := s.container.NewQueryItemsPager("SELECT * FROM c WHERE STARTSWITH(c.id, @prefix)", azcosmos.NewPartitionKey(),
		&azcosmos.QueryOptions{QueryParameters: []azcosmos.QueryParameter{{Name: "@prefix", Value: bindingKey("")}}})
	now := s.now()
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			s.queries.Add(1)
			return fmt.Errorf("store/cosmos: listing bindings: %w", err)
		}
		s.charge(ctx, "query", &s.queries, page.Response)
		for _, raw := range page.Items {
			var it bindingItem
			if json.Unmarshal(raw, &it) != nil || it.Binding == nil || bindingKey(it.Binding.ID) != it.ID || it.Binding.Expired(now) {
				continue
			}
			if err := fn(it.Binding); err != nil {
				return err
			}
		}
	}
	return nil
}
