package keyspace

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// TestAddCountIsTheMerge: an increment applied by Counter and AddCount
// leaves the table, the log and the versions OnCommit hands the Merkle
// index as the same increment applied by Get and Apply (the merge) does.
func TestAddCountIsTheMerge(t *testing.T) {
	var mu sync.Mutex
	committed := map[*store][]wal.Entry{}
	open := func() *store {
		var s *store
		s = openStore(t, t.TempDir(), func(_ *wal.Options, o *Options) {
			o.OnCommit = func(es []wal.Entry) {
				mu.Lock()
				defer mu.Unlock()
				committed[s] = append(committed[s], es...)
			}
		})
		return s
	}
	fast, slow := open(), open()
	defer fast.close(t)
	defer slow.close(t)
	key := []byte("n")
	st := record.CounterState{KindVersion: version(2), Count: record.Count{Node: 7, Start: 2, Ver: version(2), Total: 4}}
	start := record.Record{Value: record.Value{Version: version(1), Data: []byte("10")}, Expiry: record.Expiry{Version: version(1)}, Typed: st.Typed()}
	for _, s := range []*store{fast, slow} {
		put(t, s.db, "n", start)
	}
	for i := range 3 {
		next := st
		next.KindVersion = version(uint64(3 + i))
		next.Count.Ver, next.Count.Total = next.KindVersion, st.Count.Total+5
		err := fast.db.Update(context.Background(), func(tx *Tx) error {
			cur, got, ok := tx.Counter(key)
			if !ok || got.Digest() != st.Digest() || !bytes.Equal(cur.Value.Data, []byte("10")) {
				t.Fatalf("Counter read %+v %+v %v, want %+v", cur, got, ok, st)
			}
			if _, ok := tx.AddCount(key, cur, got, next); !ok {
				t.Fatalf("AddCount refused %+v over %+v", next, got)
			}
			if _, _, ok := tx.Counter(key); ok {
				t.Fatalf("Counter read a key the transaction changed")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = slow.db.Update(context.Background(), func(tx *Tx) error {
			if _, err := tx.Get(key); err != nil {
				return err
			}
			_, _, err := tx.Apply(key, record.Record{Typed: next.Typed()})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		st = next
	}
	if f, s := fast.db.Get(key), slow.db.Get(key); !record.Equal(f, s) || !bytes.Equal(f.Value.Data, []byte("10")) {
		t.Fatalf("AddCount left %+v, the merge %+v", f, s)
	}
	wait := func(s *store) []wal.Entry {
		mu.Lock()
		defer mu.Unlock()
		return committed[s]
	}
	fe, se := wait(fast), wait(slow)
	if len(fe) != 4 || len(se) != 4 {
		t.Fatalf("committed %d and %d entries, want 4", len(fe), len(se))
	}
	for i := range fe {
		if fe[i].Prev != se[i].Prev || fe[i].Now != se[i].Now || !record.Equal(fe[i].Record, se[i].Record) {
			t.Fatalf("entry %d: AddCount %+v, the merge %+v", i, fe[i], se[i])
		}
	}
	err := fast.db.Update(context.Background(), func(tx *Tx) error {
		cur, got, _ := tx.Counter(key)
		stale := got
		stale.Count.Total++ // not a later version: not a state that replaces the stored one
		if _, ok := tx.AddCount(key, cur, got, stale); ok {
			t.Fatalf("AddCount took a state that does not supersede the stored one")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
