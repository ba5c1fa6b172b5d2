package wal

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/record"
)

// TestIndexMatchesMap drives the index and a Go map with the same random
// sets (new keys, overwrites, expiry registers added and removed, keys that
// share a prefix or are empty) and checks they agree on every key, before
// and after the tables grow.
func TestIndexMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	ix := newIndex()
	want := map[string]meta{}
	randMeta := func() meta {
		m := meta{value: record.Version{TS: hlc.Timestamp(1 + rng.Uint64N(1<<40)), Node: record.NodeID(rng.Uint64N(4))}}
		m.tombstone = rng.IntN(5) == 0
		switch rng.IntN(3) {
		case 0:
			m.expiry = record.Version{TS: hlc.Timestamp(1 + rng.Uint64N(1<<40)), Node: 1}
		case 1:
			m.expiry = m.value // as SET writes it
		}
		if !m.expiry.IsZero() && rng.IntN(2) == 0 {
			m.at = rng.Int64N(1 << 45)
		}
		return m
	}
	keyOf := func() string {
		switch rng.IntN(10) {
		case 0:
			return ""
		case 1:
			return string(make([]byte, rng.IntN(300)))
		}
		return fmt.Sprintf("k%d", rng.IntN(20000))
	}
	for i := range 60000 {
		k, m := keyOf(), randMeta()
		ix.set(k, m)
		want[k] = m
		if i%997 == 0 {
			probe := keyOf()
			got, ok := ix.get(probe)
			w, wok := want[probe]
			if ok != wok || got != w {
				t.Fatalf("after %d sets, get(%q) = %+v, %v; want %+v, %v", i, probe, got, ok, w, wok)
			}
		}
	}
	for k, w := range want {
		if got, ok := ix.get(k); !ok || got != w {
			t.Fatalf("get(%q) = %+v, %v; want %+v", k, got, ok, w)
		}
	}
	if _, ok := ix.get("absent"); ok {
		t.Fatal("found a key never set")
	}
	seen := map[string]bool{}
	ix.each(func(k []byte, m meta) {
		if seen[string(k)] {
			t.Fatalf("each visited %q twice", k)
		}
		seen[string(k)] = true
		if want[string(k)] != m {
			t.Fatalf("each(%q) = %+v; want %+v", k, m, want[string(k)])
		}
	})
	if len(seen) != len(want) {
		t.Fatalf("each visited %d keys; want %d", len(seen), len(want))
	}
}

func BenchmarkIndexGet(b *testing.B) {
	ix := newIndex()
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%012d", i)
		ix.set(keys[i], meta{value: record.Version{TS: hlc.Timestamp(i + 1)}})
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok := ix.get(keys[i&(len(keys)-1)]); !ok {
			b.Fatal("missing")
		}
	}
}

// TestEachVersionInHashRange: the keys found by hash range are exactly those
// whose hash lies in it, for one Merkle bucket of the default shape (one
// hash group), for ranges narrower and wider than a group, and after a
// snapshot's load has chained the groups again.
func TestEachVersionInHashRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	s := &Store{index: newIndex()}
	for i := range 30000 {
		s.index.set(fmt.Sprint("key", i), meta{value: record.Version{TS: hlc.Timestamp(i + 1)}})
	}
	decoded, _, err := decodeSnapshot(encodeSnapshot(s.index, logMark{seq: 1}))
	if err != nil {
		t.Fatal(err)
	}
	loaded := &Store{index: decoded}
	for range 300 {
		var lo, hi uint64
		switch rng.IntN(3) {
		case 0: // one bucket of 65,536
			lo = rng.Uint64() &^ (1<<48 - 1)
			hi = lo | (1<<48 - 1)
		case 1: // part of one
			lo = rng.Uint64()
			hi = lo + rng.Uint64N(1<<47)
		case 2: // several
			lo = rng.Uint64() >> 1
			hi = lo + rng.Uint64N(1<<52)
		}
		want := map[string]meta{}
		s.index.each(func(k []byte, m meta) {
			if h := xxhash.Sum64(k); h >= lo && h <= hi {
				want[string(k)] = m
			}
		})
		for name, st := range map[string]*Store{"built": s, "loaded": loaded} {
			got := map[string]meta{}
			st.EachVersionInHashRange(lo, hi, func(k []byte, r record.Record) bool {
				if _, dup := got[string(k)]; dup {
					t.Fatalf("%s: %q visited twice", name, k)
				}
				got[string(k)] = metaOf(r)
				return true
			})
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: range %x..%x: %d keys, want %d", name, lo, hi, len(got), len(want))
			}
		}
	}
}
