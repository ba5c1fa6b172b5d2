package wal

import (
	"fmt"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
)

// The store picks Badger's timestamps itself: a read transaction keeps
// seeing what was committed when it began, and holds back the release of
// the versions it reads until it ends.
func TestReadersSeeTheirSnapshotAndHoldItsVersions(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	defer s.Close()
	put(t, s, "k", "v1")
	old := s.readTxn()
	for i := 2; i <= 20; i++ {
		put(t, s, "k", fmt.Sprint("v", i))
	}
	if got := readValue(t, old, s, "k"); got != "v1" {
		t.Fatalf("an open reader reads %q, want the v1 it began with", got)
	}
	if f, ts := s.ts.floor(), old.ReadTs(); f != ts {
		t.Fatalf("floor %d with a reader open at %d", f, ts)
	}
	var now string
	s.view(func(txn *badger.Txn) error { now = readValue(t, txn, s, "k"); return nil })
	if now != "v20" {
		t.Fatalf("a new reader reads %q, want v20", now)
	}
	s.endRead(old)
	if f, v := s.ts.floor(), s.ts.visible.Load(); f != v {
		t.Fatalf("floor %d with no reader open, want the visible %d", f, v)
	}
}

// Released versions go at compaction, and timestamps continue above the
// stored ones after a restart, so a new write is the one read.
func TestOldVersionsGoAndTimestampsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	for i := 1; i <= 30; i++ {
		put(t, s, "k", fmt.Sprint("v", i))
	}
	if n := rowVersions(t, s, "k"); n != 30 {
		t.Fatalf("%d versions before compaction, want 30", n)
	}
	s = compact(t, s, dir, nil) // restarts it too
	defer s.Close()
	if n := rowVersions(t, s, "k"); n != 1 {
		t.Fatalf("%d versions after compaction, want 1", n)
	}
	put(t, s, "k", "v31")
	var got string
	s.view(func(txn *badger.Txn) error { got = readValue(t, txn, s, "k"); return nil })
	if got != "v31" {
		t.Fatalf("after a restart a new write reads back as %q, want v31", got)
	}
}

// compact has Badger compact what s holds, releasing every version no reader
// needs, and returns the store reopened. Flatten compacts level 0 only once
// it holds more tables than NumLevelZeroTables, so the store is first closed
// (which flushes a table) and reopened that many times, with a write each
// time to flush.
func compact(t *testing.T, s *Store, dir string, mod func(*Options)) *Store {
	t.Helper()
	for i := 0; i <= s.db.Opts().NumLevelZeroTables; i++ {
		put(t, s, "compact", "x")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open(t, dir, mod)
	}
	s.releaseVersions()
	if err := s.db.Flatten(1); err != nil {
		t.Fatal(err)
	}
	return s
}

// put writes a metadata row: a row rewritten in place, as no log row is.
func put(t *testing.T, s *Store, name, val string) {
	t.Helper()
	if err := s.PutMetaSync(name, []byte(val)); err != nil {
		t.Fatal(err)
	}
}

func readValue(t *testing.T, txn *badger.Txn, s *Store, name string) string {
	t.Helper()
	item, err := txn.Get(metaKey(name))
	if err != nil {
		t.Fatal(err)
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		t.Fatal(err)
	}
	return string(v)
}

// rowVersions counts the versions of a metadata row Badger still holds.
func rowVersions(t *testing.T, s *Store, name string) int {
	t.Helper()
	n := 0
	row := metaKey(name)
	s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{AllVersions: true, Prefix: row})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if string(it.Item().Key()) == string(row) {
				n++
			}
		}
		return nil
	})
	return n
}
