// Package cosmos is a store.Store on Azure Cosmos DB (NoSQL API), the store
// devicegate uses in Azure, on the free tier.
//
// Every operation on the hot path is a point read or a conditional write by
// item id — never a query — because a point read of a 1 KB item is the
// cheapest thing Cosmos DB does (1 RU) and queries cost several times that.
// The container is partitioned on /id, so each item is its own logical
// partition and writes spread evenly.
//
// Items:
//   - a record: id = the record ID (a hash of the device code);
//   - a user-code key: id = "u." + the user-code hash, holding the record ID;
//   - a rate-limit count: id = "c." + a hash of the window and key;
//   - a refresh-token binding: id = "b." + the token's hash (binding.go).
//
// Update is compare-and-swap: read, change, replace with If-Match on the
// ETag, and on 412 wait a random while and read again, until the write
// lands or the context's deadline (or ContentionLimit) passes. An Update
// that changes only a poll's pacing writes nothing: the figures stay in
// the instance (pacing.go), so a pending poll is one point read. Every write
// sets the item's own ttl to the seconds it has left, because Cosmos counts
// TTL from an item's last write; expiry is still checked in code, because
// the TTL sweep is lazy.
package cosmos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/devicegate/devicegate/api/internal/store"
)

// Options locates and authenticates the container.
type Options struct {
	// ConnectionString ("AccountEndpoint=…;AccountKey=…;") wins over the
	// rest.
	ConnectionString string
	Endpoint         string
	// Key authenticates with the account key; empty means Microsoft Entra
	// ID through DefaultAzureCredential (managed identity in Azure).
	Key       string
	Database  string
	Container string
	// CreateIfMissing creates the database and container (partition key
	// /id, TTL on). In Azure the Bicep template creates them instead.
	CreateIfMissing bool
	Now             store.Clock
	Logger          *slog.Logger
	// HTTPClient overrides the transport (tests, emulators).
	HTTPClient *http.Client
	// Rand draws the jitter of the waits between compare-and-swap rounds;
	// nil means math/rand/v2's shared source. Tests inject a fixed one.
	Rand rand.Source
	// ContentionLimit bounds how long Update and Incr keep retrying a
	// contended item when the context has no deadline; 0 means
	// DefaultContentionLimit. A deadline on the context always wins.
	ContentionLimit time.Duration
}

// DefaultContentionLimit is how long a contended Update keeps trying when
// its context has no deadline. Request contexts have none; this is well
// under the server's 40 s write timeout and the 45 s at which Azure cuts a
// request, so a request never outlives its answer retrying.
const DefaultContentionLimit = 10 * time.Second

// Stats counts the operations sent to Cosmos DB and what they cost.
type Stats struct {
	PointReads int64
	Creates    int64
	Replaces   int64 // replaces with If-Match (Update)
	Patches    int64 // increments (rate-limit counts)
	Upserts    int64 // refresh-token bindings
	Deletes    int64
	// Queries counts query pages: 0 on every request path; only the
	// operator's list of bindings (EachBinding) queries.
	Queries int64
	Retries int64 // replaces retried after 412 Precondition Failed
	RU      float64
}

// Store is the Cosmos DB backend.
type Store struct {
	client    *azcosmos.Client
	container *azcosmos.ContainerClient
	now       store.Clock
	log       *slog.Logger
	jitter    *jitter
	limit     time.Duration
	pace      *pacer

	reads, creates, replaces, patches, upserts, deletes, retries, queries atomic.Int64
	ruMu                                                                  sync.Mutex
	ru                                                                    float64
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Counter = (*Store)(nil)
)

