package gossip

import (
	"fmt"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/mesh"
)

// PeerInfo is what INFO shows about one peer.
type PeerInfo struct {
	ID        string
	Addr      string
	Connected bool
	LastSync  time.Time // end of the last Merkle session with it
	Acked     uint64    // our local writes it acknowledged, up to this seq
	Unacked   int       // our local writes it has not acknowledged
	Cursor    string    // where we are in its log: epoch:next, or "none"
	BytesIn   int64
	BytesOut  int64
	// Behind is how many entries of the peer's log, as far as we know its
	// head, we have not applied; BehindFor how long since we last held all
	// of it (0 when not behind).
	Behind    uint64
	BehindFor time.Duration
	// AckLag is how long since the peer last acknowledged our writes, while
	// some are unacknowledged (0 otherwise), as Redis's replica lag.
	AckLag time.Duration
	// Root is the peer's Merkle root as it last reported it (RootKnown).
	Root      uint64
	RootKnown bool
	// Bootstrap is the progress of the snapshot this peer streams to us
	// (zero for the others).
	Bootstrap mesh.BootstrapState
	// Stable is how far the peer said every member has applied its
	// writes; Forgotten whether it was forgotten.
	Stable    hlc.Timestamp
	Forgotten bool
}

// Info is a snapshot of the mesh for INFO.
type Info struct {
	PeerID       string
	Addrs        []string
	Epoch        uint64
	LastLocalSeq uint64
	Connected    int
	Peers        []PeerInfo

	Sessions, SessionsFailed, SessionsEqual, KeysRepaired uint64
	CatchUps, CatchUpsByLog, CatchUpEntries, Fallbacks    uint64
	PushBatches, PushRecords                              uint64
	// PushReceived counts the records of every push that arrived, its
	// origin's or relayed, copies already held included; PushApplied
	// those of them that changed something here.
	PushReceived, PushApplied uint64
	PushDropped, BadMessages  uint64
	// PushDroppedStream is the part of PushDropped dropped at a peer's
	// push stream (its queue full), once for each peer; the rest was
	// dropped before, at the queue of local writes waiting to be pushed.
	PushDroppedStream uint64
	// PushRelayed counts the copies of other nodes' pushes sent on to a
	// peer, once for each peer whose queue took one (mesh.Replicator.Relay);
	// PushHeld the copies that arrived with every record already here,
	// dropped unmerged (mesh.Replicator.PushHeld). On a full mesh pushes
	// carry no hop budget: nothing is relayed, and only a push a catch-up
	// from its origin's log brought first is held. PushRelayDropped counts
	// the copies Relay named a peer for that its push stream's queue could
	// not take (anti-entropy repairs them), once for each peer.
	PushRelayed, PushRelayDropped, PushHeld uint64

	// ExpectSync: peers were known at start; Synced: a catch-up or a
	// Merkle session with one has completed since.
	ExpectSync, Synced bool
	// Bootstrapping: a snapshot is wanted or streaming; Bootstrap its
	// progress (kept after it ends, until the next).
	Bootstrapping             bool
	Bootstrap                 mesh.BootstrapState
	Bootstraps, BootstrapKeys uint64
	SnapshotsServed           uint64

	// Garbage collection (stable.go): the stable time in use, how far our
	// own writes are stable, the member holding the stable time back and
	// since when it has not moved; forgotten members, and how many came back.
	Stable, OwnStable hlc.Timestamp
	Holder            string
	StableStuckSince  time.Time
	Forgotten         int
	ForgottenReturned uint64
}

// SyncInProgress reports whether the node is still in its first sync with
// the mesh: a bootstrap wanted or under way, or, where peers were known at
// start, no completed catch-up or session yet (Redis's
// master_sync_in_progress, and what --serve-stale-data no waits for).
func (m *Mesh) SyncInProgress() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.r.Table().Bootstrapping() || m.expectSync && !m.synced.Load()
}

// Ready reports whether the node has what it needs to serve: where peers
// were known at start, one completed sync with one of them.
func (m *Mesh) Ready() bool {
	m.mu.Lock()
	expect := m.expectSync
	m.mu.Unlock()
	return !expect || m.synced.Load()
}

