package mesh

import (
	"slices"
	"time"

	"github.com/redmesh/redmesh/hlc"
)

// Replicator is a node's replication policy as one state machine, in the
// shape of etcd raft's RawNode: the driver (the libp2p mesh, or the
// simulator's event queue) tells it what arrived from peers (Step), that
// time passed (Tick, CheckGaps) and what happened locally (links up and
// down, local writes, syncs, sessions ended), and collects from Ready what
// to do: log requests to send, fallback sessions and bootstraps to run,
// anti-entropy sessions to start, acknowledgements to send, cursors and the
// stable time to save, members to forget, own writes to set aside. It owns
// every piece of per-peer and per-origin state the policy needs (Table,
// Progress, Durable, AckOut, CatchUps, PushRange, Stability) and nothing
// else: no goroutines, sockets, clocks or storage handles.
//
// Sequence numbers are those of the node's log: an entry's number, the
// head being the next one; Progress.Acked is the last entry applied, a
// cursor's Next the first not read.
type Replicator struct {
	cfg      ReplicatorConfig
	table    Table
	catchUps CatchUps
	peers    map[PeerID]*replPeer
	catching map[PeerID]*catchUp
	runs     uint64 // numbers catch-ups, so a stale reply is known
	push     PushRange
	stab     *Stability
	// saved is the stable time as the driver saved it (StableSaved): what
	// collection and the filters use.
	saved hlc.Timestamp
	// forgot: members forgotten (the driver saves them).
	forgot map[PeerID]bool
	// asideDone is how far this node set its own writes aside, having been
	// told it was forgotten; asideWanted what Ready asked for, not yet done.
	asideDone, asideWanted hlc.Timestamp
	// synced and mark are the store's sync numbers (Synced).
	synced, mark uint64
	// sessionRunning: an anti-entropy session this node started runs.
	sessionRunning bool
	ackPoke        bool
	// bootRunning: a snapshot stream Ready asked for runs; bootTry is when
	// the last one began (CheckGaps retries a wanted bootstrap).
	bootRunning bool
	bootTry     time.Time
	// syncDone: a catch-up read a peer's log to its head, or a fallback
	// session or a bootstrap completed, since this node started: it no
	// longer holds only what pushes brought (LogReplyMsg.Fresh).
	syncDone bool
	// waitFor is the highest sequence number of our log a WAIT asked the
	// peers to acknowledge (WaitFor).
	waitFor uint64
	// seen: pushes whose records are here or being merged, for dropping
	// relayed copies; known, a filter of the peers with state here (PushHeld).
	seen  pushSeen
	known peerFilter
	rd    Ready
}

// ReplicatorConfig is what a Replicator is started with.
type ReplicatorConfig struct {
	Self PeerID
	// Epoch is this node's log epoch; Head the next sequence number of its
	// log at start (what receivers learn of from the log, not pushes).
	Epoch, Head uint64
	// LogMax is the most entries a log request asks for (0: the server's
	// limit).
	LogMax uint32
	// Always: every commit is synced (--fsync always), so what is applied
	// counts as durable at once.
	Always bool
	// Stable and Aside are the stable time and the horizon up to which this
	// node set its own writes aside, as saved; Forgotten the members saved
	// as forgotten.
	Stable, Aside hlc.Timestamp
	Forgotten     []PeerID
	// ForgetAfter: a member silent longer, while this node is linked to a
	// majority, is forgotten (0: never).
	ForgetAfter time.Duration
	// Intn returns a number in [0, n): the random source of peer choices.
	Intn func(n int) int
	// Fanout is how many linked peers a push that was news here is relayed
	// to (0: DefaultFanout).
	Fanout int
	// NoCatchUp turns log catch-up off, for measuring what it is worth (the
	// simulator's no-catch-up); a node always runs it.
	NoCatchUp bool
	// Cursors are the peers' cursors as saved: each names a known peer.
	Cursors []PeerCursor
}

// replPeer is the replicator's state about one peer, across
// disconnections.
type replPeer struct {
	id PeerID
	// prog is how far this node has applied the peer's own writes; durable
	// how far that is synced here; out what the acknowledgement stream to
	// it said, fresh when the stream is new.
	prog    Progress
	durable Durable
	out     AckOut
	fresh   bool
	// acked is how far the peer acknowledged this node's writes (our epoch).
	acked   uint64
	ackedAt time.Time
	upAt    time.Time
	// What we know of the peer's log: its head in headEpoch, as pushes, log
	// replies and roots report it, and since when we have held all of it.
	head, headEpoch uint64
	caughtUpAt      time.Time
	// asideBelow: the peer was forgotten and came back when the stable time
	// was this; its writes up to it that this node lacks are set aside.
	asideBelow hlc.Timestamp
	// loud: the next catch-up is the one of a new link.
	loud bool
	// seen is its log's head as the last session with it reported it,
	// seenOwn its last local write then (RootAt.Own), and seenAcked how far
	// we had applied its writes then (Progress: Epoch, Acked).
	seen, seenAcked Cursor
	seenOwn         uint64
	// ackIn: the peer's stream acknowledging our writes is open, on which
	// we asked for wantSent (a WAIT).
	ackIn    bool
	wantSent uint64
	// early is an acknowledgement that arrived before the link's LinkUp
	// (the peer opened its stream on a connection the driver had not
	// reported yet); LinkUp takes it. The peer sends what it has once on a
	// new stream and then only what moves, so one dropped may not come
	// again while its writes stand still.
	early *AckMsg
}