// New connects to the container described by o.
func New(ctx context.Context, o Options) (*Store, error) {
	if o.Database == "" || o.Container == "" {
		return nil, errors.New("store/cosmos: a database and a container name are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	copts := &azcosmos.ClientOptions{}
	if o.HTTPClient != nil {
		copts.Transport = o.HTTPClient
	}
	var client *azcosmos.Client
	var err error
	switch {
	case o.ConnectionString != "":
		client, err = azcosmos.NewClientFromConnectionString(o.ConnectionString, copts)
	case o.Endpoint != "" && o.Key != "":
		var cred azcosmos.KeyCredential
		if cred, err = azcosmos.NewKeyCredential(o.Key); err == nil {
			client, err = azcosmos.NewClientWithKey(o.Endpoint, cred, copts)
		}
	case o.Endpoint != "":
		var cred *azidentity.DefaultAzureCredential
		if cred, err = azidentity.NewDefaultAzureCredential(nil); err == nil {
			client, err = azcosmos.NewClient(o.Endpoint, cred, copts)
		}
	default:
		return nil, errors.New("store/cosmos: set a connection string, or an endpoint (with a key, or none for Microsoft Entra ID)")
	}
	if err != nil {
		// The SDK's messages can quote the connection string; say only
		// what failed.
		return nil, errors.New("store/cosmos: the connection settings are not valid (check the endpoint and key format)")
	}
	if o.ContentionLimit <= 0 {
		o.ContentionLimit = DefaultContentionLimit
	}
	s := &Store{client: client, now: o.Now, log: o.Logger, jitter: newJitter(o.Rand), limit: o.ContentionLimit, pace: newPacer(time.Now(), maxPaces)}
	if o.CreateIfMissing {
		if err := s.create(ctx, o.Database, o.Container); err != nil {
			return nil, err
		}
	}
	if s.container, err = client.NewContainer(o.Database, o.Container); err != nil {
		return nil, fmt.Errorf("store/cosmos: %w", err)
	}
	return s, nil
}

// create makes the database and container unless they exist.
func (s *Store) create(ctx context.Context, database, container string) error {
	_, err := s.client.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: database}, nil)
	if err != nil && status(err) != http.StatusConflict {
		return fmt.Errorf("store/cosmos: creating database %s: %w", database, err)
	}
	db, err := s.client.NewDatabase(database)
	if err != nil {
		return err
	}
	ttlOn := int32(-1) // TTL on, no default: each item says its own
	_, err = db.CreateContainer(ctx, azcosmos.ContainerProperties{
		ID:                     container,
		PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/id"}},
		DefaultTimeToLive:      &ttlOn,
	}, nil)
	if err != nil && status(err) != http.StatusConflict {
		return fmt.Errorf("store/cosmos: creating container %s: %w", container, err)
	}
	return nil
}

// status is the HTTP status of an SDK error, or 0.
func status(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	s.ruMu.Lock()
	ru := s.ru
	s.ruMu.Unlock()
	return Stats{
		PointReads: s.reads.Load(), Creates: s.creates.Load(), Replaces: s.replaces.Load(),
		Patches: s.patches.Load(), Upserts: s.upserts.Load(), Deletes: s.deletes.Load(), Retries: s.retries.Load(),
		Queries: s.queries.Load(), RU: ru,
	}
}

// ResetStats zeroes the counters.
func (s *Store) ResetStats() {
	s.reads.Store(0)
	s.creates.Store(0)
	s.replaces.Store(0)
	s.patches.Store(0)
	s.upserts.Store(0)
	s.deletes.Store(0)
	s.retries.Store(0)
	s.queries.Store(0)
	s.ruMu.Lock()
	s.ru = 0
	s.ruMu.Unlock()
}

// charge records one operation's request charge. The log line names the
// operation only: item ids are hashes of secret codes.
func (s *Store) charge(ctx context.Context, op string, ctr *atomic.Int64, r azcosmos.Response) {
	ctr.Add(1)
	s.ruMu.Lock()
	s.ru += float64(r.RequestCharge)
	s.ruMu.Unlock()
	s.log.LogAttrs(ctx, slog.LevelDebug, "cosmos operation", slog.String("op", op), slog.Float64("ru", float64(r.RequestCharge)))
}

// chargeErr records the charge of a failed operation, when it has one.
func (s *Store) chargeErr(ctx context.Context, op string, ctr *atomic.Int64, err error) {
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.RawResponse != nil {
		var ru float32
		fmt.Sscan(re.RawResponse.Header.Get("x-ms-request-charge"), &ru)
		s.charge(ctx, op, ctr, azcosmos.Response{RequestCharge: ru})
		return
	}
	ctr.Add(1)
}

