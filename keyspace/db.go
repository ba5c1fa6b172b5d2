// Package keyspace is a node's keyspace: every key's record in memory (a
// Table), the one write path that changes it (Update), and its checkpoints.
//
// A write runs as Redis runs commands: one at a time. Update takes the
// write lock, runs its function against the table through a Tx, and
// publishes the changes: into the table, where readers see them, and, with
// a sequence number each, into the batch of log entries the committer
// goroutine stores next. Then it waits until that batch is committed to the
// write-ahead log (package wal) as durably as the fsync mode promises. While
// the committer commits one batch, writers fill the next: that is group
// commit. A reader that finds a key whose last change is not yet committed
// waits for it, so no client reads a write that a crash could then lose.
//
// Checkpoints of the table are written in the background to a file in the
// data directory; start-up loads the last and replays the log after it.
package keyspace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// Options configures a DB.
type Options struct {
	// Log is the write-ahead log, opened; it stays the caller's to close,
	// after the DB.
	Log *wal.Store
	// Logger receives the keyspace's logs.
	Logger *slog.Logger
	// OnCommit, if set, is called by the committer after each batch is
	// durable (as the fsync mode defines it) with its log entries, in
	// order, before any writer of the batch is answered and before the
	// log's bounds include them (so an index it keeps reflects every entry
	// the log shows). The entries' keys and data are valid only during the
	// call. It must not block for long, nor call Update.
	OnCommit func([]wal.Entry)
	// OnLocal, if set, is called for each change made through Local (never
	// logged), with the key's versions before and after (all zero once
	// removed), under the write lock. It must not block for long, nor call
	// the DB.
	OnLocal func(key []byte, prev, now [3]record.Version)
	// CheckpointEvery is the longest a changed keyspace goes without a
	// checkpoint; an hour by default. Checkpoints are also written when
	// the log has grown by the last checkpoint's size (at least
	// checkpointMinGrowth) and at Close.
	CheckpointEvery time.Duration
}

// ErrClosed is returned by Update on a closed DB.
var ErrClosed = errors.New("keyspace is closed")

// ErrLogFailing is returned by Update while the log cannot be written (a
// full disk): writes are refused until it can again.
var ErrLogFailing = errors.New("errors writing to the log")

// ErrKeyTooLong is returned by Tx.Apply for a key over MaxKeyLen.
var ErrKeyTooLong = fmt.Errorf("key longer than %d bytes", MaxKeyLen)

// markCount is how many slots, by key hash, remember the last sequence
// number published to their keys, for readers to wait on.
const markCount = 4096

// DB is the keyspace and its write path.
type DB struct {
	table *Table
	log   *wal.Store
	opts  Options
	lg    *slog.Logger

	wmu sync.Mutex // held while an Update function runs and publishes
	tx  Tx         // reused under wmu
	// line is the identity of the steps' Owners: a step takes over a large
	// state the one before published, unless a reader froze it (see
	// record.Owner, Table.gate).
	line *record.Line
	seq  uint64 // the last sequence number given; under wmu and pmu

	pmu     sync.Mutex
	pending *flight    // changes published, to be committed next
	spare   *wal.Batch // a committed batch, emptied, to reuse
	wake    chan struct{}
	closed  atomic.Bool

	durable atomic.Uint64 // every entry up to it is committed
	marks   [markCount]atomic.Uint64
	dmu     sync.Mutex
	dcond   *sync.Cond            // signalled with dmu when durable moves or the log fails
	failure atomic.Pointer[error] // the log's last commit error, while it keeps failing

	ckpt checkpointState

	stop chan struct{}
	wg   sync.WaitGroup
}

// flight is a batch of published changes on its way to the log, and what
// its writers wait on. Flights are not reused: a writer may still read one
// after it is done. Their batches are.
type flight struct {
	batch *wal.Batch
	done  chan struct{} // closed once committed (or the DB closed)
	err   error
}

// Open loads the keyspace: the last checkpoint, then the log after it (or,
// from a store of the layout before, its keyspace rows), and starts the
// committer and the checkpointer.
func Open(opts Options) (*DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = time.Hour
	}
	db := newDB(opts)
	if err := db.load(); err != nil {
		return nil, err
	}
	db.wg.Add(2)
	go db.committer()
	go db.checkpointer()
	return db, nil
}

func newDB(opts Options) *DB {
	db := &DB{
		table:   NewTable(),
		log:     opts.Log,
		opts:    opts,
		lg:      opts.Logger,
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		pending: &flight{batch: &wal.Batch{}, done: make(chan struct{})},
	}
	db.tx.db = db
	db.line = new(record.Line)
	db.table.gate = &db.wmu
	db.dcond = sync.NewCond(&db.dmu)
	return db
}

