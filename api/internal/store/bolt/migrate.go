package bolt

import (
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/devicegate/devicegate/api/internal/store"
)

// The file format and its migrations.
//
// Format 1 (until the expiry index): records, user_codes, counters and,
// lately, bindings.
// Format 2 adds the expiry bucket (expiry.go) and a meta bucket naming the
// format. Open brings a format-1 file to format 2 in one transaction before
// it serves anything: it indexes every record and count it finds. A file
// of a newer format is refused, since this version would not keep that
// format's indexes.

var metaBucket = []byte("meta") // "format" → decimal format number

// formatVersion is the format this version writes.
const formatVersion = 2

// migrated describes what a migration did, for the log.
type migrated struct {
	From                 int
	Records, Undecodable int
	Counters, Bindings   int
}

// prepare creates the buckets of a new file, or migrates an older one to
// formatVersion. It reports the migration it ran, if any.
func prepare(tx *bbolt.Tx) (*migrated, error) {
	from := 0
	if meta := tx.Bucket(metaBucket); meta != nil {
		if _, err := fmt.Sscan(string(meta.Get([]byte("format"))), &from); err != nil {
			return nil, fmt.Errorf("meta bucket names no format: %w", err)
		}
	} else if tx.Bucket(recordsBucket) != nil {
		from = 1
	}
	if from > formatVersion {
		return nil, fmt.Errorf("the file is format %d; this devicegate reads up to %d", from, formatVersion)
	}
	for _, name := range [][]byte{recordsBucket, userCodesBucket, countersBucket, bindingsBucket, expiryBucket, metaBucket} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return nil, fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	var m *migrated
	if from == 1 {
		m = &migrated{From: 1}
		if err := indexAll(tx, m); err != nil {
			return nil, err
		}
	}
	if from != formatVersion {
		if err := tx.Bucket(metaBucket).Put([]byte("format"), fmt.Appendf(nil, "%d", formatVersion)); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// indexAll adds an expiry entry for every record, count and binding
// (format 1 → 2).
// Records it cannot decode get none: the sweeper kept those anyway, and
// Delete still removes them.
func indexAll(tx *bbolt.Tx, m *migrated) error {
	recs := tx.Bucket(recordsBucket)
	var add []func() error
	err := recs.ForEach(func(k, v []byte) error {
		r, _, err := decode(k, v)
		if err != nil {
			m.Undecodable++
			return nil
		}
		key := append([]byte(nil), k...)
		add = append(add, func() error { return addDue(tx, recordDue(r), kindRecord, key) })
		m.Records++
		return nil
	})
	if err != nil {
		return err
	}
	err = tx.Bucket(countersBucket).ForEach(func(k, v []byte) error {
		// A count that cannot be decoded is indexed as due at once, so
		// the next sweep drops it, as format 1's sweep did.
		var c counterValue
		_ = json.Unmarshal(v, &c)
		key := append([]byte(nil), k...)
		add = append(add, func() error { return addDue(tx, c.Reset, kindCounter, key) })
		m.Counters++
		return nil
	})
	if err != nil {
		return err
	}
	if b := tx.Bucket(bindingsBucket); b != nil {
		err = b.ForEach(func(k, v []byte) error {
			// An undecodable binding is due at once: the sweep drops it.
			var bd store.Binding
			_ = json.Unmarshal(v, &bd)
			key := append([]byte(nil), k...)
			add = append(add, func() error { return addDue(tx, bd.ExpiresAt, kindBinding, key) })
			m.Bindings++
			return nil
		})
		if err != nil {
			return err
		}
	}
	// Written after the walks: bbolt does not allow changing buckets
	// while ForEach walks them (the expiry bucket is another bucket, but
	// this keeps the rule simple).
	for _, f := range add {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}
