package node

import (
	"math"
	"testing"
	"time"
)

func TestMemoryPolicyLimit(t *testing.T) {
	const mib = 1 << 20
	p := MemoryPolicy{Factor: 1.25, Headroom: 64 * mib, Floor: 128 * mib}
	for _, tc := range []struct {
		name string
		p    MemoryPolicy
		live uint64
		want int64
	}{
		{"empty heap gets the floor", p, 0, 128 * mib},
		{"small heap gets the floor", p, 40 * mib, 128 * mib},
		{"follows the live heap", p, 128 * mib, 224 * mib},
		{"a million keys", p, 140 * mib, 239 * mib},
		{"large heap", p, 8 << 30, 10<<30 + 64*mib},
		{"never below the live heap", MemoryPolicy{Factor: 0.5}, 100 * mib, 100 * mib},
		{"saturates", p, math.MaxUint64, math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.p.Limit(tc.live)
			if got != tc.want {
				t.Errorf("Limit(%d MiB) = %d MiB, want %d MiB", tc.live/mib, got/mib, tc.want/mib)
			}
			if got != math.MaxInt64 && uint64(got) < tc.live { // MaxInt64: no limit
				t.Errorf("limit %d below the live heap %d: the collector would run back to back", got, tc.live)
			}
		})
	}
}

func TestIdleCollector(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type step struct {
		at      float64
		cycles  uint64
		collect bool
	}
	for _, tc := range []struct {
		name  string
		after time.Duration
		steps []step
		alloc []uint64 // MiB ever allocated at each step; none: nothing allocated
	}{
		{"collects at 2, 8 and 32 s of a quiet spell, then stops", 2 * time.Second, []step{
			{0, 5, false}, {1, 9, false}, {2, 9, false}, {3, 9, true}, // quiet since t=1
			{4, 10, false}, {10, 10, false}, {11, 10, true}, // 10: ours, at t=3
			{20, 11, false}, {42, 11, false}, {43, 11, true},
			{44, 12, false}, {200, 12, false}, {1000, 12, false}, // nothing allocated since: not again
		}, nil},
		{"a collector that keeps running is left alone", 2 * time.Second, []step{
			{0, 1, false}, {1, 2, false}, {2, 3, false}, {3, 4, false}, {4, 5, false},
		}, nil},
		{"a collection by itself starts over", 2 * time.Second, []step{
			{0, 1, false}, {2, 1, true}, {3, 2, false}, // 2: ours
			{5, 3, false}, {6, 3, false}, {7, 3, true}, // by itself at t=5: 2 s again
		}, nil},
		{"start-up is a burst, though the collector never ran", 2 * time.Second, []step{
			{0, 0, false}, {1, 0, false}, {2, 0, true},
			{3, 1, false}, {9, 1, false}, {10, 1, true}, // 1: ours, at t=2
		}, nil},
		{"never when disabled", 0, []step{{0, 1, false}, {10, 1, false}, {100, 1, false}}, nil},
		{"a node that keeps allocating is not quiet, though the collector waits", 2 * time.Second, []step{
			{0, 1, false}, {1, 1, false}, {2, 1, false}, {3, 1, false}, {4, 1, false},
			{5, 1, false}, {6, 1, true}, // quiet from t=4: under a MiB a second
		}, []uint64{10, 15, 20, 25, 30, 30, 30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := idleCollector{after: tc.after}
			var allocs uint64
			for i, s := range tc.steps {
				if tc.alloc != nil {
					allocs = tc.alloc[i] << 20
				}
				got := c.step(at(s.at), s.cycles, allocs)
				if got != s.collect {
					t.Fatalf("step %d (t=%vs, cycles %d): collect %v, want %v", i, s.at, s.cycles, got, s.collect)
				}
				if got {
					c.collected(at(s.at), s.cycles+1, allocs)
				}
			}
		})
	}
}

func TestUserSetsGC(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"GOMEMLIMIT": "300MiB"}, true},
		{map[string]string{"GOGC": "50"}, true},
		{map[string]string{"GOGC": "off", "GOMEMLIMIT": "1GiB"}, true},
		{map[string]string{"GODEBUG": "gctrace=1"}, false},
	} {
		if got := userSetsGC(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("userSetsGC(%v) = %v, want %v", tc.env, got, tc.want)
		}
	}
}
