package wal

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/record"
)

// TestCacheStaysWithinBudget fills the record cache with records encoded as
// the writer encodes them and checks that the heap it holds is its budget,
// give or take: cost must count what an entry really keeps alive.
func TestCacheStaysWithinBudget(t *testing.T) {
	s := &Store{opts: Options{KeyHash: DefaultKeyHash}}
	value := make([]byte, 100)
	for _, budget := range []int64{4 << 20, 16 << 20} {
		t.Run(fmt.Sprint(budget>>20, "MiB"), func(t *testing.T) {
			before := heapInUse()
			c := newRecordCache(budget)
			for i := range 4 * budget / 100 { // far more than fits
				key := fmt.Appendf(nil, "key:%012d", i)
				v := record.Version{TS: hlc.Timestamp(1000 + i), Node: 1}
				_, _, rec, err := s.encodeRow(key, record.Record{Value: record.Value{Version: v, Data: value}, Expiry: record.Expiry{Version: v}})
				if err != nil {
					t.Fatal(err)
				}
				c.committed(string(key), rec)
			}
			held := heapInUse() - before
			runtime.KeepAlive(c)
			t.Logf("budget %d MiB, held %.1f MiB", budget>>20, float64(held)/(1<<20))
			if held > budget*6/5 || held < budget*7/10 {
				t.Errorf("a cache of %d bytes holds %d bytes of heap; want within -30%%/+20%%", budget, held)
			}
		})
	}
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestCacheAccounting runs random writes, deletes, fills and reads of a few
// keys through a small cache and checks after each that every shard counts
// exactly what it holds, stays within its share, and serves the last record
// written or filled for a key, if any.
func TestCacheAccounting(t *testing.T) {
	c := newRecordCache(cacheShards * 2 << 10) // room for three or four records a shard
	rng := rand.New(rand.NewPCG(3, 4))
	want := map[string]record.Record{}
	for i := range 20000 {
		key := fmt.Sprintf("k%d", rng.IntN(600)) // ten or so a shard
		v := record.Version{TS: hlc.Timestamp(i + 1), Node: 1}
		rec := record.Record{Value: record.Value{Version: v, Data: make([]byte, rng.IntN(400))}}
		switch op := rng.IntN(10); {
		case op < 5:
			c.committed(key, rec)
			want[key] = rec
		case op < 7:
			rec.Value.Tombstone, rec.Value.Data = true, nil
			c.committed(key, rec)
			delete(want, key)
		case op < 9:
			if _, ok, seq := c.get(key); !ok {
				if w, ok := want[key]; ok {
					c.fill(key, w, seq)
				}
			}
		default:
			c.fill(key, rec, c.shard(key).seq+1) // stale: never cached
		}
		for j := range c.shards {
			s := &c.shards[j]
			var sum int64
			for k, r := range s.m {
				sum += cost(k, r)
				if w, ok := want[k]; !ok || w.Value.Version != r.Value.Version {
					t.Fatalf("op %d: the cache holds %q at %v, want %v (present %v)", i, k, r.Value.Version, w.Value.Version, ok)
				}
			}
			if sum != s.bytes || s.bytes > c.max {
				t.Fatalf("op %d: shard %d counts %d bytes, holds %d, may hold %d", i, j, s.bytes, sum, c.max)
			}
		}
	}
}
