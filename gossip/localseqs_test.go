package gossip

import (
	"math/rand/v2"
	"testing"

	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// TestLocalSeqsMatchEachPosition: the runs answer as the list of every
// local write's position would, and past the bound as that list cut at
// the same position.
func TestLocalSeqsMatchEachPosition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, limit := range []int{4, 64, 0} {
		l := localSeqs{floor: 10, limit: limit}
		floor := uint64(10)
		var all []uint64
		seq := uint64(10)
		for range 5000 {
			// A run of local writes, then maybe peers' records between.
			for range rng.IntN(5) + 1 {
				seq++
				l.add(seq)
				all = append(all, seq)
			}
			seq += uint64(rng.IntN(3))
			// The reference drops what the runs dropped: writes up to the
			// floor, which must be the end of a run.
			if l.floor != floor {
				floor = l.floor
				for len(all) > 0 && all[0] <= floor {
					all = all[1:]
				}
			}
			for range 4 {
				q := uint64(rng.IntN(int(seq+5-floor))) + floor - 2
				want := floor
				n := 0
				for _, s := range all {
					if s <= q {
						want = max(want, s)
					} else {
						n++
					}
				}
				if got := l.atOrBefore(q); got != want {
					t.Fatalf("limit %d: atOrBefore(%d) = %d, want %d", limit, q, got, want)
				}
				if got := l.after(q); got != n {
					t.Fatalf("limit %d: after(%d) = %d, want %d", limit, q, got, n)
				}
			}
		}
		if limit != 0 && len(l.runs) > limit {
			t.Fatalf("limit %d: %d runs kept", limit, len(l.runs))
		}
		if limit != 0 && floor == 10 {
			t.Fatalf("limit %d: nothing dropped", limit)
		}
	}
}

// TestLoneNodeLocalSeqsBounded: a node alone that took a million writes
// keeps a few bytes of their positions, not 8 a write.
func TestLoneNodeLocalSeqsBounded(t *testing.T) {
	m, _ := startTestMesh(t)
	self := record.NodeID(m.cfg.Self)
	m.pushMu.Lock()
	seq := m.lastLocal
	m.pushMu.Unlock()
	es := make([]wal.Entry, 1000)
	for range 1000 {
		for i := range es {
			seq++
			v := record.Version{TS: 1, Node: self}
			es[i] = wal.Entry{Seq: seq, Key: []byte("k"), Now: [3]record.Version{v, v}, Record: record.Record{Value: record.Value{Version: v}}}
		}
		m.Committed(es)
	}
	m.pushMu.Lock()
	defer m.pushMu.Unlock()
	if n := cap(m.localSeqs.runs); n > 4 {
		t.Errorf("after 1,000,000 local writes, room for %d runs of positions kept, want a few", n)
	}
	if got := m.localSeqs.after(seq - 10); got != 10 {
		t.Errorf("local writes after the tenth last: %d, want 10", got)
	}
	if got := m.localSeqs.atOrBefore(seq - 1); got != seq-1 {
		t.Errorf("last local write at or before %d: %d", seq-1, got)
	}
}

// TestRootHeadIsCommitted: the head and last local write a session's root
// is sent with are those Committed has seen: the log's own head moves at
// its commit, before the hook, and a local write counted in it but not yet
// in the last local write would let a peer count it as applied without
// having it.
func TestRootHeadIsCommitted(t *testing.T) {
	m, _ := startTestMesh(t)
	self := record.NodeID(m.cfg.Self)
	base, _ := m.rootHead()
	entry := func(seq uint64, node record.NodeID) wal.Entry {
		v := record.Version{TS: 1, Node: node}
		return wal.Entry{Seq: seq, Key: []byte("k"), Now: [3]record.Version{v, v}, Record: record.Record{Value: record.Value{Version: v}}}
	}
	m.Committed([]wal.Entry{entry(base, self), entry(base+1, self+1)})
	if head, own := m.rootHead(); head != base+2 || own != base {
		t.Errorf("head %d, own %d; want %d, %d", head, own, base+2, base)
	}
	m.Committed([]wal.Entry{entry(base+2, self+1), entry(base+3, self)})
	if head, own := m.rootHead(); head != base+4 || own != base+3 {
		t.Errorf("head %d, own %d; want %d, %d", head, own, base+4, base+3)
	}
}
