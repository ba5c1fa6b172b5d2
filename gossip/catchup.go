package gossip

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"sync/atomic"
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
// Catch-ups with different peers take turns (see turns).
func (m *Mesh) triggerCatchUp(p peer.ID) {
	m.mu.Lock()
	ps := m.peers[p]
	if ps == nil || !ps.connected {
		m.mu.Unlock()
		return
	}
	if ps.catching {
		ps.catchAgain = true
		m.mu.Unlock()
		return
	}
	ps.catching = true
	m.mu.Unlock()
	m.goRun(func() {
		for {
			if err := m.catchUp(ps); err != nil && m.ctx.Err() == nil {
				m.log.Debug("catch-up", "peer", p.String(), "err", err)
			}
			m.mu.Lock()
			if !ps.catchAgain || !ps.connected || m.ctx.Err() != nil {
				ps.catching, ps.catchAgain = false, false
				m.mu.Unlock()
				return
			}
			ps.catchAgain = false
			m.mu.Unlock()
		}
	})
}

// turns lets one log catch-up read at a time. A node back from an outage
// would otherwise read every peer's log at once, and in a mesh that kept in
// step those logs hold the same writes: it would apply each of them once per
// peer, on cores it shares with everything else. In turns, the first peer's
// log brings the writes and the others, whose roots now match ours, answer
// with their heads (mesh.ServeLog). So that a peer whose log holds much we
// already have (our cursor there is old) does not hold up one that has what
// we lack, a catch-up that has read turnEntries entries while others wait
// goes to the back of the queue.
type turns struct {
	ch      chan struct{} // holds a token while a catch-up has the turn
	waiting atomic.Int32
}

// turnEntries is how many entries a catch-up reads before it lets waiting
// ones go first.
const turnEntries = 16 * logReplyEntries

func newTurns() *turns { return &turns{ch: make(chan struct{}, 1)} }

// take waits for the turn (waiters are served in order: a channel's blocked
// senders are).
func (t *turns) take(ctx context.Context) error {
	t.waiting.Add(1)
	defer t.waiting.Add(-1)
	select {
	case t.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *turns) give() { <-t.ch }

func (m *Mesh) catchUp(ps *peerState) error {
	if err := m.turns.take(m.ctx); err != nil {
		return err
	}
	held := true
	defer func() {
		if held {
			m.turns.give()
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
		frame, err := readFrame(r, maxFrame, &buf)
		if err != nil {
			if errors.Is(err, errFrameTooLarge) || errors.Is(err, errMalformedFrame) {
				m.misbehaved(ps.id, "log reply", err)
			}
			return err
		}
		d, err := mesh.Decode(frame)
		if err == nil && d.Reply == nil {
			err = errors.New("not a log reply")
		}
		if err == nil {
			err = checkRecords(d.Reply.Records)
		}
		if err != nil {
			m.misbehaved(ps.id, "log reply", err)
			return err
		}
		rep := d.Reply
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
		if len(rep.Records) > 0 {
			if _, err := m.applyLog(ps.id, rep.Records); err != nil {
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
		switch act {
		case mesh.ReadLog:
			req = next
			if now := time.Now(); now.Sub(lastLog) >= syncLogEvery {
				lastLog = now
				m.log.Info("catching up from peer's log", "peer", ps.id.String(), "entries", entries,
					"behind", rep.Head-rep.Next, "elapsed", now.Sub(start).Round(time.Second))
			}
			if sinceTurn >= turnEntries && m.turns.waiting.Load() > 0 {
				m.turns.give()
				held, sinceTurn = false, 0
				if err := m.turns.take(m.ctx); err != nil {
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
				ps.catchAgain = true // now read its log from the snapshot's start
				m.mu.Unlock()
				return nil
			}
			// A session repairs everything this peer has for us: other
			// catch-ups need not wait for it.
			m.turns.give()
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
		frame, err := readFrame(r, maxLogRequest, &buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && (errors.Is(err, errFrameTooLarge) || errors.Is(err, errMalformedFrame)) {
				m.misbehaved(p, "log request", err)
			}
			return
		}
		d, err := mesh.Decode(frame)
		if err == nil && d.Request == nil {
			err = errors.New("not a log request")
		}
		if err != nil {
			m.misbehaved(p, "log request", err)
			return
		}
		req := *d.Request
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
	if ps.wanted() {
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