// catchUp is one run of log catch-up from a peer.
type catchUp struct {
	run  uint64
	read int // entries read since it took the turn
	// resume is the request to go on with when the turn comes back.
	resume *LogRequest
	// fallback is the peer's log when its truncated reply came: a completed
	// session brought every entry before Head.
	fallback Cursor
	loud     bool
	entries  int
	// early is the request sent as the last reply arrived, before it was
	// applied (LogArrivedMsg): the next one, already asked for.
	early *LogRequest
}

// NewReplicator starts a replicator.
func NewReplicator(cfg ReplicatorConfig) *Replicator {
	r := &Replicator{cfg: cfg, peers: map[PeerID]*replPeer{}, forgot: map[PeerID]bool{}}
	for _, id := range cfg.Forgotten {
		r.forgot[id] = true
	}
	r.start(cfg.Epoch, cfg.Head)
	for _, c := range cfg.Cursors {
		r.AddPeer(c.Peer)
	}
	r.table.RestoreCursors(cfg.Cursors)
	return r
}

// start sets up what a node has after it starts: its saved state (peers,
// cursors, the stable time, the forgotten members) and nothing else.
func (r *Replicator) start(epoch, head uint64) {
	r.cfg.Epoch = epoch
	r.peers = map[PeerID]*replPeer{}
	r.known = peerFilter{}
	r.catching = nil
	r.catchUps = CatchUps{}
	r.table.DisconnectAll()
	r.saved = max(r.saved, r.cfg.Stable)
	r.stab = NewStability(r.cfg.Self, r.saved)
	r.asideDone = max(r.asideDone, r.cfg.Aside)
	r.asideWanted = 0
	r.stab.SetAside(r.asideDone)
	for _, p := range r.table.Peers() {
		r.stab.Member(p.ID)
	}
	for id := range r.forgot {
		r.stab.Forget(id)
	}
	r.push = PushRange{}
	r.seen = pushSeen{} // a crash may have lost what they brought
	r.push.Start(head - min(head, 1))
	// No sync is known to be done; the next to begin is the first.
	r.synced, r.mark, r.sessionRunning, r.ackPoke = 0, 1, false, false
	r.bootRunning, r.bootTry, r.waitFor = false, time.Time{}, 0
	r.rd = Ready{}
}

// Restart is the node starting again with what it saved: its log's epoch
// and head now, and its cursors as last saved. The peers stay known;
// links, catch-ups, progress and acknowledgements start over. It is for a
// driver that keeps the replicator across a crash (the simulator); a
// process makes a new one.
func (r *Replicator) Restart(epoch, head uint64, cursors []PeerCursor) {
	r.table.RestoreCursors(cursors)
	r.start(epoch, head)
}

// Ready is what the driver does next. Slices are in the order the
// decisions were made.
type Ready struct {
	// Reads are log requests to send. The driver sets each request's Root
	// to its Merkle root as it sends it.
	Reads []Read
	// Reconciles are fallback Merkle sessions to run (the peer's log cannot
	// serve the cursor); each ends with FallbackDone.
	Reconciles []Run
	// Bootstraps are snapshot streams to run (Table's bootstrap); each ends
	// with BootstrapDone.
	Bootstraps []Run
	// CaughtUp are catch-ups that ended with the peer's log read to its
	// head.
	CaughtUp []CaughtUp
	// Sessions are anti-entropy sessions to start (Round); each ends with
	// SessionDone.
	Sessions []PeerID
	// Acks are acknowledgements to send, each on the stream to its peer.
	Acks []AckTo
	// Wants ask peers to acknowledge our writes up to a sequence number as
	// soon as they have applied them (a WAIT), each on the stream the peer
	// acknowledges on.
	Wants []AckWantTo
	// AckedMoved: a peer acknowledged more of this node's writes (a WAIT
	// may be answered).
	AckedMoved bool
	// SaveCursors: cursors moved; Now: save them at once (a catch-up ended),
	// otherwise within seconds. A cursor is saved only after the records
	// read under it are durable.
	SaveCursors, SaveCursorsNow bool
	// SaveStable, if not 0, is a new stable time to save; StableSaved
	// tells the replicator it is.
	SaveStable hlc.Timestamp
	// Forget are members silent for longer than ForgetAfter: the driver
	// forgets them (saves the forgotten members, stops dialling them).
	Forget []PeerID
	// Returned are forgotten members whose link came up: members again,
	// their writes up to the stable time set aside (AsideBelow).
	Returned []PeerID
	// SetAside, if not 0: this node was forgotten; the driver sets its own
	// writes up to it aside, then calls AsideDone.
	SetAside hlc.Timestamp
	// SyncWanted: an acknowledgement waits for a sync of the store.
	SyncWanted bool
}

// Empty reports whether rd holds nothing to do.
func (rd *Ready) Empty() bool {
	return len(rd.Reads)+len(rd.Reconciles)+len(rd.Bootstraps)+len(rd.CaughtUp)+len(rd.Sessions)+
		len(rd.Acks)+len(rd.Wants)+len(rd.Forget)+len(rd.Returned) == 0 &&
		!rd.AckedMoved && !rd.SaveCursors && !rd.SaveCursorsNow && rd.SaveStable == 0 && rd.SetAside == 0 && !rd.SyncWanted
}

// Read is a log request for a peer, in catch-up Run.
type Read struct {
	Peer PeerID
	Run  uint64
	Req  LogRequest
	// First: the catch-up's first request (from the cursor). Early: asked
	// for as the last reply arrived, before it was applied.
	First, Early bool
}

// Run names one catch-up with a peer.
type Run struct {
	Peer PeerID
	Run  uint64
}

