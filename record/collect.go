package record

import (
	"github.com/redmesh/redmesh/hlc"
)

// Garbage collection. A node learns from its peers a stable timestamp: every
// current member of the mesh has applied every write up to it (see the
// node's frontier exchange). What only guards against a write up to that
// time arriving again (a tombstone, a removed element's trace, a counter's
// fully reset count) can then be dropped, and a write up to that time that
// still arrives is one every member has already applied: it can change
// nothing except bring back what was dropped, so Fresh takes it out.

// Collect is r without what a node may drop once every member has applied
// every write up to timestamp stable: traces of removals up to then and,
// when nothing else is left (a delete or an expiry every member has, with no
// element added or count raised since), the whole key: gone. Counts go only
// with their key: a count does not say when it was reset, only which total,
// and a member that has not applied the reset still adds the total. changed reports whether out differs from r. An expired
// key whose deadline every member's clock has passed is taken as swept
// (Swept), as each of them sweeps it.
func (r Record) Collect(stable hlc.Timestamp, nowMillis int64) (out Record, gone, changed bool) {
	if r.Value.Version.IsZero() && r.Expiry.Version.IsZero() && r.Typed.empty() {
		return r, false, false // nothing was ever written: not a key
	}
	if !r.Value.Tombstone && !r.Value.Version.IsZero() && r.Expired(nowMillis) && hlc.New(r.Expiry.At, 0) <= stable {
		r, changed = r.Swept(), true
	}
	if t, dropped := r.Typed.collect(stable); dropped {
		r.Typed, changed = t, true
	}
	if (r.Value.Tombstone || r.Value.Version.IsZero()) && (r.Typed.empty() || r.Typed.holdsNothing()) &&
		r.Newest().TS <= stable {
		return Record{}, true, true
	}
	return r, false, changed
}

// WithoutTracesUpTo is r without the removal traces at or before stable,
// as collection leaves them (r is not changed): what a node that collected
// them makes of a peer's copy, so that a peer that has not yet collected
// them does not hand them back, one repair after another.
func (r Record) WithoutTracesUpTo(stable hlc.Timestamp) Record {
	if t, dropped := r.Typed.collect(stable); dropped {
		r.Typed = t
	}
	return r
}

// HasTraces reports whether t holds a trace of a removal, which
// collection takes out once stable. It reads no element: every write of a
// typed key asks it (the table keeps the answer, so that collection passes
// over the keys without traces unread).
func (t *Typed) HasTraces() bool {
	switch {
	case t == nil:
		return false
	case t.big != nil:
		return t.big.lists[listRemoved].Len() > 0
	}
	return len(t.Removed) > 0
}

// holdsNothing reports whether t keeps no element, trace, sketch epoch or
// count that adds anything: only registers.
func (t *Typed) holdsNothing() bool {
	for _, counts := range [][]Count{t.countList(), t.ScoreCountList()} {
		for _, c := range counts {
			if !c.spent() {
				return false
			}
		}
	}
	return t.size() == 0 && (t.HLL == nil || len(t.HLL.Epochs) == 0)
}

// collect is t without the traces of removals at or before stable; nil when
// nothing is left. t is not changed.
func (t *Typed) collect(stable hlc.Timestamp) (*Typed, bool) {
	if t == nil {
		return nil, false
	}
	old := func(e Elem) bool { return e.TraceAt() <= stable }
	if t.big != nil {
		b, dropped := t.big.collectTraces(old)
		if !dropped {
			return t, false
		}
		c := *t
		c.big = b
		if c.empty() {
			return nil, true
		}
		return &c, true
	}
	nTraces := 0
	for _, e := range t.Removed {
		if old(e) {
			nTraces++
		}
	}
	if nTraces == 0 {
		return t, false
	}
	c := *t
	c.Removed = make([]Elem, 0, len(t.Removed)-nTraces)
	for _, e := range t.Removed {
		if !old(e) {
			c.Removed = append(c.Removed, e)
		}
	}
	if len(c.Removed) == 0 {
		c.Removed = nil
	}
	if c.empty() {
		return nil, true
	}
	return &c, true
}

// Fresh is incoming, a record from a peer, without the writes up to
// timestamp stable that local, this node's record of the key, does not hold:
// every member has applied those, so local lacks them only because it
// collected them (or a write it holds replaced them), and merging them would
// bring back a deleted key, element or count. setAside reports whether
// anything that would have changed local was taken out: a forgotten
// member's record when it comes back, or an old log entry a catch-up read
// from a lagging cursor. Traces are kept: they only remove.
func Fresh(local, incoming Record, stable hlc.Timestamp) (out Record, setAside bool) {
	if incoming.Oldest() > stable {
		return incoming, false
	}
	out = incoming
	if out.Value.Version.TS <= stable && compareValue(out.Value, local.Value) > 0 {
		out.Value, setAside = Value{}, true
	}
	if out.Expiry.Version.TS <= stable && out.Expiry.Version.Compare(local.Expiry.Version) > 0 {
		out.Expiry, setAside = Expiry{}, true
	}
	if t, aside := freshTyped(local.Typed, incoming.Typed, stable); t != incoming.Typed {
		out.Typed, setAside = t, setAside || aside
	}
	return out, setAside
}

