package wal

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"
	badger "github.com/dgraph-io/badger/v4"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/record"
)

// Entry is one applied mutation of a key: the key's whole record as the
// mutation left it, value included. Applying an entry anywhere, any number
// of times, in any order, is therefore just a merge, and a log replayed over
// a newer checkpoint changes nothing the checkpoint already holds.
type Entry struct {
	Seq    uint64
	Time   time.Time // when it was applied here
	Key    []byte
	Record record.Record
	// Prev and Now hold the key's register versions before and after this
	// mutation, for indexes that move a digest from old to new (the Merkle
	// tree). Only entries of a Batch carry them; they are not stored. Now
	// is the versions of the key's whole record, which Record (a delta) may
	// not show.
	Prev, Now [3]record.Version
	// Hash is the key's xxhash, which the keyspace's table and the Merkle
	// tree are laid out by, so that indexes need not hash the key again.
	// Only entries of a Batch carry it.
	Hash uint64
}

// ErrTruncated is returned by ReadLog when the requested sequence number is
// older than the oldest retained entry: the reader must repair by Merkle.
var ErrTruncated = errors.New("log truncated past the requested sequence number")

// The log is kept in blocks: a batch's entries, a block closed once it
// passes blockTarget bytes, stored under the block's first sequence number.
// A row per entry cost as much again in Badger's skiplist, flushes and
// compactions as the entry itself.
//
// A block: a header (the entry count, 4 bytes; the time the entries were
// applied, unix milliseconds, 8 bytes; the number of rows the block takes,
// 4 bytes; big-endian), then per entry the key after its length (a uvarint)
// and the encoded record. A block longer than maxRow (a large value) is
// split across rows: 'l' seq holds its first maxRow bytes, 'l' seq part
// (part 1, 2, ... as 4 bytes) the rest, so that no Badger value comes near
// the value log's file size and a value of any length the protocol allows
// is logged.
const (
	blockHeader = 16
	blockTarget = 16 << 10
	maxRow      = 1 << 20
)

