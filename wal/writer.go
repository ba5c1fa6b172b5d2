package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/redmesh/redmesh/record"
)

// maxBatch bounds how many Update calls share one Badger transaction.
const maxBatch = 512

// ErrKeyTooLong is returned by Tx.Apply for a key over MaxKeyLen.
var ErrKeyTooLong = fmt.Errorf("key longer than %d bytes", MaxKeyLen)

// ErrTooLarge is returned by Update when one call's changes exceed what a
// single Badger transaction can hold.
var ErrTooLarge = errors.New("update too large for one transaction")

// Tx is the view an Update function gets: reads see every change made earlier
// in the same batch, including its own.
type Tx struct {
	s     *Store
	btx   *badger.Txn
	batch map[string]record.Record // committed-to-be state of keys changed in this batch
	order []change                 // this call's changes in order, folded into batch on success
	pos   map[string]int           // each key's last change in order, once order is long
}

// own finds this call's latest change of key. Most calls change one key or
// a few: a backwards scan then beats a map, which would be allocated per
// call.
func (tx *Tx) own(key []byte) (record.Record, bool) {
	if len(tx.order) > 16 {
		if tx.pos == nil {
			tx.pos = make(map[string]int, 2*len(tx.order))
			for i, c := range tx.order {
				tx.pos[string(c.key)] = i
			}
		}
		if i, ok := tx.pos[string(key)]; ok {
			return tx.order[i].rec, true
		}
		return record.Record{}, false
	}
	for i := len(tx.order) - 1; i >= 0; i-- {
		if bytes.Equal(tx.order[i].key, key) {
			return tx.order[i].rec, true
		}
	}
	return record.Record{}, false
}

type change struct {
	key []byte
	rec record.Record
	was record.Record // before; its value's Data may be missing (from the index)
}

// Get reads a key's current record.
func (tx *Tx) Get(key []byte) (record.Record, error) {
	rec, full := tx.Peek(key)
	if full || !rec.Exists() {
		return rec, nil
	}
	if r, ok, _ := tx.s.cache.get(string(key)); ok {
		return r, nil // the cache holds committed state, as Badger does here
	}
	rec, err := getRecord(tx.btx, tx.s.rowKey(key))
	if err != nil {
		return record.Record{}, fmt.Errorf("get %q: %w", key, err)
	}
	return rec, nil
}

// Peek reads a key's current record, with its value's data only if that is
// at hand (full): changes made earlier in the batch are; committed rows come
// from the in-memory index without data. Enough for versions, liveness and
// expiry, without a storage read.
func (tx *Tx) Peek(key []byte) (rec record.Record, full bool) {
	if r, ok := tx.own(key); ok {
		return r, true
	}
	if r, ok := tx.batch[string(key)]; ok {
		return r, true
	}
	m, ok := tx.s.index.get(string(key))
	if !ok {
		return record.Record{}, true // no row: nothing more to read
	}
	return m.record(), false
}

// Apply merges rec into key's record. If rec wins anything, the merged record
// is stored and logged when the batch commits; if not, nothing is written and
// changed is false (a write that loses is dropped, so nothing loops).
func (tx *Tx) Apply(key []byte, rec record.Record) (merged record.Record, changed bool, err error) {
	if len(key) > MaxKeyLen {
		return record.Record{}, false, ErrKeyTooLong
	}
	cur, full := tx.Peek(key)
	if !full && cur.Exists() && rec.Value.Version.Compare(cur.Value.Version) <= 0 {
		// The stored value may survive the merge: it needs its data.
		if cur, err = tx.Get(key); err != nil {
			return record.Record{}, false, err
		}
	}
	merged, changed = record.MergeInto(cur, rec)
	if !changed {
		return cur, false, nil
	}
	// The incoming data may alias a connection's read buffer; what is kept
	// beyond this call (batch state, cache, commit hooks) must own its bytes.
	merged.Value.Data = bytes.Clone(merged.Value.Data)
	tx.order = append(tx.order, change{key: bytes.Clone(key), rec: merged, was: cur})
	if tx.pos != nil {
		tx.pos[string(key)] = len(tx.order) - 1
	}
	return merged, true, nil
}