// CaughtUp is a catch-up that ended by reading a peer's log to its head:
// Entries read in all; Loud, the first of a new link.
type CaughtUp struct {
	Peer    PeerID
	Entries int
	Loud    bool
}

// AckTo is an acknowledgement for a peer.
type AckTo struct {
	Peer PeerID
	Ack  Ack
}

// AckWantTo asks a peer to acknowledge our writes up to Seq of our log
// Epoch.
type AckWantTo struct {
	Peer       PeerID
	Epoch, Seq uint64
}

// Ready returns what accumulated since the last call.
func (r *Replicator) Ready() Ready {
	r.flushAcks()
	rd := r.rd
	r.rd = Ready{}
	return rd
}

func (r *Replicator) peer(id PeerID) *replPeer {
	p := r.peers[id]
	if p == nil {
		p = &replPeer{id: id}
		r.peers[id] = p
		r.known.add(id)
	}
	return p
}

// AddPeer makes id a known peer (a remembered or configured one, not
// connected), a member of the mesh that holds collection back until it
// reports.
func (r *Replicator) AddPeer(id PeerID) {
	r.table.Add(id)
	r.Member(id)
}

// Member makes id a member of the mesh (without a link to it).
func (r *Replicator) Member(id PeerID) {
	if !r.forgot[id] {
		r.stab.Member(id)
	}
}

// Members makes every ID of ids a member, as Member does, keeping ids
// itself (Stability.Members: sorted, free of duplicates, never written).
// The forgotten ones are left as they are: they are members with a state
// of their own already.
func (r *Replicator) Members(ids []PeerID) { r.stab.Members(ids) }

// RemovePeer forgets id for good (it left the mesh), noticed at now: its
// link is down, its cursor gone, and it no longer holds collection back.
func (r *Replicator) RemovePeer(id PeerID, now time.Time) {
	r.LinkDown(id, now)
	r.table.Remove(id)
	r.forget(id)
	delete(r.peers, id)
}

// LinkUp records that the link to id came up at now: a catch-up from its
// log starts.
func (r *Replicator) LinkUp(id PeerID, now time.Time) {
	r.table.Add(id)
	r.table.SetConnected(id, true)
	p := r.peer(id)
	p.upAt, p.fresh, p.out, p.loud = now, true, AckOut{}, true
	r.ackPoke = true // the new stream says what there is at once
	if r.stab.LinkUp(id) || r.forgot[id] {
		delete(r.forgot, id)
		p.asideBelow = r.saved
		r.rd.Returned = append(r.rd.Returned, id)
	}
	if m := p.early; m != nil {
		p.early = nil
		r.acked(id, *m)
	}
	r.trigger(id)
}

// AssumeLinked records a link to id that was up when this node's run
// began, with its peers told and nothing to catch up: every entry of its
// log before c is applied here, and its root was root. It is for a mesh
// started in a steady state (the simulator's).
func (r *Replicator) AssumeLinked(id PeerID, c Cursor, root uint64) {
	r.table.Add(id)
	r.table.SetConnected(id, true)
	r.table.SetCursor(id, c)
	r.table.ObserveRoot(id, root)
	p := r.peer(id)
	p.prog.Advance(c.Epoch, c.Next-min(c.Next, 1))
	r.stab.LinkUp(id)
	r.stab.Exchanged(id)
}

// LinkDown records that the link to id closed at now: its catch-up ends,
// its acknowledgement stream with it.
func (r *Replicator) LinkDown(id PeerID, now time.Time) {
	r.table.SetConnected(id, false)
	r.stab.LinkDown(id, now)
	if p := r.peers[id]; p != nil {
		p.out, p.fresh, p.early = AckOut{}, false, nil
	}
	if cu := r.catching[id]; cu != nil {
		r.end(id, cu)
	}
}

// AckStreamReset records that the acknowledgement stream to id failed and
// is opened again: the next acknowledgement says everything.
func (r *Replicator) AckStreamReset(id PeerID) {
	if p := r.peers[id]; p != nil {
		p.out, p.fresh = AckOut{}, true
		r.ackPoke = true
	}
}

// connected reports whether the link to id is up.
func (r *Replicator) connected(id PeerID) bool {
	p := r.table.Get(id)
	return p != nil && p.Connected
}

// Message is what Step takes: one of PushHeader, LogArrivedMsg,
// LogReplyMsg, RootsMsg, AckMsg, AckWantMsg, PeersMsg.
type Message interface{ isMessage() }

// PushHeader is an eager push's header, after its records were applied:
// origin's local writes (Prev, To] of its log Epoch, arrived At, from the
// origin itself (Step's from) or relayed by another peer (relay.go), which
// moves nothing (messages are unsigned). Hops is the relay budget left
// (the origin's PushHeader sets it); Won: a record of it won here, so it
// was news to this node (Relay). Refused:
// a record of it was not applied (mesh.Admit refused it, admitted from
// AdmitAt; or the store failed, AdmitAt zero): its writes are missing, and
// the origin's log is read for them after the gap's patience, not before
// AdmitAt.
type PushHeader struct {
	Origin          PeerID
	Epoch, Prev, To uint64
	Hops            uint8
	At              time.Time
	Won             bool
	Refused         bool
	AdmitAt         time.Time
}

// LogArrivedMsg is a reply to a Read of catch-up Run as it arrived,
// before its records are applied: the catch-up may ask for the entries
// after it at once (Read.Early), so that the peer reads its log while this
// node merges. The same reply follows as a LogReplyMsg once applied; a
// driver that does not overlap the two may leave this one out.
type LogArrivedMsg struct {
	Run   uint64
	Reply *LogReply
}