func logKey(seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixLog
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

// partKey is the row key of part p (from 1) of the block at seq.
func partKey(seq uint64, p int) []byte {
	return binary.BigEndian.AppendUint32(logKey(seq), uint32(p))
}

// blockSeq is the first sequence number of the block whose row (or part
// row) is stored under key.
func blockSeq(key []byte) uint64 { return binary.BigEndian.Uint64(key[1:9]) }

// isPart reports whether a log row key is a block's second or later part.
func isPart(key []byte) bool { return len(key) > 9 }

// Batch gathers log entries, in the order they were applied, encoded as the
// log's blocks, until Commit stores them. Its entries hold the keys and
// records Add was given, not copies: decoding each record back out of the
// buffer cost as much again as encoding it (a typed delta is decoded into
// fresh slices).
type Batch struct {
	stored  int64 // the bytes Commit stored, for Advance
	buf     []byte
	blocks  []int // where each block starts in buf
	Entries []Entry
	first   []int // the index in Entries of each block's first entry
	// newest is, for each block, the newest write its entries hold: what
	// retention judges a block by (stableBlock), known here without
	// decoding the block again.
	newest []hlc.Timestamp
}

// Add appends the mutation of key by rec, with sequence number seq (one more
// than the previous entry's) and the key's register versions before and
// after it. key and rec are kept in the entry as they are: they must stay
// valid and unchanged until the batch is reset.
func (b *Batch) Add(seq uint64, key []byte, rec record.Record, prev, now [3]record.Version) {
	b.AddHashed(seq, key, xxhash.Sum64(key), rec, nil, prev, now)
}

// AddHashed is Add of a key whose hash h (Entry.Hash) the caller has
// computed. If counter is not nil, it is rec's typed state, a string
// counter's, which is then encoded from it (record.AppendBinaryCounter).
func (b *Batch) AddHashed(seq uint64, key []byte, h uint64, rec record.Record, counter *record.CounterState, prev, now [3]record.Version) {
	if len(b.blocks) == 0 || len(b.buf)-b.blocks[len(b.blocks)-1] >= blockTarget {
		b.blocks = append(b.blocks, len(b.buf))
		b.first = append(b.first, len(b.Entries))
		b.buf = append(b.buf, make([]byte, blockHeader)...)
		b.newest = append(b.newest, 0)
	}
	var ts hlc.Timestamp
	b.buf = binary.AppendUvarint(b.buf, uint64(len(key)))
	b.buf = append(b.buf, key...)
	if counter != nil {
		// Encoded with counter as its typed state, whatever rec.Typed holds.
		regs := rec
		regs.Typed = nil
		ts = max(regs.Newest().TS, counter.KindVersion.TS, counter.Count.Ver.TS, counter.Count.ResetVer.TS)
		b.buf = record.AppendBinaryCounter(b.buf, rec, *counter)
	} else {
		ts = rec.Newest().TS
		b.buf = record.AppendBinary(b.buf, rec)
	}
	b.newest[len(b.newest)-1] = max(b.newest[len(b.newest)-1], ts)
	b.Entries = append(b.Entries, Entry{Seq: seq, Key: key, Record: rec, Prev: prev, Now: now, Hash: h})
}

// Len is the number of entries in the batch.
func (b *Batch) Len() int { return len(b.Entries) }

// Bytes is the size of the batch's blocks.
func (b *Batch) Bytes() int { return len(b.buf) }

// Reset empties the batch for reuse, keeping its buffer unless it grew
// large (a large value passed through).
func (b *Batch) Reset() {
	if cap(b.buf) > 16<<20 {
		b.buf = nil
	}
	clear(b.Entries) // drop what the entries pointed to
	b.stored = 0
	b.buf, b.blocks, b.first, b.Entries, b.newest = b.buf[:0], b.blocks[:0], b.first[:0], b.Entries[:0], b.newest[:0]
}

// setBlock stores blk, the block from seq on, by set: in rows of maxRow
// bytes, the first under logKey(seq), the rest under their partKey.
func setBlock(set func(k, v []byte) error, seq uint64, blk []byte) error {
	for p := 0; p*maxRow < len(blk); p++ {
		k := logKey(seq)
		if p > 0 {
			k = partKey(seq, p)
		}
		if err := set(k, blk[p*maxRow:min(len(blk), (p+1)*maxRow)]); err != nil {
			return err
		}
	}
	return nil
}

// storedBlock returns block i's bytes, whose header block filled in.
func (b *Batch) storedBlock(i int) []byte {
	end := len(b.buf)
	if i+1 < len(b.blocks) {
		end = b.blocks[i+1]
	}
	return b.buf[b.blocks[i]:end:end]
}

// block returns block i's bytes, with its header filled in.
func (b *Batch) block(i int, t time.Time) []byte {
	blk := b.storedBlock(i)
	count := len(b.Entries) - b.first[i]
	if i+1 < len(b.first) {
		count = b.first[i+1] - b.first[i]
	}
	binary.BigEndian.PutUint32(blk, uint32(count))
	binary.BigEndian.PutUint64(blk[4:], uint64(t.UnixMilli()))
	binary.BigEndian.PutUint32(blk[12:], uint32((len(blk)+maxRow-1)/maxRow))
	return blk
}

// Commit stores a batch's entries at the end of the log, whose last entry
// must be the one before the batch's first, and makes them as durable as the
// fsync mode promises: written to Badger, and with fsync always in the
// journal, synced (journal.go).
// Entries' Time is set. A batch too large for one Badger transaction is
// committed in several, in order. Advance then makes them visible.
func (s *Store) Commit(b *Batch) error {
	if len(b.Entries) == 0 {
		return nil
	}
	if s.closed.Load() {
		return ErrClosed
	}
	_, last := s.LogBounds()
	if b.Entries[0].Seq != last+1 {
		return fmt.Errorf("commit log entries from %d: the log ends at %d", b.Entries[0].Seq, last)
	}
	if err := s.checkSpace(int64(len(b.buf))); err != nil {
		return err
	}
	now := s.opts.Now()
	for i := range b.Entries {
		b.Entries[i].Time = now
	}
	var size int64
	txn := s.writeTxn()
	defer func() { txn.Discard() }()
	set := func(k, v []byte) error {
		err := txn.Set(k, v)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err = s.commitTxn(txn); err != nil {
				return err
			}
			txn.Discard()
			txn = s.writeTxn()
			err = txn.Set(k, v)
		}
		size += int64(len(k) + len(v))
		return err
	}
	for i := range b.blocks {
		seq := b.Entries[b.first[i]].Seq
		if err := setBlock(set, seq, b.block(i, now)); err != nil {
			return fmt.Errorf("log entries from %d: %w", seq, err)
		}
	}
	if err := s.commitTxn(txn); err != nil {
		return fmt.Errorf("commit log entries %d-%d: %w", b.Entries[0].Seq, b.Entries[len(b.Entries)-1].Seq, err)
	}
	if s.journal != nil {
		if err := s.journal.append(b); err != nil {
			return fmt.Errorf("log entries %d-%d: %w", b.Entries[0].Seq, b.Entries[len(b.Entries)-1].Seq, err)
		}
		if s.journal.size > cmp.Or(s.opts.journalLimit, journalLimit) {
			s.settleJournal()
		}
	}
	b.stored = size
	return nil
}

