package gossip

import (
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/wal"
)

// The replication policy is mesh.Replicator's, the one the simulator runs:
// the mesh tells it what happened, under m.mu (step), and carries out what
// it decided (its Ready): log requests on catch-up streams, fallback
// sessions, snapshot streams, anti-entropy sessions, acknowledgements and
// what a WAIT asks, cursors and the stable time to save, members to forget.

// step tells the replicator what happened (fn runs under m.mu, and may
// change the mesh's own state beside it) and carries out what it decided.
func (m *Mesh) step(fn func()) {
	m.mu.Lock()
	fn()
	rd := m.readyLocked()
	m.mu.Unlock()
	m.carryOut(rd)
}

// readyLocked takes the replicator's decisions and does, under m.mu, what
// must keep their order: log requests go to their catch-up's stream,
// acknowledgements to ackSender's queue, cursors and membership are marked
// to be saved.
func (m *Mesh) readyLocked() mesh.Ready {
	m.r.Synced(m.store.SyncedTo(), m.store.SyncMark())
	rd := m.r.Ready()
	if m.decisions != nil {
		m.decisions(rd)
	}
	// Before the reads: one of them may start the peer's next run.
	for _, x := range rd.CaughtUp {
		m.st.catchUpsByLog.Add(1)
		if x.Entries == 0 {
			continue
		}
		lg := m.log.Debug
		if x.Loud {
			lg = m.log.Info
		}
		args := []any{"peer", m.pids[x.Peer].String(), "entries", x.Entries}
		if lr := m.runs[x.Peer]; lr != nil {
			args = append(args, "took", time.Since(lr.start).Round(time.Millisecond))
		}
		lg("caught up from peer's log", args...)
	}
	for _, x := range rd.Reads {
		m.sendRead(x)
	}
	if len(rd.Acks) > 0 {
		m.acks = append(m.acks, rd.Acks...)
	}
	if rd.SaveCursors {
		m.cursorsDirty = true // saved within seconds (maintain)
	}
	for _, id := range rd.Forget {
		if p, ok := m.pids[id]; ok {
			m.forgetLocked(p)
			m.log.Warn("member forgotten: silent too long", "peer", p, "since", m.peer(p).downSince, "forget-after", m.cfg.ForgetAfter)
		}
	}
	for _, id := range rd.Returned {
		if p, ok := m.pids[id]; ok {
			delete(m.forgot, p)
			m.forgotDirty = true
			m.st.forgottenReturned.Add(1)
			m.log.Warn("a forgotten member is back: its writes from before the stable time are set aside", "peer", p, "stable", m.r.AsideBelow(id))
		}
	}
	m.reapRuns()
	return rd
}

// carryOut does what the replicator decided that takes I/O, outside m.mu.
func (m *Mesh) carryOut(rd mesh.Ready) {
	if len(rd.CaughtUp) > 0 {
		m.synced.Store(true)
	}
	for _, x := range rd.Reconciles {
		p := m.pidOf(x.Peer)
		m.goRun(func() {
			m.st.fallbacks.Add(1)
			start := time.Now()
			m.log.Info("peer's log cannot serve our cursor: reconciling by Merkle", "peer", p.String())
			ok := m.runSession(p, true)
			if ok {
				m.synced.Store(true)
				m.log.Info("reconciled by Merkle instead of the log", "peer", p.String(), "took", time.Since(start).Round(time.Millisecond))
			}
			m.step(func() { m.r.FallbackDone(x.Peer, x.Run, ok) })
		})
	}
	for _, x := range rd.Bootstraps {
		p := m.pidOf(x.Peer)
		m.goRun(func() {
			err := m.bootstrap(p, x.Peer)
			if err != nil && m.ctx.Err() == nil {
				m.log.Warn("bootstrap interrupted: it resumes where it stopped", "peer", p.String(), "err", err)
			}
			m.step(func() { m.r.BootstrapDone(x.Peer, x.Run, err == nil) })
		})
	}
	for _, id := range rd.Sessions {
		p := m.pidOf(id)
		m.goRun(func() {
			m.runSession(p, false)
			m.step(m.r.SessionDone)
		})
	}
	if len(rd.Acks) > 0 {
		m.poke(m.ackSignal)
	}
	for _, x := range rd.Wants {
		m.askAck(x)
	}
	if rd.AckedMoved {
		m.broadcastAck()
	}
	if rd.SaveCursorsNow {
		// One save, which syncs the log first: a cursor is never more
		// durable than the records read under it.
		m.saveCursors()
	}
	if rd.SaveStable != 0 {
		if err := m.saveStable(rd.SaveStable); err != nil {
			m.log.Warn("save the stable time", "err", err)
		} else {
			m.step(func() { m.r.StableSaved(rd.SaveStable) })
		}
	}
	if rd.SetAside != 0 {
		m.setAside(rd.SetAside)
	}
	if rd.SyncWanted && m.store.Fsync() == wal.FsyncNo {
		// Nothing else syncs: ackSender's sync lets the stable time move.
		m.syncWanted.Store(true)
	}
}