// LogReplyMsg is a reply to a Read of catch-up Run, after its records
// were applied. Empty: this node holds nothing; Fresh: it started empty and
// made no local write since, so until a sync completes it holds only what
// pushes brought. Either way a bootstrap, not a Merkle session, repairs it.
// Refused: the record at Reply.Next could not be
// applied (the driver cut the reply before it, LogReply.Before): the
// catch-up stops there, and the log is read again after the gap's
// patience, once the clock admits it (AdmitAt, as PushHeader's).
type LogReplyMsg struct {
	Run     uint64
	Reply   *LogReply
	Empty   bool
	Fresh   bool
	Refused bool
	AdmitAt time.Time
	At      time.Time
}

// RootsMsg is the end of a completed Merkle session with the peer: its
// root and log head, and ours (Root only), taken after the session.
type RootsMsg struct {
	Theirs RootAt
	Ours   uint64
}

// AckMsg is the peer's acknowledgement of our writes, arrived At.
type AckMsg struct {
	Ack Ack
	At  time.Time
}

// AckWantMsg is the peer asking for an acknowledgement once we have
// applied its writes up to Seq of its log Epoch (a WAIT).
type AckWantMsg struct{ Epoch, Seq uint64 }

// PeersMsg: the peer told us its peers, since its link came up.
type PeersMsg struct{}

func (PushHeader) isMessage()    {}
func (LogArrivedMsg) isMessage() {}
func (LogReplyMsg) isMessage()   {}
func (RootsMsg) isMessage()      {}
func (AckMsg) isMessage()        {}
func (AckWantMsg) isMessage()    {}
func (PeersMsg) isMessage()      {}

// Step takes a message from peer from.
func (r *Replicator) Step(from PeerID, m Message) {
	switch m := m.(type) {
	case PushHeader:
		r.pushed(from, m)
	case LogArrivedMsg:
		r.logArrived(from, m)
	case LogReplyMsg:
		r.logReply(from, m)
	case RootsMsg:
		r.roots(from, m)
	case AckMsg:
		r.acked(from, m)
	case AckWantMsg:
		if r.connected(from) {
			p := r.peer(from)
			p.out.Want(m.Epoch, m.Seq)
			if p.out.Wanted(p.prog) {
				r.ackPoke = true
			}
		}
	case PeersMsg:
		if r.connected(from) {
			r.stab.Exchanged(from)
		}
	}
}

// pushed takes a push from its origin. It moves our progress through the
// origin's writes when it follows on; one after a gap, or not all applied,
// waits (CheckGaps). A copy another peer relayed proves nothing of its
// origin (pushes are unsigned) and moves nothing.
func (r *Replicator) pushed(from PeerID, m PushHeader) {
	if from != m.Origin {
		return
	}
	p := r.peer(m.Origin)
	if m.Refused {
		p.prog.Missed(m.Epoch, m.To, m.At, m.AdmitAt)
		r.sawHead(p, m.Epoch, m.To+1, m.At)
		return
	}
	if p.prog.Pushed(m.Epoch, m.Prev, m.To, m.At) {
		r.progressed(m.Origin, p)
		return
	}
	r.sawHead(p, m.Epoch, m.To+1, m.At) // a push before it is missing (CheckGaps)
}

// progressed follows p's progress: our view of its log's head, our cursor
// there, and an acknowledgement it may wait for.
func (r *Replicator) progressed(id PeerID, p *replPeer) {
	r.sawHead(p, p.prog.Epoch, p.prog.Acked+1, time.Time{})
	if r.table.AdvanceCursor(id, Cursor{Epoch: p.prog.Epoch, Next: p.prog.Acked + 1}) {
		r.rd.SaveCursors = true
	}
	if p.out.Wanted(p.prog) {
		r.ackPoke = true
	}
}

// advance records that every write of id's log epoch up to acked is
// applied here.
func (r *Replicator) advance(id PeerID, epoch, acked uint64) {
	p := r.peer(id)
	if p.prog.Advance(epoch, acked) {
		r.progressed(id, p)
	}
}

func (r *Replicator) sawHead(p *replPeer, epoch, head uint64, now time.Time) {
	if head == 0 {
		return
	}
	if epoch != p.headEpoch {
		p.headEpoch, p.head = epoch, 0
	}
	if head <= p.head {
		return
	}
	if r.behind(p) == 0 && !now.IsZero() {
		p.caughtUpAt = now
	}
	p.head = head
}

// behind is how many entries of p's log we know of and have not applied.
func (r *Replicator) behind(p *replPeer) uint64 {
	return Behind(p.head, p.headEpoch, p.prog, r.table.Get(p.id))
}

// Behind is how many entries of a peer's log, whose head (the next
// sequence number) in epoch headEpoch we know of, this node has not
// applied: neither by its progress through the peer's writes (prog) nor by
// reading its log (the peer's cursor, in tp; nil if the peer is unknown).
func Behind(head, headEpoch uint64, prog Progress, tp *Peer) uint64 {
	if head == 0 {
		return 0
	}
	var have uint64 // the last entry of its log we hold
	if prog.Epoch == headEpoch {
		have = prog.Acked
	}
	if tp != nil && tp.HasCursor && tp.Cursor.Epoch == headEpoch && tp.Cursor.Next > 0 {
		have = max(have, tp.Cursor.Next-1)
	}
	if head-1 <= have {
		return 0
	}
	return head - 1 - have
}

// trigger asks for a catch-up from id (CatchUps: one per peer, again when
// asked for while it runs, one reading at a time).
func (r *Replicator) trigger(id PeerID) {
	if r.cfg.NoCatchUp || !r.connected(id) || !r.catchUps.Trigger(id) {
		return
	}
	r.begin(id)
}

