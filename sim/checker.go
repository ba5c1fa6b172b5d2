package sim

import (
	"fmt"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/record"
)

// tracker follows, key by key, how far the live nodes are from agreeing,
// cheaply enough to sample often: best is the merge (by record.Merge, the
// reference rule) of every live node's record, and cnt the number of live
// nodes holding exactly that. A key is divergent while cnt < live.
type tracker struct {
	best []record.Record
	cnt  []int32
	live int
}

func (t *tracker) grow(n int) {
	for len(t.best) < n {
		t.best = append(t.best, record.Record{})
		t.cnt = append(t.cnt, 0)
	}
}

func (t *tracker) add(id uint32, r record.Record) {
	if !r.Written() {
		return
	}
	m := record.Merge(t.best[id], r)
	switch {
	case !record.Equal(m, t.best[id]):
		t.best[id] = m
		t.cnt[id] = 0
		if record.Equal(r, m) {
			t.cnt[id] = 1
		}
	case record.Equal(r, t.best[id]):
		t.cnt[id]++
	}
}

// remove takes r (held by a live node) out of the count; if that leaves
// nobody with the best record, best is recomputed from the live nodes (the
// only holder crashed, or a rule went backwards).
func (t *tracker) remove(s *Sim, id uint32, r record.Record) {
	if r.Written() && record.Equal(r, t.best[id]) {
		t.cnt[id]--
		if t.cnt[id] == 0 {
			t.recompute(s, id)
		}
	}
}

func (t *tracker) recompute(s *Sim, id uint32) {
	t.best[id], t.cnt[id] = record.Record{}, 0
	for _, n := range s.nodes {
		if n.up {
			t.add(id, n.st.get(id))
		}
	}
}

func (t *tracker) change(s *Sim, n *node, id uint32, old, new record.Record) {
	if !n.up {
		return
	}
	if old.Written() && record.Equal(old, t.best[id]) {
		t.cnt[id]--
		t.add(id, new)
		if t.cnt[id] == 0 {
			t.recompute(s, id)
		}
		return
	}
	t.add(id, new)
}

func (t *tracker) nodeUp(s *Sim, n *node) {
	t.live++
	for id, r := range n.st.all() {
		t.add(id, r)
	}
}

func (t *tracker) nodeDown(s *Sim, n *node) {
	n.up = false // recompute must not count n
	t.live--
	for id, r := range n.st.all() {
		t.remove(s, id, r)
	}
	n.up = true
}

// divergent counts keys on which the live nodes do not all hold the same
// record.
func (t *tracker) divergent() int {
	d := 0
	for id := range t.best {
		if t.best[id].Written() && int(t.cnt[id]) != t.live {
			d++
		}
	}
	return d
}

// writeRec is one acknowledged client write.
type writeRec struct {
	key    uint32
	node   int32
	tomb   bool
	typed  bool // wrote no register, only typed state (checked by checkTyped)
	synced bool // durable at its node (fsync always: at once)
	atRisk bool // its node crashed before syncing it: it may be lost
	ver    record.Version
	ts     hlc.Timestamp // the newest timestamp it wrote (typed writes have no ver)
	at     int64
}

// checker holds what the run must answer for.
type checker struct {
	writes      []writeRec
	typed       []typedOp // acknowledged typed writes, in order
	unavailable int64     // writes refused: node down or clock failed
	rejected    int64     // commands refused: WRONGTYPE, not an integer
	// lastInc is the version of each node's latest increment of each
	// counter, and staleCounts the increments built on an older count of
	// the node's own (a crash lost the newer).
	lastInc       map[countKey]record.Version
	staleCounts   int64
	regressions   int64 // merges that replaced a register by an older one
	resurrections int64 // ... of which a tombstone by an older value
	// collected is, per key, the newest removing version (a delete, or an
	// expired value) of a record some node collected: the key is absent
	// there as it would be deleted, and no older value may come back.
	collected []record.Version
	// setAside is, per node index, the horizon up to which its writes were
	// set aside when it came back after being forgotten.
	setAside map[int]hlc.Timestamp
}

