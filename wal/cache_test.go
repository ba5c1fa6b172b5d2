package wal

import (
	"fmt"
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
