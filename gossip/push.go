package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// Eager push. Only local writes are pushed: a remote write that wins here
// is not pushed again, only relayed as its origin's message. Each message is
//
//	byte 2 (version) | uvarint epoch | uvarint prev | uvarint to |
//	byte hops (the low 7 bits; the top bit: relayed) |
//	[8 bytes, big-endian: the origin's node ID, when relayed] | mesh push
//
// where the mesh push (mesh.AppendPush) holds the records of the origin's
// local writes with log sequence numbers in (prev, to] of log epoch, all
// of them. A receiver that has every local write of the origin up to prev
// now has them up to to, and acknowledges that to the origin (for WAIT);
// one that missed a message (prev beyond what it has) reads the origin's
// log instead.
//
// The origin sends each message on a push stream of its own to every peer
// linked to it (pushstream.go), read on arrival straight into the merge.
// Discovery keeps every member linked to every other. When one is not (a
// member this node never reached: a partition between two nodes only) the
// origin gives its pushes a hop budget, and a receiver to which one was
// news relays it on the same streams to a few of its peers
// (mesh.Replicator.Relay); a relayed copy moves nothing of the origin's
// progress here and reads no log (messages are unsigned).

const pushVersion = 2

// pushRelayed is the hops byte's flag: the origin's ID follows.
const pushRelayed = 0x80

// maxLocalQueue bounds the local writes waiting to be pushed; beyond it
// they are left to catch-up and anti-entropy.
const maxLocalQueue = 1 << 16

type pushItem struct {
	seq uint64
	rec merkle.Record
}

type pushMsg struct {
	epoch, prev, to uint64
	hops            uint8
	// origin is the origin's node ID of a relayed push, 0 for the
	// sender's own.
	origin mesh.PeerID
	recs   []merkle.Record
}

// appendPushMsg appends the encoding of a push; origin 0: the sender's own.
func appendPushMsg(dst []byte, epoch, prev, to uint64, hops uint8, origin mesh.PeerID, recs []merkle.Record) []byte {
	dst = append(dst, pushVersion)
	dst = binary.AppendUvarint(dst, epoch)
	dst = binary.AppendUvarint(dst, prev)
	dst = binary.AppendUvarint(dst, to)
	if origin == 0 {
		dst = append(dst, hops&^pushRelayed)
	} else {
		dst = append(dst, hops|pushRelayed)
		dst = binary.BigEndian.AppendUint64(dst, uint64(origin))
	}
	return mesh.AppendPush(dst, recs)
}

func decodePushMsg(b []byte) (pushMsg, error) {
	var pm pushMsg
	if len(b) == 0 || b[0] != pushVersion {
		return pm, fmt.Errorf("%w: unknown push version", mesh.ErrMalformed)
	}
	b = b[1:]
	var v [3]uint64
	for i := range v {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return pm, fmt.Errorf("%w: bad push header", mesh.ErrMalformed)
		}
		v[i], b = x, b[n:]
	}
	pm.epoch, pm.prev, pm.to = v[0], v[1], v[2]
	if pm.prev >= pm.to {
		return pm, fmt.Errorf("%w: empty push range", mesh.ErrMalformed)
	}
	if len(b) == 0 {
		return pm, fmt.Errorf("%w: bad push header", mesh.ErrMalformed)
	}
	flags := b[0]
	pm.hops, b = flags&^pushRelayed, b[1:]
	if flags&pushRelayed != 0 {
		if len(b) < 8 {
			return pm, fmt.Errorf("%w: bad push origin", mesh.ErrMalformed)
		}
		pm.origin, b = mesh.PeerID(binary.BigEndian.Uint64(b)), b[8:]
		if pm.origin == 0 {
			return pm, fmt.Errorf("%w: bad push origin", mesh.ErrMalformed)
		}
	}
	d, err := mesh.Decode(b)
	if err != nil {
		return pm, err
	}
	if d.Push == nil {
		return pm, fmt.Errorf("%w: not a push", mesh.ErrMalformed)
	}
	pm.recs = d.Push
	return pm, checkRecords(pm.recs)
}

