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
)

// Acknowledgements over /redmesh/ack/1, for WAIT: a node keeps one stream
// open to each connected peer and sends a frame
//
//	uvarint epoch | uvarint seq
//
// whenever it has applied more of that peer's local writes: every local
// write of the peer's log epoch up to seq is applied here.

// ackSender sends acknowledgements to peers whose writes we applied.
func (m *Mesh) ackSender() {
	var out []byte
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.ackSignal:
		}
		m.mu.Lock()
		var todo []*peerState
		for p := range m.ackDirty {
			if ps := m.peers[p]; ps != nil && ps.connected {
				todo = append(todo, ps)
			}
		}
		clear(m.ackDirty)
		m.mu.Unlock()
		for _, ps := range todo {
			m.mu.Lock()
			epoch, acked := ps.theirEpoch, ps.theirAcked
			s, w := ps.ackStream, ps.ackW
			same := epoch == ps.sentEpoch && acked == ps.sentAcked
			m.mu.Unlock()
			if same || epoch == 0 {
				continue
			}
			if s == nil {
				ns, err := m.h.NewStream(m.ctx, ps.id, protoAck)
				if err != nil {
					continue
				}
				s, w = ns, bufio.NewWriter(ns)
			}
			out = binary.AppendUvarint(out[:0], epoch)
			out = binary.AppendUvarint(out, acked)
			s.SetWriteDeadline(time.Now().Add(ioTimeout))
			err := writeFrame(w, out)
			if err == nil {
				err = w.Flush()
			}
			m.mu.Lock()
			if err != nil {
				s.Reset()
				ps.ackStream, ps.ackW = nil, nil
				m.ackDirty[ps.id] = true // try again on the next signal
			} else {
				ps.ackStream, ps.ackW = s, w
				ps.sentEpoch, ps.sentAcked = epoch, acked
			}
			m.mu.Unlock()
		}
	}
}

// serveAck receives a peer's acknowledgements of our writes.
func (m *Mesh) serveAck(s network.Stream) {
	defer s.Close()
	p := s.Conn().RemotePeer()
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
		epoch, n := binary.Uvarint(frame)
		if n <= 0 {
			m.misbehaved(p, "ack", errMalformedFrame)
			return
		}
		seq, k := binary.Uvarint(frame[n:])
		if k <= 0 || n+k != len(frame) {
			m.misbehaved(p, "ack", errMalformedFrame)
			return
		}
		if epoch != m.epoch {
			continue // about a log we no longer have
		}
		m.mu.Lock()
		ps := m.peer(p)
		changed := seq > ps.acked
		if changed {
			ps.acked = seq
		}
		m.mu.Unlock()
		if changed {
			m.broadcastAck()
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