func (r *Replicator) begin(id PeerID) {
	r.runs++
	p := r.peer(id)
	cu := &catchUp{run: r.runs, loud: p.loud}
	p.loud = false
	if r.catching == nil {
		r.catching = map[PeerID]*catchUp{}
	}
	r.catching[id] = cu
	if r.catchUps.Take(id) {
		r.read(id, cu)
	}
}

// read sends the request of a catch-up that has the turn: from the cursor,
// or where it stopped when it gave the turn up.
func (r *Replicator) read(id PeerID, cu *catchUp) {
	if cu.resume != nil {
		req := *cu.resume
		cu.resume = nil
		r.rd.Reads = append(r.rd.Reads, Read{Peer: id, Run: cu.run, Req: req})
		return
	}
	r.rd.Reads = append(r.rd.Reads, Read{Peer: id, Run: cu.run, Req: r.table.StartCatchUp(id, r.cfg.LogMax, 0), First: true})
}

// giveTurn gives up id's turn (or its place in the queue) and starts the
// catch-up that has it next.
func (r *Replicator) giveTurn(id PeerID) {
	if next, ok := r.catchUps.Give(id); ok {
		r.read(next, r.catching[next])
	}
}

// end ends catch-up cu from id, and starts it again if it was asked for
// meanwhile and the link is up.
func (r *Replicator) end(id PeerID, cu *catchUp) {
	if r.catching[id] != cu {
		return
	}
	delete(r.catching, id)
	r.giveTurn(id)
	if r.catchUps.Ended(id, r.connected(id)) {
		r.begin(id)
	}
}

// AcceptSession reports whether a Merkle session peer id opens is served
// now. Not while a bootstrap is wanted or runs: the snapshot brings every
// key. Not while a catch-up from id runs or waits for its turn: id's log
// brings what the session would at a fraction of a tree walk, and both
// moving the same keys at once only doubles the work; the peer tries again
// at a later round.
func (r *Replicator) AcceptSession(id PeerID) bool {
	return !r.table.Bootstrapping() && !r.CatchingUp(id)
}

// CatchingUp reports whether a catch-up from id runs (or waits for its
// turn).
func (r *Replicator) CatchingUp(id PeerID) bool { return r.catching[id] != nil }

// CatchUpRun is the catch-up from id that runs, if one does: a reply of
// another run is stale, and its records need not be applied.
func (r *Replicator) CatchUpRun(id PeerID) (uint64, bool) {
	if cu := r.catching[id]; cu != nil {
		return cu.run, true
	}
	return 0, false
}

// GapsOpen reports whether a push of some origin is missing (CheckGaps
// has something to look at).
func (r *Replicator) GapsOpen() bool {
	for _, p := range r.peers {
		if p.prog.Waiting() > 0 {
			return true
		}
	}
	return false
}

// logArrived asks for the entries after a reply that just arrived, unless
// the catch-up is to give its turn up once the reply is applied.
func (r *Replicator) logArrived(id PeerID, m LogArrivedMsg) {
	cu := r.catching[id]
	if cu == nil || cu.run != m.Run || cu.early != nil {
		return
	}
	next, ok := NextLogRequest(m.Reply, r.cfg.LogMax, 0)
	if !ok || r.catchUps.Yield(id, cu.read+len(m.Reply.Records)) {
		return
	}
	cu.early = &next
	r.rd.Reads = append(r.rd.Reads, Read{Peer: id, Run: cu.run, Req: next, Early: true})
}

func (r *Replicator) logReply(id PeerID, m LogReplyMsg) {
	cu := r.catching[id]
	if cu == nil || cu.run != m.Run {
		return // a catch-up that ended (its link went down)
	}
	early := cu.early
	cu.early = nil
	rep := m.Reply
	p := r.peer(id)
	r.sawHead(p, rep.Epoch, rep.Head, m.At)
	p.prog.Advance(rep.Epoch, 0) // a new epoch is tracked from its start
	act, next := r.table.CatchUpReply(id, rep, r.cfg.LogMax, 0)
	if !rep.Truncated && rep.Next > 0 {
		r.advance(id, rep.Epoch, rep.Next-1)
	}
	n := len(rep.Records)
	cu.entries += n
	if m.Refused {
		p.prog.Missed(rep.Epoch, rep.Head-1, m.At, m.AdmitAt)
		r.rd.SaveCursors, r.rd.SaveCursorsNow = true, true
		r.end(id, cu)
		return
	}
	switch act {
	case ReadLog:
		r.rd.SaveCursors = true
		cu.read += n
		if early != nil && early.Epoch == next.Epoch && early.From == next.From {
			return // asked for as the reply arrived
		}
		if r.catchUps.Yield(id, cu.read) {
			// A long read lets the catch-ups waiting go first.
			cu.read = 0
			r.giveTurn(id)
			if !r.catchUps.Take(id) {
				cu.resume = &next
				return
			}
		}
		r.rd.Reads = append(r.rd.Reads, Read{Peer: id, Run: cu.run, Req: next})
	case Idle:
		r.syncDone = true
		r.rd.SaveCursors, r.rd.SaveCursorsNow = true, true
		r.rd.CaughtUp = append(r.rd.CaughtUp, CaughtUp{Peer: id, Entries: cu.entries, Loud: cu.loud})
		r.end(id, cu)
	case Reconcile:
		if r.table.ChooseRepair(id, m.Empty || m.Fresh && !r.syncDone) == Bootstrap {
			// The turn stays: other peers' logs would bring the same keys.
			r.bootRunning, r.bootTry = true, m.At
			r.rd.Bootstraps = append(r.rd.Bootstraps, Run{id, cu.run})
			return
		}
		cu.fallback = Cursor{Epoch: rep.Epoch, Next: rep.Head}
		// The session repairs what the peer has for us: the turn goes to
		// the others, the catch-up ends with the session.
		r.giveTurn(id)
		r.rd.Reconciles = append(r.rd.Reconciles, Run{id, cu.run})
	}
}

