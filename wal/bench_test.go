package wal

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"syscall"
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
	cpu := cpuTime()
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
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkBadgerRows is the floor under the write path: the keyspace rows
// a SET writes, committed straight to Badger in batches (10 as fifty
// clients at -P 1 make them, 256 as at -P 16) over 100,000 keys, with the
// store's options and nothing of the store's own (no log, index, cache or
// goroutine hand-off). cpu-ns/row counts the whole process, flushes and
// compactions included, as a node's CPU would.
//
//	go test ./wal -run '^$' -bench BadgerRows -benchtime 2000000x
func BenchmarkBadgerRows(b *testing.B) {
	for _, batch := range []int{10, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := open(b, b.TempDir(), nil)
			defer s.Close()
			r := rand.New(rand.NewPCG(1, 2))
			keys := make([][]byte, 100_000)
			for i := range keys {
				keys[i] = fmt.Appendf(nil, "key:%012d", i)
			}
			cpu := cpuTime()
			b.ResetTimer()
			for done := 0; done < b.N; {
				txn := s.writeTxn()
				for j := 0; j < batch && done < b.N; j++ {
					row, val, _, err := s.encodeRow(keys[r.IntN(len(keys))], setRec(uint64(done+1), "xxx"))
					if err != nil {
						b.Fatal(err)
					}
					if err := txn.Set(row, val); err != nil {
						b.Fatal(err)
					}
					done++
				}
				if err := s.commitTxn(txn); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/row")
		})
	}
}

// cpuTime is the CPU time the process has used, user and system, in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