// Info returns a snapshot of the mesh.
func (m *Mesh) Info() Info {
	in := Info{PeerID: m.self.String(), Addrs: m.Addrs(), Epoch: m.epoch, Synced: m.synced.Load()}
	now := time.Now()
	ackedAt := map[string]time.Time{}
	m.mu.Lock()
	in.ExpectSync = m.expectSync
	stab := m.r.Stability()
	in.Stable, in.OwnStable, in.StableStuckSince = m.r.Stable(), stab.Own(), stab.MovedAt()
	holder := stab.Holder()
	in.Holder, in.Forgotten = fmt.Sprintf("%016x", uint64(holder)), stab.ForgottenCount()
	if holder == m.midOf(m.self) {
		in.Holder = "self"
	} else if p, ok := m.pids[holder]; ok {
		in.Holder = p.String()
	}
	in.Bootstrap, in.Bootstrapping = m.r.Table().BootstrapProgress()
	for _, ps := range m.peers {
		tp := m.r.Table().Get(ps.mid)
		if tp == nil {
			continue
		}
		pp := m.r.Peer(ps.mid)
		pi := PeerInfo{ID: ps.id.String(), Addr: ps.addr, Connected: ps.connected, LastSync: ps.lastSync, Acked: pp.Acked, Cursor: "none"}
		if tp.HasCursor {
			pi.Cursor = fmt.Sprintf("%d:%d", tp.Cursor.Epoch, tp.Cursor.Next)
		}
		pi.Root, pi.RootKnown = tp.Root, tp.RootKnown
		pi.Stable, pi.Forgotten = stab.ReportedBy(ps.mid), stab.Forgotten(ps.mid)
		if in.Bootstrap.Begun && in.Bootstrap.Peer == ps.mid {
			pi.Bootstrap = in.Bootstrap
		}
		if pi.Behind = pp.Behind; pi.Behind > 0 && !pp.CaughtUpAt.IsZero() {
			pi.BehindFor = now.Sub(pp.CaughtUpAt)
		}
		ackedAt[pi.ID] = pp.AckedAt
		if ps.connected {
			in.Connected++
		}
		in.Peers = append(in.Peers, pi)
	}
	m.mu.Unlock()
	m.pushMu.Lock()
	in.LastLocalSeq = m.lastLocal
	for i := range in.Peers {
		in.Peers[i].Unacked = m.unacked(in.Peers[i].Acked)
		if at := ackedAt[in.Peers[i].ID]; in.Peers[i].Unacked > 0 && !at.IsZero() {
			in.Peers[i].AckLag = now.Sub(at)
		}
	}
	m.pushMu.Unlock()
	for i := range in.Peers {
		id, err := peer.Decode(in.Peers[i].ID)
		if err != nil {
			continue
		}
		in.Peers[i].BytesIn, in.Peers[i].BytesOut = m.tr.Traffic(id)
	}
	sort.Slice(in.Peers, func(i, j int) bool { return in.Peers[i].ID < in.Peers[j].ID })
	in.Sessions, in.SessionsFailed, in.SessionsEqual = m.st.sessions.Load(), m.st.sessionsFailed.Load(), m.st.sessionsEqual.Load()
	in.KeysRepaired = m.st.keysRepaired.Load()
	in.CatchUps, in.CatchUpsByLog, in.CatchUpEntries, in.Fallbacks = m.st.catchUps.Load(), m.st.catchUpsByLog.Load(), m.st.catchUpEntries.Load(), m.st.fallbacks.Load()
	in.PushBatches, in.PushRecords = m.st.pushBatches.Load(), m.st.pushRecords.Load()
	in.PushReceived, in.PushApplied, in.PushDropped = m.st.pushReceived.Load(), m.st.pushApplied.Load(), m.st.pushDropped.Load()
	in.PushDroppedStream = m.st.pushDroppedStream.Load()
	in.PushRelayed, in.PushRelayDropped, in.PushHeld = m.st.pushRelayed.Load(), m.st.pushRelayDropped.Load(), m.st.pushHeld.Load()
	in.BadMessages = m.st.badMessages.Load()
	in.Bootstraps, in.BootstrapKeys, in.SnapshotsServed = m.st.bootstraps.Load(), m.st.bootstrapKeys.Load(), m.st.snapshotsServed.Load()
	in.ForgottenReturned = m.st.forgottenReturned.Load()
	return in
}
