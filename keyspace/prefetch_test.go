package keyspace

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/redmesh/redmesh/record"
)

// BenchmarkPrefetch looks up ten random keys of a table of a million, as an
// MSET's step does, with and without prefetching them first. One op is one
// key.
//
//	go test ./keyspace -run '^$' -bench Prefetch
func BenchmarkPrefetch(b *testing.B) {
	const n = 1_000_000
	t := NewTable()
	val := make([]byte, 100)
	for i := range n {
		t.Set(fmt.Appendf(nil, "key:%012d", i), record.Record{Value: record.Value{Version: record.Version{TS: 1, Node: 1}, Data: val}})
	}
	keys := make([][]byte, 10)
	for _, pre := range []bool{false, true} {
		b.Run(fmt.Sprintf("prefetch=%v", pre), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			for i := 0; i < b.N; i += len(keys) {
				for j := range keys {
					keys[j] = fmt.Appendf(keys[j][:0], "key:%012d", r.IntN(n))
				}
				if pre {
					t.prefetch(hashed(keys))
				}
				for _, k := range keys {
					if t.Peek(k).Value.Version.IsZero() {
						b.Fatal("missing")
					}
				}
			}
		})
	}
}

// TestPrefetchTouchesOnly: prefetching keys present, absent, removed and
// empty changes nothing a lookup reads.
func TestPrefetchTouchesOnly(t *testing.T) {
	tab := NewTable()
	// An empty key with an empty value takes no arena: its place is its
	// chunk's end.
	tab.Set(nil, record.Record{Value: record.Value{Version: record.Version{TS: 1, Node: 1}}})
	tab.prefetch(hashed([][]byte{nil, []byte("")}))
	v := record.Record{Value: record.Value{Version: record.Version{TS: 1, Node: 1}, Data: []byte("v")}}
	for i := range 100 {
		tab.Set(fmt.Appendf(nil, "k%d", i), v)
	}
	tab.Remove([]byte("k7"))
	var keys [][]byte
	for i := range 120 {
		keys = append(keys, fmt.Appendf(nil, "k%d", i))
	}
	tab.prefetch(hashed(keys))
	for i, k := range keys {
		got, ok := tab.Get(k)
		if want := i < 100 && i != 7; ok != want || want && string(got.Value.Data) != "v" {
			t.Fatalf("%s after prefetch: %v %q", k, ok, got.Value.Data)
		}
	}
}

// hashed is keys with their hashes, as Tx.Prefetch hands them to the table.
func hashed(keys [][]byte) []hashedKey {
	hs := make([]hashedKey, len(keys))
	for i, k := range keys {
		hs[i] = hashedKey{k, Hash(k)}
	}
	return hs
}

// TestPrefetchedKeysHashes: after a prefetch, writes and reads of the keys
// in the order prefetched, out of it, twice over, and of keys not
// prefetched each reach their own key.
func TestPrefetchedKeysHashes(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer s.close(t)
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d")}
	order := []string{"a", "c", "b", "b", "e", "d", "a", "f"}
	err := s.db.Update(context.Background(), func(tx *Tx) error {
		tx.Prefetch(keys)
		for i, k := range order {
			if _, _, err := tx.Apply([]byte(k), setRec(uint64(10+i), k+fmt.Sprint(i))); err != nil {
				return err
			}
			if r, _ := tx.Get([]byte(k)); string(r.Value.Data) != k+fmt.Sprint(i) {
				t.Fatalf("%s read back as %q", k, r.Value.Data)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i, k := range order {
		want[k] = k + fmt.Sprint(i)
	}
	for k, v := range want {
		if got := s.db.Get([]byte(k)); string(got.Value.Data) != v {
			t.Fatalf("%s holds %q, want %q", k, got.Value.Data, v)
		}
	}
}
