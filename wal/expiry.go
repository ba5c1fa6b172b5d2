package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/redmesh/redmesh/record"
)

// The expiry index lists keys holding a value with a deadline, in deadline
// order, so the active sweep finds expired keys without reading the keyspace.
// It is written in the same transaction as the rows it indexes.

// deadlineOf is the deadline under which a record is indexed, 0 for none.
func deadlineOf(r record.Record) int64 {
	if !r.Exists() {
		return 0
	}
	return r.Expiry.At
}

func expiryKey(deadline int64, key []byte) []byte {
	k := make([]byte, 9, 9+len(key))
	k[0] = prefixExp
	binary.BigEndian.PutUint64(k[1:], uint64(deadline))
	return append(k, key...)
}

// ExpiredKeys returns up to max keys whose deadline is before nowMillis,
// oldest deadline first.
func (s *Store) ExpiredKeys(nowMillis int64, max int) ([][]byte, error) {
	var keys [][]byte
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixExp}})
		defer it.Close()
		for it.Rewind(); it.Valid() && len(keys) < max; it.Next() {
			k := it.Item().Key()
			if int64(binary.BigEndian.Uint64(k[1:])) >= nowMillis {
				break
			}
			keys = append(keys, bytes.Clone(k[9:]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list expired keys: %w", err)
	}
	return keys, nil
}