// Savepoint marks the changes made so far, for RollbackTo.
func (tx *Tx) Savepoint() int { return len(tx.order) }

// RollbackTo undoes the changes made since the savepoint sp, so that one
// command of a transaction or pipeline can fail without undoing the others.
func (tx *Tx) RollbackTo(sp int) {
	tx.order = tx.order[:sp]
	tx.pos = nil // rebuilt from order if needed
}

// UpdateFunc reads and applies through tx. If it returns an error, none of
// its changes are made.
type UpdateFunc func(tx *Tx) error

type request struct {
	ctx  context.Context
	fn   UpdateFunc
	done chan error
	// set by the writer
	changes []change
}

// Update runs fn in the writer and returns once its changes are committed and
// as durable as the fsync mode promises. Concurrent calls share one commit
// (and, with fsync always, one sync).
func (s *Store) Update(ctx context.Context, fn UpdateFunc) error {
	req := &request{ctx: ctx, fn: fn, done: make(chan error, 1)}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return ErrClosed
	}
	select {
	case s.reqs <- req:
		s.mu.Unlock()
	case <-ctx.Done():
		s.mu.Unlock()
		return ctx.Err()
	}
	// Once queued, the request runs; wait for it even if ctx ends, so the
	// caller never reports failure for a write that then happens.
	return <-req.done
}

func (s *Store) writer() {
	defer s.wg.Done()
	batch := make([]*request, 0, maxBatch)
	for {
		select {
		case req := <-s.reqs:
			batch = append(batch[:0], req)
		case <-s.stop:
			// Drain what was queued before Close.
			for {
				select {
				case req := <-s.reqs:
					s.runBatch([]*request{req})
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case req := <-s.reqs:
				batch = append(batch, req)
			default:
				break fill
			}
		}
		s.runBatch(batch)
	}
}

// runBatch runs the functions of a batch, commits their changes and answers
// every request.
func (s *Store) runBatch(reqs []*request) {
	btx := s.db.NewTransaction(false)
	state := make(map[string]record.Record)
	var ok []*request
	for _, req := range reqs {
		if err := req.ctx.Err(); err != nil {
			req.done <- err
			continue
		}
		tx := &Tx{s: s, btx: btx, batch: state}
		if err := runFn(req.fn, tx); err != nil {
			req.done <- err
			continue
		}
		if !s.fits(tx.order) {
			req.done <- ErrTooLarge
			continue
		}
		for _, c := range tx.order {
			state[string(c.key)] = c.rec
		}
		req.changes = tx.order
		ok = append(ok, req)
	}
	btx.Discard()
	entries, errs := s.commit(ok)
	if s.opts.Fsync == FsyncAlways && len(entries) > 0 {
		if err := s.db.Sync(); err != nil {
			for i := range errs {
				if errs[i] == nil {
					errs[i] = fmt.Errorf("fsync: %w", err)
				}
			}
		}
	}
	if len(entries) > 0 && s.opts.OnCommit != nil {
		s.opts.OnCommit(entries)
	}
	for i, req := range ok {
		req.done <- errs[i]
	}
}

// runFn turns a panic in an update function into an error, so one bad
// command cannot take the writer (and with it the node) down.
func runFn(fn UpdateFunc, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("update panicked: %v", p)
		}
	}()
	return fn(tx)
}