// Committed is the store's commit hook (through the node): it queues this
// node's own writes for eager push. It must not block, and takes a commit's
// entries after the Merkle index did (rootHead).
func (m *Mesh) Committed(entries []wal.Entry) {
	self := record.NodeID(m.cfg.Self)
	queued := false
	// Alone, there is no one to push to: a peer that connects later
	// catches up from the log, and the next push it gets shows the hole.
	alone := m.linked.Load() == 0
	var skipped uint64
	m.pushMu.Lock()
	for _, e := range entries {
		m.committed = max(m.committed, e.Seq)
		if !isLocal(e, self) {
			continue
		}
		m.lastLocal = e.Seq
		m.localSeqs.add(e.Seq)
		if alone {
			skipped = e.Seq
			continue
		}
		if len(m.pending) >= maxLocalQueue {
			skipped = e.Seq
			m.st.pushDropped.Add(1)
			continue
		}
		key := append([]byte(nil), e.Key...)
		m.pending = append(m.pending, pushItem{seq: e.Seq, rec: merkle.Record{Key: key, Payload: record.Encode(e.Record)}})
		queued = true
	}
	if skipped != 0 {
		// Under pushMu: the publisher's next header must see the hole. The
		// call decides nothing, so nothing is carried out here, in the
		// write path: the next step takes what the replicator has.
		m.mu.Lock()
		m.r.LocalSkipped(skipped)
		m.mu.Unlock()
	}
	m.pushMu.Unlock()
	if queued {
		m.poke(m.pushSignal)
		// Committed runs before the writes are answered: yielding lets the
		// publisher send the push first. On a node running on one thread
		// the replies otherwise went out first, and a client that read
		// its write back from a peer mostly got there before the push.
		runtime.Gosched()
	}
}

// isLocal reports whether an entry is a write made on this node: one of
// its registers took a version of ours it did not have before, or it is a
// typed write (whose log entry is the delta) of ours. Remote writes carry
// other nodes' versions; an expiry sweep keeps the version.
func isLocal(e wal.Entry, self record.NodeID) bool {
	for i, v := range e.Now[:2] {
		if v.Node == self && v != e.Prev[i] && !v.IsZero() {
			return true
		}
	}
	t := e.Record.Typed
	return t != nil && t.KindVersion.Node == self && !t.KindVersion.IsZero()
}

// LastLocalSeq is the log sequence number of this node's latest local write.
func (m *Mesh) LastLocalSeq() uint64 {
	m.pushMu.Lock()
	defer m.pushMu.Unlock()
	return m.lastLocal
}

// rootHead is the log's head and this node's latest local write as
// Committed has seen them, for a session's mesh.RootAt. The head the log
// reports moves at its commit, before Committed runs: a local write in
// between, counted in that head but not yet in the last local write, would
// let a peer count it as applied without having it. The Merkle index takes
// a commit's entries before Committed, so a root read after this reflects
// every entry before the head.
func (m *Mesh) rootHead() (head, own uint64) {
	m.pushMu.Lock()
	defer m.pushMu.Unlock()
	return m.committed + 1, m.lastLocal
}

