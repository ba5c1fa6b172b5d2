package wal

import (
	"encoding/binary"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/redmesh/redmesh/record"
)

// CheckReport is what Check found.
type CheckReport struct {
	Rows       int // keyspace rows
	Keys       int // rows holding a value
	LogEntries int
	LogKeys    int // distinct keys in the retained log
}

// Check verifies that the keyspace and the log agree: sequence numbers are
// contiguous, each key's entries only ever move its versions forward, the
// newest retained entry of every key has exactly its keyspace row's versions, the
// in-memory index matches the keyspace, and the key count matches. It reads everything, so it is for tests and operators,
// not the hot path.
func (s *Store) Check() (CheckReport, error) {
	var rep CheckReport
	// The log stores versions and the tombstone flag, not values.
	type logged struct {
		versions  [2]record.Version
		tombstone bool
	}
	latest := make(map[string]logged)
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}, PrefetchValues: true})
		defer it.Close()
		var (
			prev  uint64
			block []Entry
		)
		for it.Rewind(); it.Valid(); it.Next() {
			body, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if block, err = decodeBlock(blockSeq(it.Item().Key()), body, block[:0]); err != nil {
				return err
			}
			for _, e := range block {
				if prev != 0 && e.Seq != prev+1 {
					return fmt.Errorf("log gap: %d follows %d", e.Seq, prev)
				}
				prev = e.Seq
				k := string(e.Key)
				cur := logged{e.Record.Versions(), e.Record.Value.Tombstone}
				if old, ok := latest[k]; ok && !newer(cur.versions, old.versions) &&
					!(cur.versions == old.versions && cur.tombstone && !old.tombstone) { // an expiry sweep
					return fmt.Errorf("log entry %d for %q does not supersede the previous one", e.Seq, e.Key)
				}
				latest[k] = cur
				rep.LogEntries++
			}
		}
		rep.LogKeys = len(latest)

		kit := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixKey}, PrefetchValues: true})
		defer kit.Close()
		for kit.Rewind(); kit.Valid(); kit.Next() {
			row := kit.Item().Key()
			key := row[5:]
			if h := binary.BigEndian.Uint32(row[1:]); h != s.opts.KeyHash(key) {
				return fmt.Errorf("row %q filed under hash %08x", key, h)
			}
			rec, err := itemRecord(kit.Item())
			if err != nil {
				return err
			}
			rep.Rows++
			if m, ok := s.index.get(string(key)); !ok || m != metaOf(rec) {
				return fmt.Errorf("key %q: index holds %+v, keyspace %+v", key, m, rec)
			}
			if rec.Exists() {
				rep.Keys++
			}
			if l, ok := latest[string(key)]; ok {
				if l != (logged{rec.Versions(), rec.Value.Tombstone}) {
					return fmt.Errorf("key %q: keyspace holds %+v, log's newest entry %+v", key, rec, l)
				}
				delete(latest, string(key))
			}
		}
		for k := range latest {
			return fmt.Errorf("key %q is in the log but has no keyspace row", k)
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("check store: %w", err)
	}
	indexed := 0
	s.index.each(func([]byte, meta) { indexed++ })
	if indexed != rep.Rows {
		return rep, fmt.Errorf("check store: index holds %d keys, keyspace %d rows", indexed, rep.Rows)
	}
	if int64(rep.Keys) != s.KeyCount() {
		return rep, fmt.Errorf("check store: counted %d keys, store says %d", rep.Keys, s.KeyCount())
	}
	return rep, nil
}

// newer reports whether no register of next is older than in prev, and one
// is newer: what a later mutation of the same key must be.
func newer(next, prev [2]record.Version) bool {
	any := false
	for i := range next {
		switch c := next[i].Compare(prev[i]); {
		case c < 0:
			return false
		case c > 0:
			any = true
		}
	}
	return any
}