type recordItem struct {
	ID     string        `json:"id"`
	Record *store.Record `json:"rec"`
	TTL    int           `json:"ttl"`
}

type userItem struct {
	ID       string `json:"id"`
	RecordID string `json:"rid"`
	TTL      int    `json:"ttl"`
}

func userKey(hash string) string { return "u." + hash }

// ttl is the seconds an item about r should live from now: until the
// record's retention ends, and at least one (0 would mean "never").
func (s *Store) ttl(r *store.Record) int {
	left := r.ExpiresAt.Add(store.Retention).Sub(s.now())
	return max(1, int((left+time.Second-1)/time.Second))
}

func pk(id string) azcosmos.PartitionKey { return azcosmos.NewPartitionKeyString(id) }

// read point-reads an item; a missing one is store.ErrNotFound.
func (s *Store) read(ctx context.Context, id string) (azcosmos.ItemResponse, error) {
	resp, err := s.container.ReadItem(ctx, pk(id), id, nil)
	if err != nil {
		s.chargeErr(ctx, "read", &s.reads, err)
		if status(err) == http.StatusNotFound {
			return resp, store.ErrNotFound
		}
		return resp, fmt.Errorf("store/cosmos: read: %w", err)
	}
	s.charge(ctx, "read", &s.reads, resp.Response)
	return resp, nil
}

// readRecord reads and decodes a record, enforcing expiry, with this
// instance's pacing laid over it; seq names that overlay (0 for none).
func (s *Store) readRecord(ctx context.Context, id string) (r *store.Record, etag azcore.ETag, seq uint64, err error) {
	resp, err := s.read(ctx, id)
	if err != nil {
		return nil, "", 0, err
	}
	var it recordItem
	if err := json.Unmarshal(resp.Value, &it); err != nil || it.Record == nil || it.Record.ID != id {
		return nil, "", 0, fmt.Errorf("store/cosmos: stored record is undecodable")
	}
	if it.Record.Expired(s.now()) {
		return nil, "", 0, store.ErrExpired
	}
	seq = s.pace.apply(it.Record, resp.ETag)
	return it.Record, resp.ETag, seq, nil
}

// Create implements store.Store: the user-code key first, so that a taken
// user code is found before the record exists; the key is removed again if
// the record cannot be created.
func (s *Store) Create(ctx context.Context, r *store.Record) error {
	ttl := s.ttl(r)
	uk, _ := json.Marshal(userItem{ID: userKey(r.UserCodeHash), RecordID: r.ID, TTL: ttl})
	resp, err := s.container.CreateItem(ctx, pk(userKey(r.UserCodeHash)), uk, nil)
	if err != nil {
		s.chargeErr(ctx, "create", &s.creates, err)
		if status(err) == http.StatusConflict {
			return store.ErrConflict
		}
		return fmt.Errorf("store/cosmos: create: %w", err)
	}
	s.charge(ctx, "create", &s.creates, resp.Response)
	c := r.Clone()
	c.Version = ""
	body, err := json.Marshal(recordItem{ID: r.ID, Record: c, TTL: ttl})
	if err != nil {
		return err
	}
	resp, err = s.container.CreateItem(ctx, pk(r.ID), body, nil)
	if err != nil {
		s.chargeErr(ctx, "create", &s.creates, err)
		s.deleteItem(context.WithoutCancel(ctx), userKey(r.UserCodeHash))
		if status(err) == http.StatusConflict {
			return store.ErrConflict
		}
		return fmt.Errorf("store/cosmos: create: %w", err)
	}
	s.charge(ctx, "create", &s.creates, resp.Response)
	return nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, id string) (*store.Record, error) {
	r, _, _, err := s.readRecord(ctx, id)
	return r, err
}

