package wal

import (
	"sync"
	"sync/atomic"

	badger "github.com/dgraph-io/badger/v4"
)

// Badger runs in managed mode: the store picks every transaction's read and
// commit timestamps itself. In Badger's own mode each transaction begun and
// each commit signals its two watermark goroutines, several wake-ups per
// write batch that, on a node running on one thread, queue in front of
// whatever else is ready (replies, the mesh's pushes, applying a peer's
// writes). The store needs none of that: one goroutine commits the writes,
// and the other commits (truncation, metadata) are rare, so commits simply
// take turns.

// timestamps are the store's Badger versions.
type timestamps struct {
	commitMu sync.Mutex    // held across a commit, so commits finish in timestamp order
	last     uint64        // the last commit timestamp taken; guarded by commitMu
	visible  atomic.Uint64 // every commit at or below it has finished

	mu      sync.Mutex
	readers map[uint64]int // read transactions open, by read timestamp
}

func newTimestamps(last uint64) *timestamps {
	t := &timestamps{last: last, readers: make(map[uint64]int)}
	t.visible.Store(last)
	return t
}

// readTxn opens a read-only transaction that sees every finished commit.
// endRead must close it: until then compaction keeps the versions it sees.
func (s *Store) readTxn() *badger.Txn {
	s.ts.mu.Lock()
	ts := s.ts.visible.Load()
	s.ts.readers[ts]++
	s.ts.mu.Unlock()
	return s.db.NewTransactionAt(ts, false)
}

// endRead closes a transaction from readTxn.
func (s *Store) endRead(txn *badger.Txn) {
	txn.Discard()
	ts := txn.ReadTs()
	s.ts.mu.Lock()
	if s.ts.readers[ts]--; s.ts.readers[ts] <= 0 {
		delete(s.ts.readers, ts)
	}
	s.ts.mu.Unlock()
}

// view runs fn in a read-only transaction.
func (s *Store) view(fn func(*badger.Txn) error) error {
	txn := s.readTxn()
	defer s.endRead(txn)
	return fn(txn)
}

// writeTxn opens a transaction to write in; commitTxn commits it.
func (s *Store) writeTxn() *badger.Txn {
	return s.db.NewTransactionAt(s.ts.visible.Load(), true)
}

// commitTxn commits txn at the next timestamp; readers see it once it has
// finished.
func (s *Store) commitTxn(txn *badger.Txn) error {
	s.ts.commitMu.Lock()
	defer s.ts.commitMu.Unlock()
	if errp := s.broken.Load(); errp != nil {
		return *errp
	}
	s.ts.last++
	err := txn.CommitAt(s.ts.last, nil)
	// Even a failed commit's timestamp is never used again: part of it may
	// have been written.
	s.ts.visible.Store(s.ts.last)
	return err
}

// update runs fn in a transaction and commits it.
func (s *Store) update(fn func(*badger.Txn) error) error {
	txn := s.writeTxn()
	defer txn.Discard()
	if err := fn(txn); err != nil {
		return err
	}
	return s.commitTxn(txn)
}

// writeBatch returns a batch whose writes all commit at one new timestamp,
// and the function that makes them visible once the batch is flushed. The
// caller holds off every other commit until then; only Open uses it.
func (s *Store) writeBatch() (*badger.WriteBatch, func()) {
	s.ts.commitMu.Lock()
	s.ts.last++
	ts := s.ts.last
	s.ts.commitMu.Unlock()
	return s.db.NewWriteBatchAt(ts), func() { s.ts.visible.Store(ts) }
}

// releaseVersions lets compaction drop the versions no open reader can see.
func (s *Store) releaseVersions() { s.db.SetDiscardTs(s.ts.floor()) }

// floor is the oldest timestamp an open reader reads at, or the visible one
// if none is open: every version a reader needs is the newest at or below
// its timestamp, which compaction keeps.
func (t *timestamps) floor() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.visible.Load()
	for ts := range t.readers {
		f = min(f, ts)
	}
	return f
}
