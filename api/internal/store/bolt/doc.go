// Package bolt is the local default store.Store: every record lives in one
// bbolt file, so a single devicegate process keeps its pending device
// authorizations across restarts without any server to run.
//
// The package owns the file layout — a bucket of records keyed by ID, a
// bucket mapping user-code hashes to IDs, rate-limit counts, and an expiry
// index ordered by when each item may go (expiry.go) — its migrations
// (migrate.go), and the sweeper that follows the index in bounded slices,
// each one call of the group commit, to remove records once they are store.Retention past expiry. Creates
// that arrive together share one transaction and one fsync, and each is
// answered only after that commit. Every write runs in a
// bbolt read-write transaction; bbolt admits one writer at a time, which
// lets Create check both keys atomically, and Update holds a per-record
// lock from its read to its write, which makes it a compare-and-swap.
//
// Two exceptions to "every write": an Update that changes only a record's
// poll pacing (LastPoll, Interval) is kept in memory, laid over the stored
// record, and never fsynced — a pending poll is the hot path and its
// figures are worth nothing after a restart (pacing.go says why); and a
// rate-limit count waits in memory for the next commit, which carries it
// with the write the request was counted for (counters.go).
//
// Things it must never do: write keys (hashes of secret codes) to a log or
// into an error message, panic on a value it cannot decode, or hang when
// another process holds the file — bbolt takes an exclusive lock, so a
// second process gets a clear error after a short wait instead.
package bolt