// Table is the keyspace's table, for reads that need no wait for
// durability (indexes, sessions between peers).
func (db *DB) Table() *Table { return db.table }

// Close stops accepting writes, commits what was published, writes a
// checkpoint (so the next start replays nothing) and stops. The log stays
// open.
func (db *DB) Close() error { return db.close(true) }

// CloseWithoutCheckpoint is Close without the checkpoint (SHUTDOWN
// NOSAVE): every write is in the log, which the next start replays from
// the last checkpoint.
func (db *DB) CloseWithoutCheckpoint() error { return db.close(false) }

func (db *DB) close(checkpoint bool) error {
	db.wmu.Lock()
	if db.closed.Swap(true) {
		db.wmu.Unlock()
		return nil
	}
	db.wmu.Unlock()
	close(db.stop)
	db.wg.Wait()
	if db.failure.Load() != nil || !checkpoint {
		return nil // what is not logged must not be checkpointed either
	}
	if err := db.checkpoint(); err != nil {
		return fmt.Errorf("checkpoint at close: %w", err)
	}
	return nil
}

// UpdateFunc reads and applies through tx. If it returns an error, none of
// its changes are made.
type UpdateFunc func(tx *Tx) error

// Update runs fn with the write lock held and returns once its changes are
// committed and as durable as the fsync mode promises. The records fn
// applies may alias the caller's buffers until Update returns.
func (db *DB) Update(ctx context.Context, fn UpdateFunc) error {
	c, err := db.Publish(ctx, fn)
	if werr := c.Wait(); err == nil {
		err = werr
	}
	return err
}

// Commit is a step published by Publish, on its way to the log.
type Commit struct {
	db  *DB
	f   *flight // nil for a step that changed nothing
	seq uint64  // what a step that changed nothing may have read
}

// Wait returns once the step is committed, with the commit's error: for a
// step that changed nothing, once what it may have read is committed.
func (c Commit) Wait() error {
	switch {
	case c.f != nil:
		<-c.f.done
		return c.f.err
	case c.db != nil:
		c.db.settleSeq(c.seq)
	}
	return nil
}

// Done is closed once a step that changed something is committed; nil for
// a step that changed nothing (its Wait never waits on the log).
func (c Commit) Done() <-chan struct{} {
	if c.f == nil {
		return nil
	}
	return c.f.done
}

// Publish runs fn as Update does but returns once its changes are visible
// in the table, before they are in the log: the caller answers nobody who
// could see them before the Commit's Wait returns, and the records fn
// applies may alias the caller's buffers until then. Steps published one
// after another without waiting share a commit where the committer has
// not taken the first yet.
func (db *DB) Publish(ctx context.Context, fn UpdateFunc) (Commit, error) {
	if err := ctx.Err(); err != nil {
		return Commit{}, err
	}
	db.wmu.Lock()
	if db.closed.Load() {
		db.wmu.Unlock()
		return Commit{}, ErrClosed
	}
	if errp := db.failure.Load(); errp != nil {
		db.wmu.Unlock()
		return Commit{}, fmt.Errorf("%w: %w", ErrLogFailing, *errp)
	}
	tx := &db.tx
	tx.reset()
	err := runFn(fn, tx)
	if err != nil || len(tx.changes) == 0 {
		tx.RollbackTo(0) // puts back the published states the step took over
		// What fn read may include writes not yet committed: its answer
		// waits for them, as a reader's does.
		seq := db.seq
		tx.reset()
		db.wmu.Unlock()
		return Commit{db: db, seq: seq}, err
	}
	f := db.publish(tx)
	tx.reset()
	db.wmu.Unlock()
	select {
	case db.wake <- struct{}{}:
	default:
	}
	return Commit{db: db, f: f}, nil
}

// Frontier runs fn under the write lock and returns the last sequence
// number given then, once every entry up to it is committed: what fn reads
// (a clock) is ordered with every write, those before it at or before seq.
func (db *DB) Frontier(fn func()) (uint64, error) {
	var seq uint64
	err := db.Update(context.Background(), func(*Tx) error {
		fn()
		seq = db.seq
		return nil
	})
	return seq, err
}

// publish makes tx's changes visible in the table and queues their log
// entries; it runs under wmu.
func (db *DB) publish(tx *Tx) *flight {
	db.pmu.Lock()
	defer db.pmu.Unlock()
	f := db.pending
	for i := range tx.changes {
		c := &tx.changes[i]
		db.seq++
		var st *record.CounterState
		if c.counter {
			cs := record.CounterOf(c.rec.Typed)
			st = &cs
			db.table.setCounter(c.h, c.key, c.rec, cs)
		} else {
			db.table.setHashed(c.h, c.key, c.rec)
		}
		db.marks[c.h%markCount].Store(db.seq)
		f.batch.AddHashed(db.seq, c.key, c.h, c.logged, st, c.wasVersions, c.rec.Versions())
	}
	return f
}

