package memory

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/devicegate/devicegate/api/internal/store"
)

// How records are held: the garbage collector scans every pointer of the
// live heap on each cycle, and a *store.Record is a dozen of them (its
// strings, its scopes, the Location of each time). At 100k live flows
// that scan took about a quarter of the CPU of a poll load (issue 22). So
// each record is kept as one immutable string of bytes (the GC marks it
// and never looks inside), under a fixed-size key that holds no pointer,
// and the index by user code and the expiry heap hold no pointer at all:
// per record the collector sees one pointer, in the records map.

// key is a record ID or user-code hash in a pointer-free form. kind says
// which form: 0–32 is the length of an ID of at most 32 bytes held as is;
// keyHex is the 32 bytes a 64-character lowercase hex ID (what
// deviceflow.Hasher makes) decodes to; keyDigest is the SHA-256 of any
// other ID. The first two are one-to-one; a keyDigest lookup checks the
// ID stored in the record, so even a SHA-256 collision could not return
// another record.
type key struct {
	kind uint8
	b    [32]byte
}

const (
	keyHex    = 33
	keyDigest = 34
)

func keyOf(id string) key {
	var k key
	switch {
	case len(id) <= len(k.b):
		k.kind = uint8(len(id))
		copy(k.b[:], id)
	case len(id) == 2*len(k.b) && lowerHex(id, &k.b):
		k.kind = keyHex
	default:
		k.kind = keyDigest
		k.b = sha256.Sum256([]byte(id))
	}
	return k
}

// lowerHex decodes s, 64 lowercase hex digits, into b; it reports false
// for anything else (upper case included, so each key has one form).
func lowerHex(s string, b *[32]byte) bool {
	for i := range b {
		hi, lo := hexDigit[s[2*i]], hexDigit[s[2*i+1]]
		if hi|lo == 0xff {
			return false
		}
		b[i] = hi<<4 | lo
	}
	return true
}

// hexDigit is the value of each lowercase hex digit; 0xff for any other
// byte.
var hexDigit = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	return t
}()

// instant is a time without its Location: seconds and nanoseconds since
// the Unix epoch, ordered as the times are.
type instant struct {
	sec  int64
	nsec int32
}

func instantOf(t time.Time) instant { return instant{t.Unix(), int32(t.Nanosecond())} }

func (a instant) after(b instant) bool {
	return a.sec > b.sec || a.sec == b.sec && a.nsec > b.nsec
}

// Times in a blob: a tag, then (unless zero) seconds (8 bytes) and
// nanoseconds (4 bytes), little-endian. The instant is kept exactly; the
// Location is kept for UTC and Local (what the service's clock and the
// tests use) and as a fixed offset otherwise. The monotonic reading is
// dropped, as every other backend drops it.
const (
	timeZero = iota
	timeUTC
	timeLocal
	timeOffset // followed by the zone offset in seconds
)

// encode appends r to buf, its Version set to version. The order puts ID,
// UserCodeHash and ExpiresAt first, so the sweep reads only those.
func encode(buf []byte, r *store.Record, version string) []byte {
	buf = appendString(buf, r.ID)
	buf = appendString(buf, r.UserCodeHash)
	buf = appendTime(buf, r.ExpiresAt)
	buf = appendString(buf, r.ClientID)
	buf = appendStrings(buf, r.Scopes)
	buf = appendString(buf, string(r.Status))
	buf = appendTime(buf, r.CreatedAt)
	buf = binary.AppendVarint(buf, int64(r.Interval))
	buf = appendTime(buf, r.LastPoll)
	buf = appendString(buf, r.StateHash)
	buf = appendString(buf, r.CodeVerifier)
	buf = appendBytes(buf, r.Token)
	buf = appendString(buf, r.AuthCode)
	buf = appendTime(buf, r.ExchangeUntil)
	buf = binary.AppendVarint(buf, int64(r.Failures))
	locked := byte(0)
	if r.Locked {
		locked = 1
	}
	buf = append(buf, locked)
	buf = appendString(buf, r.Reason)
	return appendString(buf, version)
}

