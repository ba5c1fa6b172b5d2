package wal

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/record"
)

// TestIncrementsAcrossBatchesInFlight checks that a batch reads the changes of
// the batches still committing: read-modify-writes of one key from many
// clients, spread over many overlapping batches, lose no update.
func TestIncrementsAcrossBatchesInFlight(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	defer s.Close()
	const clients, each = 50, 200
	var ts uint64 // functions run one at a time, in the writer
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := s.Update(context.Background(), func(tx *Tx) error {
					cur, err := tx.Get([]byte("n"))
					if err != nil {
						return err
					}
					n := 0
					if cur.Exists() {
						if n, err = strconv.Atoi(string(cur.Value.Data)); err != nil {
							return err
						}
					}
					ts++
					_, _, err = tx.Apply([]byte("n"), setRec(ts, strconv.Itoa(n+1)))
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rec, err := s.Get([]byte("n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(rec.Value.Data); got != strconv.Itoa(clients*each) {
		t.Fatalf("n = %s after %d increments", got, clients*each)
	}
	if _, last := s.LogBounds(); last != clients*each {
		t.Fatalf("log ends at %d, want %d", last, clients*each)
	}
}

// TestLosesMatchesMerge: whenever loses says a record changes nothing, the
// full merge agrees (records drawn with few distinct versions, so that ties
// are common; equal versions carry equal data, as every write does).
func TestLosesMatchesMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	draw := func() record.Record {
		v := record.Version{TS: hlc.Timestamp(1 + rng.IntN(3)), Node: record.NodeID(1 + rng.IntN(2))}
		e := record.Version{TS: hlc.Timestamp(rng.IntN(3)), Node: 1}
		r := record.Record{Value: record.Value{Version: v, Data: fmt.Appendf(nil, "%v", v)}, Expiry: record.Expiry{Version: e}}
		if rng.IntN(3) == 0 {
			r.Value.Tombstone, r.Value.Data = true, nil
		}
		if !e.IsZero() {
			r.Expiry.At = int64(rng.IntN(2))
		}
		return r
	}
	hits := 0
	for range 20000 {
		cur, rec := draw(), draw()
		if !cur.Exists() || !loses(rec, cur) {
			continue
		}
		hits++
		if _, changed := record.MergeInto(cur, rec); changed {
			t.Fatalf("loses(%+v, %+v) but the merge changes the record", rec, cur)
		}
	}
	if hits == 0 {
		t.Fatal("no case exercised loses")
	}
}
