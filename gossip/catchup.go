package gossip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// Log catch-up over /redmesh/log/3 (/redmesh/log/2 with a peer of an
// earlier version, in its encoding: versions.go): the reader sends a frame holding a
// mesh.LogRequest, the server answers with a frame holding a
// mesh.LogReply, and so on until the reader is caught up and closes the
// stream. The policy (where to start, when to read on, when to fall back to
// a Merkle session or a snapshot, whose turn it is) is mesh.Replicator's,
// shared with the simulator.

const maxLogRequest = 64

// catchUp sends lr's requests as the replicator decides on them and
// merges the replies: each is stepped once as it arrives (the replicator
// may ask for the next entries at once, so the peer reads its log while
// this node merges) and once applied. It returns when the run ends.
func (m *Mesh) catchUp(lr *logRun) error {
	s, _, err := m.open(m.ctx, lr.peer, logIDs)
	if err != nil {
		return err
	}
	defer s.Close()
	decode := carrying(m.wireEncoding, decodeLogReply, func(r *mesh.LogReply) []merkle.Record { return r.Records })
	r, w := streamIO(s)
	var buf bytes.Buffer
	var out []byte
	outstanding := 0
	// flush sends the requests decided on, each with the Merkle root now
	// (from before a reply's merge, for one sent as the reply arrived).
	flush := func() (bool, error) {
		reqs, live := m.takeReqs(lr)
		if !live {
			return false, nil
		}
		for _, req := range reqs {
			req.Root = m.local.MerkleRoot()
			out = mesh.AppendLogRequest(out[:0], req)
			if err := writeFrame(w, out); err != nil {
				return true, err
			}
			outstanding++
		}
		if len(reqs) > 0 {
			return true, w.Flush()
		}
		return true, nil
	}
	entries, lastLog := 0, lr.start
	for {
		if live, err := flush(); !live || err != nil {
			return err
		}
		if outstanding == 0 {
			select {
			case <-lr.more:
				continue
			case <-lr.stop:
				return nil
			case <-m.ctx.Done():
				return m.ctx.Err()
			}
		}
		s.SetDeadline(time.Now().Add(ioTimeout))
		rep, err := readMessage(m, lr.peer, "log reply", r, maxFrame, &buf, decode)
		if err != nil {
			return err
		}
		outstanding--
		if lr.stopped() {
			return errRunEnded
		}
		m.step(func() { m.r.Step(lr.mid, mesh.LogArrivedMsg{Run: lr.run, Reply: rep}) })
		if live, err := flush(); !live || err != nil {
			return err
		}
		msg := mesh.LogReplyMsg{Run: lr.run, Reply: rep}
		if len(rep.Records) > 0 {
			_, err := m.applyLog(lr.peer, rep.Records)
			if refused, ok := errors.AsType[*mesh.RefusedError](err); ok {
				// Read up to the refused record only; the rest was merged
				// but is read again with it once the clock admits it.
				msg.Reply, msg.Refused, msg.AdmitAt = rep.Before(refused.First), true, refused.AdmitAt
				m.log.Debug("catch-up stopped at a refused record", "peer", lr.peer.String(), "next", msg.Reply.Next, "err", refused)
			} else if err != nil {
				return err
			}
			entries += len(msg.Reply.Records)
			m.st.catchUpEntries.Add(uint64(len(msg.Reply.Records)))
		}
		if rep.Truncated {
			// Fresh: empty at start with no local write since (pushes
			// that arrived meanwhile do not make a Merkle walk over every
			// key worth it, until the core knows a sync completed).
			msg.Empty = m.local.Empty()
			msg.Fresh = m.startedEmpty && m.LastLocalSeq() == m.startLocal
		}
		msg.At = time.Now()
		m.step(func() { m.r.Step(lr.mid, msg) })
		if now := msg.At; now.Sub(lastLog) >= syncLogEvery && rep.Next < rep.Head {
			lastLog = now
			m.log.Info("catching up from peer's log", "peer", lr.peer.String(), "entries", entries,
				"behind", rep.Head-rep.Next, "elapsed", now.Sub(lr.start).Round(time.Second))
		}
	}
}