func (ck *checker) noteCollected(id uint32, r record.Record) {
	for int(id) >= len(ck.collected) {
		ck.collected = append(ck.collected, record.Version{})
	}
	if r.Value.Version.Compare(ck.collected[id]) > 0 {
		ck.collected[id] = r.Value.Version
	}
}

func (ck *checker) collectedAt(id uint32) record.Version {
	if int(id) < len(ck.collected) {
		return ck.collected[id]
	}
	return record.Version{}
}

func (ck *checker) setAsideAt(node int, h hlc.Timestamp) {
	if ck.setAside == nil {
		ck.setAside = map[int]hlc.Timestamp{}
	}
	ck.setAside[node] = max(ck.setAside[node], h)
}

// wasSetAside reports whether write w was one its node's peers set aside
// when it came back after being forgotten (record.Fresh): allowed.
func (ck *checker) wasSetAside(w *writeRec) bool {
	h := ck.setAside[int(w.node)]
	return w.node >= 0 && h != 0 && w.ts <= h
}

// Check is the verdict on a run.
type Check struct {
	LiveNodes      int        `json:"live_nodes"`
	Keys           int        `json:"keys"`
	DivergentKeys  int        `json:"divergent_keys"`
	DistinctRoots  int        `json:"distinct_roots"`
	Acknowledged   int        `json:"acknowledged_writes"`
	Unavailable    int64      `json:"unavailable_writes"`
	AtRisk         int        `json:"at_risk_writes"`       // acknowledged, unsynced when their node crashed
	AtRiskLost     int        `json:"at_risk_lost"`         // ... and indeed gone: allowed by the fsync mode
	DepartedOrigin int        `json:"departed_origin"`      // written at a node that later left for good
	DepartedLost   int        `json:"departed_origin_lost"` // ... and gone with it: allowed
	OriginDown     int        `json:"origin_down_lost"`     // gone from the live nodes but on its node's disk, which is down
	SetAsideLost   int        `json:"set_aside_lost"`       // written at a forgotten node before the horizon of its return: set aside, allowed
	Collected      int        `json:"collected"`            // absent, or without a value register: it, or a newer delete or expiry, was collected with its key
	Superseded     int        `json:"superseded"`           // survived as a newer version of the key
	Lost           int        `json:"lost_writes"`          // must have survived and did not
	Resurrections  int64      `json:"resurrections"`        // deleted keys that came back
	Regressions    int64      `json:"regressions"`          // merges that went backwards
	HLCRefused     int64      `json:"hlc_refused"`          // remote timestamps refused for skew
	Typed          TypedCheck `json:"typed"`
}