// commit writes the requests' changes in as few Badger transactions as fit,
// never splitting one request's changes across two. It returns the log
// entries written, and one error per request.
func (s *Store) commit(reqs []*request) ([]Entry, []error) {
	errs := make([]error, len(reqs))
	var entries []Entry
	now := s.opts.Now()
	s.logMu.Lock()
	seq := s.lastSeq
	s.logMu.Unlock()

	for start := 0; start < len(reqs); {
		txn := s.db.NewTransaction(true)
		var st staged
		end := start
		var err error
		for ; end < len(reqs); end++ {
			if err = s.stage(txn, &st, reqs[end].changes, seq, now); err != nil {
				break
			}
		}
		if err != nil {
			txn.Discard()
			if end == start {
				// Alone in a transaction and still failing: refuse it.
				errs[end] = fmt.Errorf("store %d changes: %w", len(reqs[end].changes), err)
				if errors.Is(err, badger.ErrTxnTooBig) {
					errs[end] = ErrTooLarge
				}
				start++
				continue
			}
			// Commit the requests that fitted; the one that did not goes
			// first in the next transaction.
			txn, st = s.db.NewTransaction(true), staged{}
			for i := start; i < end; i++ {
				if err := s.stage(txn, &st, reqs[i].changes, seq, now); err != nil {
					errs[i] = err // fitted a moment ago: only a Badger bug gets here
				}
			}
		}
		if err := txn.Commit(); err != nil {
			for i := start; i < end; i++ {
				errs[i] = fmt.Errorf("commit: %w", err)
			}
		} else {
			seq += uint64(len(st.entries))
			for _, e := range st.entries {
				s.index.set(string(e.Key), metaOf(e.Record))
				s.cache.committed(string(e.Key), e.Record)
			}
			entries = append(entries, st.entries...)
			s.keys.Add(st.keyDelta)
			s.expires.Add(st.expiresDelta)
			s.logMu.Lock()
			s.lastSeq = seq
			s.logBytes += st.bytes
			s.logMu.Unlock()
		}
		start = end
	}
	return entries, errs
}

// staged is what a transaction holds so far.
type staged struct {
	entries      []Entry
	bytes        int64
	keyDelta     int64
	expiresDelta int64
}

// stage adds one request's rows and log entries to txn, numbering entries on
// from seq plus those already staged.
func (s *Store) stage(txn *badger.Txn, st *staged, changes []change, seq uint64, now time.Time) error {
	for _, c := range changes {
		e := Entry{Seq: seq + uint64(len(st.entries)) + 1, Time: now, Key: c.key, Record: c.rec, Prev: c.was.Versions()}
		// The log stores the mutation's versions; the value itself is in
		// the keyspace row of the same transaction, so it is not written
		// twice (see ReadLog).
		logged := e
		logged.Record.Value.Data = nil
		body := appendEntry(nil, logged)
		lk := logKey(e.Seq)
		if err := txn.Set(s.rowKey(c.key), record.Encode(c.rec)); err != nil {
			return err
		}
		if err := txn.Set(lk, body); err != nil {
			return err
		}
		st.entries = append(st.entries, e)
		st.bytes += int64(len(lk) + len(body))
		st.keyDelta += boolInt(c.rec.Exists()) - boolInt(c.was.Exists())
		wasDeadline, deadline := deadlineOf(c.was), deadlineOf(c.rec)
		if wasDeadline != deadline {
			if wasDeadline != 0 {
				if err := txn.Delete(expiryKey(wasDeadline, c.key)); err != nil {
					return err
				}
			}
			if deadline != 0 {
				if err := txn.Set(expiryKey(deadline, c.key), nil); err != nil {
					return err
				}
			}
			st.expiresDelta += boolInt(deadline != 0) - boolInt(wasDeadline != 0)
		}
	}
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// fits reports whether one request's changes fit in a Badger transaction by
// Badger's own accounting, so that a request too large is refused before any
// later request in the batch can read its changes.
func (s *Store) fits(changes []change) bool {
	threshold := s.db.Opts().ValueThreshold
	est := func(k, v int) int64 {
		if int64(v) < threshold {
			return int64(k+v) + 12
		}
		return int64(k) + 24
	}
	var size int64
	for _, c := range changes {
		n := record.EncodedSize(c.rec)
		size += est(5+len(c.key), n) + est(9, n+len(c.key)+16) + 2*est(9+len(c.key), 0)
	}
	return int64(4*len(changes)) < s.db.MaxBatchCount() && size < s.db.MaxBatchSize()
}
