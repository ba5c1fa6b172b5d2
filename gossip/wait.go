package gossip

import (
	"bufio"
	"bytes"
	"context"
	"time"

	"github.com/redmesh/redmesh/mesh"
)

// Acknowledgements over /redmesh/ack/3 (mesh.Ack), for WAIT, INFO and
// garbage collection. A node opens one stream to each connected peer when
// the link comes up and sends on it how far it has applied and synced the
// peer's writes, and its own stable time: once every AckInterval while any
// moves, and at once when the peer asked. The peer asks on the same stream
// the other way (mesh.AppendAckWant) when a client WAITs for a write.

// ackSender opens the push streams (pushstream.go) and the ack streams and
// sends the acknowledgements the replicator decided on; every AckInterval
// (spaced by the mesh's size, mesh.Replicator.TickInterval) it ticks the
// replicator (the stable time, silent members, push gaps, what moved).
func (m *Mesh) ackSender() {
	tick := time.NewTicker(m.cfg.AckInterval)
	defer tick.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.ackSignal:
		case <-tick.C:
			tick.Reset(m.tick(time.Now()))
		}
		if m.syncWanted.Swap(false) {
			// Nothing else syncs under --fsync no: one sync per
			// AckInterval lets the stable time move.
			if err := m.store.Sync(); err != nil {
				m.log.Warn("sync for acknowledgements", "err", err)
			}
		}
		m.openPushStreams()
		m.openAckStreams()
		m.sendAcks()
	}
}

// connectedWithout lists the connected peers for which has is false (a
// stream of theirs not open yet); has runs under m.mu.
func (m *Mesh) connectedWithout(has func(*peerState) bool) []*peerState {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*peerState
	for _, ps := range m.peers {
		if ps.connected && !has(ps) {
			out = append(out, ps)
		}
	}
	return out
}

// openAckStreams opens the ack stream to every connected peer that has
// none: the peer asks on it, and a stream opened after one failed says
// everything again (mesh.Replicator.AckStreamReset).
func (m *Mesh) openAckStreams() {
	for _, ps := range m.connectedWithout(func(ps *peerState) bool { return ps.ackStream != nil }) {
		s, err := m.tr.Open(m.ctx, ps.id, protoAck)
		if err != nil {
			continue // the next tick tries again
		}
		opened := false
		m.step(func() {
			if !ps.connected {
				return
			}
			opened = true
			ps.ackStream, ps.ackW = s, bufio.NewWriter(s)
			if ps.ackReset {
				ps.ackReset = false
				m.r.AckStreamReset(ps.mid)
			}
		})
		if !opened {
			s.Reset()
			continue
		}
		m.goRun(func() { m.readAckWants(ps, s) })
	}
}

// sendAcks writes the queued acknowledgements, each on its peer's stream.
func (m *Mesh) sendAcks() {
	m.mu.Lock()
	q := m.acks
	m.acks = nil
	m.mu.Unlock()
	var out []byte
	for _, a := range q {
		m.mu.Lock()
		ps := m.peers[m.pids[a.Peer]]
		var s Stream
		var w *bufio.Writer
		if ps != nil {
			s, w = ps.ackStream, ps.ackW
			if s == nil && ps.connected {
				ps.ackReset = true // not sent: the next stream says it
			}
		}
		m.mu.Unlock()
		if s == nil {
			continue
		}
		out = mesh.AppendAck(out[:0], a.Ack)
		s.SetWriteDeadline(time.Now().Add(ioTimeout))
		err := writeFrame(w, out)
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			m.mu.Lock()
			if ps.ackStream == s {
				s.Reset()
				ps.ackStream, ps.ackW, ps.ackReset = nil, nil, true // reopened on the next tick
			}
			m.mu.Unlock()
		}
	}
}

// readAckWants reads what a peer asks on the ack stream we opened to it.
func (m *Mesh) readAckWants(ps *peerState, s Stream) {
	r := bufio.NewReader(s)
	var buf bytes.Buffer
	for {
		want, err := readMessage(m, ps.id, "ack request", r, maxAckFrame, &buf, decodeAckWant)
		if err != nil {
			s.Reset()
			return
		}
		live := true
		m.step(func() {
			if live = ps.ackStream == s; live {
				m.r.Step(ps.mid, mesh.AckWantMsg{Epoch: want[0], Seq: want[1]})
			}
		})
		if !live {
			return
		}
	}
}

// decodeAckWant is mesh.DecodeAckWant as one value: epoch, seq.
func decodeAckWant(b []byte) ([2]uint64, error) {
	epoch, seq, err := mesh.DecodeAckWant(b)
	return [2]uint64{epoch, seq}, err
}

// serveAck receives a peer's acknowledgements of our writes, on the stream
// it opened, on which we ask for them (askAck).
func (m *Mesh) serveAck(s Stream) {
	defer s.Close()
	p := s.Remote()
	var ps *peerState
	m.step(func() {
		ps = m.peer(p)
		if ps.ackIn != nil {
			ps.ackIn.Reset() // the peer opened a new one: the old is dead
		}
		ps.ackIn, ps.ackInW = s, bufio.NewWriter(s)
		m.r.AckStreamIn(ps.mid, true) // a WAIT in progress asks on it
	})
	defer m.step(func() {
		if ps.ackIn == s {
			ps.ackIn, ps.ackInW = nil, nil
			m.r.AckStreamIn(ps.mid, false)
		}
	})
	r := bufio.NewReader(s)
	var buf bytes.Buffer
	for {
		s.SetReadDeadline(time.Time{})
		a, err := readMessage(m, p, "ack", r, maxAckFrame, &buf, mesh.DecodeAck)
		if err != nil {
			return
		}
		m.step(func() { m.r.Step(ps.mid, mesh.AckMsg{Ack: a, At: time.Now()}) })
	}
}

// askAck asks a peer, on the stream it acknowledges on, for an
// acknowledgement of our writes (a WAIT).
func (m *Mesh) askAck(x mesh.AckWantTo) {
	m.mu.Lock()
	ps := m.peers[m.pids[x.Peer]]
	var s Stream
	var w *bufio.Writer
	if ps != nil {
		s, w = ps.ackIn, ps.ackInW
	}
	m.mu.Unlock()
	if s == nil {
		return
	}
	out := mesh.AppendAckWant(nil, x.Epoch, x.Seq)
	ps.ackInMu.Lock()
	s.SetWriteDeadline(time.Now().Add(ioTimeout))
	err := writeFrame(w, out)
	if err == nil {
		err = w.Flush()
	}
	ps.ackInMu.Unlock()
	if err != nil {
		s.Reset() // serveAck ends; the peer opens another
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
		count := m.r.Acked(target)
		ch := m.ackChanged
		m.mu.Unlock()
		if count >= n {
			return count
		}
		m.step(func() { m.r.WaitFor(target) })
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
	return m.r.Acked(target)
}

// unacked counts the local writes after seq acked (m.pushMu held).
func (m *Mesh) unacked(acked uint64) int {
	return m.localSeqs.after(acked)
}
