package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
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
// in the same batch, including its own, and those of the batches still in
// flight.
type Tx struct {
	s     *Store
	btx   *badger.Txn
	batch map[string]record.Record   // committed-to-be state of keys changed in this batch
	prev  []map[string]record.Record // the same for the batches still in flight, newest first
	// changes holds the batch's changes: those of the calls before this one,
	// then this call's from start on, in order; a call's run is folded into
	// batch on success.
	changes []change
	start   int
	pos     map[string]int // each key's last change in this call, once the call is long
}

// own finds this call's latest change of key. Most calls change one key or
// a few: a backwards scan then beats a map, which would be allocated per
// call.
func (tx *Tx) own(key []byte) (record.Record, bool) {
	mine := tx.changes[tx.start:]
	if len(mine) > 16 {
		if tx.pos == nil {
			tx.pos = make(map[string]int, 2*len(mine))
			for i := range mine {
				tx.pos[mine[i].key] = tx.start + i
			}
		}
		if i, ok := tx.pos[string(key)]; ok {
			return tx.changes[i].rec, true
		}
		return record.Record{}, false
	}
	for i := len(mine) - 1; i >= 0; i-- {
		if mine[i].key == string(key) {
			return mine[i].rec, true
		}
	}
	return record.Record{}, false
}