// check runs the end-of-run checks and returns the verdict and the
// failures, if any.
func (s *Sim) check() (Check, []string) {
	var c Check
	var live []*node
	for _, n := range s.nodes {
		if n.up {
			live = append(live, n)
		}
		c.HLCRefused += int64(n.refused)
		if n.up {
			c.HLCRefused += int64(n.clock.Refused())
		}
	}
	c.LiveNodes, c.Keys = len(live), s.keys.len()
	c.Unavailable, c.Regressions, c.Resurrections = s.ck.unavailable, s.ck.regressions, s.ck.resurrections
	var fails []string
	if len(live) == 0 {
		return c, []string{"no live node at the end"}
	}
	// 1. Convergence: identical records and identical roots. Node by node
	// (and below, for the writes), so that each node's store is read while
	// it is in the cache: key by key, every read was a miss. A key two
	// nodes both still hold from the shared preload is one record, read
	// from one slice, and needs no comparison: the reference is a node
	// that shares the preload, if one is live.
	ref := live[0]
	for _, n := range live {
		if n.st.base != nil {
			ref = n
			break
		}
	}
	differs := make([]bool, s.keys.len())
	for _, n := range live {
		if n == ref {
			continue
		}
		shared := n.st.sharesBase(ref.st)
		for id := range differs {
			if differs[id] || shared && n.st.fromBase(uint32(id)) && ref.st.fromBase(uint32(id)) {
				continue
			}
			if !record.Equal(n.st.get(uint32(id)), ref.st.get(uint32(id))) {
				differs[id] = true
				c.DivergentKeys++
			}
		}
	}
	roots := map[uint64]bool{}
	for _, n := range live {
		roots[n.st.tree.Root()] = true
	}
	c.DistinctRoots = len(roots)
	if c.DivergentKeys > 0 || c.DistinctRoots > 1 {
		fails = append(fails, fmt.Sprintf("did not converge: %d of %d keys differ, %d distinct roots among %d live nodes",
			c.DivergentKeys, c.Keys, c.DistinctRoots, len(live)))
	}
	// 2. Acknowledged writes: each must be on every live node, or a newer
	// version of its key, unless its fsync mode or its node's departure
	// excuses it.
	c.Acknowledged = len(s.ck.writes)
	// What the live nodes hold of each write's key.
	type seen struct{ older, newer, back, collected bool }
	held := make([]seen, len(s.ck.writes))
	for _, n := range live {
		for i := range s.ck.writes {
			w, h := &s.ck.writes[i], &held[i]
			if w.typed {
				continue
			}
			r := n.st.get(w.key)
			switch cmp := r.Value.Version.Compare(w.ver); {
			case r.Value.Version.IsZero() && s.ck.collectedAt(w.key).Compare(w.ver) >= 0:
				// Collected: a delete or expiry at or after w was applied
				// by every member, then dropped with its key. Typed writes
				// since may have made the key again, with no value
				// register (checkTyped judges what they hold).
				h.collected = true
			case cmp < 0:
				h.older = true
				if w.tomb && r.Exists() {
					h.back = true
				}
			case cmp > 0:
				h.newer = true
			}
		}
	}
	var firstLost *writeRec
	for i := range s.ck.writes {
		w := &s.ck.writes[i]
		departed := w.node >= 0 && s.nodes[w.node].gone
		down := w.node >= 0 && !s.nodes[w.node].up
		if w.atRisk {
			c.AtRisk++
		}
		if departed {
			c.DepartedOrigin++
		}
		if w.typed {
			continue // no register to look for; checkTyped judges it
		}
		ok, newer, back, collected, gone := !held[i].older, held[i].newer, held[i].back, held[i].collected, s.ck.collectedAt(w.key)
		switch {
		case ok:
			if collected {
				c.Collected++
			}
			if newer || collected && gone.Compare(w.ver) > 0 {
				c.Superseded++
			}
		case w.atRisk:
			c.AtRiskLost++
		case departed:
			c.DepartedLost++
		case down:
			c.OriginDown++
		case s.ck.wasSetAside(w):
			c.SetAsideLost++
		default:
			c.Lost++
			if back {
				c.Resurrections++
			}
			if firstLost == nil {
				firstLost = w
			}
		}
	}
	if c.Lost > 0 {
		fails = append(fails, fmt.Sprintf("%d acknowledged writes lost (first: %s at node %d, version %v)",
			c.Lost, s.keys.names[firstLost.key], firstLost.node, firstLost.ver))
	}
	if c.Resurrections > 0 {
		fails = append(fails, fmt.Sprintf("%d deleted keys came back", c.Resurrections))
	}
	if c.Regressions > 0 {
		fails = append(fails, fmt.Sprintf("%d merges replaced a newer register with an older one", c.Regressions))
	}
	// 3. Typed state: elements and counters as the acknowledged writes say.
	c.Typed, fails = s.checkTyped(ref, fails)
	return c, fails
}