// GetByUserCode implements store.Store with two point reads.
func (s *Store) GetByUserCode(ctx context.Context, userCodeHash string) (*store.Record, error) {
	resp, err := s.read(ctx, userKey(userCodeHash))
	if err != nil {
		return nil, err
	}
	var u userItem
	if err := json.Unmarshal(resp.Value, &u); err != nil || u.RecordID == "" {
		return nil, fmt.Errorf("store/cosmos: stored user-code key is undecodable")
	}
	return s.Get(ctx, u.RecordID)
}

// Update implements store.Store as compare-and-swap on the ETag. A 412
// (another writer won) or a 429 (throttled) means read and try again: for
// as long as the context allows, or the contention limit when it sets no
// deadline, never for a fixed number of rounds, because how many rounds a
// writer loses depends on how many others contend and how loaded the
// machine is, not on anything Update can know.
func (s *Store) Update(ctx context.Context, id string, fn func(*store.Record) error) (*store.Record, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	for try := 0; ; try++ {
		read, etag, seen, err := s.readRecord(ctx, id)
		if err != nil {
			return nil, s.gaveUp(ctx, try, err)
		}
		cur := read.Clone()
		if err := fn(cur); err != nil {
			return nil, err
		}
		cur.ID, cur.UserCodeHash, cur.Version = read.ID, read.UserCodeHash, ""
		if store.PacingOnly(read, cur) {
			if s.pace.set(cur, etag, seen, s.now()) {
				return cur, nil
			}
			// Another poll of this record, answered by this instance,
			// moved the pacing since the read: decide again.
			continue
		}
		err = s.replaceIf(ctx, cur, etag)
		if err == nil {
			return cur, nil
		}
		switch status(err) {
		case http.StatusPreconditionFailed, http.StatusTooManyRequests:
			s.retries.Add(1)
			if err := s.backoff(ctx, try); err != nil {
				return nil, s.gaveUp(ctx, try+1, err)
			}
		case http.StatusNotFound:
			return nil, store.ErrNotFound
		default:
			return nil, s.gaveUp(ctx, try, fmt.Errorf("store/cosmos: replace: %w", err))
		}
	}
}

// replaceIf writes cur over the item if the item is still at etag (a
// compare-and-swap: 412 Precondition Failed otherwise), and sets
// cur.Version to the new ETag.
func (s *Store) replaceIf(ctx context.Context, cur *store.Record, etag azcore.ETag) error {
	body, err := json.Marshal(recordItem{ID: cur.ID, Record: cur, TTL: s.ttl(cur)})
	if err != nil {
		return err
	}
	resp, err := s.container.ReplaceItem(ctx, pk(cur.ID), cur.ID, body, &azcosmos.ItemOptions{IfMatchEtag: &etag})
	if err != nil {
		s.chargeErr(ctx, "replace", &s.replaces, err)
		return err
	}
	s.charge(ctx, "replace", &s.replaces, resp.Response)
	// The figures are in the item now; the overlay of the old ETag would
	// be ignored anyway.
	s.pace.dropIf(cur.ID, etag)
	cur.Version = string(resp.ETag)
	return nil
}

// UpdateKnown implements store.KnownUpdater: fn runs on known and its
// result replaces the item under If-Match on the ETag known was read at,
// so the write lands only if nobody wrote the record since, and Update's
// point read is spared. Anything else — the ETag moved (412), a throttle,
// a change of the pacing figures only, this instance's pacing moved since
// known was read — goes on as Update, which reads afresh.
func (s *Store) UpdateKnown(ctx context.Context, known *store.Record, fn func(*store.Record) error) (*store.Record, error) {
	etag, seen, ok := parseVersion(known.Version)
	if !ok || known.Expired(s.now()) {
		return s.Update(ctx, known.ID, fn)
	}
	read := known.Clone()
	if s.pace.apply(read, etag) != seen {
		return s.Update(ctx, known.ID, fn)
	}
	cur := read.Clone()
	if err := fn(cur); err != nil {
		return nil, err
	}
	cur.ID, cur.UserCodeHash, cur.Version = read.ID, read.UserCodeHash, ""
	if store.PacingOnly(read, cur) {
		return s.Update(ctx, known.ID, fn)
	}
	err := s.replaceIf(ctx, cur, etag)
	switch {
	case err == nil:
		return cur, nil
	case status(err) == http.StatusPreconditionFailed || status(err) == http.StatusTooManyRequests:
		s.retries.Add(1)
		ctx, cancel := s.bound(ctx)
		defer cancel()
		if err := s.backoff(ctx, 0); err != nil {
			return nil, s.gaveUp(ctx, 1, err)
		}
		return s.Update(ctx, known.ID, fn)
	case status(err) == http.StatusNotFound:
		return nil, store.ErrNotFound
	}
	return nil, fmt.Errorf("store/cosmos: replace: %w", err)
}