type change struct {
	key string
	// row is the keyspace row's key and val its value, the encoded record,
	// in one allocation that rec's Data points into.
	row, val []byte
	rec      record.Record
	was      record.Record // before; its value's Data may be missing (from the index)
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
// at hand (full): changes made earlier in the batch or in one still in
// flight are; committed rows come from the in-memory index without data.
// Enough for versions, liveness and expiry, without a storage read.
func (tx *Tx) Peek(key []byte) (rec record.Record, full bool) {
	if r, ok := tx.own(key); ok {
		return r, true
	}
	if r, ok := tx.batch[string(key)]; ok {
		return r, true
	}
	for _, state := range tx.prev {
		if r, ok := state[string(key)]; ok {
			return r, true
		}
	}
	m, ok := tx.s.index.get(string(key))
	if !ok {
		return record.Record{}, true // no row: nothing more to read
	}
	return m.record(), false
}

// Apply merges rec into key's record. If rec wins anything, the merged record
// is stored and logged when the batch commits; if not, nothing is written,
// changed is false (a write that loses is dropped, so nothing loops) and
// merged is the current record, its value's data possibly missing (as Peek).
func (tx *Tx) Apply(key []byte, rec record.Record) (merged record.Record, changed bool, err error) {
	if len(key) > MaxKeyLen {
		return record.Record{}, false, ErrKeyTooLong
	}
	cur, full := tx.Peek(key)
	if !full && cur.Exists() && rec.Value.Version.Compare(cur.Value.Version) <= 0 {
		if loses(rec, cur) {
			return cur, false, nil
		}
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
	// beyond this call (batch state, cache, commit hooks) must own its
	// bytes, which encoding the row copies anyway.
	c := change{key: string(key), was: cur}
	if c.row, c.val, c.rec, err = tx.s.encodeRow(key, merged); err != nil {
		return record.Record{}, false, fmt.Errorf("encode %q: %w", key, err)
	}
	tx.changes = append(tx.changes, c)
	if tx.pos != nil {
		tx.pos[c.key] = len(tx.changes) - 1
	}
	return c.rec, true, nil
}

// loses reports, from versions alone, that merging rec into cur changes
// nothing: each of rec's registers is older than cur's, or the same write
// (equal versions hold equal data; the Merkle digests rely on that too). A
// duplicate from a second peer's log or a session is then dropped without
// reading the stored value.
func loses(rec, cur record.Record) bool {
	switch c := rec.Value.Version.Compare(cur.Value.Version); {
	case c > 0:
		return false
	case c == 0 && (rec.Value.Kind != cur.Value.Kind || rec.Value.Tombstone && !cur.Value.Tombstone):
		return false // a kind mismatch is for the full merge; a sweep's tombstone wins
	}
	c := rec.Expiry.Version.Compare(cur.Expiry.Version)
	return c < 0 || c == 0 && rec.Expiry.At <= cur.Expiry.At
}

// encodeRow lays out key's keyspace row and its value in one allocation, and
// returns rec decoded from that value, so that its Data points into it.
func (s *Store) encodeRow(key []byte, rec record.Record) (row, val []byte, out record.Record, err error) {
	n := 5 + len(key)
	buf := make([]byte, n, n+record.EncodedSize(rec))
	buf[0] = prefixKey
	binary.BigEndian.PutUint32(buf[1:], s.opts.KeyHash(key))
	copy(buf[5:], key)
	val = record.AppendBinary(buf[n:n], rec)
	out, err = record.Decode(val)
	return buf[:n:n], val, out, err
}

// Savepoint marks the changes made so far, for RollbackTo.
func (tx *Tx) Savepoint() int { return len(tx.changes) }

// RollbackTo undoes the changes made since the savepoint sp, so that one
// command of a transaction or pipeline can fail without undoing the others.
func (tx *Tx) RollbackTo(sp int) {
	clear(tx.changes[sp:]) // what is undone must not be kept alive
	tx.changes = tx.changes[:sp]
	tx.pos = nil // rebuilt from the changes if needed
}

// UpdateFunc reads and applies through tx. If it returns an error, none of
// its changes are made.
type UpdateFunc func(tx *Tx) error

type request struct {
	ctx  context.Context
	fn   UpdateFunc
	done chan error
	// set by the writer: the request's changes in its batch
	lo, hi int
}

// requests are reused: a client sends one write after another, and each
// used to cost a request and a channel.
var requests = sync.Pool{New: func() any { return &request{done: make(chan error, 1)} }}

// Update runs fn in the writer and returns once its changes are committed and
// as durable as the fsync mode promises. Concurrent calls share one commit
// (and, with fsync always, one sync).
func (s *Store) Update(ctx context.Context, fn UpdateFunc) error {
	req := requests.Get().(*request)
	req.ctx, req.fn = ctx, fn
	defer func() {
		req.ctx, req.fn = nil, nil
		requests.Put(req)
	}()
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

// batch is the requests the writer ran together, committed and hands to the
// finisher.
type batch struct {
	id      uint64
	base    uint64     // the oldest batch still in flight when this one ran: it read the changes of those from base on
	reqs    []*request // those whose function succeeded, in order
	changes []change   // theirs, each request's a contiguous run
	state   map[string]record.Record
	// set by commit
	entries  []Entry
	logBytes int64
	errs     []error // one per request
	// closed by the finisher once the batch's changes are in the index and
	// the cache, where later batches find them, and its requests answered
	done chan struct{}
}

// A write goes through two goroutines: the writer runs the functions of a
// batch and commits it to Badger, and the finisher updates the index and
// cache, calls OnCommit and answers, while the writer runs the next batch.
// A batch reads the changes of the batches still in flight from their state
// maps, since the index has them only once they are finished; the buffer
// between the two stays small, which bounds those batches to three.
//
// Committing in the writer, rather than in a goroutine of its own, lets
// the requests that arrive during a commit make the next batch; with a
// third stage, batches got smaller and each write paid for more commits.
func (s *Store) writer() {
	defer s.wg.Done()
	finishes := make(chan *batch, 1)
	finished := make(chan struct{})
	go s.finisher(finishes, finished)
	defer func() {
		close(finishes)
		<-finished
	}()
	s.logMu.Lock()
	seq := s.lastSeq
	s.logMu.Unlock()
	var (
		inFlight []*batch
		spare    *batch // a finished batch whose state map and changes slice may be reused
		lastID   uint64
		failed   uint64 // the last batch of which anything failed
	)
	run := func(reqs []*request) {
		for len(inFlight) > 0 && isClosed(inFlight[0].done) {
			spare = inFlight[0].recycle()
			inFlight = append(inFlight[:0], inFlight[1:]...)
		}
		lastID++
		b := spare
		spare = nil
		if b == nil {
			b = &batch{state: make(map[string]record.Record)}
		}
		b.id, b.done = lastID, make(chan struct{})
		if !s.runBatch(b, reqs, inFlight) {
			spare = b.recycle()
			return
		}
		if failed != 0 && failed >= b.base {
			// It read changes that may not have been stored.
			b.errs = make([]error, len(b.reqs))
			for i := range b.errs {
				b.errs[i] = errEarlierFailed
			}
		} else {
			seq = s.commit(b, seq)
		}
		for _, err := range b.errs {
			if err != nil {
				failed = b.id
				break
			}
		}
		finishes <- b
		inFlight = append(inFlight, b)
	}
	reqs := make([]*request, 0, maxBatch)
	for {
		select {
		case req := <-s.reqs:
			reqs = append(reqs[:0], req)
		case <-s.stop:
			// Run what was queued before Close.
			for {
				select {
				case req := <-s.reqs:
					run([]*request{req})
				default:
					return
				}
			}
		}
		// Let the clients whose requests are ready queue them before the
		// batch closes: without this yield a batch held about two
		// requests under fifty pipelining clients, and a commit costs
		// more than the request it holds.
		runtime.Gosched()
	fill:
		for len(reqs) < maxBatch {
			select {
			case req := <-s.reqs:
				reqs = append(reqs, req)
			default:
				break fill
			}
		}
		run(reqs)
		clear(reqs) // answered requests go back to the pool: do not keep them
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// recycle empties a batch that no goroutine reads any more, for reuse, or
// returns nil if it grew too large to keep around.
func (b *batch) recycle() *batch {
	if len(b.changes) > 4096 {
		return nil
	}
	clear(b.state)
	clear(b.changes) // drop the references to the changes' bytes
	clear(b.reqs)    // and to the requests, which went back to their pool
	return &batch{state: b.state, changes: b.changes[:0], reqs: b.reqs[:0]}
}

// runBatch runs the functions of the requests as batch b, on top of the
// batches in flight, and reports whether b has anything to commit.
func (s *Store) runBatch(b *batch, reqs []*request, inFlight []*batch) bool {
	b.base = b.id
	// inFlight was taken first: a batch not in it has finished, so its
	// commit is visible to this transaction.
	tx := &Tx{s: s, btx: s.readTxn(), batch: b.state, changes: b.changes}
	defer s.endRead(tx.btx)
	if len(inFlight) > 0 {
		b.base = inFlight[0].id
		for i := len(inFlight) - 1; i >= 0; i-- {
			tx.prev = append(tx.prev, inFlight[i].state)
		}
	}
	limits := s.txnLimits()
	for _, req := range reqs {
		if err := req.ctx.Err(); err != nil {
			req.done <- err
			continue
		}
		tx.start, tx.pos = len(tx.changes), nil
		err := runFn(req.fn, tx)
		if err == nil && !limits.fit(tx.changes[tx.start:]) {
			err = ErrTooLarge
		}
		if err != nil {
			tx.RollbackTo(tx.start)
			req.done <- err
			continue
		}
		for _, c := range tx.changes[tx.start:] {
			b.state[c.key] = c.rec
		}
		req.lo, req.hi = tx.start, len(tx.changes)
		b.reqs = append(b.reqs, req)
	}
	b.changes = tx.changes
	return len(b.reqs) > 0
}

var errEarlierFailed = errors.New("an earlier write it read failed to commit")

// finisher makes committed batches visible, in order, and answers their
// requests.
func (s *Store) finisher(finishes <-chan *batch, finished chan<- struct{}) {
	defer close(finished)
	for b := range finishes {
		s.finish(b)
	}
}

// finish makes a committed batch visible and answers its requests.
func (s *Store) finish(b *batch) {
	var keyDelta, expiresDelta int64
	for i, req := range b.reqs {
		if b.errs[i] != nil {
			continue
		}
		for _, c := range b.changes[req.lo:req.hi] {
			s.index.set(c.key, metaOf(c.rec))
			s.cache.committed(c.key, c.rec)
			keyDelta += boolInt(c.rec.Exists()) - boolInt(c.was.Exists())
			wasDeadline, deadline := deadlineOf(c.was) != 0, deadlineOf(c.rec) != 0
			expiresDelta += boolInt(deadline) - boolInt(wasDeadline)
		}
	}
	s.keys.Add(keyDelta)
	s.expires.Add(expiresDelta)
	if n := len(b.entries); n > 0 {
		// The index and OnCommit's indexes before lastSeq: a snapshot
		// taken at lastSeq must hold every change up to it, ReadLog reads
		// no further, and a Merkle root read after lastSeq reflects it.
		if s.opts.OnCommit != nil {
			s.opts.OnCommit(b.entries)
		}
		s.logMu.Lock()
		s.lastSeq = b.entries[n-1].Seq
		s.logBytes += b.logBytes
		s.logMu.Unlock()
	}
	for i, req := range b.reqs {
		req.done <- b.errs[i]
	}
	close(b.done) // last: the writer then reuses the batch
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

// commit writes a batch's changes in as few Badger transactions as fit,
// never splitting one request's changes across two, and syncs them if the
// fsync mode says so. It sets the batch's log entries and one error per
// request, and returns the last sequence number used.
func (s *Store) commit(b *batch, seq uint64) uint64 {
	reqs := b.reqs
	b.errs = make([]error, len(reqs))
	st := staged{now: s.opts.Now(), entries: make([]Entry, 0, len(b.changes))}
	need := 0
	for i := range b.changes {
		need += blockEntryBound(b.changes[i].row[5:], b.changes[i].rec)
	}
	blocks := need/blockTarget + 1
	st.arena = &arena{buf: make([]byte, 0, 9*blocks), ents: make([]badger.Entry, 0, len(b.changes)+blocks)}
	st.blockCap = blockHeader + min(need, blockTarget+512)
	for start := 0; start < len(reqs); {
		txn, end, err := s.stageTxn(b, start, seq, &st)
		if err != nil {
			// Alone in a transaction and still failing: refuse it.
			b.errs[start] = fmt.Errorf("store %d changes: %w", reqs[start].hi-reqs[start].lo, err)
			if errors.Is(err, badger.ErrTxnTooBig) {
				b.errs[start] = ErrTooLarge
			}
			start++
			continue
		}
		if err := s.commitTxn(txn); err != nil {
			for i := start; i < end; i++ {
				b.errs[i] = fmt.Errorf("commit: %w", err)
			}
		} else {
			seq += uint64(len(st.entries) - st.committed)
			st.committed = len(st.entries)
			b.logBytes += st.bytes
		}
		start = end
	}
	st.entries = st.entries[:st.committed]
	if s.opts.Fsync == FsyncAlways && len(st.entries) > 0 {
		if err := s.db.Sync(); err != nil {
			for i := range b.errs {
				if b.errs[i] == nil {
					b.errs[i] = fmt.Errorf("fsync: %w", err)
				}
			}
		}
	}
	b.entries = st.entries
	return seq
}

// stageTxn stages in a new transaction the requests of b from start on, as
// many as fit, and returns it with the end of those requests. It fails only
// if request start does not fit alone.
func (s *Store) stageTxn(b *batch, start int, seq uint64, st *staged) (*badger.Txn, int, error) {
	limit := len(b.reqs)
	for {
		txn := s.writeTxn()
		st.reset()
		end := start
		var err error
		for ; end < limit; end++ {
			if err = s.stage(txn, st, b.changes[b.reqs[end].lo:b.reqs[end].hi], seq); err != nil {
				break
			}
		}
		if err == nil {
			if err = st.closeBlock(txn); err == nil {
				return txn, end, nil
			}
			end-- // the last request's entries fitted, but not the block holding them
		}
		txn.Discard()
		if end == start {
			return nil, start, err
		}
		limit = end // commit those that fitted; the next goes first in the next transaction
	}
}

// staged is what the transactions of one batch hold so far: entries are
// the batch's log entries, those from committed on in the transaction being
// staged, whose block being filled is blk.
type staged struct {
	now       time.Time
	entries   []Entry
	committed int
	bytes     int64 // the log bytes of the transaction being staged
	blk       []byte
	blkFirst  int // the index in entries of blk's first entry
	blockCap  int
	*arena
}

// reset empties the transaction being staged.
func (st *staged) reset() {
	clear(st.entries[st.committed:])
	st.entries = st.entries[:st.committed]
	st.bytes, st.blk = 0, nil
}

// closeBlock adds the block being filled, if any, to txn.
func (st *staged) closeBlock(txn *badger.Txn) error {
	if st.blk == nil {
		return nil
	}
	setBlockHeader(st.blk, len(st.entries)-st.blkFirst, st.now)
	k := st.alloc(9)
	k[0] = prefixLog
	binary.BigEndian.PutUint64(k[1:], st.entries[st.blkFirst].Seq)
	blk := st.blk
	st.blk = nil
	st.bytes += int64(len(k) + len(blk))
	return st.set(txn, k, blk)
}

// arena holds the keys, values and entries handed to Badger, which keeps
// them until the transaction ends: carved from a few chunks rather than
// allocated one by one.
type arena struct {
	buf  []byte
	ents []badger.Entry
}

// alloc returns n bytes that stay put until the transaction ends.
func (a *arena) alloc(n int) []byte {
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(n, 4<<10))
	}
	b := a.buf[len(a.buf) : len(a.buf)+n : len(a.buf)+n]
	a.buf = a.buf[:len(a.buf)+n]
	return b
}

// set adds a row to txn.
func (a *arena) set(txn *badger.Txn, key, val []byte) error {
	if len(a.ents) == cap(a.ents) {
		a.ents = make([]badger.Entry, 0, 64)
	}
	a.ents = append(a.ents, badger.Entry{Key: key, Value: val})
	return txn.SetEntry(&a.ents[len(a.ents)-1])
}

// stage adds one request's rows and log entries to txn, numbering entries on
// from seq plus those already staged.
func (s *Store) stage(txn *badger.Txn, st *staged, changes []change, seq uint64) error {
	for i := range changes {
		c := &changes[i]
		key := c.row[5:]
		e := Entry{Seq: seq + uint64(len(st.entries)-st.committed) + 1, Time: st.now, Key: key, Record: c.rec, Prev: c.was.Versions()}
		// The log stores the mutation's versions; the value itself is in
		// the keyspace row of the same transaction, so it is not written
		// twice (see ReadLog).
		logged := c.rec
		logged.Value.Data = nil
		if st.blk == nil {
			st.blk, st.blkFirst = make([]byte, blockHeader, st.blockCap), len(st.entries)
		}
		st.blk = appendBlockEntry(st.blk, key, logged)
		st.entries = append(st.entries, e)
		if err := st.set(txn, c.row, c.val); err != nil {
			return err
		}
		if wasDeadline, deadline := deadlineOf(c.was), deadlineOf(c.rec); wasDeadline != deadline {
			if wasDeadline != 0 {
				if err := txn.Delete(expiryKey(wasDeadline, key)); err != nil {
					return err
				}
			}
			if deadline != 0 {
				if err := st.set(txn, expiryKey(deadline, key), nil); err != nil {
					return err
				}
			}
		}
		if len(st.blk) >= blockTarget {
			if err := st.closeBlock(txn); err != nil {
				return err
			}
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

// txnLimits are Badger's bounds on one transaction.
type txnLimits struct {
	threshold, count, size int64
}

func (s *Store) txnLimits() txnLimits {
	return txnLimits{threshold: s.db.Opts().ValueThreshold, count: s.db.MaxBatchCount(), size: s.db.MaxBatchSize()}
}

// fit reports whether one request's changes fit in a Badger transaction by
// Badger's own accounting of what stage writes (a row and up to two expiry
// index entries a change, and the log blocks holding its entries), so that a
// request too large is refused before any later request in the batch can
// read its changes.
func (l txnLimits) fit(changes []change) bool {
	est := func(k, v int) int64 {
		if int64(v) < l.threshold {
			return int64(k+v) + 12
		}
		return int64(k) + 24
	}
	var size, logBytes int64
	for _, c := range changes {
		size += est(5+len(c.key), record.EncodedSize(c.rec)) + 2*est(9+len(c.key), 0)
		logBytes += int64(blockEntryBound(c.row[5:], c.rec))
	}
	// Blocks close past blockTarget; counted as if inline, their estimate
	// is never below Badger's.
	blocks := logBytes/blockTarget + 1
	size += logBytes + blocks*(9+blockHeader+12)
	return int64(3*len(changes))+blocks < l.count && size < l.size
}
