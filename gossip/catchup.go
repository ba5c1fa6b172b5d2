package gossip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// Log catch-up over /redmesh/log/2: the reader sends a frame holding a
// mesh.LogRequest, the server answers with a frame holding a
// mesh.LogReply, and so on until the reader is caught up and closes the
// stream. The policy (where to start, when to read on, when to fall back to
// a Merkle session) is mesh's, shared with the simulator.

const maxLogRequest = 64

// triggerCatchUp reads p's log from our cursor, unless a catch-up with p
// is already running (it then runs once more when done).
//
// Catch-ups with different peers take turns (mesh.CatchUps).
func (m *Mesh) triggerCatchUp(p peer.ID) {
	m.mu.Lock()
	ps := m.peers[p]
	if ps == nil || !ps.connected {
		m.mu.Unlock()
		return
	}
	if !m.catchUps.Trigger(ps.mid) {
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	m.goRun(func() {
		for {
			if err := m.catchUp(ps); err != nil && m.ctx.Err() == nil {
				m.log.Debug("catch-up", "peer", p.String(), "err", err)
			}
			m.mu.Lock()
			again := m.catchUps.Ended(ps.mid, ps.connected && m.ctx.Err() == nil)
			m.mu.Unlock()
			if !again {
				return
			}
		}
	})
}

// takeTurn waits for ps's turn to read a log (mesh.CatchUps).
func (m *Mesh) takeTurn(ps *peerState) error {
	m.mu.Lock()
	if m.catchUps.Take(ps.mid) {
		m.mu.Unlock()
		return nil
	}
	granted := make(chan struct{})
	m.turnGranted[ps.mid] = granted
	m.mu.Unlock()
	select {
	case <-granted:
		return nil
	case <-m.ctx.Done():
		m.giveTurn(ps)
		return m.ctx.Err()
	}
}

// giveTurn gives up ps's turn (or its place in the queue) and wakes the
// catch-up that has it next.
func (m *Mesh) giveTurn(ps *peerState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.turnGranted, ps.mid)
	if next, ok := m.catchUps.Give(ps.mid); ok {
		close(m.turnGranted[next])
		delete(m.turnGranted, next)
	}
}