// Oldest is the oldest timestamp of any write the record holds, traces
// aside (registers never written are not writes): a record whose oldest is
// after the stable time needs no Fresh.
func (r Record) Oldest() hlc.Timestamp {
	o := r.Newest().TS
	low := func(v Version) {
		if !v.IsZero() && v.TS < o {
			o = v.TS
		}
	}
	low(r.Value.Version)
	low(r.Expiry.Version)
	if t := r.Typed; t != nil {
		low(t.KindVersion)
		for _, counts := range [][]Count{t.countList(), t.ScoreCountList()} {
			for _, c := range counts {
				low(c.Ver)
				low(c.ResetVer)
			}
		}
		for _, which := range elemLists {
			t.each(which, func(run []Elem) bool {
				for _, e := range run {
					low(e.Dot)
				}
				return true
			})
		}
		if t.HLL != nil {
			for _, e := range t.HLL.Epochs {
				low(e.Epoch)
			}
		}
	}
	return o
}

// freshTyped is Fresh for typed states: in without the type register,
// elements, counts and sketch epochs up to stable that local lacks. It
// returns in itself when nothing is taken out.
func freshTyped(local, in *Typed, stable hlc.Timestamp) (*Typed, bool) {
	if in == nil {
		return nil, false
	}
	setAside := false
	var c Typed
	copied := false
	edit := func() *Typed {
		if !copied {
			c, copied = *in, true
		}
		return &c
	}
	var localKV Version
	if local != nil {
		localKV = local.KindVersion
	}
	if in.KindVersion.TS <= stable && in.KindVersion.Compare(localKV) > 0 {
		e := edit()
		e.Kind, e.KindVersion = 0, Version{}
		setAside = true
	}
	// Counts: a count that adds something, with its increments and observed
	// reset up to stable, of a counter local holds no count of that node
	// for, was reset and went with its key (Collect): it must not add again.
	// A spent one (fully reset) is let in, so that members holding the key
	// hold the same counts; it goes with the key.
	inCounts := in.countList()
	var counts []Count
	for i, n := range inCounts {
		keep := true
		if have := local.Count(n.Name, n.Node); (n.added() != 0 || n.FTotal != n.FReset) && n.Ver.TS <= stable && n.ResetVer.TS <= stable &&
			have.Ver.IsZero() && have.ResetVer.IsZero() {
			keep, setAside = false, true
		}
		if !keep && counts == nil {
			counts = append(make([]Count, 0, len(inCounts)), inCounts[:i]...)
		} else if keep && counts != nil {
			counts = append(counts, n)
		}
	}
	if counts != nil {
		edit().setCounts(in, counts) // hashes' counts hook (typed.go)
	}
	if kept, dropped := freshScoreCounts(local, in.ScoreCountList(), stable); dropped { // sorted-set hook (zset.go)
		edit().setScoreCounts(in, kept)
		setAside = true
	}
	// Elements up to stable that local neither holds nor has traced.
	for _, which := range elemLists {
		var drop []Elem
		in.each(which, func(run []Elem) bool {
			for _, e := range run {
				if e.Dot.TS <= stable && !local.holds(which, e) {
					drop = append(drop, e)
				}
			}
			return true
		})
		if len(drop) == 0 {
			continue
		}
		setAside = true
		e := edit()
		if in.big != nil {
			if e.big == in.big {
				e.big = in.bigCopy()
			}
			for _, d := range drop {
				e.big.delete(which, d, nil)
			}
			if which == listScored { // sorted-set hook (zset.go)
				e.big.scores = scoreIndex(e.big)
			}
			continue
		}
		kept := make([]Elem, 0, len(in.list(which))-len(drop))
		for _, x := range in.list(which) {
			if !(x.Dot.TS <= stable && !local.holds(which, x)) {
				kept = append(kept, x)
			}
		}
		if len(kept) == 0 {
			kept = nil
		}
		switch which {
		case listFields:
			e.Fields = kept
		case listMembers:
			e.Members = kept
		case listList:
			e.Listed = kept
		default:
			e.Scored = kept
		}
	}
	if h := in.HLL; h != nil { // HyperLogLog hook (record/hll.go)
		var lh *HLL
		if local != nil {
			lh = local.HLL
		}
		if kept, dropped := freshEpochs(lh, h, stable); dropped {
			setAside = true
			edit().HLL = kept
		}
	}
	if !copied {
		return in, false
	}
	if c.empty() {
		return nil, setAside
	}
	return &c, setAside
}

// holds reports whether t holds element e in list which, or a trace of it.
func (t *Typed) holds(which int, e Elem) bool {
	if t == nil {
		return false
	}
	if t.big != nil {
		return t.big.has(which, e, nil) || t.big.has(listRemoved, e, nil)
	}
	return traced(t.list(which), e) || traced(t.Removed, e)
}

// freshEpochs is sketch in without the epochs up to stable that local
// neither holds nor has removed.
func freshEpochs(local, in *HLL, stable hlc.Timestamp) (*HLL, bool) {
	known := func(e Version) bool {
		if local == nil {
			return false
		}
		for _, l := range local.Epochs {
			if l.Epoch == e {
				return true
			}
		}
		return removed(local.Removed, e)
	}
	var kept []HLLEpoch
	dropped := false
	for i, e := range in.Epochs {
		if e.Epoch.TS <= stable && !known(e.Epoch) {
			if !dropped {
				kept, dropped = append([]HLLEpoch(nil), in.Epochs[:i]...), true
			}
			continue
		}
		if dropped {
			kept = append(kept, e)
		}
	}
	if !dropped {
		return in, false
	}
	c := *in
	c.Epochs = kept
	return &c, true
}