// FallbackDone ends the fallback session of catch-up run with id;
// completed, every entry of the peer's log before its head at the
// truncated reply is applied here.
func (r *Replicator) FallbackDone(id PeerID, run uint64, completed bool) {
	cu := r.catching[id]
	if cu == nil || cu.run != run {
		return
	}
	r.table.ReconcileDone(id, completed)
	if completed {
		r.syncDone = true
		r.rd.SaveCursors, r.rd.SaveCursorsNow = true, true
		if cu.fallback.Next > 0 {
			r.advance(id, cu.fallback.Epoch, cu.fallback.Next-1)
		}
	}
	r.end(id, cu)
}

// BootstrapDone ends the snapshot stream of catch-up run with id; once
// complete, the peer's log is read from where the snapshot began.
func (r *Replicator) BootstrapDone(id PeerID, run uint64, completed bool) {
	r.bootRunning = false
	cu := r.catching[id]
	if cu == nil || cu.run != run {
		return
	}
	if completed {
		// The node holds the peer's keyspace now: a peer whose log cannot
		// serve it is repaired by Merkle, which moves only what differs,
		// not by streaming every key again.
		r.syncDone = true
		r.catchUps.Trigger(id) // again: now from the snapshot's start
	}
	r.end(id, cu)
}

// CatchUpFailed ends catch-up run with id, whose stream failed while the
// link stayed up (a timeout, a reset): it runs again if it was asked for
// meanwhile, otherwise the next trigger starts it.
func (r *Replicator) CatchUpFailed(id PeerID, run uint64) {
	if cu := r.catching[id]; cu != nil && cu.run == run {
		r.end(id, cu)
	}
}

// roots takes the roots exchanged at the end of a completed session: a
// peer whose root is ours moves our cursor in its log to its head, and
// every write before it counts as applied (a quiet peer's last write,
// reached by another path, would stay unacknowledged otherwise). So does a
// peer whose own writes before its head we all hold (RootAt.Own): the rest
// of its log is what it applied from others, which their pushes and logs
// bring.
func (r *Replicator) roots(id PeerID, m RootsMsg) {
	if r.table.Get(id) == nil {
		return
	}
	p := r.peer(id)
	t := m.Theirs
	if r.table.ObserveRootAt(id, t, m.Ours) {
		r.rd.SaveCursors = true
		r.advance(id, t.Epoch, t.Head-1)
	} else if t.Head > 0 && (t.Own == 0 || p.prog.Epoch == t.Epoch && t.Own <= p.prog.Acked) {
		r.advance(id, t.Epoch, t.Head-1)
	}
	r.sawHead(p, t.Epoch, t.Head, time.Time{})
	// Its log held, at the last session with it already, writes of its own
	// we still do not count as applied, and no push after them came to
	// show the gap (they reached us by another peer): read them from its
	// log. Without that, a member's last writes pushed to others only
	// stayed unacknowledged here, and once that held our stable time behind
	// the others' we kept tombstones they had collected, the roots never
	// matched again to count the writes either, and the stable time
	// stopped for good (the simulator's churn seeds 33 and 879). Writes
	// seen one session ago, not at this one: pushes bring the fresh ones.
	// Its own writes only: its log's entries after its last own write are
	// others' writes it applied, and reading them when every push arrived
	// would read most of a busy peer's log at every round. And only if its
	// pushes stand still: during a burst they may trail by more than a
	// session, and its log would bring again what they are bringing.
	prev, prevOwn, prevAcked := p.seen, min(p.seenOwn, p.seen.Next-1), p.seenAcked
	p.seen, p.seenOwn = Cursor{Epoch: t.Epoch, Next: t.Head}, t.Own
	p.seenAcked = Cursor{Epoch: p.prog.Epoch, Next: p.prog.Acked}
	pushing := p.prog.Epoch == prevAcked.Epoch && p.prog.Acked > prevAcked.Next
	if prev.Next > 0 && prevOwn > 0 && prev.Epoch == t.Epoch && p.prog.Waiting() == 0 && !pushing &&
		(p.prog.Epoch != prev.Epoch || p.prog.Acked < prevOwn) {
		r.trigger(id)
	}
}

func (r *Replicator) acked(id PeerID, m AckMsg) {
	if !r.connected(id) {
		if r.table.Get(id) != nil {
			// Its LinkUp is yet to come. A copy: taking m's address would
			// move every call's m to the heap.
			early := m
			r.peer(id).early = &early
		}
		return
	}
	a := m.Ack
	if a.AsideBelow > max(r.asideDone, r.asideWanted) {
		r.asideWanted = a.AsideBelow
		r.rd.SetAside = a.AsideBelow
	}
	r.stab.Reported(id, a.Stable)
	if a.Epoch != r.cfg.Epoch {
		return // about a log we no longer have
	}
	p := r.peer(id)
	if a.Seq > p.acked {
		p.acked = a.Seq
		r.rd.AckedMoved = true
	}
	p.ackedAt = m.At
	r.stab.Acked(id, a.Durable)
}

// AsideDone records that this node set its own writes aside up to h (and
// saved that): its catch-ups filter at least as far from now on.
func (r *Replicator) AsideDone(h hlc.Timestamp) {
	r.asideDone = max(r.asideDone, h)
	r.stab.SetAside(h)
}

