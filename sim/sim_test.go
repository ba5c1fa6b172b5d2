package sim

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/redmesh/redmesh/record"
)

func mustBuiltin(t testing.TB, name string, cfg Config) *Scenario {
	t.Helper()
	sc, err := Builtin(name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func mustRun(t testing.TB, cfg Config, sc *Scenario) *Report {
	t.Helper()
	r, err := Run(cfg, sc)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The same seed gives a byte-identical report; another seed does not.
func TestSameSeedSameReport(t *testing.T) {
	cfg := Config{Seed: 7, Nodes: 40, Keys: 400, Fsync: FsyncEverysec}
	for _, name := range []string{"partition-heal", "churn"} {
		t.Run(name, func(t *testing.T) {
			sc := mustBuiltin(t, name, cfg)
			a := mustRun(t, cfg, sc)
			b := mustRun(t, cfg, mustBuiltin(t, name, cfg))
			if !bytes.Equal(a.JSON(), b.JSON()) {
				t.Fatal("two runs with one seed gave different reports")
			}
			if !bytes.Equal(a.SVG(), b.SVG()) {
				t.Fatal("two runs with one seed gave different plots")
			}
			if !a.Pass {
				t.Fatalf("run failed: %v", a.Failures)
			}
			other := cfg
			other.Seed++
			if c := mustRun(t, other, mustBuiltin(t, name, other)); bytes.Equal(a.JSON(), c.JSON()) {
				t.Fatal("another seed gave the same report")
			}
		})
	}
}

// reversedTieBreak is record.MergeInto with the node-ID tie-break reversed:
// of two writes in the same HLC tick, the lower node ID wins.
func reversedTieBreak(local, in record.Record) (record.Record, bool) {
	flip := func(r record.Record) record.Record {
		r.Value.Version.Node = ^r.Value.Version.Node
		r.Expiry.Version.Node = ^r.Expiry.Version.Node
		return r
	}
	if !local.Written() {
		return in, in.Written()
	}
	m, changed := record.MergeInto(flip(local), flip(in))
	return flip(m), changed
}

// tombstoneBlind lets any value beat a tombstone, whatever the versions.
func tombstoneBlind(local, in record.Record) (record.Record, bool) {
	if local.Value.Tombstone && !in.Value.Tombstone && in.Written() {
		return in, true
	}
	return record.MergeInto(local, in)
}

// concurrent writes the same keys on nodes 0 and 1 in the same virtual
// millisecond, so their HLC timestamps tie and the node IDs decide.
func concurrent() *Scenario {
	sc := &Scenario{Name: "concurrent", Nodes: 6}
	for i := range 5 {
		k := "tie-" + string(rune('a'+i))
		at := Duration(time.Duration(i+1) * time.Second)
		sc.Events = append(sc.Events,
			Event{At: at, Set: &Set{Node: 0, Key: k, Value: "from-0"}},
			Event{At: at, Set: &Set{Node: 1, Key: k, Value: "from-1"}})
	}
	return sc
}

// The checker can fail: one node with a broken merge rule is caught.
func TestBrokenMergeIsCaught(t *testing.T) {
	base := Config{Seed: 3, Keys: 50, MaxTime: 20 * time.Second}
	if r := mustRun(t, base, concurrent()); !r.Pass {
		t.Fatalf("the correct rule failed: %v", r.Failures)
	}
	broken := base
	broken.Merge = func(i int) MergeFunc {
		if i == 1 {
			return reversedTieBreak
		}
		return nil
	}
	r := mustRun(t, broken, concurrent())
	if r.Pass {
		t.Fatal("a reversed tie-break on one node passed the checker")
	}
	if !strings.Contains(strings.Join(r.Failures, "\n"), "did not converge") {
		t.Fatalf("failures: %v", r.Failures)
	}
	if r.Check.Lost == 0 && r.Check.Regressions == 0 {
		t.Fatalf("no lost write or regression reported: %+v", r.Check)
	}
}

// A late write from a slow clock is older than a delete made elsewhere: the
// merge rule must keep the tombstone. Nodes that let any value beat a
// tombstone bring the deleted key back, and the checker says so.
func TestTombstoneBlindMergeIsCaught(t *testing.T) {
	sc := &Scenario{Name: "late-write-after-delete", Nodes: 4, Events: []Event{
		{At: 0, Skew: &Skew{Nodes: "0", Offset: Duration(-time.Minute)}},
		{At: Duration(time.Second), Partition: []NodeSet{"0"}},
		{At: Duration(2 * time.Second), Set: &Set{Node: 2, Key: "doomed", Value: "v"}},
		{At: Duration(3 * time.Second), Del: &Del{Node: 2, Key: "doomed"}},
		{At: Duration(10 * time.Second), Set: &Set{Node: 0, Key: "doomed", Value: "late"}},
		{At: Duration(11 * time.Second), Heal: true},
	}}
	cfg := Config{Seed: 5, Keys: 10, MaxTime: 20 * time.Second}
	if r := mustRun(t, cfg, sc); !r.Pass || r.Check.Superseded == 0 {
		t.Fatalf("the correct rule failed: %v %+v", r.Failures, r.Check)
	}
	cfg.Merge = func(i int) MergeFunc {
		if i > 0 {
			return tombstoneBlind
		}
		return nil
	}
	r := mustRun(t, cfg, sc)
	if r.Pass || r.Check.Resurrections == 0 {
		t.Fatalf("tombstone-blind nodes passed: %v %+v", r.Failures, r.Check)
	}
}

// Under fsync always a crash loses nothing acknowledged; under everysec the
// writes of the last second are at risk, and the checker excuses exactly
// those that were lost.
func TestCrashDurability(t *testing.T) {
	sc := &Scenario{Name: "crash", Nodes: 8, Events: []Event{
		{At: Duration(time.Second), Write: &Write{Nodes: "0-1", Count: 200, Over: Duration(900 * time.Millisecond)}},
		{At: Duration(1900 * time.Millisecond), Crash: "0-1"},
		{At: Duration(5 * time.Second), Restart: "0-1"},
	}}
	for _, mode := range []Fsync{FsyncAlways, FsyncEverysec, FsyncNo} {
		t.Run(string(mode), func(t *testing.T) {
			// No push and a partition-free, loss-free net, so whether a write
			// survives depends on durability alone.
			cfg := Config{Seed: 11, Keys: 100, Fsync: mode, NoPush: true}
			r := mustRun(t, cfg, sc)
			if !r.Pass {
				t.Fatalf("%v", r.Failures)
			}
			k := r.Check
			switch mode {
			case FsyncAlways:
				if k.AtRisk != 0 || k.AtRiskLost != 0 || r.Nodes.RolledBack != 0 {
					t.Fatalf("always lost something: %+v", k)
				}
			default:
				if k.AtRisk == 0 || k.AtRiskLost == 0 {
					t.Fatalf("%s: expected writes at risk and lost: %+v", mode, k)
				}
			}
		})
	}
}

func TestScenarioFile(t *testing.T) {
	yml := `
name: small
nodes: 5
keys: 20
fsync: always
events:
  - at: 1s
    partition: ["0-1", "2-4"]
  - at: 2s
    write: {count: 30, over: 3s, deletes: 0.2}
  - at: 8
    heal: true
`
	js := `{"name":"small","nodes":5,"keys":20,"fsync":"always","events":[
 {"at":"1s","partition":["0-1","2-4"]},
 {"at":"2s","write":{"count":30,"over":"3s","deletes":0.2}},
 {"at":"8s","heal":true}]}`
	a, err := ParseScenario([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseScenario([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	ra, rb := mustRun(t, Config{Seed: 1}, a), mustRun(t, Config{Seed: 1}, b)
	if !bytes.Equal(ra.JSON(), rb.JSON()) || !ra.Pass {
		t.Fatalf("YAML and JSON of one scenario differ, or failed: %v", ra.Failures)
	}
	for _, bad := range []string{
		"events: [{at: 1s}]",                      // no action
		"events: [{at: 1s, heal: true, join: 1}]", // two actions
		"events: [{at: -1s, heal: true}]",         // negative time
		"bogus: 1",                                // unknown field
		"events: [{at: 1s, write: {count: -1}}]",  // negative count
		"events: [{at: 1s, write: {count: 1, deletes: 2}}]",
		"events: [{at: 1s, command: {node: 0, args: [HSET, h, f]}}]",       // a field without a value
		"events: [{at: 1s, command: {node: 0, args: [FLUSHALL]}}]",         // not simulated
		"events: [{at: 1s, command: {node: 0, args: [INCRBY, c, x]}}]",     // not an integer
		"events: [{at: 1s, command: {node: 0, args: [SET, k, v, EX, 1]}}]", // options not simulated
		"events: [{at: 1s, typed: {count: 1, overwrites: 2}}]",
	} {
		if _, err := ParseScenario([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	// Node sets are checked against the mesh before running.
	sc, err := ParseScenario([]byte("nodes: 3\nevents: [{at: 1s, crash: '2-5'}]"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(Config{}, sc); err == nil {
		t.Error("ran a scenario crashing nodes that do not exist")
	}
}

func TestBuiltinsSmall(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			cfg := Config{Seed: 2, Nodes: 24, Keys: 200, LogRetain: 64}
			r := mustRun(t, cfg, mustBuiltin(t, name, cfg))
			if !r.Pass {
				t.Fatalf("%v\nreplay: redmesh sim --scenario %s --seed 2 --nodes 24 --keys 200 --log-retain 64", r.Failures, name)
			}
		})
	}
}

func FuzzParseScenario(f *testing.F) {
	for _, name := range Names() {
		sc, err := Builtin(name, Config{Nodes: 10, Keys: 100})
		if err != nil {
			f.Fatal(err)
		}
		b, err := yaml.Marshal(sc)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"nodes":3,"events":[{"at":"1s","set":{"node":0,"key":"k","value":"v"}}]}`))
	f.Add([]byte("events: [{at: 1s, partition: ['0%-50%', '50%-100%']}, {at: 2, heal: true}]"))
	f.Add([]byte("a: &a [*a, *a]"))
	f.Add([]byte(`{"nodes":3,"events":[{"at":"1s","command":{"node":0,"args":["HSET","h","f","1"]}},{"at":"2s","typed":{"count":5,"keys":2,"overwrites":0.1,"over":"1s"}}]}`))
	f.Add([]byte("events: [{at: 1s, command: {node: 0, args: [HINCRBY, h, f, x]}}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, err := ParseScenario(b)
		if err != nil {
			return
		}
		if err := sc.Validate(); err != nil {
			t.Fatalf("parsed but invalid: %v", err)
		}
		for _, e := range sc.Events {
			for _, ns := range append(e.Partition, e.Crash, e.Restart, e.Leave) {
				_, _ = ns.resolve(10, 10)
			}
		}
	})
}

// The example scenario files parse and pass at a small size.
func TestScenarioFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatal(files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := ParseScenario(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if r := mustRun(t, Config{Seed: 1, Nodes: 30, NoPush: true, NoCatchUp: true}, sc); !r.Pass {
			t.Fatalf("%s: %v", f, r.Failures)
		}
	}
}
