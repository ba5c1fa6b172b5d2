package sim

import (
	"fmt"
	"math"
	"math/big"
	"sort"

	"github.com/redmesh/redmesh/record"
)

// TypedCheck is the verdict on hashes, sets, sorted sets and counters. The checker knows
// each type's expected result from the acknowledged writes alone, without
// merging anything: an element is there if an acknowledged write added it
// and no acknowledged write observed it and removed it; a counter adds up
// the acknowledged increments that no acknowledged SET, DEL or field write
// observed. A write whose node crashed before syncing it, left, or is down at
// the end may or may not have reached the live nodes: its effect is allowed
// either way.
type TypedCheck struct {
	Writes   int   `json:"writes"`   // acknowledged typed writes (SET and DEL of typed keys included)
	Rejected int64 `json:"rejected"` // WRONGTYPE, not an integer: no write
	Adds     int   `json:"adds"`     // elements added by them
	Present  int   `json:"present"`  // elements on the live nodes at the end
	Counters int   `json:"counters"` // counters checked
	// StaleCounts are increments a node built on a count of its own older
	// than one it had written: a crash lost its newer increments after they
	// had left. Not a failure by itself; it is what leaves a counter short
	// when a SET or DEL had observed the newer count.
	StaleCounts int64 `json:"stale_counts"`
	// HiddenCounters are hash fields whose counter adds something while no
	// HGET shows the field: none since a field's unobserved increments show
	// without its element (record.Typed.Field).
	HiddenCounters int `json:"hidden_counters"`
	// Failures.
	LostAdds      int `json:"lost_adds"`        // acknowledged, not observed removed, and not there
	NotRemoved    int `json:"not_removed"`      // observed by an acknowledged remove, and still there
	Unknown       int `json:"unknown_elements"` // there, but no write added it (or with another value)
	WrongCounters int `json:"wrong_counters"`   // a counter's increments that do not add up
	WrongScores   int `json:"wrong_scores"`     // a sorted-set member's score that is not its base plus increments
	// Scores are the sorted-set members whose score was checked.
	Scores int `json:"scores"`
	// Lists are the lists whose order was compared across the live nodes.
	Lists int `json:"lists"`
}

// ackTyped records an acknowledged typed write (rec, applied at n) for the
// end-of-run checks.
func (ck *checker) ackTyped(s *Sim, n *node, rec record.Record, o *typedOp) {
	always := s.cfg.Fsync == FsyncAlways
	ck.writes = append(ck.writes, writeRec{key: o.key, node: int32(n.idx), ver: rec.Value.Version, tomb: rec.Value.Tombstone,
		typed: rec.Value.Version.IsZero(), synced: always, at: s.now, ts: rec.Newest().TS})
	o.w = int32(len(ck.writes) - 1)
	if !always {
		n.pending = append(n.pending, o.w)
	}
	ck.typed = append(ck.typed, *o)
}

