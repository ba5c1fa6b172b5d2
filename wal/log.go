package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/redmesh/redmesh/record"
)

// Entry is one applied mutation of a key. Entries carry whole records rather
// than deltas, so applying an entry anywhere, any number of times, in any
// order, is just a merge.
//
// The log stores only each mutation's register versions (and tombstone flag):
// its value is in the keyspace row written in the same transaction. ReadLog
// therefore returns, for each entry, the key's current record, which is the
// logged mutation or a newer one. A peer catching up gets the same end state
// and never an older value, and every write is stored once instead of twice.
type Entry struct {
	Seq    uint64
	Time   time.Time // when it was applied here
	Key    []byte
	Record record.Record
	// Prev holds the key's register versions before this mutation, for
	// indexes that move a digest from old to new (the Merkle tree). Only
	// entries handed to OnCommit carry it; it is not stored.
	Prev [2]record.Version
}

// MaxKeyLen bounds a key. Badger refuses row keys over 65,000 bytes; Redis
// allows 512 MB, but keys that long are not used in practice.
const MaxKeyLen = 64000

// ErrTruncated is returned by ReadLog when the requested sequence number is
// older than the oldest retained entry: the reader must repair by Merkle.
var ErrTruncated = errors.New("log truncated past the requested sequence number")

// The log is kept in blocks: the entries of one Badger transaction, split
// once a block passes blockTarget bytes, in one row keyed by the block's
// first sequence number. A row per entry, beside the keyspace row, cost as
// much again in Badger's skiplist, flushes and compactions: half the CPU of
// a write (measured with redis-benchmark).
//
// A block's value: the entry count (4 bytes) and the time the entries were
// applied (unix milliseconds, 8 bytes), big-endian, then per entry the key
// and the encoded record, each after its length as a uvarint.
const (
	blockHeader = 12
	blockTarget = 16 << 10
)

func logKey(seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixLog
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

// blockSeq is the first sequence number of the block stored under key.
func blockSeq(key []byte) uint64 { return binary.BigEndian.Uint64(key[1:]) }

// appendBlockEntry encodes one entry of a block.
func appendBlockEntry(dst, key []byte, rec record.Record) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	// The record's length goes first, but is known only once it is
	// encoded: one byte is kept for it, which a record without its value's
	// data (what the log holds) never outgrows.
	at := len(dst)
	dst = record.AppendBinary(append(dst, 0), rec)
	n := len(dst) - at - 1
	if n < 0x80 {
		dst[at] = byte(n)
		return dst
	}
	var lb [binary.MaxVarintLen64]byte
	l := binary.PutUvarint(lb[:], uint64(n))
	dst = append(dst, lb[1:l]...)
	copy(dst[at+l:], dst[at+1:at+1+n])
	copy(dst[at:], lb[:l])
	return dst
}

// blockEntryBound bounds the bytes appendBlockEntry adds for key and rec.
func blockEntryBound(key []byte, rec record.Record) int {
	return 2*binary.MaxVarintLen64 + len(key) + record.EncodedSize(rec)
}

// setBlockHeader fills in the header that a block's buffer starts with.
func setBlockHeader(b []byte, count int, t time.Time) {
	binary.BigEndian.PutUint32(b, uint32(count))
	binary.BigEndian.PutUint64(b[4:], uint64(t.UnixMilli()))
}

// blockMeta reads a block's header.
func blockMeta(b []byte) (count int, t time.Time, err error) {
	if len(b) < blockHeader {
		return 0, t, fmt.Errorf("log block of %d bytes: no header", len(b))
	}
	n := binary.BigEndian.Uint32(b)
	// Every entry takes at least two bytes: never believe a count the
	// block cannot hold.
	if n == 0 || uint64(n) > uint64(len(b)-blockHeader)/2 {
		return 0, t, fmt.Errorf("log block of %d bytes claims %d entries", len(b), n)
	}
	return int(n), time.UnixMilli(int64(binary.BigEndian.Uint64(b[4:]))), nil
}

// decodeBlock appends to dst the entries of the block that starts at seq
// first; their Key and Record alias b.
func decodeBlock(first uint64, b []byte, dst []Entry) ([]Entry, error) {
	count, t, err := blockMeta(b)
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
		p = p[n+int(kl):]
		rl, n := binary.Uvarint(p)
		if n <= 0 || rl > uint64(len(p)-n) {
			return dst, fmt.Errorf("log entry %d: bad record length", seq)
		}
		rec, err := record.Decode(p[n : n+int(rl)])
		if err != nil {
			return dst, fmt.Errorf("log entry %d: %w", seq, err)
		}
		p = p[n+int(rl):]
		dst = append(dst, Entry{Seq: seq, Time: t, Key: key, Record: rec})
	}
	if len(p) != 0 {
		return dst, fmt.Errorf("log block %d: %d bytes after its last entry", first, len(p))
	}
	return dst, nil
}

