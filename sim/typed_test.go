package sim

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redmesh/redmesh/record"
)

// typedSeeds is how many seeded runs TestTypedSeeds makes: 1,000, or 50
// under the race detector (which makes each run some ten times slower; CI
// also runs the test without it).
func typedSeeds() int {
	if raceEnabled || testing.Short() {
		return 50
	}
	return 1000
}

// The built-in typed scenario passes on a small mesh for every seed:
// elements and counters as the acknowledged writes say, all nodes identical.
func TestTypedSeeds(t *testing.T) {
	fewerGCs(t)
	runs := typedSeeds()
	one := Config{Seed: 1, Nodes: 5, Keys: 20}
	a, b := mustRun(t, one, mustBuiltin(t, "typed", one)), mustRun(t, one, mustBuiltin(t, "typed", one))
	if !bytes.Equal(a.JSON(), b.JSON()) {
		t.Fatal("two typed runs with one seed gave different reports")
	}
	start := time.Now()
	var writes, adds, counters, scores, lists, rejected, crashes, hidden int64
	for seed := uint64(1); seed <= uint64(runs); seed++ {
		cfg := Config{Seed: seed, Nodes: 5, Keys: 20}
		r := mustRun(t, cfg, mustBuiltin(t, "typed", cfg))
		if !r.Pass {
			t.Fatalf("seed %d: %v\nreplay: redmesh sim --scenario typed --seed %d --nodes 5 --keys 20", seed, r.Failures, seed)
		}
		k := r.Check.Typed
		if k.Writes == 0 || k.Adds == 0 || k.Counters == 0 {
			t.Fatalf("seed %d: the workload wrote nothing typed: %+v", seed, k)
		}
		writes, adds, counters, rejected = writes+int64(k.Writes), adds+int64(k.Adds), counters+int64(k.Counters), rejected+k.Rejected
		scores += int64(k.Scores)
		lists += int64(k.Lists)
		crashes += r.Nodes.Crashes
		hidden += int64(k.HiddenCounters)
	}
	if scores == 0 || lists == 0 {
		t.Fatalf("no sorted-set score (%d) or list order (%d) was checked", scores, lists)
	}
	t.Logf("%d seeded runs passed in %v: %d typed writes, %d elements added, %d counters, %d sorted-set scores and %d lists' order checked, %d commands refused (WRONGTYPE), %d crashes; %d field counters hidden by an HDEL (a known bug)",
		runs, time.Since(start).Round(time.Millisecond), writes, adds, counters, scores, lists, rejected, crashes, hidden)
}

// maxCounters is record.MergeInto with counters merged as a whole by
// maximum, the mistake a per-node count exists to avoid: of two states of a
// counter, the one that adds more wins, and the other side's increments
// are dropped.
func maxCounters(local, in record.Record) (record.Record, bool) {
	m, _ := record.MergeInto(local, in)
	if m.Typed == nil {
		return m, !record.Equal(m, local)
	}
	var names [][]byte
	for _, r := range []record.Record{local, in} {
		if r.Typed != nil {
			for _, c := range r.Typed.Counts {
				names = append(names, c.Name)
			}
		}
	}
	slices.SortFunc(names, bytes.Compare)
	names = slices.CompactFunc(names, bytes.Equal)
	t := *m.Typed
	t.Counts = nil
	for _, name := range names {
		src := local.Typed
		if in.Typed.Added(name) > local.Typed.Added(name) {
			src = in.Typed
		}
		if src == nil {
			continue
		}
		for _, c := range src.Counts {
			if bytes.Equal(c.Name, name) {
				t.Counts = append(t.Counts, c)
			}
		}
	}
	m.Typed = &t
	return m, !record.Equal(m, local)
}

// Counters merged by maximum lose increments, and the checker says so,
// even though every node ends with the same state.
func TestMaxCounterMergeIsCaught(t *testing.T) {
	cfg := Config{Seed: 4, Nodes: 5, Keys: 20}
	if r := mustRun(t, cfg, mustBuiltin(t, "typed", cfg)); !r.Pass {
		t.Fatalf("the correct rule failed: %v", r.Failures)
	}
	cfg.Merge = func(int) MergeFunc { return maxCounters }
	r := mustRun(t, cfg, mustBuiltin(t, "typed", cfg))
	if r.Pass || r.Check.Typed.WrongCounters == 0 {
		t.Fatalf("counters merged by maximum passed: %v %+v", r.Failures, r.Check.Typed)
	}
	if !strings.Contains(strings.Join(r.Failures, "\n"), "counters do not equal their acknowledged increments") {
		t.Fatalf("failures: %v", r.Failures)
	}
	t.Logf("caught: %v", r.Failures)
}

