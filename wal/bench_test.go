package wal

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// BenchmarkUpdateSet is the write path under 50 concurrent writers, as
// redis-benchmark -c 50 drives it: each op is one Update applying a 100-byte
// value to one of 100,000 keys.
//
//	go test ./wal -run '^$' -bench UpdateSet -benchmem
func BenchmarkUpdateSet(b *testing.B) {
	s := open(b, b.TempDir(), nil)
	defer s.Close()
	value := make([]byte, 100)
	var ts atomic.Uint64
	b.SetParallelism(25) // × GOMAXPROCS(2) = 50 writers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			key := []byte(fmt.Sprintf("key:%012d", r.IntN(100_000)))
			rec := setRec(ts.Add(1), "")
			rec.Value.Data = value
			err := s.Update(context.Background(), func(tx *Tx) error {
				_, _, err := tx.Apply(key, rec)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