// Round is an anti-entropy round due: a session with a peer chosen by the
// policy (Ready.Sessions), unless the last one runs, a bootstrap is
// wanted, catch-ups hold it back or no peer is connected. root is this
// node's Merkle root now.
func (r *Replicator) Round(root uint64) RoundOutcome {
	if r.sessionRunning {
		return RoundBusy
	}
	if r.table.Bootstrapping() {
		return RoundBootstrapping
	}
	if r.catchUps.DeferRound() {
		return RoundDeferred
	}
	id, ok := r.table.ChooseSyncPeer(root, r.cfg.Intn)
	if !ok {
		return RoundAlone
	}
	r.sessionRunning = true
	r.rd.Sessions = append(r.rd.Sessions, id)
	return RoundStarted
}

// RoundOutcome is what a Round did.
type RoundOutcome uint8

// Round outcomes.
const (
	RoundStarted RoundOutcome = iota
	RoundBusy
	RoundBootstrapping
	RoundDeferred
	RoundAlone
)

func (o RoundOutcome) String() string {
	return [...]string{"started", "busy", "bootstrapping", "deferred", "alone"}[o]
}

// SessionDone ends the anti-entropy session Round started.
func (r *Replicator) SessionDone() { r.sessionRunning = false }

// LocalSkipped records that the local write at seq will not be pushed
// (no peer connected, the queue full, too large): the next push shows the
// hole.
func (r *Replicator) LocalSkipped(seq uint64) { r.push.Skip(seq) }

// PushHeader is the header of a push of this node's local writes first
// to to, every one between them included.
func (r *Replicator) PushHeader(first, to uint64) PushHeader {
	return PushHeader{Origin: r.cfg.Self, Epoch: r.cfg.Epoch, Prev: r.push.Next(first, to), To: to, Hops: r.relayHops()}
}

// PushTargets appends to dst, in ID order, the peers a push of this node's
// own writes goes to: every peer linked to it. Beyond them the push goes
// as far as its hop budget takes it (Relay), and what it misses comes by
// anti-entropy or the log.
func (r *Replicator) PushTargets(dst []PeerID) []PeerID {
	for i := range r.table.peers {
		if r.table.peers[i].Connected {
			dst = append(dst, r.table.peers[i].ID)
		}
	}
	return dst
}

// Sample records that at seq, the last local write with every entry up to
// it committed, the clock read ts (Stability.Sample).
func (r *Replicator) Sample(seq uint64, ts hlc.Timestamp) { r.stab.Sample(seq, ts) }

// Synced records the store's sync numbers: synced, the last sync done;
// mark, the number the next sync to begin will have (Durable.Update).
func (r *Replicator) Synced(synced, mark uint64) { r.synced, r.mark = synced, mark }

// StableSaved records that the driver saved the stable time ts.
func (r *Replicator) StableSaved(ts hlc.Timestamp) { r.saved = max(r.saved, ts) }

// Forget removes id from the membership (by command): it no longer holds
// collection back.
func (r *Replicator) Forget(id PeerID) { r.forget(id) }

func (r *Replicator) forget(id PeerID) {
	r.forgot[id] = true
	r.stab.Forget(id)
}

// CheckGaps reads the log of every connected origin whose missing push
// has been late for longer than GapPatience at now; and, when a bootstrap
// is wanted and no catch-up runs, BootstrapRetry after the last stream
// began, starts a catch-up (which bootstraps) with the peer the snapshot
// came from, or another connected one.
func (r *Replicator) CheckGaps(now time.Time) {
	for _, tp := range r.table.Peers() {
		if p := r.peers[tp.ID]; p != nil && tp.Connected && p.prog.Overdue(now, GapPatience) {
			r.trigger(tp.ID)
		}
	}
	r.retryBootstrap(now)
}

// BootstrapRetry is how long after a snapshot stream began (and failed)
// another starts.
const BootstrapRetry = 2 * time.Second

func (r *Replicator) retryBootstrap(now time.Time) {
	if r.cfg.NoCatchUp || !r.table.Bootstrapping() || r.bootRunning || r.catchUps.Running() || now.Sub(r.bootTry) < BootstrapRetry {
		return
	}
	b, _ := r.table.BootstrapProgress()
	var pick PeerID
	found := false
	for _, tp := range r.table.Peers() {
		if tp.Connected && (!found || tp.ID == b.Peer) {
			pick, found = tp.ID, true
		}
	}
	if found {
		r.bootTry = now
		r.trigger(pick)
	}
}

// WaitFor asks every connected peer that has not acknowledged this node's
// writes up to target to do so as soon as it has applied them (a WAIT):
// Ready.Wants, once per peer and target, and again on a stream the peer
// opens anew (AckStreamIn).
func (r *Replicator) WaitFor(target uint64) {
	r.waitFor = max(r.waitFor, target)
	for _, tp := range r.table.Peers() {
		if p := r.peers[tp.ID]; p != nil && tp.Connected {
			r.askAck(p)
		}
	}
}

func (r *Replicator) askAck(p *replPeer) {
	if p.ackIn && p.acked < r.waitFor && p.wantSent < r.waitFor {
		p.wantSent = r.waitFor
		r.rd.Wants = append(r.rd.Wants, AckWantTo{Peer: p.id, Epoch: r.cfg.Epoch, Seq: r.waitFor})
	}
}

