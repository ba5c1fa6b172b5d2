package gossip

import (
	"bufio"
	"bytes"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/redmesh/redmesh/mesh"
)

// Push streams: /redmesh/push/3, one a node opens to each peer linked to
// it, carrying its pushes (push.go), a frame each. The peer reads them
// straight into the merge, with no event loop or queue of its own between:
// each goroutine hand-off on a push's way waits for a core on a busy
// machine, and so adds to its propagation time. The stream's
// remote is the origin as Noise authenticated it, on a connection the
// private network key or the allowlist admitted.
//
// A slow peer cannot make the origin queue without bound: what waits for a
// peer's stream is bounded (maxPushQueued bytes, pushQueueLen messages),
// and a push beyond it is dropped for that peer, which sees the hole in
// the next push's range and reads the origin's log, as for a push lost
// any other way (mesh.Progress). The receiver merges before it reads on,
// so what it has not merged waits in the stream's flow-control window.
const protoPush = protocol.ID("/redmesh/push/3")

const (
	maxPushQueued = 8 << 20
	pushQueueLen  = 1024
)

// pushOut is the push stream to one peer: the publisher queues each
// message (send), a writer goroutine of its own writes them.
type pushOut struct {
	s      Stream
	q      chan []byte
	queued atomic.Int64 // bytes in q
	stop   chan struct{}
}

// send queues msg for the peer, unless that would pass the bounds: it
// reports whether msg was queued.
func (o *pushOut) send(msg []byte) bool {
	n := int64(len(msg))
	if o.queued.Add(n) > maxPushQueued {
		o.queued.Add(-n)
		return false
	}
	select {
	case o.q <- msg:
		return true
	default:
		o.queued.Add(-n)
		return false
	}
}

// pushOuts appends to dst the open push streams to the peers the
// replicator sends our pushes to (mesh.Replicator.PushTargets); ids is
// scratch space for their IDs. m.mu must be held.
func (m *Mesh) pushOuts(dst []*pushOut, ids []mesh.PeerID) ([]*pushOut, []mesh.PeerID) {
	ids = m.r.PushTargets(ids[:0])
	for _, id := range ids {
		if ps := m.peers[m.pids[id]]; ps != nil && ps.push != nil {
			dst = append(dst, ps.push)
		}
	}
	return dst, ids
}

// openPushStreams opens the push stream to every linked peer that has
// none. A push published before it is open is missing for that peer, which
// reads our log for it once a later push shows the hole (and catches up
// from the log anyway when a link comes up).
func (m *Mesh) openPushStreams() {
	for _, ps := range m.connectedWithout(func(ps *peerState) bool { return ps.push != nil }) {
		s, err := m.tr.Open(m.ctx, ps.id, protoPush)
		if err != nil {
			continue // the next tick tries again
		}
		o := &pushOut{s: s, q: make(chan []byte, pushQueueLen), stop: make(chan struct{})}
		opened := false
		m.mu.Lock()
		if ps.connected && ps.push == nil {
			ps.push, opened = o, true
		}
		m.mu.Unlock()
		if !opened {
			s.Reset()
			continue
		}
		m.goRun(func() { m.writePushes(ps, o) })
	}
}

// closePush ends ps's push stream (its link closed). m.mu must be held.
func (ps *peerState) closePush() {
	if ps.push != nil {
		close(ps.push.stop)
		ps.push = nil
	}
}

// writePushes writes the pushes queued for ps on o, a flush for what is
// queued at once, until the stream fails or ends; then it gives o up, and
// a new stream is opened while the link is up.
func (m *Mesh) writePushes(ps *peerState, o *pushOut) {
	w := bufio.NewWriterSize(o.s, 64<<10)
	defer func() {
		o.s.Reset()
		m.mu.Lock()
		failed := ps.push == o
		if failed {
			ps.push = nil
		}
		m.mu.Unlock()
		if failed {
			m.poke(m.ackSignal) // ackSender opens another
		}
	}()
	for {
		var msg []byte
		select {
		case msg = <-o.q:
		case <-o.stop:
			return
		case <-m.ctx.Done():
			return
		}
		o.s.SetWriteDeadline(time.Now().Add(ioTimeout))
		for msg != nil {
			err := writeFrame(w, msg)
			o.queued.Add(-int64(len(msg)))
			if err != nil {
				return
			}
			select {
			case msg = <-o.q:
			default:
				msg = nil
			}
		}
		if w.Flush() != nil {
			return
		}
	}
}

// servePush merges the pushes a peer sends on the push stream it opened,
// each before the next is read.
func (m *Mesh) servePush(s Stream) {
	defer s.Reset()
	origin := s.Remote()
	r := bufio.NewReaderSize(s, 64<<10)
	var buf bytes.Buffer
	for {
		pm, err := readMessage(m, origin, "push", r, maxPushMessage, &buf, decodePushMsg)
		if err != nil {
			return
		}
		m.merge(origin, pm)
	}
}
