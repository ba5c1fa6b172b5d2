package mesh

// Action is what a node does next about one peer's log.
type Action uint8

// Actions.
const (
	// Idle: caught up with the peer's log; nothing to do.
	Idle Action = iota
	// ReadLog: send the returned LogRequest.
	ReadLog
	// Reconcile: the log cannot serve us; run one Merkle session with the
	// peer, then call ReconcileDone.
	Reconcile
	// Bootstrap: stream the peer's snapshot (SnapshotRequestFor), then
	// read its log from where the snapshot began.
	Bootstrap
)

func (a Action) String() string {
	switch a {
	case Idle:
		return "idle"
	case ReadLog:
		return "read-log"
	case Reconcile:
		return "reconcile"
	case Bootstrap:
		return "bootstrap"
	}
	return "action?"
}

// StartCatchUp returns the first request of a catch-up with id, made when
// the link comes up; root is the node's Merkle root now. Without a cursor the
// request asks from epoch 0, which no log has, so the peer answers with its
// epoch and head only and the node reconciles by Merkle (unless the roots
// are equal). max bounds the entries per reply.
func (t *Table) StartCatchUp(id PeerID, max uint32, root uint64) LogRequest {
	p := t.Get(id)
	if p == nil || !p.HasCursor {
		return LogRequest{Max: max, Root: root}
	}
	return LogRequest{Epoch: p.Cursor.Epoch, From: p.Cursor.Next, Max: max, Root: root}
}

// CatchUpReply takes the peer's reply to our last LogRequest, after the
// caller has merged its records, advances the cursor, and says what to do
// next: read on, stop, or fall back to a Merkle session (Reconcile). root is
// the node's Merkle root after merging the reply's records.
func (t *Table) CatchUpReply(id PeerID, r *LogReply, max uint32, root uint64) (Action, LogRequest) {
	p := t.Get(id)
	if p == nil {
		return Idle, LogRequest{}
	}
	if r.Truncated {
		p.pending, p.hasPending = Cursor{Epoch: r.Epoch, Next: r.Head}, true
		return Reconcile, LogRequest{}
	}
	p.Cursor, p.HasCursor = Cursor{Epoch: r.Epoch, Next: r.Next}, true
	if t.boot.active && !t.boot.b.Begun {
		t.boot.active = false // the log serves us: nothing to bootstrap
	}
	if next, ok := NextLogRequest(r, max, root); ok {
		return ReadLog, next
	}
	return Idle, LogRequest{}
}

// Before is reply r cut before its record i: what a reader that could not
// apply record i has read of the peer's log.
func (r *LogReply) Before(i int) *LogReply {
	c := *r
	c.Records = r.Records[:i:i]
	c.Next = r.Next - uint64(len(r.Records)-i)
	return &c
}

// NextLogRequest is the request that follows reply r when there is more to
// read. A reader may send it before it has merged r's records, so that the
// peer reads the next entries while it merges: CatchUpReply then returns the
// same request, with the root after the merge. Sent early, the request
// carries the root from before the merge, so an equal-roots answer (see
// ServeLog) comes one reply later than it could.
func NextLogRequest(r *LogReply, max uint32, root uint64) (LogRequest, bool) {
	if r.Truncated || r.Next >= r.Head {
		return LogRequest{}, false
	}
	return LogRequest{Epoch: r.Epoch, From: r.Next, Max: max, Root: root}, true
}

// ReconcileDone ends a fallback session with id. When it completed, the
// cursor moves to the peer's head at the time of the truncated reply, unless
// it has moved further meanwhile (a push, or equal roots, during the
// session): going back would make the next catch-up read old entries again,
// and what the node acknowledges of the peer's log go back with it; when it
// failed, the cursor is left as it was and the next catch-up tries again.
func (t *Table) ReconcileDone(id PeerID, completed bool) {
	p := t.Get(id)
	if p == nil || !p.hasPending {
		return
	}
	if completed {
		t.AdvanceCursor(id, p.pending)
	}
	p.hasPending = false
}

// Cursors lists every peer's cursor, for persisting with the data they
// describe (a cursor must never be more durable than the records read under
// it).
func (t *Table) Cursors() []PeerCursor {
	var out []PeerCursor
	for i := range t.peers {
		if t.peers[i].HasCursor {
			out = append(out, PeerCursor{t.peers[i].ID, t.peers[i].Cursor})
		}
	}
	return out
}

// RestoreCursors replaces every known peer's cursor with the given ones
// (peers not listed lose theirs), as after a restart.
func (t *Table) RestoreCursors(cs []PeerCursor) {
	for i := range t.peers {
		t.peers[i].HasCursor = false
		t.peers[i].Cursor = Cursor{}
	}
	for _, c := range cs {
		if p := t.Get(c.Peer); p != nil {
			p.Cursor, p.HasCursor = c.Cursor, true
		}
	}
}

// PeerCursor is one entry of Cursors.
type PeerCursor struct {
	Peer   PeerID
	Cursor Cursor
}

// ServeLog decides how to answer req from a log of the given epoch that
// retains the entries [first, head). It returns the range [from, to) of
// entries to send, at most max (req.Max if smaller and not zero), or
// truncated when the log cannot continue from req: another epoch, or a
// position before the oldest retained entry or beyond the head.
//
// root is the server's Merkle root, taken after head was read, so that it
// reflects every entry before head. When the reader's root is the same, the
// reader already holds what those entries carried (or newer): the answer is
// the empty range at head, which moves the reader's cursor there whatever it
// was. That spares a rejoining node re-reading the part of a peer's log it
// got from another peer, and a node without a cursor a Merkle session with a
// peer that has nothing for it.
func ServeLog(req LogRequest, epoch, first, head uint64, max uint32, root uint64) (from, to uint64, truncated bool) {
	if req.Root != 0 && req.Root == root {
		return head, head, false
	}
	if req.Epoch != epoch || req.From < first || req.From > head {
		return 0, 0, true
	}
	if req.Max != 0 && (max == 0 || req.Max < max) {
		max = req.Max
	}
	to = head
	if max != 0 && to-req.From > uint64(max) {
		to = req.From + uint64(max)
	}
	return req.From, to, false
}
