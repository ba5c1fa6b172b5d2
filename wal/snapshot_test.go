package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	badger "github.com/dgraph-io/badger/v4"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/record"
)

// writeMix writes n random mutations over keys k0..k(keys-1): values, values
// with deadlines, expiry changes alone and deletes, with versions from ts up.
func writeMix(t *testing.T, s *Store, rng *rand.Rand, n, keys int, ts *uint64) {
	t.Helper()
	for i := 0; i < n; i++ {
		*ts++
		v := record.Version{TS: hlc.Timestamp(*ts), Node: record.NodeID(1 + rng.IntN(3))}
		key := fmt.Sprint("k", rng.IntN(keys))
		var rec record.Record
		switch rng.IntN(4) {
		case 0:
			rec = record.Record{Value: record.Value{Version: v, Data: []byte("value")}, Expiry: record.Expiry{Version: v}}
		case 1:
			rec = record.Record{Value: record.Value{Version: v, Data: []byte("ttl")}, Expiry: record.Expiry{Version: v, At: time.Now().Add(time.Hour).UnixMilli()}}
		case 2:
			rec = record.Record{Expiry: record.Expiry{Version: v, At: time.Now().Add(time.Duration(rng.IntN(100)) * time.Minute).UnixMilli()}}
		case 3:
			rec = record.Record{Value: record.Value{Version: v, Tombstone: true}, Expiry: record.Expiry{Version: v}}
		}
		put(t, s, key, rec)
	}
}

// indexContents is every key's metadata, from the index.
func indexContents(s *Store) map[string]meta {
	m := map[string]meta{}
	s.index.each(func(k []byte, v meta) { m[string(k)] = v })
	return m
}

// reopenCheck reopens the store and checks that the index came back equal
// to what it was, that the store agrees with itself, and the key counts.
func reopenCheck(t *testing.T, dir string, want map[string]meta, keys, expires int64) *Store {
	t.Helper()
	s := open(t, dir, nil)
	got := indexContents(s)
	if len(got) != len(want) {
		t.Fatalf("reopened index holds %d keys, want %d", len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Fatalf("reopened index: %q = %+v, want %+v", k, got[k], w)
		}
	}
	if _, err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if s.KeyCount() != keys || s.ExpiresCount() != expires {
		t.Fatalf("reopened with %d keys, %d deadlines; want %d, %d", s.KeyCount(), s.ExpiresCount(), keys, expires)
	}
	<-s.logSized
	if got, want := s.LogBytes(), countLogBytes(t, s); got != want {
		t.Fatalf("reopened with a log of %d bytes, counted %d", got, want)
	}
	return s
}

// countLogBytes adds up the log's entries as sizeLog does.
func countLogBytes(t *testing.T, s *Store) int64 {
	t.Helper()
	var n int64
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n += blockSize(it.Item())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// takeSnapshot writes s's index snapshot now and returns the file's bytes.
func takeSnapshot(t *testing.T, s *Store, dir string) []byte {
	t.Helper()
	if err := s.writeSnapshot(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, snapshotName))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// putSnapshot puts back a snapshot taken earlier, as if the store had
// crashed after it: the store then holds more than the snapshot.
func putSnapshot(t *testing.T, dir string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, snapshotName), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestLogSizeFromSnapshot: the log's size at start-up comes from the
// snapshot, less what was truncated since, plus what was replayed, with no
// pass over the log; and it is right.
func TestLogSizeFromSnapshot(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	var ts uint64
	retain := func(o *Options) { o.RetainBytes = 120 << 10 }
	s := open(t, dir, retain)
	writeMix(t, s, rng, 3000, 500, &ts)
	old := takeSnapshot(t, s, dir)
	writeMix(t, s, rng, 2000, 700, &ts)
	n, err := s.Truncate(context.Background())
	if err != nil || n == 0 {
		t.Fatalf("truncated %d entries: %v", n, err)
	}
	if first, _ := s.LogBounds(); first > s.snapSeq+1 {
		t.Fatalf("truncated past the snapshot (first %d, snapshot %d): make RetainBytes larger", first, s.snapSeq)
	}
	s.Close()
	putSnapshot(t, dir, old)
	s = open(t, dir, retain)
	defer s.Close()
	if !isClosed(s.logSized) {
		t.Fatal("the log is being counted: its size did not come from the snapshot")
	}
	if got, want := s.LogBytes(), countLogBytes(t, s); got != want {
		t.Fatalf("log of %d bytes, counted %d", got, want)
	}
}

// TestSnapshotThenReplay: a store reopened after a crash loads the snapshot
// taken before it and replays the log entries written after it. The crash is
// imitated by putting the older snapshot back after a clean close: the store
// then holds everything written, the snapshot only part of it.
func TestSnapshotThenReplay(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	var ts uint64
	s := open(t, dir, nil)
	writeMix(t, s, rng, 3000, 500, &ts)
	old := takeSnapshot(t, s, dir)
	writeMix(t, s, rng, 2000, 700, &ts)
	want, keys, expires := indexContents(s), s.KeyCount(), s.ExpiresCount()
	s.Close()
	putSnapshot(t, dir, old)

	s = reopenCheck(t, dir, want, keys, expires)
	if first, _ := s.LogBounds(); s.snapSeq < first-1 || s.snapSeq == 0 {
		t.Fatalf("index did not come from the snapshot: snapSeq %d", s.snapSeq)
	}
	// New writes after a replayed start land in the index as usual.
	writeMix(t, s, rng, 500, 900, &ts)
	want, keys, expires = indexContents(s), s.KeyCount(), s.ExpiresCount()
	s.Close()
	reopenCheck(t, dir, want, keys, expires).Close()
}

// TestSnapshotUnusable: a damaged snapshot, one from an unknown format, or
// one older than the oldest retained log entry is ignored; the index is
// rebuilt from the keyspace and the store opens as if there were none.
func TestSnapshotUnusable(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	var ts uint64
	s := open(t, dir, nil)
	writeMix(t, s, rng, 2000, 300, &ts)
	want, keys, expires := indexContents(s), s.KeyCount(), s.ExpiresCount()
	s.Close()
	path := filepath.Join(dir, snapshotName)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, mangle := range map[string]func([]byte) []byte{
		"flipped byte": func(b []byte) []byte { b[len(b)/2] ^= 1; return b },
		"truncated":    func(b []byte) []byte { return b[:len(b)-100] },
		"other format": func(b []byte) []byte { b[len(snapshotMagic)-2] = '9'; return b },
		"empty":        func([]byte) []byte { return nil },
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, mangle(append([]byte(nil), good...)), 0o600); err != nil {
				t.Fatal(err)
			}
			s := reopenCheck(t, dir, want, keys, expires)
			if s.snapSeq != 0 {
				t.Fatalf("used a bad snapshot (seq %d)", s.snapSeq)
			}
			s.Close()
		})
	}

	t.Run("older than the log", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir, func(o *Options) { o.RetainBytes = 2_000; o.RetentionInterval = time.Hour })
		writeMix(t, s, rng, 100, 300, &ts)
		if err := s.writeSnapshot(); err != nil {
			t.Fatal(err)
		}
		stale, err := os.ReadFile(filepath.Join(dir, snapshotName))
		if err != nil {
			t.Fatal(err)
		}
		writeMix(t, s, rng, 2000, 300, &ts)
		if _, err := s.Truncate(context.Background()); err != nil {
			t.Fatal(err)
		}
		if first, _ := s.LogBounds(); first <= s.snapSeq+1 {
			t.Fatalf("truncation kept seq %d: the snapshot is still usable", first)
		}
		want, keys, expires := indexContents(s), s.KeyCount(), s.ExpiresCount()
		s.Close()
		if err := os.WriteFile(filepath.Join(dir, snapshotName), stale, 0o600); err != nil {
			t.Fatal(err)
		}
		s = reopenCheck(t, dir, want, keys, expires)
		if s.snapSeq != 0 {
			t.Fatalf("used a snapshot older than the log (seq %d)", s.snapSeq)
		}
		s.Close()
	})
}

