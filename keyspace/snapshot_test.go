package keyspace

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/record"
)

// TestSnapshotRangeVisitsEveryKeyOnceInHashOrder: read in chunks of random
// sizes, resuming each at the position the last returned, the table's keys
// come in increasing hash order, each once, with their whole records.
func TestSnapshotRangeVisitsEveryKeyOnceInHashOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tab := NewTable()
	want := map[string][]byte{}
	for i := range 20000 {
		key := fmt.Appendf(nil, "key:%d", i)
		rec := randomRecord(rng, uint64(i+2))
		tab.Set(key, rec)
		want[string(key)] = record.Encode(rec)
	}
	entries, size := tab.SnapshotSize()
	if entries != 20000 || size <= 0 {
		t.Fatalf("size %d entries, %d bytes", entries, size)
	}
	seen := map[string]bool{}
	var last uint64
	from, chunks := uint64(0), 0
	for {
		budget := 1 + rng.IntN(500)
		next, done := tab.SnapshotRange(from, func(h uint64, key []byte, rec record.Record) bool {
			if h < last || h < from {
				t.Fatalf("key %q hash %x after %x (from %x)", key, h, last, from)
			}
			last = h
			if seen[string(key)] {
				t.Fatalf("key %q twice", key)
			}
			seen[string(key)] = true
			if !bytes.Equal(record.Encode(rec), want[string(key)]) {
				t.Fatalf("key %q: record differs", key)
			}
			budget--
			return budget > 0
		})
		chunks++
		if done {
			break
		}
		if next <= from && chunks > 1 {
			t.Fatalf("no progress: %x after %x", next, from)
		}
		from = next
	}
	if len(seen) != len(want) {
		t.Fatalf("visited %d keys of %d", len(seen), len(want))
	}
	if chunks < 50 {
		t.Fatalf("only %d chunks", chunks)
	}
	// From past every key: done at once.
	if _, done := tab.SnapshotRange(^uint64(0), func(uint64, []byte, record.Record) bool { return true }); !done {
		t.Fatal("not done past the end")
	}
}

// A large typed state counts in SnapshotSize by about its encoding: the
// checkpointer compares the log's growth with it, and a keyspace of one
// large hash counted as empty was checkpointed whole every 4 MiB of log.
func TestSnapshotSizeCountsLargeStates(t *testing.T) {
	tab := NewTable()
	h := &record.Typed{Kind: record.KindHash, KindVersion: record.Version{TS: 1, Node: 1}}
	for i := range 5000 {
		name := fmt.Appendf(nil, "field:%06d", i)
		h.Fields = append(h.Fields, record.Elem{Name: name, Dot: record.Version{TS: hlc.Timestamp(2 + i), Node: 1}, Value: name})
	}
	rec := record.Record{Typed: h}
	tab.Set([]byte("h"), rec)
	if _, size := tab.SnapshotSize(); size < int64(len(record.Encode(rec))) {
		t.Fatalf("a hash of 5,000 fields whose record encodes in %d bytes counts %d", len(record.Encode(rec)), size)
	}
}