func (m *Mesh) catchUp(ps *peerState) error {
	if err := m.takeTurn(ps); err != nil {
		return err
	}
	held := true
	defer func() {
		if held {
			m.giveTurn(ps)
		}
	}()
	m.mu.Lock()
	req := m.table.StartCatchUp(ps.mid, logReplyEntries, m.local.MerkleRoot())
	loud := ps.linkUp
	ps.linkUp = false
	m.mu.Unlock()
	m.st.catchUps.Add(1)
	s, err := m.h.NewStream(m.ctx, ps.id, protoLog)
	if err != nil {
		return err
	}
	defer s.Close()
	r, w := streamIO(s)
	var buf bytes.Buffer
	var out []byte
	send := func(req mesh.LogRequest) error {
		out = mesh.AppendLogRequest(out[:0], req)
		if err := writeFrame(w, out); err != nil {
			return err
		}
		return w.Flush()
	}
	start, entries, sinceTurn := time.Now(), 0, 0
	lastLog := start
	sent := false // the next request went out before the last reply was merged
	for {
		s.SetDeadline(time.Now().Add(ioTimeout))
		if !sent {
			if err := send(req); err != nil {
				return err
			}
		}
		rep, err := readMessage(m, ps.id, "log reply", r, maxFrame, &buf, decodeLogReply)
		if err != nil {
			return err
		}
		// Ask for more before merging, so that the peer reads its log while
		// we merge; the reply lands in buf only after the merge is done.
		// The request carries the root from before the merge, and so does
		// CatchUpReply's (the same request, already sent).
		root := m.local.MerkleRoot()
		var early mesh.LogRequest
		early, sent = mesh.NextLogRequest(rep, logReplyEntries, root)
		if sent {
			if err := send(early); err != nil {
				return err
			}
		}
		var refused *mesh.RefusedError
		if len(rep.Records) > 0 {
			_, err := m.applyLog(ps.id, rep.Records)
			if refused, _ = errors.AsType[*mesh.RefusedError](err); refused != nil {
				// Read up to the refused record only; the rest was merged
				// but is read again with it.
				rep = rep.Before(refused.First)
			} else if err != nil {
				return err
			}
			entries += len(rep.Records)
			sinceTurn += len(rep.Records)
			m.st.catchUpEntries.Add(uint64(len(rep.Records)))
		}
		m.mu.Lock()
		m.sawHead(ps, rep.Epoch, rep.Head)
		ps.prog.Advance(rep.Epoch, 0) // a new epoch is tracked from its start (see progress)
		act, next := m.table.CatchUpReply(ps.mid, rep, logReplyEntries, root)
		if act == mesh.ReadLog {
			m.cursorsDirty = true // saved within seconds (maintain), or when done below
		}
		if refused != nil {
			// The catch-up stops at the refused record, its writes and
			// those after it missing: the log is read again after the gap's
			// patience (mesh.Progress.Missed), when the clock may admit it.
			ps.prog.Missed(rep.Epoch, rep.Head-1, time.Now(), refused.AdmitAt)
			act = mesh.Idle
		}
		m.mu.Unlock()
		if act == mesh.Idle {
			// One save, which syncs, at the end rather than one per reply:
			// after the records, so a cursor is never more durable than they
			// are.
			m.saveCursors()
		}
		if !rep.Truncated {
			m.progress(ps, rep.Epoch, rep.Next)
		}
		if refused != nil {
			m.log.Debug("catch-up stopped at a refused record", "peer", ps.id.String(), "next", rep.Next, "err", refused)
			return nil
		}
		switch act {
		case mesh.ReadLog:
			req = next
			if now := time.Now(); now.Sub(lastLog) >= syncLogEvery {
				lastLog = now
				m.log.Info("catching up from peer's log", "peer", ps.id.String(), "entries", entries,
					"behind", rep.Head-rep.Next, "elapsed", now.Sub(start).Round(time.Second))
			}
			m.mu.Lock()
			yield := m.catchUps.Yield(ps.mid, sinceTurn)
			m.mu.Unlock()
			if yield {
				m.giveTurn(ps)
				held, sinceTurn = false, 0
				if err := m.takeTurn(ps); err != nil {
					return err
				}
				held = true
			}
			continue
		case mesh.Idle:
			m.st.catchUpsByLog.Add(1)
			m.synced.Store(true)
			if entries > 0 {
				lg := m.log.Debug
				if loud {
					lg = m.log.Info
				}
				lg("caught up from peer's log", "peer", ps.id.String(), "entries", entries,
					"next", rep.Next, "took", time.Since(start).Round(time.Millisecond))
			}
			return nil
		case mesh.Reconcile:
			s.Close()
			// Empty: holding nothing now, or at start with no sync
			// completed and no local write since (pushes that arrived
			// meanwhile do not make a Merkle walk over every key worth it).
			empty := m.local.Empty() || m.startedEmpty && !m.synced.Load() && m.LastLocalSeq() == m.startLocal
			m.mu.Lock()
			act = m.table.ChooseRepair(ps.mid, empty)
			m.mu.Unlock()
			if act == mesh.Bootstrap {
				// The turn stays ours: other peers' logs would bring the
				// same keys again.
				if err := m.bootstrap(ps); err != nil {
					return err
				}
				m.mu.Lock()
				m.catchUps.Trigger(ps.mid) // again: now read its log from the snapshot's start
				m.mu.Unlock()
				return nil
			}
			// A session repairs everything this peer has for us: other
			// catch-ups need not wait for it.
			m.giveTurn(ps)
			held = false
			m.st.fallbacks.Add(1)
			m.log.Info("peer's log cannot serve our cursor: reconciling by Merkle", "peer", ps.id.String(),
				"had_cursor", req.Epoch != 0, "peer_head", rep.Head)
			ok := m.runSession(ps.id, true)
			m.mu.Lock()
			m.table.ReconcileDone(ps.mid, ok)
			m.mu.Unlock()
			if ok {
				m.synced.Store(true)
				m.saveCursors()
				m.progress(ps, rep.Epoch, rep.Head)
				m.log.Info("reconciled by Merkle instead of the log", "peer", ps.id.String(),
					"took", time.Since(start).Round(time.Millisecond))
			}
			return nil
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
func (m *Mesh) serveLog(s network.Stream) {
	defer s.Close()
	p := s.Conn().RemotePeer()
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
		rep := m.logReply(req)
		out = mesh.AppendLogReply(out[:0], rep)
		if err := writeFrame(w, out); err != nil {
			return
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

func (m *Mesh) logReply(req mesh.LogRequest) *mesh.LogReply {
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
		rep.Records = append(rep.Records, merkle.Record{Key: e.Key, Payload: record.Encode(e.Record)})
	}
	rep.Next = from + uint64(len(rep.Records))
	if len(rep.Records) == 0 {
		return &mesh.LogReply{Epoch: m.epoch, Head: head, Truncated: true}
	}
	return rep
}

// progress notes that every entry of p's log epoch before next is applied
// here, and acknowledges it to p.
func (m *Mesh) progress(ps *peerState, epoch, next uint64) {
	if next == 0 {
		return
	}
	m.mu.Lock()
	m.advanceTheirs(ps, epoch, next-1)
	m.mu.Unlock()
}

// advanceTheirs moves our acknowledgement of ps's writes. m.mu is held.
func (m *Mesh) advanceTheirs(ps *peerState, epoch, acked uint64) {
	if ps.prog.Advance(epoch, acked) {
		m.progressed(ps)
	}
}

// progressed follows ps.prog's move: our view of its log's head, our
// cursor there, and the acknowledgement it may be waiting for. m.mu is held.
func (m *Mesh) progressed(ps *peerState) {
	epoch, acked := ps.prog.Epoch, ps.prog.Acked
	m.sawHead(ps, epoch, acked+1)
	// Everything up to acked is applied here, however it came: the
	// catch-up cursor moves too, saved by maintain within seconds.
	if m.table.AdvanceCursor(ps.mid, mesh.Cursor{Epoch: epoch, Next: acked + 1}) {
		m.cursorsDirty = true
	}
	if ps.ackOut.Wanted(ps.prog) {
		m.poke(m.ackSignal)
	}
}

// Cursors are saved as uvarint(count), then per peer uvarint(node ID),
// uvarint(epoch), uvarint(next).
func (m *Mesh) saveCursors() {
	m.mu.Lock()
	cs := m.table.Cursors()
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