// removeWins is record.MergeInto where a remove takes every element of the
// names it removed something of, not only the dots it observed: a
// concurrent add is lost.
func removeWins(local, in record.Record) (record.Record, bool) {
	m, _ := record.MergeInto(local, in)
	if m.Typed == nil {
		return m, !record.Equal(m, local)
	}
	kept := map[record.Version]bool{}
	for _, list := range []uint8{listFields, listMembers} {
		for _, e := range elems(m.Typed, list) {
			kept[e.Dot] = true
		}
	}
	var gone [][]byte
	for _, r := range []*record.Typed{local.Typed, in.Typed} {
		for _, list := range []uint8{listFields, listMembers} {
			for _, e := range elems(r, list) {
				if !kept[e.Dot] {
					gone = append(gone, e.Name)
				}
			}
		}
	}
	t := *m.Typed
	drop := func(es []record.Elem) []record.Elem {
		return slices.DeleteFunc(slices.Clone(es), func(e record.Elem) bool {
			return slices.ContainsFunc(gone, func(n []byte) bool { return bytes.Equal(n, e.Name) })
		})
	}
	t.Fields, t.Members = drop(t.Fields), drop(t.Members)
	m.Typed = &t
	return m, !record.Equal(m, local)
}

// A remove that takes what it did not observe loses acknowledged adds.
func TestRemoveWinsMergeIsCaught(t *testing.T) {
	sc := addWins()
	cfg := Config{Seed: 1, Keys: 10, MaxTime: 30 * time.Second}
	if r := mustRun(t, cfg, sc); !r.Pass {
		t.Fatalf("the correct rule failed: %v", r.Failures)
	}
	cfg.Merge = func(int) MergeFunc { return removeWins }
	r := mustRun(t, cfg, addWins())
	if r.Pass || r.Check.Typed.LostAdds == 0 {
		t.Fatalf("remove-wins merge passed: %v %+v", r.Failures, r.Check.Typed)
	}
}

func cmd(at float64, node int, args ...string) Event {
	return Event{At: sec(at), Command: &Command{Node: node, Args: args}}
}

// addWins is the cases add-wins and observed-remove are about, made on
// purpose: a partition separates node 0 from the rest while each side edits
// the same keys.
func addWins() *Scenario {
	return &Scenario{Name: "add-wins", Nodes: 4, Fsync: FsyncAlways, Events: []Event{
		cmd(1, 1, "SADD", "s", "a", "b"),
		cmd(1, 1, "HSET", "h", "f", "1", "g", "2"),
		cmd(1, 1, "INCRBY", "c", "10"),
		{At: sec(3), Partition: []NodeSet{"0"}},
		// Node 0 removes what it saw; the others write again concurrently.
		// (SADD of a member already there writes nothing, as in Redis, so
		// node 2 removes a and adds it back: a new add node 0 never saw.)
		cmd(4, 0, "SREM", "s", "a"),
		cmd(4, 2, "SREM", "s", "a"),
		cmd(4.1, 2, "SADD", "s", "a"),
		cmd(4, 3, "SREM", "s", "b"),
		cmd(4, 0, "HDEL", "h", "f"),
		cmd(4, 3, "HSET", "h", "f", "5"),
		cmd(4, 0, "DEL", "c"),
		cmd(4, 2, "INCRBY", "c", "3"),
		cmd(4, 1, "HINCRBY", "h", "g", "4"),
		cmd(4, 0, "HINCRBY", "h", "g", "1"),
		{At: sec(8), Heal: true},
	}}
}

