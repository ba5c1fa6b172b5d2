package gossip

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/mesh"
)

// Stability for garbage collection: mesh.Stability works the stable time
// out; this file feeds it (a sample of the log and clock every stableEvery,
// the peers' acknowledgements and reports, links going up and down), saves the
// stable time before anything uses it, so that a restart does not forget
// what was collected under it, and keeps the forgotten members.

const (
	metaStable = "gc-stable"
	metaForgot = "mesh-forgotten"
	metaAside  = "gc-set-aside-below"
	// stableEvery: the stable time trails the clock by a few of these
	// (and of AckInterval), and a cache of short-lived keys keeps that
	// lag's worth of tombstones and log.
	stableEvery = 250 * time.Millisecond
)

// stabilityLoop samples, works out the stable time and saves it.
func (m *Mesh) stabilityLoop() {
	t := time.NewTicker(stableEvery)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
		m.updateStable(time.Now())
		if err := m.saveForgotten(); err != nil {
			m.log.Warn("forgetting", "err", err)
		}
	}
}

func (m *Mesh) updateStable(now time.Time) {
	seq, ts, err := m.local.Frontier()
	if err != nil {
		return // closing, or the log is failing: try again later
	}
	// Peers acknowledge our local writes (push.go), not the records we
	// applied from others: the sample is at the last local write up to seq,
	// which OnCommit has seen by now (Frontier waited for the commit).
	m.pushMu.Lock()
	local := m.localFloor
	if i := sort.Search(len(m.localSeqs), func(i int) bool { return m.localSeqs[i] > seq }); i > 0 {
		local = max(local, m.localSeqs[i-1])
	}
	local = min(local, seq)
	m.pushMu.Unlock()
	m.mu.Lock()
	m.stab.Sample(local, ts)
	if m.cfg.ForgetAfter > 0 {
		for _, id := range m.stab.Silent(now, m.cfg.ForgetAfter) {
			for p, ps := range m.peers {
				if ps.mid == id {
					m.forgetLocked(p)
					m.log.Warn("member forgotten: silent too long", "peer", p, "since", ps.downSince, "forget-after", m.cfg.ForgetAfter)
				}
			}
		}
	}
	m.stab.Update(now)
	target := m.stab.Stable()
	save := target > m.stableSaved
	m.mu.Unlock()
	if save {
		if err := m.store.PutMetaSync(metaStable, binary.BigEndian.AppendUint64(nil, uint64(target))); err != nil {
			m.log.Warn("save the stable time", "err", err)
			return
		}
		m.mu.Lock()
		m.stableSaved = max(m.stableSaved, target)
		m.mu.Unlock()
	}
}

// Stable is the time up to which every current member has applied every
// write, as saved: what collection may drop and what Fresh filters by.
func (m *Mesh) Stable() hlc.Timestamp {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stableSaved
}

// loadStability reads the saved stable time and the forgotten members.
func (m *Mesh) loadStability() error {
	b, _, err := m.store.GetMeta(metaStable)
	if err != nil {
		return fmt.Errorf("read the stable time: %w", err)
	}
	if len(b) == 8 {
		m.stableSaved = hlc.Timestamp(binary.BigEndian.Uint64(b))
	}
	if b, _, err := m.store.GetMeta(metaAside); err != nil {
		return fmt.Errorf("read what was set aside: %w", err)
	} else if len(b) == 8 {
		m.asideDone = hlc.Timestamp(binary.BigEndian.Uint64(b))
	}
	m.forgot = map[peer.ID]bool{}
	m.stab = mesh.NewStability(mesh.PeerID(m.cfg.NodeIDOf(m.h.ID())), m.stableSaved)
	m.stab.SetAside(m.asideDone)
	b, _, err = m.store.GetMeta(metaForgot)
	if err != nil {
		return fmt.Errorf("read the forgotten members: %w", err)
	}
	if len(b) > 0 {
		var ids []string
		if err := json.Unmarshal(b, &ids); err != nil {
			return fmt.Errorf("read the forgotten members: %w", err)
		}
		for _, s := range ids {
			if id, err := peer.Decode(s); err == nil {
				m.forgot[id] = true
				m.stab.Forget(mesh.PeerID(m.cfg.NodeIDOf(id)))
			}
		}
	}
	return nil
}

