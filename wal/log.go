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

func logKey(seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixLog
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

// appendEntry encodes an entry's body: time, key, record.
func appendEntry(dst []byte, e Entry) []byte {
	dst = binary.AppendVarint(dst, e.Time.UnixMilli())
	dst = binary.AppendUvarint(dst, uint64(len(e.Key)))
	dst = append(dst, e.Key...)
	return record.AppendBinary(dst, e.Record)
}

// decodeEntry parses an entry body; Key and Record alias b.
func decodeEntry(seq uint64, b []byte) (Entry, error) {
	e := Entry{Seq: seq}
	ms, n := binary.Varint(b)
	if n <= 0 {
		return e, fmt.Errorf("log entry %d: bad time", seq)
	}
	e.Time = time.UnixMilli(ms)
	b = b[n:]
	kl, n := binary.Uvarint(b)
	if n <= 0 || kl > MaxKeyLen || kl > uint64(len(b)-n) {
		return e, fmt.Errorf("log entry %d: bad key length", seq)
	}
	b = b[n:]
	e.Key = b[:kl:kl]
	rec, err := record.Decode(b[kl:])
	if err != nil {
		return e, fmt.Errorf("log entry %d: %w", seq, err)
	}
	e.Record = rec
	return e, nil
}

func entrySize(item *badger.Item) int64 { return int64(len(item.Key())) + item.ValueSize() }

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
	var out []Entry
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		var size int64
		for it.Seek(logKey(from)); it.Valid() && len(out) < max; it.Next() {
			item := it.Item()
			seq := binary.BigEndian.Uint64(item.Key()[1:])
			if seq > last {
				// Committed but not yet in the index, which the records
				// below are read through: they could be older than it.
				break
			}
			body, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			e, err := decodeEntry(seq, body)
			if err != nil {
				return err
			}
			out = append(out, e)
			size += int64(len(body))
			if size >= maxBytes {
				break
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

// truncateBatch drops up to a few thousand entries in one transaction.
func (s *Store) truncateBatch() (int, error) {
	const batch = 4096
	s.logMu.Lock()
	first, last, bytes := s.firstSeq, s.lastSeq, s.logBytes
	s.logMu.Unlock()
	if first > last {
		return 0, nil
	}
	cutoff := s.opts.Now().Add(-s.opts.RetainAge).UnixMilli()
	var (
		seqs  []uint64
		freed int64
	)
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		// Seek past the entries already dropped: their tombstones stay
		// until compaction, and stepping over them again every batch made
		// truncating a long log quadratic.
		for it.Seek(logKey(first)); it.Valid() && len(seqs) < batch; it.Next() {
			item := it.Item()
			size := entrySize(item)
			if bytes-freed <= s.opts.RetainBytes {
				var ms int64
				if err := item.Value(func(b []byte) error {
					ms, _ = binary.Varint(b)
					return nil
				}); err != nil {
					return err
				}
				if ms >= cutoff {
					return nil
				}
			}
			seqs = append(seqs, binary.BigEndian.Uint64(item.Key()[1:]))
			freed += size
		}
		return nil
	})
	if err != nil || len(seqs) == 0 {
		return 0, err
	}
	top := seqs[len(seqs)-1]
	s.logMu.Lock()
	total := s.logFreed + uint64(freed) // only this goroutine moves logFreed
	s.logMu.Unlock()
	err = s.db.Update(func(txn *badger.Txn) error {
		for _, seq := range seqs {
			if err := txn.Delete(logKey(seq)); err != nil {
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
	s.firstSeq = top + 1
	s.logBytes -= freed
	s.logFreed = total
	s.logMu.Unlock()
	return len(seqs), nil
}
