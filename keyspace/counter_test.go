package keyspace

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// TestAddCountIsTheMerge: a new counter applied by NewCounter, and
// increments applied by Counter and AddCount, leave the table, the log,
// the versions OnCommit hands the Merkle index and the checkpoint as the
// same writes applied by Get and Apply (the merge) do.
func TestAddCountIsTheMerge(t *testing.T) {
	var mu sync.Mutex
	committed := map[string][]wal.Entry{}
	open := func(dir string) *store {
		return openStore(t, dir, func(_ *wal.Options, o *Options) {
			o.OnCommit = func(es []wal.Entry) {
				mu.Lock()
				defer mu.Unlock()
				committed[dir] = append(committed[dir], es...)
			}
		})
	}
	fastDir, slowDir := t.TempDir(), t.TempDir()
	fast, slow := open(fastDir), open(slowDir)
	key := []byte("n")
	st := record.CounterState{KindVersion: version(2), Count: record.Count{Node: 7, Start: 2, Ver: version(2), Total: 4}}
	start := record.Record{Value: record.Value{Version: version(1), Data: []byte("10")}, Expiry: record.Expiry{Version: version(1)}, Typed: st.Typed()}
	put(t, slow.db, "n", start)
	err := fast.db.Update(context.Background(), func(tx *Tx) error {
		regs := start
		regs.Typed = nil
		if ok, err := tx.NewCounter(key, regs, st); !ok || err != nil {
			t.Fatalf("NewCounter of a key never written: %v, %v", ok, err)
		}
		if ok, err := tx.NewCounter(key, regs, st); ok || err != nil {
			t.Fatalf("NewCounter of a key the transaction changed: %v, %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = fast.db.Update(context.Background(), func(tx *Tx) error {
		if ok, err := tx.NewCounter(key, record.Record{Value: record.Value{Version: version(9), Data: []byte("0")}}, st); ok || err != nil {
			t.Fatalf("NewCounter of a key written: %v, %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
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
	wait := func(dir string) []wal.Entry {
		mu.Lock()
		defer mu.Unlock()
		return committed[dir]
	}
	fe, se := wait(fastDir), wait(slowDir)
	if len(fe) != 4 || len(se) != 4 {
		t.Fatalf("committed %d and %d entries, want 4", len(fe), len(se))
	}
	for i := range fe {
		if fe[i].Prev != se[i].Prev || fe[i].Now != se[i].Now || !record.Equal(fe[i].Record, se[i].Record) || fe[i].Hash != Hash(key) {
			t.Fatalf("entry %d: AddCount %+v, the merge %+v", i, fe[i], se[i])
		}
	}
	fl, err := fast.log.ReadLog(1, 100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	sl, err := slow.log.ReadLog(1, 100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(fl) != 4 || len(sl) != 4 {
		t.Fatalf("the logs hold %d and %d entries, want 4", len(fl), len(sl))
	}
	for i := range fl {
		if !bytes.Equal(record.AppendBinary(nil, fl[i].Record), record.AppendBinary(nil, se[i].Record)) || !record.Equal(fl[i].Record, sl[i].Record) {
			t.Fatalf("logged entry %d: %+v, the merge's %+v", i, fl[i].Record, sl[i].Record)
		}
	}
	err = fast.db.Update(context.Background(), func(tx *Tx) error {
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
	// The checkpoint written at close holds the counter as the merge left
	// it, and so does the restart that reads it.
	want := slow.db.Get(key)
	fast.close(t)
	slow.close(t)
	fast = open(fastDir)
	defer fast.close(t)
	if got := fast.db.Get(key); !record.Equal(got, want) || !bytes.Equal(got.Value.Data, want.Value.Data) {
		t.Fatalf("after a restart: %+v, want %+v", got, want)
	}
}