// Forget removes a member from the mesh's membership: it no longer holds
// collection back, and is not dialled. If it comes back, what it holds from
// before the stable time is set aside (record.Fresh), not merged.
func (m *Mesh) Forget(id peer.ID) error {
	m.mu.Lock()
	m.forgetLocked(id)
	m.mu.Unlock()
	if err := m.saveForgotten(); err != nil {
		return err
	}
	m.log.Warn("member forgotten", "peer", id)
	return nil
}

func (m *Mesh) forgetLocked(id peer.ID) {
	m.forgot[id] = true
	m.forgotDirty = true
	delete(m.wanted, id)
	m.peersDirty = true
	m.stab.Forget(mesh.PeerID(m.cfg.NodeIDOf(id)))
}

func (m *Mesh) forgottenList() []string {
	ids := make([]string, 0, len(m.forgot))
	for id := range m.forgot {
		ids = append(ids, id.String())
	}
	return ids
}

// returned tells the stability that ps's link came up, and notes whether
// ps is a forgotten member that connected again (m.mu held): it is a member
// again from now on, and counted.
func (m *Mesh) returned(ps *peerState) {
	if !m.stab.LinkUp(ps.mid) && !m.forgot[ps.id] {
		return
	}
	delete(m.forgot, ps.id)
	m.forgotDirty = true
	ps.asideBelow = m.stableSaved
	m.st.forgottenReturned.Add(1)
	m.log.Warn("a forgotten member is back: its writes from before the stable time are set aside", "peer", ps.id, "stable", m.stableSaved)
}

// saveForgotten saves the forgotten members if they changed.
func (m *Mesh) saveForgotten() error {
	m.mu.Lock()
	if !m.forgotDirty {
		m.mu.Unlock()
		return nil
	}
	m.forgotDirty = false
	ids := m.forgottenList()
	m.mu.Unlock()
	b, _ := json.Marshal(ids)
	if err := m.store.PutMetaSync(metaForgot, b); err != nil {
		m.mu.Lock()
		m.forgotDirty = true // the next tick tries again
		m.mu.Unlock()
		return fmt.Errorf("save the forgotten members: %w", err)
	}
	return nil
}

// asideHorizon is the time up to which the writes in p's records that this
// node no longer holds are set aside: the stable time when p, a forgotten
// member, came back; 0 for every other peer, whose records merge as they
// are (a member has applied every delete the stable time covers, and a
// newcomer's writes were never deleted).
func (m *Mesh) asideHorizon(p peer.ID) hlc.Timestamp {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ps := m.peers[p]; ps != nil {
		return ps.asideBelow
	}
	return 0
}

// forgottenBy runs when peer p says it forgot this node and sets aside what
// it holds from up to horizon: this node sets the same aside in its own
// keyspace, once per horizon, so that it does not keep (and serve) keys the
// mesh deleted and collected while it was away; Merkle repair then refills
// what the mesh still holds.
func (m *Mesh) forgottenBy(p peer.ID, horizon hlc.Timestamp) {
	m.mu.Lock()
	if horizon <= m.asideDone || m.asideRunning {
		m.mu.Unlock()
		return
	}
	m.asideRunning = true
	m.mu.Unlock()
	m.log.Warn("this node was forgotten by the mesh: setting aside what it holds from before it came back", "peer", p, "horizon", horizon)
	m.goRun(func() {
		defer func() {
			m.mu.Lock()
			m.asideRunning = false
			m.mu.Unlock()
		}()
		n, err := m.local.SetAsideBelow(horizon)
		if err != nil {
			m.log.Error("set aside what this node held before it was forgotten", "err", err)
			return
		}
		if err := m.store.PutMetaSync(metaAside, binary.BigEndian.AppendUint64(nil, uint64(horizon))); err != nil {
			m.log.Error("save what was set aside", "err", err)
			return
		}
		m.mu.Lock()
		m.asideDone = max(m.asideDone, horizon)
		m.stab.SetAside(horizon) // a floor of catch-up's horizon from now on
		m.mu.Unlock()
		m.log.Warn("set aside what this node held before it was forgotten", "keys", n, "horizon", horizon)
	})
}
