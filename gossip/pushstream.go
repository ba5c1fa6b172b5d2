package gossip

import (
	"bufio"
	"bytes"
	"slices"
	"sync"
	"time"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
)

// Push streams: /redmesh/push/5, one a node opens to each peer linked to
// it, carrying its pushes (push.go), a frame each. The peer reads them
// straight into the merge, with no event loop or queue of its own between:
// each goroutine hand-off on a push's way waits for a core on a busy
// machine, and so adds to its propagation time. The stream's
// remote is the origin as Noise authenticated it, on a connection the
// private network key or the allowlist admitted. To a peer of the build
// before it is /redmesh/push/4, its records in record.Encoding1
// (versions.go).
//
// A slow peer cannot make the origin queue without bound: what waits for a
// peer's stream is bounded (maxPushQueued bytes, pushQueueLen messages).
// While the writer is behind, a push that continues the last one waiting
// (the same epoch, its prev that one's to) is coalesced into it, up to a
// frame (maxPushMessage): a burst reaches a slow peer as fewer, larger
// messages, each merged at once, instead of many small ones it falls
// further behind on. A push beyond the bounds is dropped for that peer,
// which sees the hole in the next push's range and reads the origin's log,
// as for a push lost any other way (mesh.Progress). The receiver merges
// before it reads on, so what it has not merged waits in the stream's
// flow-control window.

const (
	maxPushQueued = 8 << 20
	pushQueueLen  = 1024
)

// outPush is a push waiting for a peer's stream: msg its encoding, shared
// by every peer's queue, until another push is coalesced into it; then msg
// is nil, recs are this queue's own, and the writer encodes it. A relayed
// push (origin set) is never coalesced: its msg is all it keeps.
type outPush struct {
	epoch, prev, to uint64
	hops            uint8
	origin          mesh.PeerID
	recs            []merkle.Record
	msg             []byte
	size            int // bytes counted for it: no less than its encoding
}

// pushOut is the push stream to one peer: the publisher queues each
// message (send), a writer goroutine of its own writes them.
type pushOut struct {
	s Stream
	// enc is the record encoding the stream carries: an older one's
	// messages are encoded again (pushAs).
	enc   record.Encoding
	mu    sync.Mutex
	q     []*outPush // waiting, oldest first
	bytes int        // sum of q's sizes
	ready chan struct{}
	stop  chan struct{}
}

func newPushOut(s Stream) *pushOut {
	return &pushOut{s: s, enc: record.Encoding2, ready: make(chan struct{}, 1), stop: make(chan struct{})}
}

// send queues p for the peer, coalesced into the last push waiting when it
// continues it, unless that would pass the bounds: it reports whether p was
// queued. p and its records are not changed; they may be queued for other
// peers too.
func (o *pushOut) send(p *outPush) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.bytes+p.size > maxPushQueued {
		return false
	}
	if n := len(o.q); n > 0 {
		last := o.q[n-1]
		if last.origin == 0 && p.origin == 0 && last.hops == p.hops &&
			last.epoch == p.epoch && last.to == p.prev && last.size+p.size <= maxPushMessage {
			if last.msg != nil {
				// Shared with other peers' queues: this one takes a copy.
				last = &outPush{epoch: last.epoch, prev: last.prev, to: last.to, hops: last.hops,
					recs: slices.Clone(last.recs), size: last.size}
				o.q[n-1] = last
			}
			last.to = p.to
			last.recs = append(last.recs, p.recs...)
			last.size += p.size
			o.bytes += p.size
			return true
		}
	}
	if len(o.q) >= pushQueueLen {
		return false
	}
	o.q = append(o.q, p)
	o.bytes += p.size
	select {
	case o.ready <- struct{}{}:
	default:
	}
	return true
}

// next takes the oldest push waiting, if any, and its encoding.
func (o *pushOut) next() (msg []byte, ok bool) {
	o.mu.Lock()
	if len(o.q) == 0 {
		o.mu.Unlock()
		return nil, false
	}
	p := o.q[0]
	o.q[0] = nil
	o.q = o.q[1:]
	if len(o.q) == 0 {
		o.q = nil // let the backing array go
	}
	o.bytes -= p.size
	o.mu.Unlock()
	if p.msg == nil {
		p.msg = appendPushMsg(make([]byte, 0, p.size), p.epoch, p.prev, p.to, p.hops, 0, p.recs)
	}
	return p.msg, true
}

// pushOuts appends to dst the open push streams to the peers the
// replicator sends our pushes to (mesh.Replicator.PushTargets); ids is
// scratch space for their IDs. m.mu must be held.
func (m *Mesh) pushOuts(dst []*pushOut, ids []mesh.PeerID) ([]*pushOut, []mesh.PeerID) {
	ids = m.r.PushTargets(ids[:0])
	return m.outsOf(dst, ids), ids
}

// outsOf appends to dst the open push streams to ids. m.mu must be held.
func (m *Mesh) outsOf(dst []*pushOut, ids []mesh.PeerID) []*pushOut {
	for _, id := range ids {
		if ps := m.peers[m.pids[id]]; ps != nil && ps.push != nil {
			dst = append(dst, ps.push)
		}
	}
	return dst
}

// openPushStreams opens the push stream to every linked peer that has
// none. A push published before it is open is missing for that peer, which
// reads our log for it once a later push shows the hole (and catches up
// from the log anyway when a link comes up).
func (m *Mesh) openPushStreams() {
	// A peer that speaks no version of ours is not asked again while the
	// link lasts.
	for _, ps := range m.connectedWithout(func(ps *peerState) bool { return ps.push != nil || ps.versionLogged["push"] }) {
		s, enc, err := m.open(m.ctx, ps.id, pushIDs)
		if err != nil {
			continue // the next tick tries again
		}
		o := newPushOut(s)
		o.enc = enc
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
		select {
		case <-o.ready:
		case <-o.stop:
			return
		case <-m.ctx.Done():
			return
		}
		o.s.SetWriteDeadline(time.Now().Add(ioTimeout))
		for {
			msg, ok := o.next()
			if !ok {
				break
			}
			if o.enc < record.Encoding2 {
				var n int
				var err error
				if msg, n, err = pushAs(msg, o.enc); err != nil {
					m.log.Error("push for a peer of an earlier version", "peer", ps.id.String(), "err", err)
					return
				}
				if len(msg) > maxPushMessage {
					// Longer in the old encoding than a frame may be: the
					// peer sees the hole and reads our log.
					m.st.pushDropped.Add(uint64(n))
					m.st.pushDroppedStream.Add(uint64(n))
					continue
				}
			}
			if writeFrame(w, msg) != nil {
				return
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
	decode := carrying(m.wireEncoding, decodePushMsg, func(pm pushMsg) []merkle.Record { return pm.recs })
	for {
		pm, err := readMessage(m, origin, "push", r, maxPushMessage, &buf, decode)
		if err != nil {
			return
		}
		m.merge(origin, pm)
	}
}