// AckStreamIn records that the stream on which id acknowledges our writes
// opened (a new one replaces the last) or closed: a WAIT under way asks on
// a new one.
func (r *Replicator) AckStreamIn(id PeerID, open bool) {
	p := r.peer(id)
	p.ackIn, p.wantSent = open, 0
	if open && r.connected(id) {
		r.askAck(p)
	}
}

// Acked is how many connected peers acknowledged this node's writes up to
// target.
func (r *Replicator) Acked(target uint64) int {
	n := 0
	for _, tp := range r.table.Peers() {
		if p := r.peers[tp.ID]; p != nil && tp.Connected && p.acked >= target {
			n++
		}
	}
	return n
}

// Tick is the periodic round, every acknowledgement interval as
// TickInterval spaces it: the gaps
// are checked, silent members forgotten, the stable time worked out again
// (Ready.SaveStable when it moved) and every acknowledgement that moved
// sent.
func (r *Replicator) Tick(now time.Time) {
	r.CheckGaps(now)
	if r.cfg.ForgetAfter > 0 {
		ids := r.stab.Silent(now, r.cfg.ForgetAfter)
		slices.Sort(ids)
		for _, id := range ids {
			r.forget(id)
			r.rd.Forget = append(r.rd.Forget, id)
		}
	}
	r.stab.Update(now)
	if st := r.stab.Stable(); st > r.saved {
		r.rd.SaveStable = st
	}
	r.acks(true)
}

// TickMembers is how many members one acknowledgement interval serves:
// TickInterval spaces the ticks of a larger mesh by its size over it.
const TickMembers = 1000

// TickInterval is how long after a Tick the next one is due, for the
// driver's acknowledgement interval base: base itself up to 2*TickMembers-1
// members (this node included), base times members/TickMembers beyond. A
// tick sends every linked peer what moved, which on a full mesh is an
// acknowledgement to every member each time (the stable time moves with
// the clock), so spacing ticks by the mesh's size keeps a node's share of
// that traffic and of the ticks' work bounded as the mesh grows; the
// stable time, which waits for two rounds of acknowledgements, lags by a
// few intervals as spaced (bench/RESULTS.md, "Simulator: ticks spaced by
// the mesh's size").
func (r *Replicator) TickInterval(base time.Duration) time.Duration {
	members, _ := r.stab.Count()
	return base * time.Duration(max(1, (members+1)/TickMembers))
}

// flushAcks sends the acknowledgements asked for since the last Ready.
func (r *Replicator) flushAcks() {
	if r.ackPoke {
		r.acks(false)
	}
}

// acks sends each connected peer what moved (periodic) or what it asked
// for: how far we applied and synced its writes, and our own stable time.
func (r *Replicator) acks(periodic bool) {
	r.ackPoke = false
	for _, tp := range r.table.Peers() {
		if !tp.Connected {
			continue
		}
		p := r.peer(tp.ID)
		if p.durable.Update(p.prog, r.cfg.Always, r.synced, r.mark) {
			r.rd.SyncWanted = true
		}
		aside := p.asideBelow
		a := Ack{Epoch: p.prog.Epoch, Seq: p.prog.Acked, Stable: r.stab.OwnFor(p.upAt), Durable: p.durable.Acked, AsideBelow: aside}
		if p.fresh && a != (Ack{}) || p.out.Due(a, p.prog, periodic) {
			p.fresh = false
			p.out.Sent(a)
			r.rd.Acks = append(r.rd.Acks, AckTo{tp.ID, a})
		}
	}
}

// Table is the peers, their cursors and the bootstrap, for what the driver
// shows (INFO) and streams (the snapshot). Its decisions are the
// replicator's: a driver changes it only through the bootstrap's calls.
func (r *Replicator) Table() *Table { return &r.table }

// Cursors lists every peer's cursor, for saving.
func (r *Replicator) Cursors() []PeerCursor { return r.table.Cursors() }

// Stability is the stable time's workings, for what the driver shows.
func (r *Replicator) Stability() *Stability { return r.stab }

// Stable is the stable time as saved: what collection and the filters use.
func (r *Replicator) Stable() hlc.Timestamp { return r.saved }

// FreshHorizon is the horizon a catch-up's records are filtered at
// (Stability.FreshHorizon).
func (r *Replicator) FreshHorizon() hlc.Timestamp { return r.stab.FreshHorizon() }

// AsideBelow is the horizon up to which id's records are set aside (a
// forgotten member that came back), 0 for every other peer.
func (r *Replicator) AsideBelow(id PeerID) hlc.Timestamp {
	if p := r.peers[id]; p != nil {
		return p.asideBelow
	}
	return 0
}

// Forgotten reports whether id was forgotten.
func (r *Replicator) Forgotten(id PeerID) bool { return r.forgot[id] }

// PeerProgress is what the replicator knows of one peer, for INFO.
type PeerProgress struct {
	// Progress: how far we applied its writes; Acked: how far it
	// acknowledged ours (our epoch), last at AckedAt.
	Progress Progress
	// Durable: how far Progress is synced here (what the stable time
	// counts).
	Durable uint64
	Acked   uint64
	AckedAt time.Time
	// Behind: entries of its log we know of and have not applied, since
	// CaughtUpAt.
	Behind     uint64
	CaughtUpAt time.Time
	UpAt       time.Time
}

// Peer returns what the replicator knows of id.
func (r *Replicator) Peer(id PeerID) PeerProgress {
	p := r.peers[id]
	if p == nil {
		return PeerProgress{}
	}
	return PeerProgress{Progress: p.prog, Durable: p.durable.Acked, Acked: p.acked, AckedAt: p.ackedAt, Behind: r.behind(p), CaughtUpAt: p.caughtUpAt, UpAt: p.upAt}
}
