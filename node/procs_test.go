package node

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestProcsPolicyNext(t *testing.T) {
	two := ProcsPolicy{Max: 2, Interval: time.Second, Grow: 0.95, Shrink: 0.8}
	eight := two
	eight.Max = 8
	for _, tc := range []struct {
		name  string
		p     ProcsPolicy
		procs int
		used  float64
		want  int
	}{
		{"idle stays at one", two, 1, 0.01, 1},
		{"a light load stays at one", two, 1, 0.5, 1},
		{"one thread nearly busy grows", two, 1, 0.96, 2},
		{"more than one core used (syscalls) grows", two, 1, 1.1, 2},
		{"never past Max", two, 2, 2.0, 2},
		{"a heavy load stays at two", two, 2, 1.1, 2},
		{"between the bounds nothing moves", two, 2, 0.9, 2},
		{"a light load drops to one", two, 2, 0.5, 1},
		{"idle drops to one", two, 2, 0, 1},
		{"grows by doubling", eight, 2, 1.95, 4},
		{"doubling stops at Max", eight, 6, 5.9, 8},
		{"shrinks by halving", eight, 8, 2.0, 4},
		{"halving from an odd count", eight, 3, 0.5, 1},
		{"a busy half stays", eight, 8, 3.5, 8},
	} {
		if got := tc.p.Next(tc.procs, tc.used); got != tc.want {
			t.Errorf("%s: Next(%d, %.2f) = %d, want %d", tc.name, tc.procs, tc.used, got, tc.want)
		}
	}
}

// Growing and then shrinking must not flap: from any count and load, the
// count Next gives is one Next keeps at that load, or it moves on in the
// same direction (an oscillation would change GOMAXPROCS every second).
func TestProcsPolicyDoesNotFlap(t *testing.T) {
	p := ProcsPolicy{Max: 16, Interval: time.Second, Grow: 0.95, Shrink: 0.8}
	for procs := 1; procs <= 16; procs++ {
		for used := 0.0; used <= 17; used += 0.05 {
			next := p.Next(procs, used)
			// The load a thread count sees is the same CPU, at most: a
			// process that grew cannot use less for it.
			if after := p.Next(next, used); next > procs && after < next || next < procs && after > next {
				t.Fatalf("at %.2f cores: %d → %d → %d", used, procs, next, after)
			}
		}
	}
}

// A count grown because the CPU was busy is undone when the node answers
// no more commands a second with it, and kept when it answers more or
// answers only a trickle (the CPU is then the mesh's).
func TestProcsGrowthKeptOnlyIfItServesMore(t *testing.T) {
	if os.Getenv("GOMAXPROCS") != "" {
		t.Skip("GOMAXPROCS is set: the policy leaves it")
	}
	for _, tc := range []struct {
		name string
		// rate is the commands answered a second on procs threads.
		rate func(procs int) float64
		want int
	}{
		{"no more on two threads", func(int) float64 { return 1000 }, 1},
		{"twice as many on two threads", func(procs int) float64 { return 1000 * float64(procs) }, 2},
		{"a trickle beside a busy CPU", func(int) float64 { return 60 }, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
			// Served counts at tc.rate of the threads of the moment since
			// it was last asked: the policy asks once an interval, just
			// before it changes the count.
			var mu sync.Mutex
			var served float64
			lastAt := time.Now()
			// Growth at a fifth of a core and no shrinking by the CPU: a
			// loaded machine may give the busy goroutine little of it.
			p := ProcsPolicy{
				Max: 2, Interval: 50 * time.Millisecond, Grow: 0.2, Shrink: -1,
				MinServed: 100, Gain: 0.05, Hold: time.Minute, MaxHold: time.Minute,
				Served: func() uint64 {
					mu.Lock()
					defer mu.Unlock()
					now := time.Now()
					served += now.Sub(lastAt).Seconds() * tc.rate(runtime.GOMAXPROCS(0))
					lastAt = now
					return uint64(served)
				},
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel()
			// A goroutine keeps a thread busy: the CPU alone would grow
			// the count, and keep it.
			wg.Go(func() {
				for ctx.Err() == nil {
				}
			})
			wg.Go(func() { ManageProcs(ctx, p, slog.New(slog.NewTextHandler(io.Discard, nil))) })
			grown := false
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				procs := runtime.GOMAXPROCS(0)
				if procs == 2 {
					grown = true
				}
				// Two intervals after the growth decide.
				if grown && procs == tc.want {
					stable := time.Now().Add(4 * p.Interval)
					for time.Now().Before(stable) && runtime.GOMAXPROCS(0) == tc.want {
						time.Sleep(time.Millisecond)
					}
					if runtime.GOMAXPROCS(0) == tc.want {
						return
					}
				}
				time.Sleep(time.Millisecond)
			}
			t.Fatalf("GOMAXPROCS %d (grown: %v), want %d after a growth", runtime.GOMAXPROCS(0), grown, tc.want)
		})
	}
}