// committer stores each flight of published changes in the log, in order,
// then hands its entries to OnCommit and answers its writers.
func (db *DB) committer() {
	defer db.wg.Done()
	for {
		select {
		case <-db.wake:
		case <-db.stop:
			// Update refuses new writes once closed; commit what was
			// published before.
			for db.commitPending() {
			}
			return
		}
		// Let the writers whose requests are ready publish them before
		// the batch closes: a commit costs more than a write.
		runtime.Gosched()
		for db.commitPending() {
		}
	}
}

// commitPending commits the pending flight, if it holds anything, retrying
// while the log fails, and reports whether it did.
func (db *DB) commitPending() bool {
	db.pmu.Lock()
	f := db.pending
	if f.batch.Len() == 0 {
		db.pmu.Unlock()
		return false
	}
	next := &flight{batch: db.spare, done: make(chan struct{})}
	db.spare = nil
	if next.batch == nil {
		next.batch = &wal.Batch{}
	}
	db.pending = next
	db.pmu.Unlock()

	backoff := 10 * time.Millisecond
	for {
		err := db.log.Commit(f.batch)
		if err == nil {
			break
		}
		if errors.Is(err, wal.ErrClosed) || db.closed.Load() {
			// Published but never logged: its writers get an error, and
			// Close writes no checkpoint that would hold it.
			f.err = fmt.Errorf("commit to the log: %w", err)
			db.failure.Store(&f.err)
			db.signal()
			close(f.done)
			return true
		}
		if db.failure.Swap(&err) == nil {
			db.lg.Error("writing the log failed; refusing writes until it works again", "err", err)
		}
		db.signal()
		select {
		case <-time.After(backoff):
		case <-db.stop:
		}
		backoff = min(2*backoff, time.Second)
	}
	if db.failure.Swap(nil) != nil {
		db.lg.Warn("writing the log works again; writes are accepted")
	}
	entries := f.batch.Entries
	if db.opts.OnCommit != nil {
		db.opts.OnCommit(entries)
	}
	db.log.Advance(f.batch)
	db.ckpt.logged.Add(int64(f.batch.Bytes()))
	db.durable.Store(entries[len(entries)-1].Seq)
	db.signal()
	close(f.done)
	f.batch.Reset()
	db.pmu.Lock()
	db.spare = f.batch
	db.pmu.Unlock()
	return true
}

// signal wakes the readers waiting for durability.
func (db *DB) signal() {
	db.dmu.Lock()
	db.dcond.Broadcast()
	db.dmu.Unlock()
}

// settle waits until the last change published to key's slot is committed
// (see settleSeq).
func (db *DB) settle(h uint64) { db.settleSeq(db.marks[h%markCount].Load()) }

// settleSeq waits until every change up to seq is committed, unless the log
// is failing or the DB closed (then the reader gets what the table holds).
func (db *DB) settleSeq(seq uint64) {
	if seq <= db.durable.Load() {
		return
	}
	db.dmu.Lock()
	for seq > db.durable.Load() && db.failure.Load() == nil && !db.closed.Load() {
		db.dcond.Wait()
	}
	db.dmu.Unlock()
}

// Get reads key's record, with a copy of its value's data, once its last
// change is durable. A key never written reads as the zero record.
func (db *DB) Get(key []byte) record.Record {
	db.settle(Hash(key))
	rec, _ := db.table.Get(key)
	return rec
}

// View calls fn with key's record once its last change is durable, its
// Data aliasing the table: fn must not keep it nor call the DB.
func (db *DB) View(key []byte, fn func(rec record.Record)) {
	db.settle(Hash(key))
	db.table.View(key, fn)
}

// Peek returns key's record without its value's data (see Table.Peek),
// once its last change is durable.
func (db *DB) Peek(key []byte) record.Record {
	db.settle(Hash(key))
	return db.table.PeekFrozen(key)
}

// KeyCount is the number of keys holding a value, expired ones included
// until they are swept.
func (db *DB) KeyCount() int64 { return db.table.KeyCount() }

// ExpiresCount is the number of keys holding a value with a deadline.
func (db *DB) ExpiresCount() int64 { return db.table.ExpiresCount() }

// LogFailure is the log's last commit error while writes are refused for
// it, or nil.
func (db *DB) LogFailure() error {
	if errp := db.failure.Load(); errp != nil {
		return *errp
	}
	return nil
}

// runFn turns a panic in an update function into an error, so one bad
// command cannot take the write path (and with it the node) down.
func runFn(fn UpdateFunc, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("update panicked: %v", p)
		}
	}()
	return fn(tx)
}