// The constructed cases end as the semantics say, on every node.
func TestTypedAddWins(t *testing.T) {
	s, err := New(Config{Seed: 1, Keys: 10}, addWins())
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Run()
	if err != nil {
		t.Fatal(err)
	}
	if !r.Pass {
		t.Fatal(r.Failures)
	}
	want := map[string]string{
		"s": "set a",        // the concurrent add of a wins over node 0's SREM; b was removed
		"h": "hash f=5 g=7", // HSET of f wins over HDEL; HINCRBYs add up
		"c": "string 3",     // DEL reset the 10 it saw, not the 3
	}
	for key, w := range want {
		for _, n := range s.nodes {
			if got := s.show(n, key); got != w {
				t.Errorf("node %d: %s is %q, want %q", n.idx, key, got, w)
			}
		}
	}
}

// show is a key as a client at n reads it.
func (s *Sim) show(n *node, key string) string {
	id, ok := s.keys.lookup([]byte(key))
	if !ok {
		return "(never written)"
	}
	r := n.st.get(id)
	if !r.Exists() {
		return "(none)"
	}
	var b strings.Builder
	b.WriteString(r.Kind().String())
	switch r.Kind() {
	case record.KindHash:
		r.Typed.EachField(func(f, v []byte) bool { fmt.Fprintf(&b, " %s=%s", f, v); return true })
	case record.KindSet:
		r.Typed.EachMember(func(m []byte) bool { fmt.Fprintf(&b, " %s", m); return true })
	case record.KindZSet:
		v := r.Typed.ZView()
		v.Ascend(0, func(e record.ZEntry) bool { fmt.Fprintf(&b, " %s=%v", e.Name, e.Score); return true })
	default:
		fmt.Fprintf(&b, " %s", r.StringData())
	}
	return b.String()
}

// lossyCrash: node 0 increments a counter, and increments it again just
// before it crashes, before its next sync; the increment has reached node 1,
// whose DEL observes (and resets) node 0's count with it. Node 0 restarts
// without that increment and increments once more.
func lossyCrash(fsync Fsync) *Scenario {
	return &Scenario{Name: "counter-lossy-crash", Nodes: 3, Fsync: fsync, Events: []Event{
		cmd(1, 0, "INCRBY", "c", "1"),
		cmd(3, 0, "INCRBY", "c", "4"),
		{At: sec(3.001), Crash: "0"},
		cmd(3.5, 1, "DEL", "c"),
		{At: sec(5), Restart: "0"},
		cmd(6, 0, "INCRBY", "c", "2"),
	}}
}

// A crash that loses an increment already sent to a peer must not make the
// counter go wrong. A node's count is the running total of its increments,
// merged by the version of the latest; under one identity, the node's next
// increment after such a crash would carry a newer version with the smaller
// total and, merged against a DEL that observed the larger one, end at -2
// where 2 was acknowledged. Each incarnation counts under an identity of its
// own (record.CounterID), so the lost total comes back from the peer.
func TestCounterAfterLossyCrash(t *testing.T) {
	cfg := Config{Seed: 1, Keys: 10, MaxTime: time.Minute}
	for _, fsync := range []Fsync{FsyncAlways, FsyncEverysec} {
		s, err := New(cfg, lossyCrash(fsync))
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Run()
		if err != nil {
			t.Fatal(err)
		}
		if !r.Pass || s.show(s.nodes[0], "c") != "string 2" {
			t.Fatalf("fsync %v: %v, c is %s", fsync, r.Failures, s.show(s.nodes[0], "c"))
		}
	}
}

// An HINCRBY of a field that is there adds no element, only an increment;
// an HDEL elsewhere that observed the field removes its element, and the
// concurrent increment, which it did not observe, must still show: the field
// reads as that increment (as a string counter keeps an INCRBY concurrent
// with a DEL, as Redis Enterprise's counters do).
func TestHIncrByAgainstHDel(t *testing.T) {
	sc := &Scenario{Name: "hincrby-hdel", Nodes: 3, Fsync: FsyncAlways, Events: []Event{
		cmd(1, 1, "HSET", "h", "f", "1", "g", "1"),
		cmd(1, 1, "INCRBY", "c", "1"),
		{At: sec(3), Partition: []NodeSet{"0"}},
		cmd(4, 0, "HDEL", "h", "f"),
		cmd(4, 2, "HINCRBY", "h", "f", "5"),
		cmd(4, 0, "DEL", "c"),
		cmd(4, 2, "INCRBY", "c", "5"),
		{At: sec(8), Heal: true},
	}}
	s, err := New(Config{Seed: 1, Keys: 5}, sc)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Run()
	if err != nil {
		t.Fatal(err)
	}
	if !r.Pass || s.show(s.nodes[0], "c") != "string 5" {
		t.Fatalf("%v; c is %s", r.Failures, s.show(s.nodes[0], "c"))
	}
	if got := s.show(s.nodes[0], "h"); got != "hash f=5 g=1" || r.Check.Typed.HiddenCounters != 0 {
		t.Fatalf("h is %s (want f=5 g=1: the increment the HDEL did not observe), %+v", got, r.Check.Typed)
	}
}

