package merkle

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"
)

var benchKeys = flag.Int("merkle.keys", 1_000_000, "keys per store in BenchmarkReconcile")

// benchPair is built once per process: building two 1M-key stores takes a
// few seconds, and every session leaves the pair equal again, ready for the
// next divergence.
var benchPair struct {
	n    int
	a, b *MemStore
	rng  *rand.Rand
	ts   uint64
	vals [][]byte
}

func benchStores(b *testing.B) (*MemStore, *MemStore) {
	p := &benchPair
	if p.a != nil && p.n == *benchKeys {
		return p.a, p.b
	}
	p.n = *benchKeys
	p.rng = rand.New(rand.NewPCG(2026, 1124))
	p.vals = make([][]byte, 256) // a pool keeps two 1M-key stores in memory
	for i := range p.vals {
		p.vals[i] = make([]byte, 100)
		for j := range p.vals[i] {
			p.vals[i][j] = byte(p.rng.Uint32())
		}
	}
	p.a, p.b = newStore(b, DefaultShape), newStore(b, DefaultShape)
	p.ts = uint64(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC).UnixMilli()) << 16
	for i := range p.n {
		key := benchKey(i)
		v := Version{TS: p.ts + uint64(i), Node: 1 + uint64(i%3)}
		regs := []Register{{v, p.vals[i%len(p.vals)]}}
		if i%2 == 0 { // SET EX: value and expiry at one version
			regs = append(regs, Register{v, []byte("\x00\x00\x01\x9a\xb0\x00\x00\x00")})
		}
		p.a.Put(key, regs)
		p.b.Put(key, regs)
	}
	p.ts += uint64(p.n)
	return p.a, p.b
}

func benchKey(i int) []byte { return fmt.Appendf(nil, "user:%08d", i) }

// benchDiverge makes d distinct keys differ, in the ways nodes drift apart:
// newer values on either side, keys on one side only, deletions, concurrent
// writes and registers newer on opposite sides.
func benchDiverge(d int) {
	p := &benchPair
	seen := make(map[int]bool, d)
	for len(seen) < d {
		i := p.rng.IntN(p.n + p.n/10) // a tenth of the draws are new keys
		if seen[i] {
			continue
		}
		seen[i] = true
		key := benchKey(i)
		p.ts++
		v := func(node uint64) Version { return Version{TS: p.ts, Node: node} }
		val := p.vals[p.rng.IntN(len(p.vals))]
		target, other := p.a, p.b
		if p.rng.IntN(2) == 0 {
			target, other = other, target
		}
		cur := target.Get(key)
		switch k := p.rng.IntN(10); {
		case i >= p.n || cur == nil || k < 4: // newer value (or a new key) on one side
			target.Put(key, []Register{{v(1), val}})
		case k < 6: // deleted on one side
			target.Put(key, []Register{{v(2), nil}})
		case k < 8: // value newer on one side, expiry newer on the other
			regs := []Register{{v(1), val}, cur[0]}
			if len(cur) > 1 {
				regs[1] = cur[1]
			}
			target.Put(key, regs)
			p.ts++
			other.Put(key, []Register{cur[0], {v(2), []byte("\x00\x00\x01\x9a\xc0\x00\x00\x00")}})
		default: // concurrent writes: one timestamp, two writers
			target.Put(key, []Register{{v(1), val}})
			other.Put(key, []Register{{v(2), p.vals[0]}})
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReconcile runs one session between two stores of -merkle.keys keys
// (100-byte values) that differ in d keys, and reports what it cost.
func BenchmarkReconcile(b *testing.B) {
	for _, d := range []int{0, 1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("N=%d/d=%d", *benchKeys, d), func(b *testing.B) {
			a, bb := benchStores(b)
			var st Stats
			var cpu time.Duration
			var peak, peakDelta uint64
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				benchDiverge(d)
				a.Tree().Root() // digest refresh belongs to the write path, not the session
				bb.Tree().Root()
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				base := ms.HeapAlloc
				sample := func() {
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapAlloc)
					peakDelta = max(peakDelta, ms.HeapAlloc-min(base, ms.HeapAlloc))
				}
				sa, _ := NewInitiator(Config{Shape: DefaultShape, Local: a, Salt: uint64(i) + 1})
				sb, _ := NewResponder(Config{Shape: DefaultShape, Local: bb})
				c0 := cpuTime()
				b.StartTimer()
				s, err := Drive(Peer{sa, a.Apply}, Peer{sb, bb.Apply}, sample)
				b.StopTimer()
				cpu += cpuTime() - c0
				if err != nil {
					b.Fatal(err)
				}
				if a.Tree().Root() != bb.Tree().Root() {
					b.Fatal("stores differ after the session")
				}
				st.RoundTrips += s.RoundTrips
				st.MetaBytes += s.MetaBytes
				st.PayloadBytes += s.PayloadBytes
				for t, v := range s.MetaByType {
					st.MetaByType[t] += v
				}
				b.StartTimer()
			}
			n := float64(b.N)
			b.ReportMetric(float64(st.MetaBytes)/n, "meta-B/op")
			b.ReportMetric(float64(st.PayloadBytes)/n, "payload-B/op")
			if d > 0 {
				b.ReportMetric(float64(st.MetaBytes)/n/float64(d), "meta-B/diff")
			}
			b.ReportMetric(float64(st.RoundTrips)/n, "round-trips")
			if testing.Verbose() {
				for t, v := range st.MetaByType {
					if v > 0 {
						b.Logf("%s: %.0f B", MsgType(t), float64(v)/n)
					}
				}
			}
			b.ReportMetric(float64(cpu.Microseconds())/1000/n, "cpu-ms/op")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(peakDelta)/(1<<20), "session-heap-MB")
		})
	}
}
