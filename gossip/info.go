package gossip

import (
	"fmt"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
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
	PushBatches, PushRecords, PushReceived, PushApplied   uint64
	PushDropped, BadMessages                              uint64
}

// Info returns a snapshot of the mesh.
func (m *Mesh) Info() Info {
	in := Info{PeerID: m.h.ID().String(), Addrs: m.Addrs(), Epoch: m.epoch}
	m.mu.Lock()
	for _, ps := range m.peers {
		if !ps.inTable {
			continue
		}
		pi := PeerInfo{ID: ps.id.String(), Addr: ps.addr, Connected: ps.connected, LastSync: ps.lastSync, Acked: ps.acked, Cursor: "none"}
		if p := m.table.Get(ps.mid); p != nil && p.HasCursor {
			pi.Cursor = fmt.Sprintf("%d:%d", p.Cursor.Epoch, p.Cursor.Next)
		}
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
	}
	m.pushMu.Unlock()
	for i := range in.Peers {
		id, err := peer.Decode(in.Peers[i].ID)
		if err != nil {
			continue
		}
		st := m.bw.GetBandwidthForPeer(id)
		in.Peers[i].BytesIn, in.Peers[i].BytesOut = st.TotalIn, st.TotalOut
	}
	sort.Slice(in.Peers, func(i, j int) bool { return in.Peers[i].ID < in.Peers[j].ID })
	in.Sessions, in.SessionsFailed, in.SessionsEqual = m.st.sessions.Load(), m.st.sessionsFailed.Load(), m.st.sessionsEqual.Load()
	in.KeysRepaired = m.st.keysRepaired.Load()
	in.CatchUps, in.CatchUpsByLog, in.CatchUpEntries, in.Fallbacks = m.st.catchUps.Load(), m.st.catchUpsByLog.Load(), m.st.catchUpEntries.Load(), m.st.fallbacks.Load()
	in.PushBatches, in.PushRecords = m.st.pushBatches.Load(), m.st.pushRecords.Load()
	in.PushReceived, in.PushApplied, in.PushDropped = m.st.pushReceived.Load(), m.st.pushApplied.Load(), m.st.pushDropped.Load()
	in.BadMessages = m.st.badMessages.Load()
	return in
}
