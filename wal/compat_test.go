package wal

import (
	"testing"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/redmesh/redmesh/record"
)

// TestOpensV1Store: a store whose log holds a block as the build before
// counts' short form wrote it opens, and its entries read back (for a
// peer's catch-up) and replay (at start-up) as they were written; the log
// goes on after them in this build's encoding.
func TestOpensV1Store(t *testing.T) {
	blk := readBlockV1(t)
	dir := t.TempDir()
	s := open(t, dir, nil)
	if err := s.update(func(txn *badger.Txn) error { return txn.Set(logKey(100), blk) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir, nil)
	defer s.Close()
	keys, recs, counters := goldenEntries()
	if first, last := s.LogBounds(); first != 100 || last != 100+uint64(len(keys))-1 {
		t.Fatalf("log bounds %d..%d, want 100..%d", first, last, 100+len(keys)-1)
	}
	want := func(i int) record.Record {
		r := recs[i]
		if counters[i] != nil {
			r.Typed = counters[i].Typed()
		}
		return r
	}
	es, err := s.ReadLog(100, 100, 1<<20)
	if err != nil || len(es) != len(keys) {
		t.Fatalf("read %d entries, %v; want %d", len(es), err, len(keys))
	}
	for i, e := range es {
		if string(e.Key) != keys[i] || !record.Equal(e.Record, want(i)) {
			t.Fatalf("entry %d read as %q %+v, want %q %+v", i, e.Key, e.Record, keys[i], want(i))
		}
	}
	i := 0
	err = s.Replay(100, func(e Entry) error {
		if e.Seq != 100+uint64(i) || !record.Equal(e.Record, want(i)) {
			t.Fatalf("replayed entry %d: %d %+v, want %+v", i, e.Seq, e.Record, want(i))
		}
		i++
		return nil
	})
	if err != nil || i != len(keys) {
		t.Fatalf("replayed %d entries, %v", i, err)
	}
	commit(t, s, 1, func(int) string { return "next" }, "v")
	if _, last := s.LogBounds(); last != 100+uint64(len(keys)) {
		t.Fatalf("the next write logged at %d, want %d", last, 100+len(keys))
	}
}
