package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/redmesh/redmesh/record"
)

// metaLogFormat names the log's format: logBlocks, or nothing in a store
// written before blocks, whose log held one entry a row.
const (
	metaLogFormat = "log-format"
	logBlocks     = "blocks"
)

// upgradeLog rewrites a log of one entry a row as blocks of one entry, and
// marks the store's log format. The index snapshot counted the old rows'
// sizes, so it goes: the index is rebuilt from the keyspace once.
func (s *Store) upgradeLog() error {
	format, ok, err := s.GetMeta(metaLogFormat)
	if err != nil {
		return err
	}
	if ok {
		if string(format) != logBlocks {
			return fmt.Errorf("log format %q: written by a newer redmesh?", format)
		}
		return nil
	}
	wb, visible := s.writeBatch()
	defer wb.Cancel()
	n := 0
	err = s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			seq := blockSeq(it.Item().Key())
			var blk []byte
			err := it.Item().Value(func(b []byte) error {
				t, key, rec, err := decodeRowEntry(b)
				if err != nil {
					return fmt.Errorf("log entry %d: %w", seq, err)
				}
				blk = make([]byte, blockHeader, blockHeader+blockEntryBound(key, rec))
				setBlockHeader(blk, 1, t)
				blk = appendBlockEntry(blk, key, rec)
				return nil
			})
			if err != nil {
				return err
			}
			if err := wb.Set(it.Item().KeyCopy(nil), blk); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err == nil {
		err = wb.Set(metaKey(metaLogFormat), []byte(logBlocks))
	}
	if err == nil {
		err = wb.Flush()
	}
	visible()
	if err == nil {
		err = s.db.Sync()
	}
	if err != nil {
		return fmt.Errorf("upgrade the log to blocks: %w", err)
	}
	if n > 0 {
		if err := os.Remove(s.snapshotPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("upgrade the log to blocks: %w", err)
		}
		s.log.Info("log upgraded to blocks", "entries", n)
	}
	return nil
}

// decodeRowEntry parses a log entry of the format before blocks: time
// (varint unix milliseconds), key (after its length, a uvarint), record.
func decodeRowEntry(b []byte) (time.Time, []byte, record.Record, error) {
	ms, n := binary.Varint(b)
	if n <= 0 {
		return time.Time{}, nil, record.Record{}, errors.New("bad time")
	}
	b = b[n:]
	kl, n := binary.Uvarint(b)
	if n <= 0 || kl > MaxKeyLen || kl > uint64(len(b)-n) {
		return time.Time{}, nil, record.Record{}, errors.New("bad key length")
	}
	key := b[n : n+int(kl)]
	rec, err := record.Decode(b[n+int(kl):])
	return time.UnixMilli(ms), key, rec, err
}
