package gossip

import (
	"bufio"
	"bytes"
	"context"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/wal"
)

// Acknowledgements over /redmesh/ack/3 (mesh.Ack), for WAIT, INFO and
// garbage collection. A node opens one stream to each connected peer when
// the link comes up and sends on it how far it has applied and synced the
// peer's writes, and its own stable time: once every AckInterval while any
// moves, and at once when the peer asked. The peer asks on the same stream
// the other way (mesh.AppendAckWant) when a client WAITs for a write.

// ackSender opens the ack streams and sends acknowledgements: those asked
// for when poked, all that moved every AckInterval.
func (m *Mesh) ackSender() {
	tick := time.NewTicker(m.cfg.AckInterval)
	defer tick.Stop()
	var out []byte
	for {
		periodic := false
		select {
		case <-m.ctx.Done():
			return
		case <-m.ackSignal:
		case <-tick.C:
			periodic = true
		}
		m.mu.Lock()
		unsynced := m.durableAcks()
		m.mu.Unlock()
		if unsynced && m.store.Fsync() == wal.FsyncNo {
			// Nothing else syncs: one sync per AckInterval lets the
			// stable time move.
			if err := m.store.Sync(); err != nil {
				m.log.Warn("sync for acknowledgements", "err", err)
			}
		}
		type job struct {
			ps        *peerState
			s         network.Stream
			w         *bufio.Writer
			ack       mesh.Ack
			open, due bool
		}
		var jobs []job
		m.mu.Lock()
		for _, ps := range m.peers {
			if !ps.connected {
				continue
			}
			a := mesh.Ack{Epoch: ps.prog.Epoch, Seq: ps.prog.Acked, Stable: m.stab.OwnFor(ps.upAt), Durable: ps.durable.Acked, AsideBelow: ps.asideBelow}
			j := job{ps: ps, s: ps.ackStream, w: ps.ackW, ack: a, open: ps.ackStream == nil, due: ps.ackOut.Due(a, ps.prog, periodic)}
			if j.open || j.due {
				jobs = append(jobs, j)
			}
		}
		m.mu.Unlock()
		for _, j := range jobs {
			if j.open {
				s, err := m.h.NewStream(m.ctx, j.ps.id, protoAck)
				if err != nil {
					continue // the next tick tries again
				}
				j.s, j.w = s, bufio.NewWriter(s)
				m.mu.Lock()
				j.ps.ackStream, j.ps.ackW = s, j.w
				j.ps.ackOut = mesh.AckOut{}
				m.mu.Unlock()
				m.goRun(func() { m.readAckWants(j.ps, s) })
				j.due = j.ack != (mesh.Ack{})
			}
			if !j.due {
				continue
			}
			out = mesh.AppendAck(out[:0], j.ack)
			j.s.SetWriteDeadline(time.Now().Add(ioTimeout))
			err := writeFrame(j.w, out)
			if err == nil {
				err = j.w.Flush()
			}
			m.mu.Lock()
			if j.ps.ackStream == j.s {
				if err != nil {
					j.s.Reset()
					j.ps.ackStream, j.ps.ackW = nil, nil // reopened on the next tick
				} else {
					j.ps.ackOut.Sent(j.ack)
				}
			}
			m.mu.Unlock()
		}
	}
}

// readAckWants reads what a peer asks on the ack stream we opened to it.
func (m *Mesh) readAckWants(ps *peerState, s network.Stream) {
	r := bufio.NewReader(s)
	var buf bytes.Buffer
	for {
		want, err := readMessage(m, ps.id, "ack request", r, maxAckFrame, &buf, decodeAckWant)
		if err != nil {
			s.Reset()
			return
		}
		epoch, seq := want[0], want[1]
		m.mu.Lock()
		if ps.ackStream != s {
			m.mu.Unlock()
			return
		}
		ps.ackOut.Want(epoch, seq)
		poke := ps.ackOut.Wanted(ps.prog)
		m.mu.Unlock()
		if poke {
			m.poke(m.ackSignal)
		}
	}
}

// durableAcks moves, per peer, how far our acknowledgement of its writes is
// synced here: with --fsync always every commit is; otherwise what was
// applied when a sync began counts once that sync is done. It reports
// whether some peer waits for a sync (m.mu held).
func (m *Mesh) durableAcks() bool {
	always := m.store.Fsync() == wal.FsyncAlways
	synced, mark := m.store.SyncedTo(), m.store.SyncMark()
	waiting := false
	for _, ps := range m.peers {
		if ps.durable.Update(ps.prog, always, synced, mark) {
			waiting = true
		}
	}
	return waiting
}