// seekBlock positions it, a forward iterator over the log, at the block
// holding seq, or the first one after it if none does.
func seekBlock(txn *badger.Txn, it *badger.Iterator, seq uint64) {
	rit := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}, Reverse: true})
	defer rit.Close()
	if rit.Seek(logKey(seq)); rit.Valid() {
		it.Seek(rit.Item().KeyCopy(nil))
		return
	}
	it.Seek(logKey(seq))
}

// blockLast reads the last sequence number of the block at item.
func blockLast(item *badger.Item) (uint64, error) {
	var count int
	err := item.Value(func(b []byte) (err error) {
		count, _, err = blockMeta(b)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("log block %d: %w", blockSeq(item.Key()), err)
	}
	return blockSeq(item.Key()) + uint64(count) - 1, nil
}

// blockSize is what a block adds to the log's size.
func blockSize(item *badger.Item) int64 { return int64(len(item.Key())) + item.ValueSize() }

// LogBounds returns the oldest retained and the latest sequence numbers.
// first is last+1 when the log is empty.
func (s *Store) LogBounds() (first, last uint64) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.firstSeq, s.lastSeq
}

// LogBytes is the retained log's approximate size. For a moment after
// start-up, until the background count of the entries found then is done,
// it counts only the entries written since: it never waits for that count.
func (s *Store) LogBytes() int64 {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.logBytes
}

// ReadLog returns entries with sequence numbers from `from` on, at most max
// entries and about maxBytes bytes (at least one entry if any), each with its
// key's current record (see Entry). It fails with ErrTruncated if from is
// older than the oldest retained entry.
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
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}, PrefetchValues: true, PrefetchSize: 16})
		defer it.Close()
		var size int64
		for seekBlock(txn, it, from); it.Valid(); it.Next() {
			item := it.Item()
			body, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if block, err = decodeBlock(blockSeq(item.Key()), body, block[:0]); err != nil {
				return err
			}
			for _, e := range block {
				if e.Seq < from {
					continue
				}
				// Past last: committed but not yet in the index, which
				// the records below are read through, so they could be
				// older than it.
				if e.Seq > last || len(out) == max || size >= maxBytes {
					return nil
				}
				out = append(out, e)
				size += int64(len(e.Key) + record.EncodedSize(e.Record))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read log from %d: %w", from, err)
	}
	// Retention may have run while we read: never hand out a gap silently.
	if len(out) > 0 && out[0].Seq != from {
		return nil, fmt.Errorf("read log from %d (found %d): %w", from, out[0].Seq, ErrTruncated)
	}
	for i := range out {
		cur, err := s.Get(out[i].Key)
		if err != nil {
			return nil, fmt.Errorf("read log from %d: %w", from, err)
		}
		out[i].Record = cur
	}
	return out, nil
}

// Truncate drops the oldest entries while the log is over its size bound or
// its oldest entry is over its age bound. It returns how many it dropped.
func (s *Store) Truncate(ctx context.Context) (int, error) {
	select {
	case <-s.logSized:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
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
	first, last, bytes := s.firstSeq, s.lastSeq, s.logBytes
	s.logMu.Unlock()
	if first > last {
		return 0, nil
	}
	cutoff := s.opts.Now().Add(-s.opts.RetainAge)
	var (
		blocks [][]byte
		top    uint64 // the last entry dropped
		freed  int64
	)
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		// Seek past the blocks already dropped: their tombstones stay
		// until compaction, and stepping over them again every batch made
		// truncating a long log quadratic.
		for it.Seek(logKey(first)); it.Valid() && len(blocks) < batch; it.Next() {
			item := it.Item()
			if blockSeq(item.Key()) > last {
				return nil // not yet in the index: leave it to the next round
			}
			var (
				count int
				t     time.Time
			)
			if err := item.Value(func(b []byte) (err error) {
				count, t, err = blockMeta(b)
				return err
			}); err != nil {
				return fmt.Errorf("log block %d: %w", blockSeq(item.Key()), err)
			}
			if bytes-freed <= s.opts.RetainBytes && !t.Before(cutoff) {
				return nil
			}
			blocks = append(blocks, item.KeyCopy(nil))
			top = blockSeq(item.Key()) + uint64(count) - 1
			freed += blockSize(item)
		}
		return nil
	})
	if err != nil || len(blocks) == 0 {
		return 0, err
	}
	s.logMu.Lock()
	total := s.logFreed + uint64(freed) // only this goroutine moves logFreed
	s.logMu.Unlock()
	err = s.update(func(txn *badger.Txn) error {
		for _, k := range blocks {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		if err := txn.Set(metaKey(metaLogFreed), binary.BigEndian.AppendUint64(nil, total)); err != nil {
			return err
		}
		return txn.Set(metaKey(metaSeqFloor), binary.BigEndian.AppendUint64(nil, top))
	})
	if err != nil {
		return 0, fmt.Errorf("truncate log to %d: %w", top+1, err)
	}
	s.logMu.Lock()
	dropped := int(top + 1 - s.firstSeq)
	s.firstSeq = top + 1
	s.logBytes -= freed
	s.logFreed = total
	s.logMu.Unlock()
	return dropped, nil
}
