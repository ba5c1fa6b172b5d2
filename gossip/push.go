package gossip

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// Eager push over GossipSub. Only local writes are published: GossipSub
// already carries a message to every subscriber, and a remote write that
// wins here is not published again. Each message is
//
//	byte 1 (version) | uvarint epoch | uvarint prev | uvarint to | mesh push
//
// where the mesh push (mesh.AppendPush) holds the records of this node's
// local writes with log sequence numbers in (prev, to] of log epoch, all
// of them. A receiver that has every local write of the origin up to prev
// now has them up to to, and acknowledges that to the origin (for WAIT);
// one that missed a message (prev beyond what it has) reads the origin's
// log instead.

const pushVersion = 1

// maxLocalQueue bounds the local writes waiting to be pushed; beyond it
// they are left to catch-up and anti-entropy.
const maxLocalQueue = 1 << 16

// maxLocalSeqs bounds the local sequence numbers kept to count the writes
// a peer has not acknowledged.
const maxLocalSeqs = 1 << 20

// maxAhead bounds the pushes kept per origin while one before them is
// missing.
const maxAhead = 1024

// gapPatience is how long a missing push may be late before the origin's
// log is read instead.
const gapPatience = time.Second

type pushItem struct {
	seq uint64
	rec merkle.Record
}

// topicName is the push topic of a mesh.
func (m *Mesh) topicName() string { return "/redmesh/push/1/" + m.name }

func (m *Mesh) startPubsub() error {
	ps, err := pubsub.NewGossipSub(m.ctx, m.h,
		pubsub.WithMaxMessageSize(maxPushMessage),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithPeerExchange(true),
		pubsub.WithFloodPublish(true),
	)
	if err != nil {
		return fmt.Errorf("gossipsub: %w", err)
	}
	m.ps = ps
	name := m.topicName()
	if err := ps.RegisterTopicValidator(name, m.validatePush); err != nil {
		return err
	}
	if m.topic, err = ps.Join(name); err != nil {
		return err
	}
	if m.sub, err = m.topic.Subscribe(pubsub.WithBufferSize(4096)); err != nil {
		return err
	}
	return nil
}

type pushMsg struct {
	epoch, prev, to uint64
	recs            []merkle.Record
}

func appendPushMsg(dst []byte, epoch, prev, to uint64, recs []merkle.Record) []byte {
	dst = append(dst, pushVersion)
	dst = binary.AppendUvarint(dst, epoch)
	dst = binary.AppendUvarint(dst, prev)
	dst = binary.AppendUvarint(dst, to)
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

// validatePush runs before GossipSub delivers or forwards a message: a
// malformed one is rejected (and its sender penalised by GossipSub) and the
// peer that sent it is disconnected.
func (m *Mesh) validatePush(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if _, err := decodePushMsg(msg.Data); err != nil {
		if from != m.h.ID() {
			m.misbehaved(from, "push", err)
		}
		return pubsub.ValidationReject
	}
	return pubsub.ValidationAccept
}

// Committed is the store's commit hook (through the node): it queues this
// node's own writes for eager push. It must not block.
func (m *Mesh) Committed(entries []wal.Entry) {
	self := record.NodeID(m.cfg.Self)
	queued := false
	m.pushMu.Lock()
	for _, e := range entries {
		if !isLocal(e, self) {
			continue
		}
		m.lastLocal = e.Seq
		if len(m.localSeqs) >= maxLocalSeqs {
			m.localSeqs = append(m.localSeqs[:0], m.localSeqs[maxLocalSeqs/2:]...)
		}
		m.localSeqs = append(m.localSeqs, e.Seq)
		if len(m.pending) >= maxLocalQueue {
			m.gapMark = e.Seq
			m.st.pushDropped.Add(1)
			continue
		}
		key := append([]byte(nil), e.Key...)
		m.pending = append(m.pending, pushItem{seq: e.Seq, rec: merkle.Record{Key: key, Payload: record.Encode(e.Record)}})
		queued = true
	}
	m.pushMu.Unlock()
	if queued {
		m.poke(m.pushSignal)
	}
}

// isLocal reports whether an entry is a write made on this node: one of
// its registers took a version of ours it did not have before. Remote
// writes carry other nodes' versions; an expiry sweep keeps the version.
func isLocal(e wal.Entry, self record.NodeID) bool {
	vs := e.Record.Versions()
	for i, v := range vs {
		if v.Node == self && v != e.Prev[i] && !v.IsZero() {
			return true
		}
	}
	return false
}

// LastLocalSeq is the log sequence number of this node's latest local write.
func (m *Mesh) LastLocalSeq() uint64 {
	m.pushMu.Lock()
	defer m.pushMu.Unlock()
	return m.lastLocal
}

// publisher sends queued local writes in batches (mesh.Batcher): a burst
// leaves in full batches, a lone write at once.
func (m *Mesh) publisher() {
	b := mesh.Batcher[pushItem]{}
	_, lastTo := m.store.LogBounds()
	var bytes int
	var buf []byte
	publish := func(batch []pushItem) {
		if len(batch) == 0 {
			return
		}
		bytes = 0
		m.pushMu.Lock()
		gap := m.gapMark
		m.pushMu.Unlock()
		prev := lastTo
		if gap > prev && gap < batch[0].seq {
			prev = gap // receivers see a hole and read our log
		}
		recs := make([]merkle.Record, len(batch))
		for i, it := range batch {
			recs[i] = it.rec
		}
		to := batch[len(batch)-1].seq
		buf = appendPushMsg(buf[:0], m.epoch, prev, to, recs)
		if err := m.topic.Publish(m.ctx, buf); err != nil {
			if m.ctx.Err() == nil {
				m.log.Warn("publish push", "err", err)
			}
			m.pushMu.Lock()
			m.gapMark = max(m.gapMark, to)
			m.pushMu.Unlock()
		} else {
			m.st.pushBatches.Add(1)
			m.st.pushRecords.Add(uint64(len(batch)))
		}
		lastTo = to
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
				m.gapMark = max(m.gapMark, it.seq)
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

// receiver merges pushes from peers.
func (m *Mesh) receiver() {
	self := m.h.ID()
	for {
		msg, err := m.sub.Next(m.ctx)
		if err != nil {
			return
		}
		if msg.ReceivedFrom == self || msg.GetFrom() == self {
			continue
		}
		origin := msg.GetFrom()
		pm, err := decodePushMsg(msg.Data)
		if err != nil {
			continue // the validator already refused it
		}
		m.st.pushReceived.Add(uint64(len(pm.recs)))
		n, err := m.apply(pm.recs)
		if err != nil {
			if m.ctx.Err() == nil && !errors.Is(err, wal.ErrClosed) {
				m.log.Error("apply pushed records", "origin", origin.String(), "err", err)
			}
			continue
		}
		m.st.pushApplied.Add(uint64(n))
		m.mu.Lock()
		ps := m.peer(origin)
		if ps.theirEpoch != pm.epoch {
			ps.theirEpoch, ps.theirAcked, ps.ahead = pm.epoch, 0, nil
		}
		if pm.prev <= ps.theirAcked {
			m.advanceTheirs(ps, pm.epoch, pm.to)
		} else {
			// A push is missing before this one: it may only be late.
			if ps.ahead == nil {
				ps.ahead = map[uint64]uint64{}
			}
			if len(ps.ahead) < maxAhead {
				ps.ahead[pm.prev] = max(ps.ahead[pm.prev], pm.to)
			}
			if ps.gapSince.IsZero() {
				ps.gapSince = time.Now()
			}
		}
		m.mu.Unlock()
	}
}
