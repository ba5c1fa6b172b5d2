package gossip

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/wal"
)

// Acknowledgements over /redmesh/ack/3, for WAIT, INFO and garbage
// collection. A node opens one stream to each connected peer when the link
// comes up and sends on it
//
//	uvarint epoch | uvarint seq | uvarint ownStable | uvarint durable [| uvarint asideBelow]
//
// meaning that every local write of that peer's log epoch up to seq is
// applied here (what WAIT counts), up to durable also synced (what the
// stable time counts: an acknowledged delete a crash could take back must
// not let the others collect), and that every member has applied this node's
// writes up to ownStable (stable.go): once every AckInterval while any
// moves, and at once when the peer asked. asideBelow, sent to a forgotten member that came
// back, is the stable time of its return: this node sets aside what that
// member holds from up to then, and the member sets it aside too. The peer asks with the same frame the other way ("tell me once
// you have applied up to seq") when a client WAITs for that write, as a Redis
// master sends REPLCONF GETACK. Acknowledging every push as it arrived cost a
// stream write per write on each side, a tenth of a node's CPU.

// wanted reports whether the peer asked for an acknowledgement we can now
// give and have not sent (m.mu held).
func (ps *peerState) wanted() bool {
	return ps.wantEpoch == ps.prog.Epoch && ps.prog.Acked >= ps.wantSeq &&
		(ps.sentEpoch != ps.prog.Epoch || ps.sentAcked < ps.wantSeq)
}

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
			ps           *peerState
			s            network.Stream
			w            *bufio.Writer
			epoch, acked uint64
			stable       hlc.Timestamp
			durable      uint64
			aside        hlc.Timestamp
			open, due    bool
		}
		var jobs []job
		m.mu.Lock()
		for _, ps := range m.peers {
			if !ps.connected {
				continue
			}
			moved := ps.prog.Epoch != 0 && (ps.prog.Epoch != ps.sentEpoch || ps.prog.Acked != ps.sentAcked ||
				ps.sentStable != m.stab.OwnFor(ps.upAt) || ps.sentDurable != ps.durAcked || ps.sentAside != ps.asideBelow)
			j := job{ps: ps, s: ps.ackStream, w: ps.ackW, epoch: ps.prog.Epoch, acked: ps.prog.Acked, stable: m.stab.OwnFor(ps.upAt), durable: ps.durAcked, aside: ps.asideBelow,
				open: ps.ackStream == nil, due: moved && (periodic || ps.wanted())}
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
				j.ps.sentEpoch, j.ps.sentAcked, j.ps.wantEpoch, j.ps.wantSeq = 0, 0, 0, 0
				m.mu.Unlock()
				m.goRun(func() { m.readAckWants(j.ps, s) })
				j.due = j.epoch != 0
			}
			if !j.due {
				continue
			}
			out = binary.AppendUvarint(out[:0], j.epoch)
			out = binary.AppendUvarint(out, j.acked)
			out = binary.AppendUvarint(out, uint64(j.stable))
			out = binary.AppendUvarint(out, j.durable)
			if j.aside != 0 {
				out = binary.AppendUvarint(out, uint64(j.aside))
			}
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
					j.ps.sentEpoch, j.ps.sentAcked, j.ps.sentStable, j.ps.sentAside = j.epoch, j.acked, j.stable, j.aside
					j.ps.sentDurable = j.durable
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
		frame, err := readFrame(r, maxAckFrame, &buf)
		if err != nil {
			if errors.Is(err, errFrameTooLarge) || errors.Is(err, errMalformedFrame) {
				m.misbehaved(ps.id, "ack request", err)
			}
			return
		}
		epoch, seq, err := decodeAck(frame)
		if err != nil {
			m.misbehaved(ps.id, "ack request", err)
			s.Reset()
			return
		}
		m.mu.Lock()
		if ps.ackStream != s {
			m.mu.Unlock()
			return
		}
		if epoch != ps.wantEpoch || seq > ps.wantSeq {
			ps.wantEpoch, ps.wantSeq = epoch, seq
		}
		poke := ps.wanted()
		m.mu.Unlock()
		if poke {
			m.poke(m.ackSignal)
		}
	}
}

// decodeAckStable decodes an acknowledgement: epoch, seq, the sender's own
// stable time, the durable seq, and asideBelow (0 when absent).
func decodeAckStable(frame []byte) (epoch, seq uint64, stable hlc.Timestamp, durable uint64, aside hlc.Timestamp, err error) {
	var v [5]uint64
	i, n := 0, 0
	for ; i < len(v) && n < len(frame); i++ {
		x, k := binary.Uvarint(frame[n:])
		if k <= 0 {
			return 0, 0, 0, 0, 0, errMalformedFrame
		}
		v[i], n = x, n+k
	}
	if i < 4 || n != len(frame) || v[3] > v[1] {
		return 0, 0, 0, 0, 0, errMalformedFrame
	}
	return v[0], v[1], hlc.Timestamp(v[2]), v[3], hlc.Timestamp(v[4]), nil
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
		if ps.durEpoch != ps.prog.Epoch {
			ps.durEpoch, ps.durAcked = ps.prog.Epoch, 0
		}
		if always {
			ps.durAcked = ps.prog.Acked
			continue
		}
		if ps.snapEpoch == ps.prog.Epoch && ps.snapMark != 0 && synced >= ps.snapMark {
			ps.durAcked = max(ps.durAcked, ps.snapAcked)
		}
		if ps.snapEpoch != ps.prog.Epoch || ps.snapAcked != ps.prog.Acked {
			ps.snapEpoch, ps.snapAcked, ps.snapMark = ps.prog.Epoch, ps.prog.Acked, mark
		}
		waiting = waiting || ps.durAcked < ps.prog.Acked
	}
	return waiting
}

// decodeAck decodes a request for an acknowledgement: epoch and seq.
func decodeAck(frame []byte) (epoch, seq uint64, err error) {
	epoch, n := binary.Uvarint(frame)
	if n <= 0 {
		return 0, 0, errMalformedFrame
	}
	seq, k := binary.Uvarint(frame[n:])
	if k <= 0 || n+k != len(frame) {
		return 0, 0, errMalformedFrame
	}
	return epoch, seq, nil
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
		frame, err := readFrame(r, maxAckFrame, &buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && (errors.Is(err, errFrameTooLarge) || errors.Is(err, errMalformedFrame)) {
				m.misbehaved(p, "ack", err)
			}
			return
		}
		epoch, seq, stable, durable, aside, err := decodeAckStable(frame)
		if err != nil {
			m.misbehaved(p, "ack", err)
			return
		}
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
		out = binary.AppendUvarint(out[:0], m.epoch)
		out = binary.AppendUvarint(out, target)
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