// checkTyped compares ref's typed states (every live node holds the same,
// or convergence fails) with what the acknowledged typed writes imply.
func (s *Sim) checkTyped(ref *node, fails []string) (TypedCheck, []string) {
	var c TypedCheck
	c.Writes, c.Rejected, c.StaleCounts = len(s.ck.typed), s.ck.rejected, s.ck.staleCounts
	if len(s.ck.typed) == 0 {
		return c, fails
	}
	uncertain := func(o *typedOp) bool {
		w := &s.ck.writes[o.w]
		n := s.nodes[w.node]
		return w.atRisk || n.gone || !n.up || s.ck.wasSetAside(w)
	}
	first := map[string]string{}
	note := func(kind, msg string) {
		if _, ok := first[kind]; !ok {
			first[kind] = msg
		}
	}
	key := func(id uint32) string { return string(s.keys.names[id]) }

	// Observed removes, by dot (a dot names one write's element, run-wide).
	type removal struct{ sure, maybe bool }
	removed := map[record.Version]*removal{}
	for i := range s.ck.typed {
		o := &s.ck.typed[i]
		unc := uncertain(o)
		for _, d := range o.obs {
			r := removed[d]
			if r == nil {
				r = &removal{}
				removed[d] = r
			}
			if unc {
				r.maybe = true
			} else {
				r.sure = true
			}
		}
	}

	// The elements at the end.
	type found struct {
		key         uint32
		list        uint8
		name, value string
	}
	have := map[record.Version]found{}
	for id := range s.keys.len() {
		t := ref.st.get(uint32(id)).Typed
		if t == nil {
			continue
		}
		for _, list := range elemLists {
			for _, e := range elems(t, list) {
				have[e.Dot] = found{uint32(id), list, string(e.Name), string(e.Value)}
			}
		}
	}
	c.Present = len(have)

	added := map[record.Version]bool{}
	for i := range s.ck.typed {
		o := &s.ck.typed[i]
		unc := uncertain(o)
		for _, a := range o.adds {
			c.Adds++
			added[a.dot] = true
			f, there := have[a.dot]
			r := removed[a.dot]
			what := fmt.Sprintf("%s %q of %s (dot %v, at node %d)", listName(a.list), a.name, key(o.key), a.dot, s.ck.writes[o.w].node)
			switch {
			case r != nil && r.sure:
				if there {
					c.NotRemoved++
					note("removed", what)
				}
			case !there && !unc && r == nil:
				c.LostAdds++
				note("lost", what)
			}
			if there && (f.key != o.key || f.list != a.list || f.name != a.name || f.value != a.value) {
				c.Unknown++
				note("unknown", fmt.Sprintf("%s holds %q=%q where the write added %q=%q", key(f.key), f.name, f.value, a.name, a.value))
			}
		}
	}
	for id := range s.keys.len() {
		if t := ref.st.get(uint32(id)).Typed; t != nil {
			for _, list := range elemLists {
				for _, e := range elems(t, list) {
					if !added[e.Dot] {
						c.Unknown++
						note("unknown", fmt.Sprintf("%s %q of %s with dot %v, which no write added", listName(list), e.Name, key(uint32(id)), e.Dot))
					}
				}
			}
		}
	}

	// Counters: each acknowledged increment counts unless an acknowledged
	// write observed it (its node's count at or past its version) and reset
	// it. A write that may be lost widens the allowed range by its part.
	type counterKey struct {
		key   uint32
		name  string
		score bool // a sorted-set member's increments
	}
	type resetKey struct {
		counterKey
		node record.NodeID
	}
	type reset struct {
		ver record.Version
		unc bool
	}
	resets := map[resetKey][]reset{}
	type inc struct {
		incRec
		unc bool
	}
	incs := map[counterKey][]inc{}
	for i := range s.ck.typed {
		o := &s.ck.typed[i]
		unc := uncertain(o)
		for _, r := range o.resets {
			k := resetKey{counterKey{o.key, r.name, r.score}, r.counter}
			resets[k] = append(resets[k], reset{r.ver, unc})
		}
		for _, x := range o.incs {
			k := counterKey{o.key, x.name, x.score}
			incs[k] = append(incs[k], inc{x, unc})
		}
	}
	var counters []counterKey
	for k := range incs {
		counters = append(counters, k)
	}
	for id := range s.keys.len() {
		if t := ref.st.get(uint32(id)).Typed; t != nil {
			for _, score := range []bool{false, true} {
				for _, cnt := range counts(t, score) {
					if k := (counterKey{uint32(id), string(cnt.Name), score}); incs[k] == nil {
						incs[k] = []inc{}
						counters = append(counters, k)
					}
				}
			}
		}
	}
	sort.Slice(counters, func(i, j int) bool {
		a, b := counters[i], counters[j]
		if a.key != b.key || a.name != b.name {
			return a.key < b.key || a.key == b.key && a.name < b.name
		}
		return !a.score && b.score
	})
	ranges := map[counterKey][2]int64{} // each counter's allowed range
	for _, k := range counters {
		c.Counters++
		var lo, hi int64
		for _, x := range incs[k] {
			sure, maybe := false, false
			for _, r := range resets[resetKey{k, x.counter}] {
				if r.ver.Compare(x.ver) >= 0 {
					if r.unc {
						maybe = true
					} else {
						sure = true
					}
				}
			}
			switch {
			case sure:
			case !x.unc && !maybe:
				lo, hi = lo+x.by, hi+x.by
			default:
				lo, hi = lo+min(0, x.by), hi+max(0, x.by)
			}
		}
		ranges[k] = [2]int64{lo, hi}
		t := ref.st.get(k.key).Typed
		got, acc := t.CountsSum([]byte(k.name)).Int64() // integer increments, float ones too: exact
		if acc != big.Exact {
			got = math.MinInt64 // a fraction: no sum of integers
		}
		if k.score {
			got = int64(t.ScoreAdded([]byte(k.name))) // integer increments: exact
		} else if _, there := t.FieldValue([]byte(k.name)); k.name != "" && got != 0 && !there {
			c.HiddenCounters++
		}
		if got < lo || got > hi {
			c.WrongCounters++
			want := fmt.Sprint(lo)
			if hi != lo {
				want = fmt.Sprintf("%d to %d", lo, hi)
			}
			note("counter", fmt.Sprintf("counter %q of %s adds %d, the acknowledged increments %s", k.name, key(k.key), got, want))
		}
	}

	// Sorted-set scores: a member's score, as ZSCORE reads it, is the score
	// of its latest acknowledged add that no acknowledged write observed and
	// removed (0 when there is none: the member shows its increments alone),
	// plus its acknowledged increments as counted above. A write that may be
	// lost, or a remove that may have been, widens the choice of base.
	type memberKey struct {
		key  uint32
		name string
	}
	type scoredAdd struct {
		dot            record.Version
		score          float64
		unc, maybeGone bool
	}
	zadds := map[memberKey][]scoredAdd{}
	for i := range s.ck.typed {
		o := &s.ck.typed[i]
		unc := uncertain(o)
		for _, a := range o.adds {
			r := removed[a.dot]
			if a.list != listScored || r != nil && r.sure {
				continue
			}
			k := memberKey{o.key, a.name}
			zadds[k] = append(zadds[k], scoredAdd{a.dot, record.ScoreOf([]byte(a.value)), unc, r != nil && r.maybe})
		}
	}
	for id := range s.keys.len() {
		t := ref.st.get(uint32(id)).Typed
		v := t.ZView()
		for i := range v.Len() {
			e := v.At(i)
			c.Scores++
			cands := zadds[memberKey{uint32(id), string(e.Name)}]
			var floor record.Version // the latest add sure to be there
			for _, a := range cands {
				if !a.unc && !a.maybeGone && a.dot.Compare(floor) > 0 {
					floor = a.dot
				}
			}
			var bases []float64
			for _, a := range cands {
				if a.dot.Compare(floor) >= 0 {
					bases = append(bases, a.score)
				}
			}
			if floor.IsZero() {
				bases = append(bases, 0)
			}
			rg := ranges[counterKey{uint32(id), string(e.Name), true}]
			ok := false
			for _, b := range bases {
				ok = ok || e.Score >= b+float64(rg[0]) && e.Score <= b+float64(rg[1])
			}
			if !ok {
				c.WrongScores++
				note("score", fmt.Sprintf("member %q of %s scores %v; its acknowledged adds allow a base of %v, its increments %d to %d",
					e.Name, key(uint32(id)), e.Score, bases, rg[0], rg[1]))
			}
		}
	}

	c.Lists, fails = s.checkListOrder(ref, fails)
	for _, f := range []struct {
		n    int
		kind string
		what string
	}{
		{c.LostAdds, "lost", "acknowledged adds not observed removed are missing"},
		{c.NotRemoved, "removed", "elements survived an acknowledged remove that observed them"},
		{c.Unknown, "unknown", "elements are not what any write added"},
		{c.WrongCounters, "counter", "counters do not equal their acknowledged increments"},
		{c.WrongScores, "score", "sorted-set scores are not their latest acknowledged ZADD plus their increments"},
	} {
		if f.n > 0 {
			fails = append(fails, fmt.Sprintf("%d %s (first: %s)", f.n, f.what, first[f.kind]))
		}
	}
	return c, fails
}

func listName(l uint8) string {
	switch l {
	case listFields:
		return "field"
	case listScored:
		return "sorted-set member"
	case listList:
		return "list element"
	}
	return "member"
}
