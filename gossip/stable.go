package gossip

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/mesh"
)

// Stability for garbage collection: the replicator works the stable time
// out; this file feeds it a sample of the log and the clock every tick,
// saves the stable time before anything uses it, so that a restart does
// not forget what was collected under it, and keeps the forgotten members.

const (
	metaStable = "gc-stable"
	metaForgot = "mesh-forgotten"
	metaAside  = "gc-set-aside-below"
)

// tick is the replicator's periodic round, fed a sample of the log and
// the clock; the forgotten members are saved if they changed. It returns
// when the next is due (mesh.Replicator.TickInterval).
func (m *Mesh) tick(now time.Time) (next time.Duration) {
	local, ts, ok := m.sample()
	m.step(func() {
		if ok {
			m.r.Sample(local, ts)
		}
		m.r.Tick(now)
		next = m.r.TickInterval(m.cfg.AckInterval)
	})
	if err := m.saveForgotten(); err != nil {
		m.log.Warn("forgetting", "err", err)
	}
	return next
}

// sample is the last local write with every log entry up to it committed,
// and the clock read with it (mesh.Stability.Sample).
func (m *Mesh) sample() (uint64, hlc.Timestamp, bool) {
	seq, ts, err := m.local.Frontier()
	if err != nil {
		return 0, 0, false // closing, or the log is failing: try again later
	}
	// Peers acknowledge our local writes (push.go), not the records we
	// applied from others: the sample is at the last local write up to seq,
	// which OnCommit has seen by now (Frontier waited for the commit).
	m.pushMu.Lock()
	defer m.pushMu.Unlock()
	return min(m.localSeqs.atOrBefore(seq), seq), ts, true
}

// saveStable saves the stable time, before anything uses it.
func (m *Mesh) saveStable(ts hlc.Timestamp) error {
	return m.store.PutMetaSync(metaStable, binary.BigEndian.AppendUint64(nil, uint64(ts)))
}

// Stable is the time up to which every current member has applied every
// write, as saved: what collection may drop and what Fresh filters by.
func (m *Mesh) Stable() hlc.Timestamp {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.r.Stable()
}

// loadStability reads the saved stable time, the horizon this node set
// its writes aside up to and the forgotten members, for the replicator.
func (m *Mesh) loadStability() (mesh.ReplicatorConfig, error) {
	var rc mesh.ReplicatorConfig
	b, _, err := m.store.GetMeta(metaStable)
	if err != nil {
		return rc, fmt.Errorf("read the stable time: %w", err)
	}
	if len(b) == 8 {
		rc.Stable = hlc.Timestamp(binary.BigEndian.Uint64(b))
	}
	if b, _, err := m.store.GetMeta(metaAside); err != nil {
		return rc, fmt.Errorf("read what was set aside: %w", err)
	} else if len(b) == 8 {
		rc.Aside = hlc.Timestamp(binary.BigEndian.Uint64(b))
	}
	b, _, err = m.store.GetMeta(metaForgot)
	if err != nil {
		return rc, fmt.Errorf("read the forgotten members: %w", err)
	}
	if len(b) > 0 {
		var ids []string
		if err := json.Unmarshal(b, &ids); err != nil {
			return rc, fmt.Errorf("read the forgotten members: %w", err)
		}
		for _, s := range ids {
			if id, err := peer.Decode(s); err == nil {
				m.forgot[id] = true
				rc.Forgotten = append(rc.Forgotten, m.midOf(id))
			}
		}
	}
	return rc, nil
}

// Forget removes a member from the mesh's membership: it no longer holds
// collection back, and is not dialled. If it comes back, what it holds from
// before the stable time is set aside (record.Fresh), not merged.
func (m *Mesh) Forget(id peer.ID) error {
	m.step(func() {
		m.r.Forget(m.midOf(id))
		m.forgetLocked(id)
	})
	if err := m.saveForgotten(); err != nil {
		return err
	}
	m.log.Warn("member forgotten", "peer", id)
	return nil
}

// forgetLocked is the mesh's side of forgetting id: saved, not dialled
// (m.mu held).
func (m *Mesh) forgetLocked(id peer.ID) {
	m.forgot[id] = true
	m.forgotDirty = true
	delete(m.wanted, id)
	m.peersDirty = true
}

func (m *Mesh) forgottenList() []string {
	ids := make([]string, 0, len(m.forgot))
	for id := range m.forgot {
		ids = append(ids, id.String())
	}
	return ids
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
	return m.r.AsideBelow(m.midOf(p))
}

// setAside runs when a peer said it forgot this node and sets aside what
// it holds from up to horizon: this node sets the same aside in its own
// keyspace (the replicator asks once per horizon), so that it does not
// keep (and serve) keys the mesh deleted and collected while it was away;
// Merkle repair then refills what the mesh still holds.
func (m *Mesh) setAside(horizon hlc.Timestamp) {
	m.log.Warn("this node was forgotten by the mesh: setting aside what it holds from before it came back", "horizon", horizon)
	m.goRun(func() {
		n, err := m.local.SetAsideBelow(horizon)
		if err != nil {
			m.log.Error("set aside what this node held before it was forgotten", "err", err)
			return
		}
		if err := m.store.PutMetaSync(metaAside, binary.BigEndian.AppendUint64(nil, uint64(horizon))); err != nil {
			m.log.Error("save what was set aside", "err", err)
			return
		}
		m.step(func() { m.r.AsideDone(horizon) }) // a floor of catch-up's horizon from now on
		m.log.Warn("set aside what this node held before it was forgotten", "keys", n, "horizon", horizon)
	})
}
