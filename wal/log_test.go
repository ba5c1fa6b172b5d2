package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/redmesh/redmesh/record"
)

// logBlocks lists the log's blocks as first..last sequence numbers.
func logBlockRanges(t *testing.T, s *Store) [][2]uint64 {
	t.Helper()
	var out [][2]uint64
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			last, err := blockLast(it.Item())
			if err != nil {
				return err
			}
			out = append(out, [2]uint64{blockSeq(it.Item().Key()), last})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A batch larger than a block, and larger than a transaction, is logged in
// several blocks and transactions, contiguous, and reads back from any point.
func TestLogBlocksSplitAndReadFromAnywhere(t *testing.T) {
	s := open(t, t.TempDir(), func(o *Options) { o.MemoryBudget = 16 << 20 })
	defer s.Close()
	const writers, each = 40, 500
	val := strings.Repeat("v", 200)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Update(context.Background(), func(tx *Tx) error {
				for i := range each {
					key := fmt.Sprintf("w%02d-%04d-%s", w, i, strings.Repeat("k", 40))
					if _, _, err := tx.Apply([]byte(key), setRec(1, val)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	first, last := s.LogBounds()
	if first != 1 || last != writers*each {
		t.Fatalf("log bounds %d..%d", first, last)
	}
	blocks := logBlockRanges(t, s)
	if len(blocks) < writers*each*60/blockTarget {
		t.Fatalf("%d blocks for %d entries of about 60 bytes", len(blocks), last)
	}
	next := uint64(1)
	for _, b := range blocks {
		if b[0] != next || b[1] < b[0] {
			t.Fatalf("block %d..%d after %d", b[0], b[1], next-1)
		}
		next = b[1] + 1
	}
	if rep, err := s.Check(); err != nil || rep.LogEntries != writers*each {
		t.Fatalf("check: %+v %v", rep, err)
	}
	// From the middle of a block, across block ends, to the end.
	for _, from := range []uint64{1, blocks[0][1], blocks[0][1] + 1, blocks[1][0] + 3, last} {
		es, err := s.ReadLog(from, 1000, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		want := min(1000, int(last-from+1))
		if len(es) != want {
			t.Fatalf("ReadLog(%d): %d entries, want %d", from, len(es), want)
		}
		for i, e := range es {
			if e.Seq != from+uint64(i) {
				t.Fatalf("ReadLog(%d)[%d] has seq %d", from, i, e.Seq)
			}
			if cur, err := s.Get(e.Key); err != nil || !record.Equal(cur, e.Record) {
				t.Fatalf("ReadLog(%d)[%d] = %q, not the key's record", from, i, e.Key)
			}
		}
	}
	if es, err := s.ReadLog(1, 1<<20, 50); err != nil || len(es) != 1 {
		t.Fatalf("ReadLog within 50 bytes: %d entries, %v; want one", len(es), err)
	}
}

// Truncation drops whole blocks: the oldest retained entry is always a
// block's first, and a reader from before it gets ErrTruncated.
func TestTruncationDropsWholeBlocks(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, func(o *Options) { o.RetainBytes = 50_000; o.RetentionInterval = time.Hour })
	for i := range 200 {
		if err := s.Update(context.Background(), func(tx *Tx) error {
			for j := range 20 {
				if _, _, err := tx.Apply(fmt.Appendf(nil, "k%d", j), setRec(uint64(i+1), "0123456789")); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Truncate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	first, last := s.LogBounds()
	if n == 0 || n%20 != 0 || first != uint64(n)+1 || last != 4000 || s.LogBytes() > 50_000 {
		t.Fatalf("dropped %d, bounds %d..%d, %d bytes", n, first, last, s.LogBytes())
	}
	if blocks := logBlockRanges(t, s); blocks[0][0] != first {
		t.Fatalf("first block starts at %d, log at %d", blocks[0][0], first)
	}
	if _, err := s.ReadLog(first-1, 10, 1<<20); err == nil {
		t.Fatal("read a truncated entry")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, nil)
	defer s.Close()
	if f, l := s.LogBounds(); f != first || l != last {
		t.Fatalf("reopened with bounds %d..%d, want %d..%d", f, l, first, last)
	}
	if _, err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

// A store written before blocks (one entry a row, no format mark) opens with
// its log rewritten as blocks, and serves it as before.
func TestUpgradeFromRowPerEntry(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	for i := range 30 {
		put(t, s, fmt.Sprint("k", i%10), setRec(uint64(i+1), "v"))
	}
	want, err := s.ReadLog(1, 100, 1<<20)
	if err != nil || len(want) != 30 {
		t.Fatalf("ReadLog: %d, %v", len(want), err)
	}
	// Rewrite the log as the old format had it, and drop the mark.
	err = s.update(func(txn *badger.Txn) error {
		var es []Entry
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}})
		for it.Rewind(); it.Valid(); it.Next() {
			b, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if es, err = decodeBlock(blockSeq(it.Item().Key()), b, es); err != nil {
				return err
			}
			if err := txn.Delete(it.Item().KeyCopy(nil)); err != nil {
				return err
			}
		}
		it.Close()
		for _, e := range es {
			old := binary.AppendVarint(nil, e.Time.UnixMilli())
			old = binary.AppendUvarint(old, uint64(len(e.Key)))
			old = record.AppendBinary(append(old, e.Key...), e.Record)
			if err := txn.Set(logKey(e.Seq), old); err != nil {
				return err
			}
		}
		return txn.Delete(metaKey(metaLogFormat))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, nil)
	defer s.Close()
	got, err := s.ReadLog(1, 100, 1<<20)
	if err != nil || len(got) != len(want) {
		t.Fatalf("after the upgrade, ReadLog: %d entries, %v", len(got), err)
	}
	for i := range got {
		if got[i].Seq != want[i].Seq || string(got[i].Key) != string(want[i].Key) || !record.Equal(got[i].Record, want[i].Record) {
			t.Fatalf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if blocks := logBlockRanges(t, s); len(blocks) != 30 {
		t.Fatalf("%d blocks after the upgrade, want one an entry", len(blocks))
	}
	if rep, err := s.Check(); err != nil || rep.LogEntries != 30 {
		t.Fatalf("check: %+v %v", rep, err)
	}
	if v, ok, _ := s.GetMeta(metaLogFormat); !ok || string(v) != logBlocks {
		t.Fatalf("format mark %q", v)
	}
}

func FuzzDecodeBlock(f *testing.F) {
	blk := make([]byte, blockHeader)
	setBlockHeader(blk, 2, time.UnixMilli(5))
	blk = appendBlockEntry(blk, []byte("k"), setRec(1, ""))
	blk = appendBlockEntry(blk, []byte("key2"), setRec(2, ""))
	f.Add(blk)
	// A record of 128 bytes or more, whose length takes two bytes.
	long := make([]byte, blockHeader)
	setBlockHeader(long, 1, time.UnixMilli(5))
	f.Add(appendBlockEntry(long, []byte("k"), setRec(3, strings.Repeat("v", 300))))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := decodeBlock(7, b, nil)
		if err != nil {
			return
		}
		again := make([]byte, blockHeader)
		setBlockHeader(again, len(es), es[0].Time)
		for _, e := range es {
			again = appendBlockEntry(again, e.Key, e.Record)
		}
		es2, err := decodeBlock(7, again, nil)
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

// makeBatch builds a batch of requests that set sizes[i] fresh keys each,
// as the writer would hand it to commit.
func makeBatch(t *testing.T, s *Store, sizes ...int) *batch {
	t.Helper()
	b := &batch{}
	for i, n := range sizes {
		req := &request{lo: len(b.changes)}
		for j := range n {
			key := fmt.Appendf(nil, "r%d-%06d", i, j)
			c := change{key: string(key)}
			var err error
			if c.row, c.val, c.rec, err = s.encodeRow(key, setRec(1, "v")); err != nil {
				t.Fatal(err)
			}
			b.changes = append(b.changes, c)
		}
		req.hi = len(b.changes)
		b.reqs = append(b.reqs, req)
	}
	return b
}

// A transaction that holds a request's rows but not the log block closing
// them: the request goes to the next transaction, or, alone, is refused.
func TestStageTxnLeavesOutWhatTheBlockDoesNotFit(t *testing.T) {
	s := open(t, t.TempDir(), func(o *Options) { o.MemoryBudget = 16 << 20 })
	defer s.Close()
	newStaged := func() *staged {
		return &staged{now: time.Now(), arena: &arena{}, blockCap: blockHeader + blockTarget}
	}
	// fits reports whether n keys' rows can be staged, and whether their
	// last block then fits too.
	fits := func(n int) (rows, block bool) {
		b := makeBatch(t, s, n)
		txn := s.writeTxn()
		defer txn.Discard()
		st := newStaged()
		if s.stage(txn, st, b.changes, 0) != nil {
			return false, false
		}
		return true, st.closeBlock(txn) == nil
	}
	// The largest request whose rows fit, found by bisection; the block
	// closing it must then be what does not fit, at the limit or just below.
	lo, hi := 1, int(s.db.MaxBatchCount())
	for lo+1 < hi {
		if mid := (lo + hi) / 2; func() bool { r, _ := fits(mid); return r }() {
			lo = mid
		} else {
			hi = mid
		}
	}
	n := lo
	for ; n > 0; n-- {
		if rows, block := fits(n); rows && !block {
			break
		}
	}
	if n == 0 {
		t.Fatal("no request size whose rows fit without their block")
	}

	// Alone: refused.
	b := makeBatch(t, s, n)
	if _, _, err := s.stageTxn(b, 0, 0, newStaged()); err == nil {
		t.Fatalf("a request of %d keys whose block does not fit was staged", n)
	}
	// After a small one: the small one is staged alone, then the large one
	// is refused on its own.
	b = makeBatch(t, s, 10, n)
	st := newStaged()
	txn, end, err := s.stageTxn(b, 0, 0, st)
	if err != nil || end != 1 || len(st.entries) != 10 {
		t.Fatalf("stageTxn = end %d, %d entries, %v; want the first request alone", end, len(st.entries), err)
	}
	txn.Discard()
	// Through commit: the small request is stored and logged, the large
	// one refused as too large, and the log stays contiguous.
	s.commit(b, 0)
	if b.errs[0] != nil || !errors.Is(b.errs[1], ErrTooLarge) || len(b.entries) != 10 || b.entries[9].Seq != 10 {
		t.Fatalf("commit: errs %v, %d entries", b.errs, len(b.entries))
	}
}

// fit never admits a request that a transaction of its own cannot hold.
func TestFitAdmitsOnlyWhatStages(t *testing.T) {
	s := open(t, t.TempDir(), func(o *Options) { o.MemoryBudget = 16 << 20 })
	defer s.Close()
	limits := s.txnLimits()
	// The largest request fit admits, by bisection.
	lo, hi := 1, int(s.db.MaxBatchCount())
	for lo+1 < hi {
		mid := (lo + hi) / 2
		if b := makeBatch(t, s, mid); limits.fit(b.changes) {
			lo = mid
		} else {
			hi = mid
		}
	}
	b := makeBatch(t, s, lo)
	if !limits.fit(b.changes) {
		t.Fatalf("fit refuses a request of %d keys", lo)
	}
	txn, end, err := s.stageTxn(b, 0, 0, &staged{now: time.Now(), arena: &arena{}, blockCap: blockHeader + blockTarget})
	if err != nil || end != 1 {
		t.Fatalf("fit admitted %d keys, which do not stage alone: %v", lo, err)
	}
	txn.Discard()
}