// zsetCases is the sorted-set cases, made on purpose across a partition:
// concurrent ZADDs of one member, ZINCRBYs at two nodes, a ZREM concurrent
// with a ZINCRBY, a DEL concurrent with a ZADD.
func zsetCases() *Scenario {
	return &Scenario{Name: "zset-cases", Nodes: 3, Fsync: FsyncAlways, Events: []Event{
		cmd(1, 0, "ZADD", "z", "1", "lww", "10", "inc", "5", "rem"),
		cmd(1, 0, "ZADD", "d", "1", "old"),
		{At: sec(3), Partition: []NodeSet{"0"}},
		cmd(4, 0, "ZADD", "z", "100", "lww"),
		cmd(4.1, 1, "ZADD", "z", "200", "lww"),
		cmd(4, 0, "ZINCRBY", "z", "2", "inc"),
		cmd(4, 2, "ZINCRBY", "z", "4", "inc"),
		cmd(4, 0, "ZREM", "z", "rem"),
		cmd(4.1, 1, "ZINCRBY", "z", "3", "rem"),
		cmd(4, 0, "DEL", "d"),
		cmd(4.1, 2, "ZADD", "d", "7", "new"),
		{At: sec(8), Heal: true},
	}}
}

// maxScores is record.MergeInto with a sorted-set member's increments
// merged as a whole by maximum: concurrent ZINCRBYs do not add up. It is
// for the small states of zsetCases (a large one keeps no ScoreCounts).
func maxScores(local, in record.Record) (record.Record, bool) {
	m, _ := record.MergeInto(local, in)
	if m.Typed == nil || local.Typed == nil || in.Typed == nil {
		return m, !record.Equal(m, local)
	}
	t := *m.Typed
	t.ScoreCounts = nil
	for _, c := range m.Typed.ScoreCountList() {
		src := local.Typed
		if in.Typed.ScoreAdded(c.Name) > local.Typed.ScoreAdded(c.Name) {
			src = in.Typed
		}
		if src.ScoreCount(c.Name, c.Node).Ver == c.Ver {
			t.ScoreCounts = append(t.ScoreCounts, c)
		}
	}
	m.Typed = &t
	return m, !record.Equal(m, local)
}

// The sorted-set cases end as the semantics say on every node, and a merge
// that does not add concurrent increments up is caught.
func TestZSetCases(t *testing.T) {
	s, err := New(Config{Seed: 1, Keys: 10}, zsetCases())
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Run()
	if err != nil {
		t.Fatal(err)
	}
	if !r.Pass || r.Check.Typed.Scores == 0 {
		t.Fatal(r.Failures, r.Check.Typed)
	}
	want := map[string]string{
		"z": "zset rem=3 inc=16 lww=200", // the later ZADD; 10+2+4; the ZREM kept the unseen +3
		"d": "zset new=7",                // the DEL removed what it saw
	}
	for key, w := range want {
		for _, n := range s.nodes {
			if got := s.show(n, key); got != w {
				t.Errorf("node %d: %s is %q, want %q", n.idx, key, got, w)
			}
		}
	}
	cfg := Config{Seed: 1, Keys: 10, Merge: func(int) MergeFunc { return maxScores }}
	r = mustRun(t, cfg, zsetCases())
	if r.Pass || r.Check.Typed.WrongCounters+r.Check.Typed.WrongScores == 0 {
		t.Fatalf("increments merged by maximum passed: %v %+v", r.Failures, r.Check.Typed)
	}
	t.Logf("caught: %v", r.Failures)
}