// checkRecords checks that every record received decodes, before any of
// it is applied: a peer that sends garbage is cut off, not half applied.
func checkRecords(recs []merkle.Record) error {
	for _, r := range recs {
		if len(r.Key) == 0 {
			return errors.New("empty key")
		}
		if _, err := record.Decode(r.Payload); err != nil {
			return err
		}
	}
	return nil
}

// serveLog answers a peer reading our log.
func (m *Mesh) serveLog(s Stream) {
	defer s.Close()
	p := s.Remote()
	enc := encodingOf(s.Protocol())
	r, w := streamIO(s)
	var buf bytes.Buffer
	var out []byte
	for {
		s.SetDeadline(time.Now().Add(ioTimeout))
		asked, err := readMessage(m, p, "log request", r, maxLogRequest, &buf, decodeLogRequest)
		if err != nil {
			return
		}
		req := *asked
		if m.asideHorizon(p) != 0 {
			req = mesh.ForReturned(req)
		}
		rep := m.logReply(req, enc)
		out = mesh.AppendLogReply(out[:0], rep)
		if err := writeFrame(w, out); err != nil {
			return
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

// logReply answers req with records in encoding enc.
func (m *Mesh) logReply(req mesh.LogRequest, enc record.Encoding) *mesh.LogReply {
	first, last := m.store.LogBounds()
	head := last + 1
	// The root after the head, so that it reflects every entry before it.
	from, to, trunc := mesh.ServeLog(req, m.epoch, first, head, logReplyEntries, m.local.MerkleRoot())
	rep := &mesh.LogReply{Epoch: m.epoch, Head: head, Next: to, Truncated: trunc}
	if trunc || to == from {
		return rep
	}
	entries, err := m.store.ReadLog(from, int(to-from), logReplyBytes)
	if err != nil {
		if !errors.Is(err, wal.ErrTruncated) {
			m.log.Error("read log for a peer", "err", err)
		}
		return &mesh.LogReply{Epoch: m.epoch, Head: head, Truncated: true}
	}
	rep.Records = make([]merkle.Record, 0, len(entries))
	for i, e := range entries {
		if e.Seq != from+uint64(i) {
			break // entries are contiguous; stop at anything else
		}
		rep.Records = append(rep.Records, merkle.Record{Key: e.Key, Payload: record.EncodeAs(e.Record, enc)})
	}
	rep.Next = from + uint64(len(rep.Records))
	if len(rep.Records) == 0 {
		return &mesh.LogReply{Epoch: m.epoch, Head: head, Truncated: true}
	}
	return rep
}

// Cursors are saved as uvarint(count), then per peer uvarint(node ID),
// uvarint(epoch), uvarint(next).
func (m *Mesh) saveCursors() {
	m.mu.Lock()
	cs := m.r.Cursors()
	m.mu.Unlock()
	b := binary.AppendUvarint(nil, uint64(len(cs)))
	for _, c := range cs {
		b = binary.AppendUvarint(b, uint64(c.Peer))
		b = binary.AppendUvarint(b, c.Cursor.Epoch)
		b = binary.AppendUvarint(b, c.Cursor.Next)
	}
	if err := m.store.PutMetaSync(metaCursors, b); err != nil && !errors.Is(err, wal.ErrClosed) {
		m.log.Error("save peer cursors", "err", err)
	}
}

func decodeCursors(b []byte) []mesh.PeerCursor {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil
	}
	b = b[k:]
	var out []mesh.PeerCursor
	for i := uint64(0); i < n; i++ {
		var v [3]uint64
		for j := range v {
			x, k := binary.Uvarint(b)
			if k <= 0 {
				return out
			}
			v[j], b = x, b[k:]
		}
		out = append(out, mesh.PeerCursor{Peer: mesh.PeerID(v[0]), Cursor: mesh.Cursor{Epoch: v[1], Next: v[2]}})
	}
	return out
}

// loadCursors reads the cursors saved into the peers' logs.
func (m *Mesh) loadCursors() []mesh.PeerCursor {
	b, ok, err := m.store.GetMeta(metaCursors)
	if err != nil || !ok {
		return nil
	}
	return decodeCursors(b)
}