// decode is encode's inverse. Its strings are substrings of blob (no
// copy: strings are immutable), so a record costs the Record, its scopes
// slice and, when it has one, a copy of its Token.
func decode(blob string) *store.Record {
	d := decoder{s: blob}
	r := &store.Record{}
	r.ID, r.UserCodeHash, r.ExpiresAt = d.string(), d.string(), d.time()
	r.ClientID = d.string()
	r.Scopes = d.strings()
	r.Status = store.Status(d.string())
	r.CreatedAt = d.time()
	r.Interval = int(d.varint())
	r.LastPoll = d.time()
	r.StateHash, r.CodeVerifier = d.string(), d.string()
	r.Token = d.bytes()
	r.AuthCode = d.string()
	r.ExchangeUntil = d.time()
	r.Failures = int(d.varint())
	r.Locked = d.byte() == 1
	r.Reason = d.string()
	r.Version = d.string()
	return r
}

// head reads what the sweep and Delete need: UserCodeHash and ExpiresAt.
func head(blob string) (userCodeHash string, expires time.Time) {
	d := decoder{s: blob}
	d.string()
	return d.string(), d.time()
}

func appendString(buf []byte, s string) []byte {
	return append(binary.AppendUvarint(buf, uint64(len(s))), s...)
}

// appendStrings and appendBytes keep nil apart from empty, as Clone does.
func appendStrings(buf []byte, ss []string) []byte {
	if ss == nil {
		return append(buf, 0)
	}
	buf = binary.AppendUvarint(buf, uint64(len(ss))+1)
	for _, s := range ss {
		buf = appendString(buf, s)
	}
	return buf
}

func appendBytes(buf []byte, b []byte) []byte {
	if b == nil {
		return append(buf, 0)
	}
	return append(binary.AppendUvarint(buf, uint64(len(b))+1), b...)
}

func appendTime(buf []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(buf, timeZero)
	}
	switch loc := t.Location(); loc {
	case time.UTC:
		buf = append(buf, timeUTC)
	case time.Local:
		buf = append(buf, timeLocal)
	default:
		_, off := t.Zone()
		buf = binary.AppendVarint(append(buf, timeOffset), int64(off))
	}
	// Fixed width: cheaper to read back than varints, on every poll.
	return binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint64(buf, uint64(t.Unix())), uint32(t.Nanosecond()))
}

// decoder reads a blob encode wrote; a blob is only ever written by
// encode, so it is never short.
type decoder struct {
	s string
	i int
}

func (d *decoder) byte() byte {
	c := d.s[d.i]
	d.i++
	return c
}

func (d *decoder) uvarint() uint64 {
	var x uint64
	for shift := 0; ; shift += 7 {
		c := d.byte()
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
}

func (d *decoder) uint64() uint64 {
	s := d.s[d.i : d.i+8]
	d.i += 8
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func (d *decoder) uint32() uint32 {
	s := d.s[d.i : d.i+4]
	d.i += 4
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) string() string {
	n := int(d.uvarint())
	s := d.s[d.i : d.i+n]
	d.i += n
	return s
}

func (d *decoder) strings() []string {
	n := int(d.uvarint())
	if n == 0 {
		return nil
	}
	ss := make([]string, n-1)
	for i := range ss {
		ss[i] = d.string()
	}
	return ss
}

func (d *decoder) bytes() []byte {
	n := int(d.uvarint())
	if n == 0 {
		return nil
	}
	b := []byte(d.s[d.i : d.i+n-1])
	d.i += n - 1
	return b
}

func (d *decoder) time() time.Time {
	tag := d.byte()
	if tag == timeZero {
		return time.Time{}
	}
	var off int64
	if tag == timeOffset {
		off = d.varint()
	}
	t := time.Unix(int64(d.uint64()), int64(d.uint32()))
	switch tag {
	case timeUTC:
		return t.UTC()
	case timeOffset:
		return t.In(time.FixedZone("", int(off)))
	}
	return t // time.Unix answers in Local
}

// recordID is the ID a blob holds.
func recordID(blob string) string {
	d := decoder{s: blob}
	return d.string()
}