// decodeAckWant is mesh.DecodeAckWant as one value: epoch, seq.
func decodeAckWant(b []byte) ([2]uint64, error) {
	epoch, seq, err := mesh.DecodeAckWant(b)
	return [2]uint64{epoch, seq}, err
}

// serveAck receives a peer's acknowledgements of our writes, on the stream
// it opened, on which we ask for them (askAcks).
func (m *Mesh) serveAck(s network.Stream) {
	defer s.Close()
	p := s.Conn().RemotePeer()
	m.mu.Lock()
	ps := m.peer(p)
	if ps.ackIn != nil {
		ps.ackIn.Reset() // the peer opened a new one: the old is dead
	}
	ps.ackIn, ps.ackInW, ps.wantSent = s, bufio.NewWriter(s), 0
	m.mu.Unlock()
	m.broadcastAck() // a WAIT in progress asks on it
	defer func() {
		m.mu.Lock()
		if ps.ackIn == s {
			ps.ackIn, ps.ackInW = nil, nil
		}
		m.mu.Unlock()
	}()
	r := bufio.NewReader(s)
	var buf bytes.Buffer
	for {
		s.SetReadDeadline(time.Time{})
		a, err := readMessage(m, p, "ack", r, maxAckFrame, &buf, mesh.DecodeAck)
		if err != nil {
			return
		}
		epoch, seq, stable, durable, aside := a.Epoch, a.Seq, a.Stable, a.Durable, a.AsideBelow
		if aside != 0 {
			m.forgottenBy(p, aside)
		}
		m.mu.Lock()
		m.stab.Reported(ps.mid, stable)
		if epoch != m.epoch {
			m.mu.Unlock()
			continue // about a log we no longer have
		}
		changed := seq > ps.acked
		if changed {
			ps.acked = seq
		}
		now := time.Now()
		ps.ackedAt = now
		m.stab.Acked(ps.mid, durable, now)
		m.mu.Unlock()
		if changed {
			m.broadcastAck()
		}
	}
}

// askAcks asks each connected peer that has not acknowledged our writes up
// to target to do so as soon as it has applied them.
func (m *Mesh) askAcks(target uint64) {
	type ask struct {
		ps *peerState
		s  network.Stream
		w  *bufio.Writer
	}
	var asks []ask
	m.mu.Lock()
	for _, ps := range m.peers {
		if ps.connected && ps.acked < target && ps.ackIn != nil && ps.wantSent < target {
			ps.wantSent = target
			asks = append(asks, ask{ps, ps.ackIn, ps.ackInW})
		}
	}
	m.mu.Unlock()
	var out []byte
	for _, a := range asks {
		out = mesh.AppendAckWant(out[:0], m.epoch, target)
		a.ps.ackInMu.Lock()
		a.s.SetWriteDeadline(time.Now().Add(ioTimeout))
		err := writeFrame(a.w, out)
		if err == nil {
			err = a.w.Flush()
		}
		a.ps.ackInMu.Unlock()
		if err != nil {
			a.s.Reset() // serveAck ends; the peer opens another
		}
	}
}

func (m *Mesh) broadcastAck() {
	m.mu.Lock()
	close(m.ackChanged)
	m.ackChanged = make(chan struct{})
	m.mu.Unlock()
}

// WaitAcks blocks until n connected peers have acknowledged every local
// write up to seq target, or until timeout (0: no limit) or ctx ends, and
// returns how many have. n ≤ 0 returns the count at once.
func (m *Mesh) WaitAcks(ctx context.Context, target uint64, n int, timeout time.Duration) int {
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	for {
		m.mu.Lock()
		count := 0
		for _, ps := range m.peers {
			if ps.connected && ps.acked >= target {
				count++
			}
		}
		ch := m.ackChanged
		m.mu.Unlock()
		if count >= n {
			return count
		}
		m.askAcks(target)
		select {
		case <-ch:
		case <-deadline:
			return m.countAcked(target)
		case <-ctx.Done():
			return count
		case <-m.ctx.Done():
			return count
		}
	}
}

func (m *Mesh) countAcked(target uint64) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	count := 0
	for _, ps := range m.peers {
		if ps.connected && ps.acked >= target {
			count++
		}
	}
	return count
}

// unacked counts the local writes after seq acked (m.pushMu held).
func (m *Mesh) unacked(acked uint64) int {
	i := sort.Search(len(m.localSeqs), func(i int) bool { return m.localSeqs[i] > acked })
	return len(m.localSeqs) - i
}
