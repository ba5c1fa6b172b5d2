package node

import (
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestLatencyBuckets: every duration falls in the bucket whose bounds hold
// it, the bounds rise, and a bucket is at most a quarter wider than the
// one before.
func TestLatencyBuckets(t *testing.T) {
	for i := 1; i < LatencyBuckets-1; i++ {
		lo, hi := LatencyBucketBound(i-1), LatencyBucketBound(i)
		if hi <= lo || float64(hi) > float64(lo)*1.25+1 {
			t.Fatalf("bucket %d: bounds %v then %v", i, lo, hi)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	check := func(d time.Duration) {
		i := latencyBucket(d)
		if i < LatencyBuckets-1 && d >= LatencyBucketBound(i) {
			t.Fatalf("%v in bucket %d, bound %v", d, i, LatencyBucketBound(i))
		}
		if i > 0 && d < LatencyBucketBound(i-1) {
			t.Fatalf("%v in bucket %d, above bound %v", d, i, LatencyBucketBound(i-1))
		}
	}
	for _, d := range []time.Duration{-1, 0, 1, 127, 128, 129, 159, 160, 1 << 33, 1<<35 - 1, 1 << 35, 1 << 62} {
		check(d)
	}
	for range 100_000 {
		check(time.Duration(r.Uint64N(1 << uint(r.IntN(40)+1))))
	}
}

func TestPercentile(t *testing.T) {
	var cs CommandStat
	for _, d := range []time.Duration{time.Microsecond, time.Microsecond, time.Microsecond, time.Millisecond} {
		cs.Latency[latencyBucket(d)]++
		cs.Calls++
	}
	if p := cs.Percentile(0.5); p <= time.Microsecond || p > 1250*time.Nanosecond {
		t.Fatalf("p50 = %v", p)
	}
	if p := cs.Percentile(0.99); p <= time.Millisecond || p > 1250*time.Microsecond {
		t.Fatalf("p99 = %v", p)
	}
	if p := (&CommandStat{}).Percentile(0.5); p != 0 {
		t.Fatalf("p50 of nothing = %v", p)
	}
}

// BenchmarkCommandStats is what the statistics add to every command: two
// clock reads and the counters' adds, from 50 clients on every thread.
//
//	go test ./node -run '^$' -bench CommandStats
func BenchmarkCommandStats(b *testing.B) {
	s := newCommandStats()
	slot := commands["get"].slot
	var ids atomic.Uint64
	b.SetParallelism(25)
	b.RunParallel(func(pb *testing.PB) {
		id := ids.Add(1)
		for pb.Next() {
			start := s.clock()
			s.ran(id, slot, s.clock()-start, false)
		}
	})
}

// TestCommandStatsMemory: a node's statistics hold the commands it has
// served, not every command of the table in every shard.
func TestCommandStatsMemory(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s := newCommandStats()
	for id := range uint64(statShards) {
		s.ran(id, commands["get"].slot, time.Microsecond, false)
		s.ran(id, commands["set"].slot, time.Microsecond, false)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 256<<10 {
		t.Errorf("statistics of two commands allocated %d bytes, want at most 256 KiB", n)
	}
	cs := s.commands()
	if len(cs) != 2 || cs[0].Name != "get" || cs[0].Calls != statShards || cs[1].Name != "set" || cs[1].Calls != statShards {
		t.Fatalf("commands = %+v, want get and set, %d calls each", cs, statShards)
	}
	s.reset()
	if cs := s.commands(); len(cs) != 0 {
		t.Fatalf("after a reset, commands = %+v", cs)
	}
}