// settleJournal syncs Badger, which then holds every block the journal
// does, and empties the journal. Commits are durable either way: a failure
// leaves the journal to grow until the next try.
func (s *Store) settleJournal() {
	err := s.sync()
	if err == nil {
		err = s.journal.empty()
	}
	if err != nil {
		s.log.Warn("emptying the journal", "err", err)
	}
}

// Advance makes a committed batch part of the log: LogBounds, ReadLog and
// retention include it from now on. The caller first updates whatever must
// reflect every entry the log shows (the Merkle tree: a peer that reads the
// log's head and then the root must never get a root older than the head).
func (s *Store) Advance(b *Batch) {
	if len(b.Entries) == 0 {
		return
	}
	s.logMu.Lock()
	s.lastSeq = b.Entries[len(b.Entries)-1].Seq
	s.logBytes += b.stored
	for i, at := range b.first {
		if len(s.stamps) == maxStamps {
			break // later blocks are decoded when judged
		}
		s.stamps = append(s.stamps, blockStamp{seq: b.Entries[at].Seq, newest: b.newest[i]})
	}
	s.logMu.Unlock()
}

// blockStamp is a block committed by this process, by its first sequence
// number, and the newest write it holds (Batch.newest).
type blockStamp struct {
	seq    uint64
	newest hlc.Timestamp
}

// maxStamps bounds the blocks whose newest write the store keeps (1 MiB):
// a log held long for a peer that is away may have millions of small blocks.
const maxStamps = 1 << 16

// stampOf is the newest write of the block from seq on, if stamps holds it.
func stampOf(stamps []blockStamp, seq uint64) (hlc.Timestamp, bool) {
	i, ok := slices.BinarySearchFunc(stamps, seq, compareStamp)
	if !ok {
		return 0, false
	}
	return stamps[i].newest, true
}

func compareStamp(st blockStamp, seq uint64) int { return cmp.Compare(st.seq, seq) }

// blockMeta reads a block's header.
func blockMeta(b []byte) (count int, t time.Time, parts int, err error) {
	if len(b) < blockHeader {
		return 0, t, 0, fmt.Errorf("log block of %d bytes: no header", len(b))
	}
	n := binary.BigEndian.Uint32(b)
	parts = int(binary.BigEndian.Uint32(b[12:]))
	// Every entry takes at least two bytes: never believe a count the
	// block cannot hold.
	if n == 0 || uint64(n) > uint64(parts)*maxRow/2 || parts == 0 {
		return 0, t, 0, fmt.Errorf("log block claims %d entries in %d rows", n, parts)
	}
	return int(n), time.UnixMilli(int64(binary.BigEndian.Uint64(b[4:]))), parts, nil
}

// decodeBlock appends to dst the entries of the block that starts at seq
// first; their Key and Record alias b.
func decodeBlock(first uint64, b []byte, dst []Entry) ([]Entry, error) {
	count, t, _, err := blockMeta(b)
	if err != nil {
		return dst, fmt.Errorf("log block %d: %w", first, err)
	}
	if first+uint64(count) < first {
		return dst, fmt.Errorf("log block %d: %d entries overflow the sequence numbers", first, count)
	}
	p := b[blockHeader:]
	for i := range count {
		seq := first + uint64(i)
		kl, n := binary.Uvarint(p)
		if n <= 0 || kl > MaxKeyLen || kl > uint64(len(p)-n) {
			return dst, fmt.Errorf("log entry %d: bad key length", seq)
		}
		key := p[n : n+int(kl) : n+int(kl)]
		rec, rest, err := record.DecodePrefix(p[n+int(kl):])
		if err != nil {
			return dst, fmt.Errorf("log entry %d: %w", seq, err)
		}
		p = rest
		dst = append(dst, Entry{Seq: seq, Time: t, Key: key, Record: rec})
	}
	if len(p) != 0 {
		return dst, fmt.Errorf("log block %d: %d bytes after its last entry", first, len(p))
	}
	return dst, nil
}

