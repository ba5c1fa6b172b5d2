package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/record"
)

// logRows lists the log's row keys.
func logRows(t *testing.T, s *Store) [][]byte {
	t.Helper()
	var rows [][]byte
	s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			rows = append(rows, it.Item().KeyCopy(nil))
		}
		return nil
	})
	return rows
}

// A batch larger than a block is logged in several, contiguous, with every
// entry's value, and reads back from any point.
func TestLogBlocksSplitAndReadFromAnywhere(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	defer s.Close()
	const n = 20000
	key := func(i int) string { return fmt.Sprintf("%06d-%s", i, strings.Repeat("k", 40)) }
	commit(t, s, n, key, strings.Repeat("v", 30))
	first, last := s.LogBounds()
	if first != 1 || last != n {
		t.Fatalf("log bounds %d..%d", first, last)
	}
	rows := logRows(t, s)
	if len(rows) < n*90/blockTarget {
		t.Fatalf("%d blocks for %d entries of about 100 bytes", len(rows), n)
	}
	for _, from := range []uint64{1, 2, 170, 171, n - 1, n} {
		es, err := s.ReadLog(from, 1000, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(1000, int(last-from+1)); len(es) != want {
			t.Fatalf("ReadLog(%d): %d entries, want %d", from, len(es), want)
		}
		for i, e := range es {
			seq := from + uint64(i)
			if e.Seq != seq || string(e.Key) != key(int(seq-1)) || !record.Equal(e.Record, setRec(seq, strings.Repeat("v", 30))) {
				t.Fatalf("ReadLog(%d)[%d] = %d %q %+v", from, i, e.Seq, e.Key, e.Record)
			}
		}
	}
	if es, err := s.ReadLog(1, 1<<20, 50); err != nil || len(es) != 1 {
		t.Fatalf("ReadLog within 50 bytes: %d entries, %v; want one", len(es), err)
	}
	if es, err := s.ReadLog(n+1, 10, 1<<20); err != nil || len(es) != 0 {
		t.Fatalf("ReadLog past the end: %d entries, %v", len(es), err)
	}
}

// An entry larger than a row (a large value) is split across rows, reads
// back whole by ReadLog and Replay, survives a restart, and is truncated
// with every part.
func TestLargeEntrySpansRows(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	big := bytes.Repeat([]byte("0123456789abcdef"), 5<<16) // 5 MiB
	var b Batch
	b.Add(1, []byte("small"), setRec(1, "x"), [3]record.Version{}, [3]record.Version{})
	b.Add(2, []byte("big"), setRec(2, string(big)), [3]record.Version{}, [3]record.Version{})
	b.Add(3, []byte("after"), setRec(3, "y"), [3]record.Version{}, [3]record.Version{})
	if err := s.Commit(&b); err != nil {
		t.Fatal(err)
	}
	s.Advance(&b)
	if rows := logRows(t, s); len(rows) < 6 {
		t.Fatalf("%d rows for a 5 MiB entry: not split", len(rows))
	}
	s.Close()
	s = open(t, dir, func(o *Options) { o.RetainBytes = 1 })
	defer s.Close()
	if first, last := s.LogBounds(); first != 1 || last != 3 {
		t.Fatalf("bounds after restart %d..%d", first, last)
	}
	es, err := s.ReadLog(2, 10, 1)
	if err != nil || len(es) != 1 || !bytes.Equal(es[0].Record.Value.Data, big) {
		t.Fatalf("ReadLog(2): %d entries, %v", len(es), err)
	}
	n := 0
	err = s.Replay(1, func(e Entry) error {
		n++
		if e.Seq == 2 && !bytes.Equal(e.Record.Value.Data, big) {
			t.Fatal("replayed the large entry wrong")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("replayed %d entries, %v", n, err)
	}
	commit(t, s, 1, func(int) string { return "later" }, "z")
	s.SetCheckpoint(3)
	if _, err := s.Truncate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if first, _ := s.LogBounds(); first != 4 {
		t.Fatalf("first %d after truncating to the checkpoint", first)
	}
	if rows := logRows(t, s); len(rows) != 1 {
		t.Fatalf("%d rows left after truncation, want the last block's", len(rows))
	}
}

// A block whose later parts are missing (a commit split across Badger
// transactions, cut by a crash) is dropped at start-up: it was never
// acknowledged.
func TestTornTailIsDropped(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	commit(t, s, 3, func(i int) string { return fmt.Sprint("k", i) }, "v")
	var b Batch
	b.Add(4, []byte("big"), setRec(4, strings.Repeat("b", 3*maxRow)), [3]record.Version{}, [3]record.Version{})
	if err := s.Commit(&b); err != nil {
		t.Fatal(err)
	}
	s.Advance(&b)
	if err := s.update(func(txn *badger.Txn) error { return txn.Delete(partKey(4, 2)) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir, nil)
	defer s.Close()
	if first, last := s.LogBounds(); first != 1 || last != 3 {
		t.Fatalf("bounds %d..%d after a torn tail, want 1..3", first, last)
	}
	commit(t, s, 1, func(int) string { return "next" }, "v")
	es, err := s.ReadLog(1, 10, 1<<20)
	if err != nil || len(es) != 4 || string(es[3].Key) != "next" {
		t.Fatalf("after the torn tail: %d entries, %v", len(es), err)
	}
}

// A store of the layout before is recognised, its rows read, and once
// finished it holds none and its log goes on after the old one.
func TestLegacyStore(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	err := s.update(func(txn *badger.Txn) error {
		for i := range 10 {
			k := append([]byte{prefixLegacyKey, 0, 0, 0, byte(i)}, fmt.Sprint("key", i)...)
			if err := txn.Set(k, record.Encode(setRec(uint64(i+1), "v"))); err != nil {
				return err
			}
		}
		// An old log block (versions only) ending at 42.
		blk := make([]byte, 12)
		binary.BigEndian.PutUint32(blk, 1)
		if err := txn.Set(logKey(42), blk); err != nil {
			return err
		}
		if err := txn.Set(append([]byte{prefixLegacyExp}, make([]byte, 8)...), nil); err != nil {
			return err
		}
		return txn.Set(metaKey(metaLogFormat), []byte(logBlocks))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir, nil)
	defer s.Close()
	if !s.Legacy() {
		t.Fatal("a store with keyspace rows is not recognised")
	}
	n := 0
	if err := s.EachLegacyRow(func(key []byte, rec record.Record) error { n++; return nil }); err != nil || n != 10 {
		t.Fatalf("read %d legacy rows, %v", n, err)
	}
	if _, last := s.LogBounds(); last != 42 {
		t.Fatalf("a legacy log ending at 42 read as ending at %d", last)
	}
	if err := s.FinishLegacy(); err != nil {
		t.Fatal(err)
	}
	if s.Legacy() || len(logRows(t, s)) != 0 {
		t.Fatal("legacy rows left after FinishLegacy")
	}
	if first, last := s.LogBounds(); first != 43 || last != 42 {
		t.Fatalf("bounds %d..%d after conversion, want 43..42", first, last)
	}
	commit(t, s, 1, func(int) string { return "new" }, "v")
	if _, last := s.LogBounds(); last != 43 {
		t.Fatalf("the first new entry is %d, want 43", last)
	}
}

func FuzzDecodeBlock(f *testing.F) {
	var b Batch
	b.Add(7, []byte("k"), setRec(1, ""), [3]record.Version{}, [3]record.Version{})
	b.Add(8, []byte("key2"), setRec(2, strings.Repeat("v", 300)), [3]record.Version{}, [3]record.Version{})
	f.Add(b.block(0, time.UnixMilli(5)))
	f.Add(readBlockV1(f)) // a block in the long form (TestDecodesV1Block)
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, blk []byte) {
		es, err := decodeBlock(7, blk, nil)
		if err != nil {
			return
		}
		var again Batch
		for _, e := range es {
			again.Add(e.Seq, e.Key, e.Record, [3]record.Version{}, [3]record.Version{})
		}
		if len(again.blocks) > 1 {
			return // a block this long is logged as two
		}
		es2, err := decodeBlock(7, again.block(0, es[0].Time), nil)
		if err != nil || len(es2) != len(es) {
			t.Fatalf("round trip: %d entries, %v; want %d", len(es2), err, len(es))
		}
		for i := range es {
			if es2[i].Seq != 7+uint64(i) || string(es2[i].Key) != string(es[i].Key) || !record.Equal(es2[i].Record, es[i].Record) {
				t.Fatalf("entry %d: %+v, want %+v", i, es2[i], es[i])
			}
		}
	})
}

// TestBatchEntryHash: a batch's entries carry their key's hash, the Merkle
// tree's, whether Add computed it or AddHashed was given it; and a counter
// given to AddHashed is logged as the record it is the state of.
func TestBatchEntryHash(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	defer s.Close()
	st := record.CounterState{KindVersion: record.Version{TS: 5, Node: 2}, Count: record.Count{Node: 2, Start: 5, Ver: record.Version{TS: 5, Node: 2}, Total: -3}}
	counter := setRec(4, "0")
	var b Batch
	b.Add(1, []byte("a"), setRec(1, "x"), [3]record.Version{}, [3]record.Version{})
	b.AddHashed(2, []byte("counter"), merkle.KeyHash([]byte("counter")), counter, &st, [3]record.Version{}, [3]record.Version{})
	for _, e := range b.Entries {
		if e.Hash != merkle.KeyHash(e.Key) {
			t.Fatalf("entry %q: hash %x, want %x", e.Key, e.Hash, merkle.KeyHash(e.Key))
		}
	}
	if err := s.Commit(&b); err != nil {
		t.Fatal(err)
	}
	s.Advance(&b)
	es, err := s.ReadLog(1, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	counter.Typed = st.Typed()
	if len(es) != 2 || !bytes.Equal(record.AppendBinary(nil, es[1].Record), record.AppendBinary(nil, counter)) {
		t.Fatalf("the log holds %+v, want the counter %+v second", es, counter)
	}
}

// A batch notes each block's newest write as decoding the block finds it,
// a counter's included: logged from its CounterState, whatever the record's
// own Typed holds.
func TestBatchNotesEachBlocksNewestWrite(t *testing.T) {
	keys, recs, counters := goldenEntries()
	recs[3].Typed = &record.Typed{Kind: record.KindHash, KindVersion: record.Version{TS: 1 << 50, Node: 7}} // not what is logged
	var b Batch
	seq := uint64(1)
	for round := range 3 {
		for i := range keys {
			b.AddHashed(seq, []byte(keys[i]), 0, recs[i], counters[i], [3]record.Version{}, [3]record.Version{})
			seq++
		}
		big := setRec(uint64(100+round), strings.Repeat("v", blockTarget)) // closes a block
		b.Add(seq, []byte("big"), big, [3]record.Version{}, [3]record.Version{})
		seq++
	}
	if len(b.blocks) < 3 || len(b.newest) != len(b.blocks) {
		t.Fatalf("%d blocks, %d noted", len(b.blocks), len(b.newest))
	}
	for i := range b.blocks {
		es, err := decodeBlock(b.Entries[b.first[i]].Seq, b.block(i, time.Now()), nil)
		if err != nil {
			t.Fatal(err)
		}
		var want hlc.Timestamp
		for _, e := range es {
			want = max(want, e.Record.Newest().TS)
		}
		if b.newest[i] != want {
			t.Errorf("block %d: noted newest %d, decoding finds %d", i, b.newest[i], want)
		}
	}
}
