package keyspace

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// Collection rewrites a typed key through Local.Set with the record a walk
// read, which aliases the table's entry: OnLocal must report the versions
// of what was stored, not of what the entry, overwritten in place, reads as
// afterwards (a typed state's versions digest its elements; a sorted set's
// come after the traces collection drops, so they shift). The Merkle index
// moved by OnLocal drifted from the keyspace otherwise, and a mesh's roots
// never agreed again.
func TestLocalSetReportsWhatItStored(t *testing.T) {
	moves := map[string][3]record.Version{}
	s := openStore(t, t.TempDir(), func(_ *wal.Options, o *Options) {
		o.OnLocal = func(key []byte, prev, now [3]record.Version) { moves[string(key)] = now }
	})
	defer s.close(t)
	ts := uint64(1)
	next := func() (record.Version, error) {
		ts++
		return record.Version{TS: hlc.Timestamp(ts), Node: 1}, nil
	}
	write := func(key string, kind record.Kind, edit func(op *record.TypedOp)) {
		t.Helper()
		v, _ := next()
		cur, _ := s.db.table.Get([]byte(key))
		op := record.BeginTyped(cur, cur.Typed != nil, kind, v, next)
		edit(op)
		put(t, s.db, key, op.Delta())
	}
	// States of many sizes, each with one to a few traces: some collected
	// entries keep their place in the arena, some move.
	var keys []string
	for size := 1; size <= 24; size++ {
		for removed := 1; removed <= min(size, 3); removed++ {
			set, hash, zset := fmt.Sprint("set", size, "-", removed), fmt.Sprint("hash", size, "-", removed), fmt.Sprint("zset", size, "-", removed)
			keys = append(keys, set, hash, zset)
			for i := range size {
				write(set, record.KindSet, func(op *record.TypedOp) { op.AddMember(fmt.Appendf(nil, "member-%d", i)) })
				write(hash, record.KindHash, func(op *record.TypedOp) { op.SetField(fmt.Appendf(nil, "field-%d", i), []byte("value")) })
				write(hash, record.KindHash, func(op *record.TypedOp) { op.IncrCounter(fmt.Appendf(nil, "count-%d", i), 3) })
				write(zset, record.KindZSet, func(op *record.TypedOp) { op.SetScore(fmt.Appendf(nil, "m-%d", i), float64(i)) })
			}
			for i := range removed {
				write(set, record.KindSet, func(op *record.TypedOp) { op.RemMember(fmt.Appendf(nil, "member-%d", i)) })
				write(hash, record.KindHash, func(op *record.TypedOp) { op.DelField(fmt.Appendf(nil, "field-%d", i)) })
				write(zset, record.KindZSet, func(op *record.TypedOp) { op.RemScored(fmt.Appendf(nil, "m-%d", i)) })
			}
		}
	}
	err := s.db.Local(func(l *Local) {
		type rewrite struct {
			key []byte
			rec record.Record
		}
		var todo []rewrite
		for cursor := uint64(0); ; {
			cursor = l.WalkCollectable(cursor, 1024, func(key []byte, rec record.Record) {
				if out, gone, changed := rec.Collect(hlc.Timestamp(math.MaxUint64), 0); changed && !gone {
					todo = append(todo, rewrite{append([]byte(nil), key...), out})
				}
			})
			if cursor == 0 {
				break
			}
		}
		if len(todo) < len(keys)*9/10 { // those emptied go, not rewritten
			t.Fatalf("%d keys to rewrite of %d", len(todo), len(keys))
		}
		for _, r := range todo {
			l.Set(r.key, r.rec)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range keys {
		got, moved := moves[key]
		if want := s.db.table.Peek([]byte(key)).Versions(); moved && got != want {
			t.Errorf("%s: OnLocal reported versions %v; the table holds %v", key, got, want)
		}
	}
}

// TestWalkCollectablePassesOverKeysWithoutTraces: collection's walk reads
// only the typed keys holding removal traces, small or large, and passes
// over the others from their entries alone; once collection took a key's
// traces out, the walk passes over it too.
func TestWalkCollectablePassesOverKeysWithoutTraces(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer s.close(t)
	ts := uint64(1)
	next := func() (record.Version, error) {
		ts++
		return record.Version{TS: hlc.Timestamp(ts), Node: 1}, nil
	}
	write := func(key string, edit func(op *record.TypedOp)) {
		t.Helper()
		v, _ := next()
		cur, _ := s.db.table.Get([]byte(key))
		op := record.BeginTyped(cur, cur.Typed != nil, record.KindHash, v, next)
		edit(op)
		put(t, s.db, key, op.Delta())
	}
	for key, fields := range map[string]int{"small": 5, "small-traced": 5, "large": 300, "large-traced": 300} {
		for i := range fields {
			write(key, func(op *record.TypedOp) { op.SetField(fmt.Appendf(nil, "field-%d", i), []byte("v")) })
		}
	}
	write("small-traced", func(op *record.TypedOp) { op.DelField([]byte("field-1")) })
	write("large-traced", func(op *record.TypedOp) { op.DelField([]byte("field-1")) })
	if !s.db.table.Peek([]byte("large")).Typed.Large() {
		t.Fatal("a hash of 300 fields is not held as a large state: the test needs one")
	}
	walk := func() map[string]record.Record {
		seen := map[string]record.Record{}
		err := s.db.Local(func(l *Local) {
			for cursor := uint64(0); ; {
				cursor = l.WalkCollectable(cursor, 1024, func(key []byte, rec record.Record) { seen[string(key)] = rec })
				if cursor == 0 {
					return
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return seen
	}
	seen := walk()
	if len(seen) != 2 || seen["small-traced"].Typed == nil || seen["large-traced"].Typed == nil {
		t.Fatalf("the walk read %v; want the two keys holding traces", slices.Sorted(maps.Keys(seen)))
	}
	err := s.db.Local(func(l *Local) {
		for key, rec := range seen {
			out, gone, changed := rec.Collect(hlc.Timestamp(math.MaxUint64), 0)
			if !changed || gone {
				t.Fatalf("%s: collection changed %v, gone %v", key, changed, gone)
			}
			l.Set([]byte(key), out)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen := walk(); len(seen) != 0 {
		t.Fatalf("after collection the walk read %v; want none", slices.Sorted(maps.Keys(seen)))
	}
}
