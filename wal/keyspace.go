package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/redmesh/redmesh/record"
)

// rowKey is a key's keyspace row: 'k', the key's hash, the key.
func (s *Store) rowKey(key []byte) []byte {
	row := make([]byte, 5, 5+len(key))
	row[0] = prefixKey
	binary.BigEndian.PutUint32(row[1:], s.opts.KeyHash(key))
	return append(row, key...)
}

func itemRecord(item *badger.Item) (record.Record, error) {
	var rec record.Record
	err := item.Value(func(b []byte) error {
		r, err := record.Decode(b)
		if err != nil {
			return fmt.Errorf("row %q: %w", item.Key(), err)
		}
		rec = r
		rec.Value.Data = bytes.Clone(r.Value.Data)
		return nil
	})
	return rec, err
}

// Get reads a key's record as last committed. A key never written (or whose
// row was garbage-collected) reads as the zero record.
func (s *Store) Get(key []byte) (record.Record, error) {
	// The cache first: it holds only rows that exist, and a hit, the
	// common case, then costs one lookup rather than two.
	cached, ok, seq := s.cache.get(string(key))
	if ok {
		return cached, nil
	}
	if m, ok := s.index.get(string(key)); !ok || !m.record().Exists() {
		return m.record(), nil // nothing more to read than the index holds
	}
	var rec record.Record
	err := s.view(func(txn *badger.Txn) error {
		var err error
		rec, err = getRecord(txn, s.rowKey(key))
		return err
	})
	if err != nil {
		return record.Record{}, fmt.Errorf("get %q: %w", key, err)
	}
	s.cache.fill(string(key), rec, seq)
	return rec, nil
}

func getRecord(txn *badger.Txn, row []byte) (record.Record, error) {
	item, err := txn.Get(row)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return record.Record{}, nil
	}
	if err != nil {
		return record.Record{}, err
	}
	return itemRecord(item)
}

// ScanFunc receives one keyspace row; returning false stops the scan.
type ScanFunc func(key []byte, rec record.Record) bool

// Scan visits rows in keyspace order starting at cursor, and returns the
// cursor of the first row it did not visit, or 0 when it reached the end.
// Cursor 0 starts at the beginning. A cursor is the row hash plus one, so a
// row present for a whole scan is visited at least once however the keyspace
// changes in between (Redis's SCAN guarantee); rows that share a hash with the
// stopping point may be visited twice.
func (s *Store) Scan(cursor uint64, fn ScanFunc) (next uint64, err error) {
	start := []byte{prefixKey, 0, 0, 0, 0}
	if cursor > 0 {
		binary.BigEndian.PutUint32(start[1:], uint32(cursor-1))
	}
	err = s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixKey}, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Seek(start); it.Valid(); it.Next() {
			item := it.Item()
			row := item.Key()
			rec, err := itemRecord(item)
			if err != nil {
				return err
			}
			if !fn(bytes.Clone(row[5:]), rec) {
				it.Next()
				if it.Valid() {
					next = uint64(binary.BigEndian.Uint32(it.Item().Key()[1:])) + 1
				}
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("scan keyspace: %w", err)
	}
	return next, nil
}