// MaxKeyLen bounds a key in a log entry, as the keyspace does.
const MaxKeyLen = 64000

// blockReader walks the log's blocks in order, joining parts.
type blockReader struct {
	txn *badger.Txn
	it  *badger.Iterator
	buf []byte
}

func (s *Store) newBlockReader(txn *badger.Txn, prefetch bool) *blockReader {
	return &blockReader{txn: txn, it: txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}, PrefetchValues: prefetch, PrefetchSize: 16})}
}

func (r *blockReader) close() { r.it.Close() }

// seek positions the reader at the block holding seq, or the first one
// after it if none does.
func (r *blockReader) seek(seq uint64) {
	rit := r.txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}, Reverse: true})
	defer rit.Close()
	if rit.Seek(logKey(seq)); rit.Valid() {
		r.it.Seek(logKey(blockSeq(rit.Item().Key())))
		return
	}
	r.it.Seek(logKey(seq))
}

// next reads the block at the reader's position, joined from its parts,
// into the reader's buffer (valid until the next call; copy set makes it
// the caller's), and moves past it. ok is false at the end of the log.
func (r *blockReader) next(own bool) (seq uint64, blk []byte, size int64, ok bool, err error) {
	for r.it.Valid() && isPart(r.it.Item().Key()) {
		r.it.Next() // the tail of a block truncated by a crash mid-commit cannot happen, but never misread one
	}
	if !r.it.Valid() {
		return 0, nil, 0, false, nil
	}
	item := r.it.Item()
	seq = blockSeq(item.Key())
	if r.buf, err = item.ValueCopy(r.buf[:0]); err != nil {
		return 0, nil, 0, false, fmt.Errorf("log block %d: %w", seq, err)
	}
	// The rows' real sizes: Badger's ValueSize of a value in its value log
	// guesses the header's length, and the log's size, summed from those
	// guesses as blocks are dropped, drifted below zero.
	size = int64(len(item.Key()) + len(r.buf))
	_, _, parts, err := blockMeta(r.buf)
	if err != nil {
		return 0, nil, 0, false, fmt.Errorf("log block %d: %w", seq, err)
	}
	r.it.Next()
	if parts > 1 {
		// One allocation for the whole block: growing by appends copied a
		// large value over and over.
		r.buf = append(make([]byte, 0, parts*maxRow), r.buf...)
	}
	for p := 1; p < parts; p++ {
		if !r.it.Valid() || !bytes.Equal(r.it.Item().Key(), partKey(seq, p)) {
			return 0, nil, 0, false, fmt.Errorf("log block %d: part %d of %d missing", seq, p, parts)
		}
		it := r.it.Item()
		if err := it.Value(func(v []byte) error {
			r.buf = append(r.buf, v...)
			size += int64(len(it.Key()) + len(v))
			return nil
		}); err != nil {
			return 0, nil, 0, false, fmt.Errorf("log block %d part %d: %w", seq, p, err)
		}
		r.it.Next()
	}
	blk = r.buf
	if own {
		blk, r.buf = r.buf, nil
	}
	return seq, blk, size, true, nil
}

// LogBounds returns the oldest retained and the latest sequence numbers.
// first is last+1 when the log is empty.
func (s *Store) LogBounds() (first, last uint64) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.firstSeq, s.lastSeq
}

// LogBytes is the retained log's approximate size.
func (s *Store) LogBytes() int64 {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.logBytes
}

// RetainBytes is the log's size bound.
func (s *Store) RetainBytes() int64 { return s.opts.RetainBytes }