// FuzzDecodeSnapshot: whatever the file holds, decoding it either fails
// cleanly or yields a consistent index, and never allocates more than the
// file's size implies. The fuzzer's bytes are the file minus its checksum,
// which is added, so that it explores the decoder rather than the checksum.
func FuzzDecodeSnapshot(f *testing.F) {
	ix := newIndex()
	for i := range 50 {
		v := record.Version{TS: hlc.Timestamp(i + 1), Node: 1}
		m := meta{value: v, tombstone: i%7 == 0}
		if i%3 == 0 {
			m.expiry, m.at = v, int64(i)
		}
		ix.set(fmt.Sprint("key", i), m)
	}
	good := encodeSnapshot(ix, logMark{seq: 42, bytes: -1})
	f.Add(good[:len(good)-8])
	f.Add(good[:len(good)/2])
	f.Add([]byte(snapshotMagic))
	f.Fuzz(func(t *testing.T, body []byte) {
		b := binary.LittleEndian.AppendUint64(bytes.Clone(body), xxhash.Sum64(body))
		ix, _, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		ix.each(func(k []byte, m meta) {
			if got, ok := ix.get(string(k)); !ok || got != m {
				t.Fatalf("key %q: get %+v, %v; each %+v", k, got, ok, m)
			}
		})
	})
}

// TestSnapshotDue: a snapshot is due after enough entries (an eighth of the
// keys, at least 10,000), after five minutes with any change, or when writes
// paused since the previous check after a 64th of the keys changed; never
// when nothing changed.
func TestSnapshotDue(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	cases := []struct {
		name                  string
		last, snap, lastCheck uint64
		keys                  int64
		age                   time.Duration
		want                  bool
	}{
		{"nothing new", 500, 500, 400, 0, time.Hour, false},
		{"few, still writing", 600, 500, 550, 0, time.Minute, false},
		{"few, writes paused", 600, 500, 600, 0, time.Minute, true},
		{"few of many keys, writes paused", 600, 500, 600, 1_000_000, time.Minute, false},
		{"a 64th of 1M keys, writes paused", 17_000, 500, 17_000, 1_000_000, time.Minute, true},
		{"a 64th of 1M keys, still writing", 17_000, 500, 15_000, 1_000_000, time.Minute, false},
		{"10,000 while writing", 10_600, 600, 10_000, 1000, time.Second, true},
		{"an eighth of 1M keys not reached", 100_000, 1, 90_000, 1_000_000, time.Second, false},
		{"an eighth of 1M keys", 125_001, 1, 90_000, 1_000_000, time.Second, true},
		{"old", 600, 500, 550, 0, 6 * time.Minute, true},
	}
	for _, c := range cases {
		s := &Store{lastSeq: c.last, snapSeq: c.snap, snapCheckSeq: c.lastCheck, snapTime: now.Add(-c.age)}
		s.keys.Store(c.keys)
		if got := s.snapshotDue(now); got != c.want {
			t.Errorf("%s: due = %v, want %v", c.name, got, c.want)
		}
		if s.snapCheckSeq != c.last {
			t.Errorf("%s: the check did not remember seq %d", c.name, c.last)
		}
	}
}