// pidOf is the libp2p ID of a peer the replicator names (m.mu not held).
func (m *Mesh) pidOf(id mesh.PeerID) peer.ID {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pids[id]
}

// logRun is one catch-up's stream of log requests to a peer (catchup.go).
type logRun struct {
	peer  peer.ID
	mid   mesh.PeerID
	run   uint64
	start time.Time
	// reqs are the requests the replicator decided on, not yet sent
	// (m.mu); more signals one; stop is closed when the run ended.
	reqs []mesh.LogRequest
	more chan struct{}
	stop chan struct{}
}

// sendRead hands a log request to its catch-up's stream, opening one for
// a new run (m.mu held).
func (m *Mesh) sendRead(x mesh.Read) {
	lr := m.runs[x.Peer]
	if lr == nil || lr.run != x.Run {
		if lr != nil {
			close(lr.stop)
		}
		lr = &logRun{peer: m.pids[x.Peer], mid: x.Peer, run: x.Run, start: time.Now(), more: make(chan struct{}, 1), stop: make(chan struct{})}
		m.runs[x.Peer] = lr
		m.goRun(func() { m.readLog(lr) })
	}
	if x.First {
		m.st.catchUps.Add(1)
	}
	lr.reqs = append(lr.reqs, x.Req)
	m.poke(lr.more)
}

// reapRuns stops the streams of catch-ups that ended (m.mu held).
func (m *Mesh) reapRuns() {
	for id, lr := range m.runs {
		if run, ok := m.r.CatchUpRun(id); !ok || run != lr.run {
			close(lr.stop)
			delete(m.runs, id)
		}
	}
}

// takeReqs takes lr's requests not yet sent, if its run goes on.
func (m *Mesh) takeReqs(lr *logRun) (reqs []mesh.LogRequest, live bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-lr.stop:
		return nil, false
	default:
	}
	reqs, lr.reqs = lr.reqs, nil
	return reqs, true
}

// stopped reports whether lr's run ended.
func (lr *logRun) stopped() bool {
	select {
	case <-lr.stop:
		return true
	default:
		return false
	}
}

// readLog runs lr's stream until its run ends; a stream that fails ends
// the run (the replicator starts another when asked).
func (m *Mesh) readLog(lr *logRun) {
	err := m.catchUp(lr)
	if lr.stopped() || m.ctx.Err() != nil {
		return
	}
	if err != nil {
		m.log.Debug("catch-up", "peer", lr.peer.String(), "err", err)
	}
	m.step(func() { m.r.CatchUpFailed(lr.mid, lr.run) })
}

// errRunEnded: the stream's catch-up ended while a reply was on its way.
var errRunEnded = errors.New("catch-up ended")