// publisher sends queued local writes in batches (mesh.Batcher): a burst
// leaves in full batches, a lone write at once.
func (m *Mesh) publisher() {
	b := mesh.Batcher[pushItem]{}
	var bytes int
	var outs []*pushOut
	var ids []mesh.PeerID
	publish := func(batch []pushItem) {
		if len(batch) == 0 {
			return
		}
		size := bytes + 64
		bytes = 0
		to := batch[len(batch)-1].seq
		var h mesh.PushHeader
		m.pushMu.Lock()
		m.mu.Lock()
		h = m.r.PushHeader(batch[0].seq, to)
		outs, ids = m.pushOuts(outs[:0], ids)
		m.mu.Unlock()
		m.pushMu.Unlock()
		recs := make([]merkle.Record, len(batch))
		for i, it := range batch {
			recs[i] = it.rec
		}
		// A fresh buffer each time: the push streams' queues hold it.
		msg := appendPushMsg(make([]byte, 0, size), h.Epoch, h.Prev, h.To, h.Hops, 0, recs)
		p := &outPush{epoch: h.Epoch, prev: h.Prev, to: h.To, hops: h.Hops, recs: recs, msg: msg, size: len(msg)}
		for _, o := range outs {
			if !o.send(p) {
				// The peer sees the hole: the next push's prev is past
				// what it has, and it reads our log.
				m.st.pushDropped.Add(uint64(len(batch)))
				m.st.pushDroppedStream.Add(uint64(len(batch)))
			}
		}
		clear(outs)
		m.st.pushBatches.Add(1)
		m.st.pushRecords.Add(uint64(len(batch)))
	}
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.pushSignal:
		}
		m.pushMu.Lock()
		items := m.pending
		m.pending = nil
		m.pushMu.Unlock()
		for _, it := range items {
			size := len(it.rec.Key) + len(it.rec.Payload) + 16
			if size > maxPushBytes {
				// Too big for one message: leave it to catch-up.
				publish(b.Flush())
				m.pushMu.Lock()
				m.mu.Lock()
				m.r.LocalSkipped(it.seq)
				m.mu.Unlock()
				m.pushMu.Unlock()
				continue
			}
			if bytes+size > maxPushBytes {
				publish(b.Flush())
			}
			bytes += size
			if full := b.Add(it); full != nil {
				publish(full)
			}
		}
		publish(b.Flush())
	}
}

// merge applies a push that arrived on sender's push stream, the
// sender's own or relayed, and tells the replicator: a push from its
// origin moves what we acknowledge of the origin's log, or shows a gap;
// one that was news goes on to the peers the replicator names. A copy
// whose records are here already is not merged.
func (m *Mesh) merge(sender peer.ID, pm pushMsg) {
	from := m.midOf(sender)
	h := mesh.PushHeader{Origin: from, Epoch: pm.epoch, Prev: pm.prev, To: pm.to, Hops: pm.hops, At: time.Now()}
	if pm.origin != 0 {
		h.Origin = pm.origin
	}
	m.st.pushReceived.Add(uint64(len(pm.recs)))
	m.mu.Lock()
	held := m.r.PushHeld(from, h)
	m.mu.Unlock()
	var n int
	var err error
	if held {
		m.st.pushHeld.Add(1)
	} else {
		n, err = m.apply(sender, pm.recs)
		m.st.pushApplied.Add(uint64(n))
		h.Won = n > 0
	}
	if err != nil {
		// Not all of it is applied (a record refused for its clock, or the
		// log refused the batch: a full disk): its writes are missing as a
		// lost push's are, and the origin's log is read for them later.
		h.Refused = true
		if refused, ok := errors.AsType[*mesh.RefusedError](err); ok {
			h.AdmitAt = refused.AdmitAt
		} else if m.ctx.Err() == nil && !errors.Is(err, wal.ErrClosed) {
			m.log.Error("apply pushed records", "from", sender.String(), "err", err)
		}
	}
	var relay mesh.PushHeader
	var outs []*pushOut
	m.step(func() {
		m.r.Step(from, h)
		var ids []mesh.PeerID
		relay, ids = m.r.Relay(from, h, nil)
		outs = m.outsOf(nil, ids)
	})
	if len(outs) == 0 {
		return
	}
	// The records alias the stream's read buffer: the message is encoded
	// anew, once for every peer's queue.
	msg := appendPushMsg(nil, relay.Epoch, relay.Prev, relay.To, relay.Hops, relay.Origin, pm.recs)
	if len(msg) > maxPushMessage {
		return // the origin's ID made it too long for a frame
	}
	m.relay(outs, &outPush{epoch: relay.Epoch, prev: relay.Prev, to: relay.To, hops: relay.Hops, origin: relay.Origin, msg: msg, size: len(msg)})
}

// relay queues the relayed push p for each of outs, counting what each
// queue took and what it could not: one a peer's queue cannot take is the
// overlay's loss, which anti-entropy repairs.
func (m *Mesh) relay(outs []*pushOut, p *outPush) {
	for _, o := range outs {
		if o.send(p) {
			m.st.pushRelayed.Add(1)
		} else {
			m.st.pushRelayDropped.Add(1)
		}
	}
}
