package wal

import (
	"encoding/binary"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/redmesh/redmesh/record"
)

// metaLogFormat names the store's layout. logValues: the log holds every
// mutation with its value, and the keyspace lives in memory, checkpointed
// to files. A store without it, or with "blocks", is of the layout before:
// the keyspace in rows ('k'), an expiry index ('x') and a log of versions
// only. Such a store is converted at first start: the keyspace layer reads
// the rows (EachLegacyRow), checkpoints them, and FinishLegacy drops the old
// rows and log, so the sequence numbers go on where they stopped.
const (
	metaLogFormat = "log-format"
	logValues     = "values"
	logBlocks     = "blocks" // the layout before, with a log of blocks
)

// checkFormat reads the store's layout, and marks a new store as of the
// current one.
func (s *Store) checkFormat() error {
	format, ok, err := s.GetMeta(metaLogFormat)
	if err != nil {
		return err
	}
	switch {
	case ok && string(format) == logValues:
		return nil
	case ok && string(format) != logBlocks:
		return fmt.Errorf("store format %q: written by a newer redmesh?", format)
	}
	empty := true
	err = s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		it.Rewind()
		empty = !it.Valid()
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the store's layout: %w", err)
	}
	if !ok && empty {
		return s.PutMetaSync(metaLogFormat, []byte(logValues))
	}
	s.legacy = true
	s.legacyFormat = format // nil: a row per entry, from before blocks
	if !ok {
		s.legacyFormat = []byte{}
	}
	return nil
}

// legacyBlockCount reads the entry count of a legacy store's log row: a
// block of the layout before (its count in its first 4 bytes), or a row of
// one entry from before blocks. It reports nothing for a current store.
func (s *Store) legacyBlockCount(b []byte) (count, parts int, err error) {
	switch {
	case s.legacyFormat == nil:
		return 0, 0, nil
	case string(s.legacyFormat) == logBlocks:
		if len(b) < 12 {
			return 0, 0, fmt.Errorf("legacy log block of %d bytes", len(b))
		}
		return int(binary.BigEndian.Uint32(b)), 1, nil
	default:
		return 1, 1, nil
	}
}

// Legacy reports whether the store is of the layout before the keyspace
// moved into memory, and must be converted (see metaLogFormat).
func (s *Store) Legacy() bool { return s.legacy }

// EachLegacyRow calls fn with every keyspace row of a legacy store, in row
// order. key and rec alias Badger's buffers: fn must copy what it keeps.
func (s *Store) EachLegacyRow(fn func(key []byte, rec record.Record) error) error {
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLegacyKey}, PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if len(item.Key()) < 5 {
				return fmt.Errorf("keyspace row %q: too short", item.Key())
			}
			err := item.Value(func(b []byte) error {
				rec, err := record.Decode(b)
				if err != nil {
					return fmt.Errorf("keyspace row %q: %w", item.Key(), err)
				}
				return fn(item.Key()[5:], rec)
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the legacy keyspace: %w", err)
	}
	return nil
}

// FinishLegacy drops a legacy store's keyspace rows, expiry index and log
// (whose entries held no values), once the keyspace layer has checkpointed
// the rows at the log's last sequence number, and marks the store as of the
// current layout. The log then starts after that number, so peers' cursors
// in it fall back to a Merkle repair.
func (s *Store) FinishLegacy() error {
	for _, p := range []byte{prefixLegacyKey, prefixLegacyExp, prefixLog} {
		if err := s.db.DropPrefix([]byte{p}); err != nil {
			return fmt.Errorf("drop the legacy rows %q: %w", p, err)
		}
	}
	s.logMu.Lock()
	last := s.lastSeq
	s.logMu.Unlock()
	err := s.update(func(txn *badger.Txn) error {
		if err := txn.Set(metaKey(metaSeqFloor), binary.BigEndian.AppendUint64(nil, last)); err != nil {
			return err
		}
		return txn.Set(metaKey(metaLogFormat), []byte(logValues))
	})
	if err == nil {
		err = s.db.Sync()
	}
	if err != nil {
		return fmt.Errorf("finish converting the store: %w", err)
	}
	s.logMu.Lock()
	s.firstSeq, s.logBytes = last+1, 0
	s.logMu.Unlock()
	s.legacy, s.legacyFormat = false, nil
	return nil
}