// bound gives ctx the contention limit as its deadline when it has none.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.limit)
}

// gaveUp is Update's error after lost rounds: when the context ended after
// at least one lost round, contention is the reason, whichever call the
// deadline happened to interrupt.
func (s *Store) gaveUp(ctx context.Context, lost int, err error) error {
	if cerr := ctx.Err(); cerr != nil && lost > 0 && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("store/cosmos: record still contended after %d lost rounds: %w", lost, cerr)
	}
	return s.ended(ctx, err)
}

// ended makes an error that came from the context ending say so, since
// the SDK reports it as a transport failure.
func (s *Store) ended(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w (%w)", err, cerr)
	}
	return err
}

// Backoff between compare-and-swap rounds: "full jitter", a wait drawn
// uniformly from [0, min(backoffCap, backoffBase·2^try)). Drawing from the
// whole range, rather than adding a little noise to a fixed step, is what
// stops writers that lost together from colliding again together.
const (
	backoffBase = 4 * time.Millisecond
	backoffCap  = 250 * time.Millisecond
)

// backoff waits before round try+1, or returns ctx's error if the context
// ends first.
func (s *Store) backoff(ctx context.Context, try int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ceil := min(backoffCap, backoffBase<<min(try, 16))
	t := time.NewTimer(s.jitter.below(ceil))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// jitter draws waits from an injected source; a rand.Source is not safe
// for concurrent use, hence the lock.
type jitter struct {
	mu  sync.Mutex
	src *rand.Rand
}

func newJitter(src rand.Source) *jitter {
	if src == nil {
		return &jitter{} // the shared, concurrency-safe source
	}
	return &jitter{src: rand.New(src)}
}

// below returns a duration in [0, d).
func (j *jitter) below(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	if j.src == nil {
		return rand.N(d)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return time.Duration(j.src.Int64N(int64(d)))
}

// Delete implements store.Store: the record, then its user-code key.
func (s *Store) Delete(ctx context.Context, id string) error {
	s.pace.drop(id)
	resp, err := s.read(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var it recordItem
	_ = json.Unmarshal(resp.Value, &it)
	if err := s.deleteItem(ctx, id); err != nil {
		return err
	}
	if it.Record != nil && it.Record.UserCodeHash != "" {
		return s.deleteItem(ctx, userKey(it.Record.UserCodeHash))
	}
	return nil
}

func (s *Store) deleteItem(ctx context.Context, id string) error {
	resp, err := s.container.DeleteItem(ctx, pk(id), id, nil)
	if err != nil {
		s.chargeErr(ctx, "delete", &s.deletes, err)
		if status(err) == http.StatusNotFound {
			return nil
		}
		return fmt.Errorf("store/cosmos: delete: %w", err)
	}
	s.charge(ctx, "delete", &s.deletes, resp.Response)
	return nil
}

// Ping implements store.Store by reading the container's properties.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.container.Read(ctx, nil); err != nil {
		return fmt.Errorf("store/cosmos: ping: %w", err)
	}
	return nil
}

// Close implements store.Store.
func (s *Store) Close() error { return nil }

type counterItem struct {
	ID    string    `json:"id"`
	N     int       `json:"n"`
	Reset time.Time `json:"reset"`
	TTL   int       `json:"ttl"`
	// M holds a group's members (IncrMember).
	M map[string]int `json:"m,omitempty"`
}

// Incr implements store.Counter with an atomic server-side increment
// (a patch), so concurrent instances never contend on a count. Each window
// has its own item, whose ttl ends shortly after the window does; the
// first event of a window creates it.
func (s *Store) Incr(ctx context.Context, key string, window time.Duration) (int, time.Time, error) {
	c, reset, err := s.count(ctx, window.String()+"|"+key, window, "/n", func(c *counterItem) { c.N = 1 })
	if err != nil {
		return 0, time.Time{}, err
	}
	if c.N < 1 {
		return 0, time.Time{}, errors.New("store/cosmos: counter answer is undecodable")
	}
	return c.N, reset, nil
}

// IncrMember implements store.Counter with one patch of the group's item:
// Cosmos DB's increment creates a member's field when it is missing
// (learn.microsoft.com/azure/cosmos-db/partial-document-update, "Supported
// operations": "If the field doesn't exist, it creates the field"), and
// the patch answers the whole item, so one operation counts the member
// and reports its neighbours.
func (s *Store) IncrMember(ctx context.Context, group, member string, window time.Duration) (map[string]int, time.Time, error) {
	c, reset, err := s.count(ctx, window.String()+"|g|"+group, window, "/m/"+pointerEscape(member), func(c *counterItem) {
		c.M = map[string]int{member: 1}
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	if c.M[member] < 1 {
		return nil, time.Time{}, errors.New("store/cosmos: counter answer is undecodable")
	}
	return c.M, reset, nil
}

// pointerEscape escapes a property name for a patch path (RFC 6901 §3:
// "~" as "~0", "/" as "~1"; the partial document update docs ask for the
// same).
func pointerEscape(name string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(name)
}

// count increments path in the item of key's current window, creating the
// item (with first filling in its first count) when the window has none.
func (s *Store) count(ctx context.Context, key string, window time.Duration, path string, first func(*counterItem)) (counterItem, time.Time, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	for try := 0; ; try++ {
		now := s.now()
		start := store.WindowStart(now, window)
		reset := start.Add(window)
		sum := sha256.Sum256([]byte(key + "|" + start.UTC().Format(time.RFC3339)))
		id := "c." + hex.EncodeToString(sum[:16])

		ops := azcosmos.PatchOperations{}
		ops.AppendIncrement(path, 1)
		resp, err := s.container.PatchItem(ctx, pk(id), id, ops, &azcosmos.ItemOptions{EnableContentResponseOnWrite: true})
		if err == nil {
			s.charge(ctx, "patch", &s.patches, resp.Response)
			var c counterItem
			if err := json.Unmarshal(resp.Value, &c); err != nil {
				return c, reset, errors.New("store/cosmos: counter answer is undecodable")
			}
			return c, reset, nil
		}
		s.chargeErr(ctx, "patch", &s.patches, err)
		if status(err) != http.StatusNotFound {
			return counterItem{}, reset, s.ended(ctx, fmt.Errorf("store/cosmos: counter: %w", err))
		}
		c := counterItem{ID: id, Reset: reset, TTL: max(1, int(reset.Sub(now)/time.Second)+60)}
		first(&c)
		body, _ := json.Marshal(c)
		cr, err := s.container.CreateItem(ctx, pk(id), body, nil)
		if err == nil {
			s.charge(ctx, "create", &s.creates, cr.Response)
			return c, reset, nil
		}
		s.chargeErr(ctx, "create", &s.creates, err)
		if status(err) != http.StatusConflict {
			return counterItem{}, reset, s.ended(ctx, fmt.Errorf("store/cosmos: counter: %w", err))
		}
		// Another instance created it first: increment theirs. Normally the
		// next patch finds it; the loop only goes on if the item vanished
		// again in between, and then ends with the context like Update.
		s.retries.Add(1)
		if try > 0 {
			if err := s.backoff(ctx, try-1); err != nil {
				return counterItem{}, reset, fmt.Errorf("store/cosmos: counter could not be created or incremented: %w", err)
			}
		}
	}
}
