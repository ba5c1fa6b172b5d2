package sim

import (
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
)

// collectSeeds is how many seeds TestCollectSeeds runs of each scenario:
// 1,000, or 30 under the race detector or -short (CI also runs it without).
func collectSeeds() int {
	if raceEnabled || testing.Short() {
		return 30
	}
	return 1000
}

// gcScenarios are the runs TestCollectSeeds makes: small full meshes (as a
// real mesh is), with deletes and expiries, collection on. Churn needs 20
// nodes for its shares of nodes (5%) to name one.
var gcScenarios = []struct {
	name string
	cfg  Config
}{
	{"partition-heal", Config{Nodes: 6, Keys: 60}},
	{"offline-rejoin", Config{Nodes: 5, Keys: 60, LogRetain: 64}},
	{"churn", Config{Nodes: 20, Degree: 24, Keys: 60}},
}

// With collection on, partition-heal, offline-rejoin and churn pass for
// every seed: no acknowledged write lost, no deleted key back, every node
// identical once collection has settled; and collection did collect.
func TestCollectSeeds(t *testing.T) {
	fewerGCs(t)
	runs := collectSeeds()
	for _, sc := range gcScenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			var tombs, expired, traces, collected, superseded, deletes, crashes int64
			var lags []int64
			lagMax := int64(0)
			for seed := uint64(1); seed <= uint64(runs); seed++ {
				cfg := sc.cfg
				cfg.Seed = seed
				r := mustRun(t, cfg, mustBuiltin(t, sc.name, cfg))
				if !r.Pass || r.Check.Resurrections != 0 || r.Check.Lost != 0 {
					t.Fatalf("seed %d: %v\nreplay: redmesh sim --scenario %s --seed %d --nodes %d --keys %d --log-retain %d --degree %d",
						seed, r.Failures, sc.name, seed, cfg.Nodes, cfg.Keys, r.Config.LogRetain, r.Config.Degree)
				}
				tombs += r.GC.TombstonesCollected
				expired += r.GC.ExpiredCollected
				traces += r.GC.TracesCollected
				collected += int64(r.Check.Collected)
				superseded += int64(r.Check.Superseded)
				crashes += r.Nodes.Crashes
				lags = append(lags, r.GC.StableLagP50Ms)
				lagMax = max(lagMax, r.GC.StableLagMaxMs)
				if r.GC.TombstonesCollected > 0 {
					deletes++
				}
			}
			if deletes < int64(runs)/2 {
				t.Fatalf("only %d of %d runs collected anything", deletes, runs)
			}
			t.Logf("%d seeded runs of %s passed in %v: %d tombstones (%d of them expired keys) and %d traces collected (in %d runs), %d acknowledged writes found collected, %d superseded, %d crashes; 0 lost, 0 resurrections; stable lag p50 of the runs' p50 %v, max %v",
				runs, sc.name, time.Since(start).Round(time.Millisecond), tombs, expired, traces, deletes, collected, superseded, crashes,
				time.Duration(median(lags))*time.Millisecond, time.Duration(lagMax)*time.Millisecond)
		})
	}
}

// fewerGCs lets the heap grow to five times its live size before the
// collector runs, until t and its subtests are done: a run's heap is a few
// megabytes of short-lived messages and closures, so at the default the
// collector runs all the time and takes a third of the seed tests' CPU.
func fewerGCs(t *testing.T) {
	old := debug.SetGCPercent(400)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

func median(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// A node away past --forget-after, while the others delete, expire and
// collect, comes back: what it held from before the stable time of its
// return is set aside (counted), nothing deleted comes back, and its
// writes from while it was cut off are the only ones lost.
func TestForgetRejoin(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		cfg := Config{Seed: seed, Nodes: 5, Keys: 100}
		r := mustRun(t, cfg, mustBuiltin(t, "forget-rejoin", cfg))
		if !r.Pass || r.Check.Resurrections != 0 {
			t.Fatalf("seed %d: %v\nreplay: redmesh sim --scenario forget-rejoin --seed %d --nodes 5 --keys 100", seed, r.Failures, seed)
		}
		g := r.GC
		if g.Forgotten == 0 || g.Returned == 0 || g.SetAside+g.OwnSetAside == 0 || g.TombstonesCollected == 0 {
			t.Fatalf("seed %d: nothing forgotten, returned, set aside or collected: %+v", seed, g)
		}
	}
}

// The checker fails collection done wrong. A returning forgotten node
// whose records merge as they are (no record.Fresh) brings back keys the
// mesh deleted and collected while it was away; nodes that collect with a
// stable time a minute ahead of the real one drop tombstones a partitioned
// side has not applied, and the old values come back at the heal.
func TestBrokenCollectionIsCaught(t *testing.T) {
	cases := []struct {
		name     string
		scenario string
		cfg      Config
	}{
		{"no Fresh for a returning node", "forget-rejoin", Config{Seed: 1, Nodes: 5, Keys: 100, NoFresh: true}},
		{"stable time ahead", "partition-heal", Config{Seed: 1, Nodes: 6, Keys: 60, CollectAhead: time.Minute}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			good := c.cfg
			good.NoFresh, good.CollectAhead = false, 0
			if r := mustRun(t, good, mustBuiltin(t, c.scenario, good)); !r.Pass {
				t.Fatalf("the correct collection failed: %v", r.Failures)
			}
			r := mustRun(t, c.cfg, mustBuiltin(t, c.scenario, c.cfg))
			if r.Pass || r.Check.Resurrections == 0 {
				t.Fatalf("passed: %v %+v", r.Failures, r.Check)
			}
			if !strings.Contains(strings.Join(r.Failures, "\n"), "deleted keys came back") {
				t.Fatalf("failures: %v", r.Failures)
			}
			t.Logf("caught: %v", r.Failures)
		})
	}
}

// With collection off, nothing is acknowledged, collected or forgotten:
// the mesh keeps every tombstone, as before collection existed.
func TestNoCollect(t *testing.T) {
	cfg := Config{Seed: 3, Nodes: 6, Keys: 60, NoCollect: true}
	r := mustRun(t, cfg, mustBuiltin(t, "partition-heal", cfg))
	if !r.Pass || r.GC != (GC{}) || r.Check.Collected != 0 {
		t.Fatalf("%v %+v", r.Failures, r.GC)
	}
	on := cfg
	on.NoCollect = false
	if r := mustRun(t, on, mustBuiltin(t, "partition-heal", on)); !r.Pass || r.GC.TombstonesCollected == 0 || r.GC.AckBytes == 0 {
		t.Fatalf("with collection: %v %+v", r.Failures, r.GC)
	}
}
