package gossip

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/sim"
)

// decisions records, per node and per peer, the replication decisions of a
// run that two runs of one scenario must agree on.
type decisions struct {
	mu  sync.Mutex
	log map[int]map[int][]string // node → peer → decisions
}

// add records what rd decided at node self; peer gives a peer's node.
func (d *decisions) add(self int, rd mesh.Ready, peer func(mesh.PeerID) int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.log == nil {
		d.log = map[int]map[int][]string{}
	}
	note := func(p mesh.PeerID, what string) {
		if d.log[self] == nil {
			d.log[self] = map[int][]string{}
		}
		i := peer(p)
		d.log[self][i] = append(d.log[self][i], what)
	}
	for _, x := range rd.Reads {
		if x.First {
			note(x.Peer, fmt.Sprintf("catch-up from %d", x.Req.From))
		}
	}
	for _, x := range rd.CaughtUp {
		note(x.Peer, "caught up")
	}
	for _, x := range rd.Reconciles {
		note(x.Peer, "reconcile")
	}
	for _, x := range rd.Bootstraps {
		note(x.Peer, "bootstrap")
	}
	for _, p := range rd.Sessions {
		note(p, "session")
	}
}

func (d *decisions) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(d.log)) {
		for _, p := range slices.Sorted(maps.Keys(d.log[n])) {
			fmt.Fprintf(&b, "node %d, peer %d: %s\n", n, p, strings.Join(d.log[n][p], ", "))
		}
	}
	return b.String()
}

// TestSimulatorAndMeshDecideAlike: one scenario (three linked nodes, no
// anti-entropy; a write at node 0; node 2 cut off from both others; a
// second write at node 0; the partition heals) run by the simulator and by
// three meshes over the in-memory transport gives the same replication
// decisions.
//
// The same means: per node and per peer, the same catch-ups from the same
// cursors (sequence numbers in the peer's log; epochs are random), each
// ending caught up, and no fallback, bootstrap or session. Not compared,
// as they follow time rather than the scenario: how the decisions of
// different peers interleave (links come up in another order), how many
// entries each catch-up read (the first of two catch-ups a healed node
// runs brings the write, and the second finds equal roots), reads after a
// catch-up's first (reply sizes), acknowledgements, cursor saves, syncs
// and the stable time (ticks). Decisions before the scenario begins are
// not recorded: the simulator starts its nodes linked and caught up, the
// meshes link and catch up first.
func TestSimulatorAndMeshDecideAlike(t *testing.T) {
	var simulated decisions
	sc := &sim.Scenario{Name: "decide-alike", Nodes: 3, Events: []sim.Event{
		{At: sim.Duration(time.Second), Set: &sim.Set{Node: 0, Key: "k1", Value: "1"}},
		{At: sim.Duration(2 * time.Second), Partition: []sim.NodeSet{"2"}},
		{At: sim.Duration(3 * time.Second), Set: &sim.Set{Node: 0, Key: "k2", Value: "2"}},
		{At: sim.Duration(4 * time.Second), Heal: true},
	}}
	cfg := sim.Config{
		Seed: 1, Nodes: 3, Keys: 1, Degree: 2, SyncInterval: time.Hour, NoCollect: true,
		Network: sim.Network{
			Latency: time.Millisecond, Bandwidth: 1 << 30, RTO: 200 * time.Millisecond,
			Detect: 100 * time.Millisecond, Reconnect: 100 * time.Millisecond,
		},
		Decisions: func(node int, rd mesh.Ready, index func(mesh.PeerID) int) { simulated.add(node, rd, index) },
	}
	if _, err := sim.Run(cfg, sc); err != nil {
		t.Fatal(err)
	}

	n := newMemNet(t)
	var meshed decisions
	var nodes []*Mesh
	var locals []*testLocal
	for range 3 {
		var peers []peer.ID
		for _, m := range nodes {
			peers = append(peers, m.ID())
		}
		m, l := startMemMesh(t, n, nil, peers...)
		nodes, locals = append(nodes, m), append(locals, l)
	}
	quiet := func() bool {
		for _, m := range nodes {
			m.mu.Lock()
			busy := len(m.runs) > 0
			m.mu.Unlock()
			if busy || m.linked.Load() != 2 || !m.Ready() {
				return false
			}
		}
		return true
	}
	waitFor(t, "the links, first syncs and their catch-ups done", quiet)
	index := func(p mesh.PeerID) int {
		for i, m := range nodes {
			if m.midOf(m.self) == p {
				return i
			}
		}
		return -1
	}
	for i, m := range nodes {
		m.mu.Lock()
		m.decisions = func(rd mesh.Ready) { meshed.add(i, rd, index) }
		m.mu.Unlock()
	}
	a, c := nodes[0], nodes[2]
	has := func(l *testLocal, key, val string) bool { return string(l.db.Get([]byte(key)).Value.Data) == val }
	locals[0].set(t, a.cfg.Self, "k1", "1")
	waitFor(t, "k1 everywhere", func() bool { return has(locals[1], "k1", "1") && has(locals[2], "k1", "1") })
	n.partition(c.ID(), nodes[0].ID())
	n.partition(c.ID(), nodes[1].ID())
	waitFor(t, "node 2 alone", func() bool { return c.linked.Load() == 0 })
	locals[0].set(t, a.cfg.Self, "k2", "2")
	waitFor(t, "k2 at node 1", func() bool { return has(locals[1], "k2", "2") })
	n.heal(c.ID(), nodes[0].ID())
	n.heal(c.ID(), nodes[1].ID())
	waitFor(t, "k2 at node 2, every catch-up done", func() bool { return has(locals[2], "k2", "2") && quiet() })
	if got, want := meshed.String(), simulated.String(); got != want {
		t.Fatalf("decisions differ\nmeshes:\n%s\nsimulator:\n%s", got, want)
	}
	t.Logf("decisions:\n%s", simulated.String())
}