// ReadLog returns entries with sequence numbers from `from` on, at most max
// entries and about maxBytes bytes (at least one entry if any), each as it
// was logged. It fails with ErrTruncated if from is older than the oldest
// retained entry.
func (s *Store) ReadLog(from uint64, max int, maxBytes int64) ([]Entry, error) {
	first, last := s.LogBounds()
	if from < first {
		return nil, fmt.Errorf("read log from %d (oldest is %d): %w", from, first, ErrTruncated)
	}
	if from > last {
		return nil, nil
	}
	var out, block []Entry
	err := s.view(func(txn *badger.Txn) error {
		r := s.newBlockReader(txn, true)
		defer r.close()
		var size int64
		for r.seek(from); ; {
			seq, blk, _, ok, err := r.next(true)
			if err != nil || !ok {
				return err
			}
			if block, err = decodeBlock(seq, blk, block[:0]); err != nil {
				return err
			}
			for _, e := range block {
				if e.Seq < from {
					continue
				}
				if e.Seq > last || len(out) == max || size >= maxBytes {
					return nil
				}
				out = append(out, e)
				size += int64(len(e.Key) + record.EncodedSize(e.Record))
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read log from %d: %w", from, err)
	}
	// Retention may have run while we read: never hand out a gap silently.
	if len(out) > 0 && out[0].Seq != from {
		return nil, fmt.Errorf("read log from %d (found %d): %w", from, out[0].Seq, ErrTruncated)
	}
	return out, nil
}

// Replay calls fn with every entry from seq from on, in order, for loading
// the keyspace at start-up. An entry's Key and Record alias a buffer reused
// for the next block: fn must copy what it keeps.
func (s *Store) Replay(from uint64, fn func(Entry) error) error {
	err := s.view(func(txn *badger.Txn) error {
		r := s.newBlockReader(txn, true)
		defer r.close()
		var block []Entry
		for r.seek(from); ; {
			seq, blk, _, ok, err := r.next(false)
			if err != nil || !ok {
				return err
			}
			if block, err = decodeBlock(seq, blk, block[:0]); err != nil {
				return err
			}
			for _, e := range block {
				if e.Seq >= from {
					if err := fn(e); err != nil {
						return err
					}
				}
			}
		}
	})
	if err != nil {
		return fmt.Errorf("replay the log from %d: %w", from, err)
	}
	return nil
}

// SetCheckpoint tells the log that the keyspace is checkpointed up to seq:
// entries up to it may be truncated (within the retention bounds), the rest
// never, since start-up replays them.
func (s *Store) SetCheckpoint(seq uint64) {
	s.logMu.Lock()
	s.checkpoint = seq
	s.logMu.Unlock()
	select {
	case s.retainNow <- struct{}{}:
	default:
	}
}

// Truncate drops the oldest entries while the log is over its size bound or
// its oldest entry is over its age bound or needed by no peer (Options.Stable), but
// none after the checkpoint. It returns how many it dropped.
func (s *Store) Truncate(ctx context.Context) (int, error) {
	dropped := 0
	for {
		if err := ctx.Err(); err != nil {
			return dropped, err
		}
		n, err := s.truncateBatch()
		dropped += n
		if err != nil || n == 0 {
			return dropped, err
		}
	}
}

// truncateBatch drops up to a thousand blocks in one transaction.
func (s *Store) truncateBatch() (int, error) {
	const batch = 1024
	s.logMu.Lock()
	first, last, bytes, floor, stamps := s.firstSeq, s.lastSeq, s.logBytes, s.checkpoint, s.stamps
	s.logMu.Unlock()
	if first > last {
		return 0, nil
	}
	cutoff := s.opts.Now().Add(-s.opts.RetainAge)
	var stable hlc.Timestamp
	if s.opts.Stable != nil {
		stable = s.opts.Stable()
	}
	var (
		rows   [][]byte
		blocks int
		top    uint64 // the last entry dropped
		freed  int64
		dec    []Entry
	)
	err := s.view(func(txn *badger.Txn) error {
		r := s.newBlockReader(txn, true)
		defer r.close()
		// Seek past the blocks already dropped (first begins a block):
		// their tombstones stay until compaction, and stepping over them
		// again every batch made truncating a long log quadratic.
		r.it.Seek(logKey(first))
		for blocks < batch {
			seq, blk, size, ok, err := r.next(false)
			if err != nil || !ok {
				return err
			}
			count, t, parts, err := blockMeta(blk)
			if err != nil {
				return fmt.Errorf("log block %d: %w", seq, err)
			}
			end := seq + uint64(count) - 1
			if end > last || end > floor {
				return nil
			}
			if bytes-freed <= s.opts.RetainBytes && !t.Before(cutoff) && stable != math.MaxUint64 {
				// A node alone (every write stable) skips the decoding.
				if stable == 0 {
					return nil
				}
				if newest, ok := stampOf(stamps, seq); ok {
					if newest > stable {
						return nil
					}
				} else {
					if dec, err = decodeBlock(seq, blk, dec[:0]); err != nil {
						return err
					}
					if !stableBlock(dec, stable) {
						return nil
					}
				}
			}
			rows = append(rows, logKey(seq))
			for p := 1; p < parts; p++ {
				rows = append(rows, partKey(seq, p))
			}
			blocks++
			top = end
			freed += size
		}
		return nil
	})
	if err != nil || top == 0 {
		return 0, err
	}
	if err := s.checkSpace(0); err != nil {
		return 0, fmt.Errorf("truncate log to %d: %w", top+1, err)
	}
	err = s.update(func(txn *badger.Txn) error {
		for _, k := range rows {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return txn.Set(metaKey(metaSeqFloor), binary.BigEndian.AppendUint64(nil, top))
	})
	if err != nil {
		return 0, fmt.Errorf("truncate log to %d: %w", top+1, err)
	}
	s.logMu.Lock()
	dropped := int(top + 1 - s.firstSeq)
	s.firstSeq = top + 1
	kept, _ := slices.BinarySearchFunc(s.stamps, top+1, compareStamp)
	s.stamps = s.stamps[kept:]
	s.logBytes -= freed
	if s.firstSeq > s.lastSeq {
		s.logBytes = 0 // the sizes read at start-up are Badger's estimates
	}
	s.truncated += freed
	s.logMu.Unlock()
	return dropped, nil
}

// stableBlock reports whether every write a block's entries hold is at or
// before the stable time: every member has applied them, so no peer needs
// the block. The entries' own versions decide, not the time the block was
// committed here: a peer's write may be stamped ahead of this node's clock
// (up to the clock-skew bound), and judging by the commit time had to keep
// that bound, a minute, of log beyond the stable time.
func stableBlock(entries []Entry, stable hlc.Timestamp) bool {
	if stable == 0 {
		return false
	}
	for i := range entries {
		if entries[i].Record.Newest().TS > stable {
			return false
		}
	}
	return true
}

// loadBounds recovers the log's bounds and size at start-up. The size takes
// reading every row's length: keys and value pointers, not values. A last
// block missing some of its parts (a commit split across Badger
// transactions, cut short by a crash) is dropped: none of its writers was
// answered.
func (s *Store) loadBounds() error {
	var torn [][]byte
	err := s.view(func(txn *badger.Txn) error {
		floor, err := getUint64(txn, metaSeqFloor)
		if err != nil {
			return err
		}
		s.firstSeq, s.lastSeq = floor+1, floor
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}})
		defer it.Close()
		var (
			found      bool
			lastBlock  []byte // the last block's row key
			lastSize   int64  // its rows' size
			partsFound int
		)
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			size := int64(len(item.Key())) + item.ValueSize()
			s.logBytes += size
			if isPart(item.Key()) {
				if lastBlock != nil && blockSeq(item.Key()) == blockSeq(lastBlock) {
					partsFound++
					lastSize += size
					torn = append(torn, item.KeyCopy(nil))
				}
				continue
			}
			if !found {
				s.firstSeq, found = blockSeq(item.Key()), true
			}
			lastBlock, lastSize, partsFound = item.KeyCopy(nil), size, 0
			torn = append(torn[:0], lastBlock)
		}
		if lastBlock == nil {
			return nil
		}
		item, err := txn.Get(lastBlock)
		if err != nil {
			return fmt.Errorf("log block %d: %w", blockSeq(lastBlock), err)
		}
		var count, parts int
		if err := item.Value(func(b []byte) (err error) {
			count, parts, err = s.legacyBlockCount(b)
			if s.legacyFormat == nil {
				count, _, parts, err = blockMeta(b)
			}
			return err
		}); err != nil {
			return fmt.Errorf("log block %d: %w", blockSeq(lastBlock), err)
		}
		if partsFound+1 == parts {
			s.lastSeq = max(s.lastSeq, blockSeq(lastBlock)+uint64(count)-1)
			torn = nil
			return nil
		}
		s.logBytes -= lastSize
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the log's bounds: %w", err)
	}
	if torn == nil {
		return nil
	}
	// The block before the torn one ends where the log now does.
	s.log.Warn("dropping a log block cut short by a crash", "seq", blockSeq(torn[0]))
	err = s.update(func(txn *badger.Txn) error {
		for _, k := range torn {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = s.db.Sync()
	}
	if err != nil {
		return fmt.Errorf("drop a torn log block: %w", err)
	}
	s.logBytes = 0
	return s.loadBounds()
}
