package sim

import (
	"slices"
	"time"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
)

// Garbage collection, as a real node does it, driving the node's own pure
// code: mesh.Stability works out the stable time from the samples,
// acknowledgements and reports fed to it here (as gossip/stable.go and
// gossip/wait.go feed it), record.Collect drops what every member has
// applied, and record.Fresh filters what a forgotten member that came back
// sends.
//
// Each node, every AckInterval (random phase): samples its log position
// after its last local write with its clock; forgets members silent longer
// than ForgetAfter; works the stable time out and saves it (it survives a
// crash, as the real node syncs it before use); sends each connected peer
// an acknowledgement (epoch and position of that peer's log up to which it
// has applied every local write, and its own stable time) when either
// moved; and collects its store with the stable time.
//
// What a node acknowledges of a peer's log is its cursor there: catch-up
// and Merkle fallbacks set it, and a push from its origin moves it when it
// follows on without a gap (the push carries the origin's log positions,
// as the node's does). The cursor is what a crash under a lazy fsync takes
// back to the last sync; what was acknowledged before that is not.
//
// A member that marks a returning forgotten node tells it the horizon it
// filters that node's records at (carried on the acknowledgement, as the
// fourth field of the node's ack/3), and the returning node drops its own
// writes up to it (record.Fresh against nothing, as node.SetAsideBelow),
// which the others set aside, and takes the rest back from its peers by
// Merkle. Without that it would keep, and serve, the keys the mesh deleted
// and collected while it was away, and never converge.

// gcState is a node's part in garbage collection.
type gcState struct {
	stab *mesh.Stability
	// saved is the stable time, saved before use (it survives a crash);
	// forgot the forgotten members, saved; forgottenAt the highest horizon
	// a peer said this node was forgotten at, below which it dropped its
	// own writes, saved.
	saved       hlc.Timestamp
	forgot      map[mesh.PeerID]bool
	forgottenAt hlc.Timestamp
	// lastLocal is the log position just after the node's last local write
	// (what its samples are taken at); pushRange what its pushes said of
	// its log so far (gossip's).
	// write pushed (the next push's prev).
	lastLocal uint64
	pushRange mesh.PushRange
	// progress is, per origin, how far its pushes have brought n through
	// its log (gossip's peerState.prog), in the simulator's log positions.
	progress map[mesh.PeerID]*mesh.Progress
	// links is the acknowledgement stream to each connected peer.
	links map[mesh.PeerID]*ackLink
	// asideBelow is, for each forgotten member that came back, the stable
	// time at its return: its records are filtered with record.Fresh at it.
	asideBelow map[mesh.PeerID]hlc.Timestamp
	// collectedTo is the stable time of the last collection.
	collectedTo hlc.Timestamp
}

// ackLink is an acknowledgement stream: when its link came up, what was
// last sent on it, and the arrival time of its last message (the stream is
// ordered).
type ackLink struct {
	upAt time.Time
	out  mesh.AckOut
	fifo int64
}

// gcStart sets up n's collection state when it starts or restarts: what a
// crash keeps (the saved stable time, the forgotten members) and a fresh
// mesh.Stability whose members are every node of the mesh (a real mesh
// connects every member to every other).
func (s *Sim) gcStart(n *node) {
	g := &n.gc
	g.stab = mesh.NewStability(n.pid, g.saved)
	if g.forgot == nil {
		g.forgot = map[mesh.PeerID]bool{}
	}
	for _, o := range s.nodes {
		if o == n || o.gone {
			continue
		}
		g.stab.Member(o.pid)
		if o.gc.stab != nil {
			o.gc.stab.Member(n.pid) // holds collection back until it reports
		}
	}
	for id := range g.forgot {
		g.stab.Forget(id)
	}
	g.stab.SetAside(g.forgottenAt)
	g.progress = map[mesh.PeerID]*mesh.Progress{}
	g.links = map[mesh.PeerID]*ackLink{}
	g.asideBelow = map[mesh.PeerID]hlc.Timestamp{}
	g.lastLocal = min(g.lastLocal, n.head())
	g.pushRange.Start(n.head())
}

// startGC starts n's collection tick.
func (s *Sim) startGC(n *node) {
	if s.cfg.NoCollect {
		return
	}
	inc := n.inc
	iv := int64(s.cfg.AckInterval)
	var tick func()
	tick = func() {
		if n.inc != inc {
			return
		}
		s.at(s.now+iv, tick)
		s.gcTick(n)
	}
	s.at(s.now+s.rng.Int64N(iv), tick)
}

func (s *Sim) gcTick(n *node) {
	g := &n.gc
	now := s.wall(n)
	if ts, err := n.clock.Now(); err == nil {
		g.stab.Sample(g.lastLocal, ts)
	}
	if s.cfg.ForgetAfter > 0 {
		ids := g.stab.Silent(now, s.cfg.ForgetAfter)
		slices.Sort(ids)
		for _, id := range ids {
			g.stab.Forget(id)
			g.forgot[id] = true
			s.gst.forgotten++
		}
	}
	g.stab.Update(now)
	g.saved = max(g.saved, g.stab.Stable())
	if g.saved != 0 {
		s.gst.lags = append(s.gst.lags, now.UnixMilli()-g.saved.Millis())
	} else {
		s.gst.noStable++
	}
	s.sendAcks(n)
	s.collect(n)
}

// sendAcks sends each connected peer whose log n reads what it has applied
// of it and n's own stable time, if either moved since the last one.
func (s *Sim) sendAcks(n *node) {
	g := &n.gc
	for _, p := range n.peers.Peers() {
		if !p.Connected || !p.HasCursor {
			continue
		}
		l := g.links[p.ID]
		if l == nil {
			continue // its link came up before collection started here
		}
		// A peer that linked up since the last Update is told 0 (OwnFor):
		// the own stable time was worked out without it a member.
		own := g.stab.OwnFor(l.upAt)
		aside := g.asideBelow[p.ID]
		if s.cfg.NoFresh {
			aside = 0
		}
		// Applied: the cursor; synced: the cursor as of the last sync, in
		// the same log (the node's mesh.Durable).
		a := mesh.Ack{Epoch: p.Cursor.Epoch, Seq: p.Cursor.Next, Stable: own, Durable: p.Cursor.Next, AsideBelow: aside}
		if !s.cfg.AckUnsynced && s.cfg.Fsync != FsyncAlways {
			a.Durable = 0
			if d := durableCursor(n, p.ID); d.Epoch == a.Epoch {
				a.Durable = min(d.Next, a.Seq)
			}
		}
		if !l.out.Due(a, mesh.Progress{Epoch: a.Epoch, Acked: a.Seq}, true) {
			continue
		}
		l.out.Sent(a)
		frame := mesh.AppendAck(nil, a)
		o := s.nodes[s.byID[p.ID]]
		s.gst.acks++
		s.send(n, o, classAck, uvarintLen(uint64(len(frame)))+len(frame), 0, &l.fifo, func() { s.recvAck(o, n, frame) })
	}
}

// durableCursor is n's cursor in id's log as of its last sync.
func durableCursor(n *node, id mesh.PeerID) mesh.Cursor {
	for _, c := range n.durCursors {
		if c.Peer == id {
			return c.Cursor
		}
	}
	return mesh.Cursor{}
}

// recvAck is n receiving from's acknowledgement of n's log.
func (s *Sim) recvAck(n, from *node, frame []byte) {
	if p := n.peers.Get(from.pid); p == nil || !p.Connected {
		return // the stream closed with the link
	}
	a, err := mesh.DecodeAck(frame)
	if err != nil {
		s.st.decodeErrors++
		return
	}
	g := &n.gc
	g.stab.Reported(from.pid, a.Stable)
	if a.Epoch == n.epoch {
		g.stab.Acked(from.pid, a.Durable, s.wall(n))
	}
	if a.AsideBelow > g.forgottenAt {
		s.rejoin(n, a.AsideBelow)
	}
}

// rejoin is n learning that it was forgotten and that its peers set aside
// its writes up to horizon: it drops them too (never logged or pushed,
// synced at once), and takes back by Merkle, from its peers, what they
// still hold.
func (s *Sim) rejoin(n *node, horizon hlc.Timestamp) {
	n.gc.forgottenAt = horizon
	n.gc.stab.SetAside(horizon)
	s.ck.setAsideAt(n.idx, horizon)
	s.gst.rejoins++
	for id, r := range n.st.recs {
		if !r.Written() || r.Oldest() > horizon {
			continue
		}
		out, aside := record.Fresh(record.Record{}, r, horizon)
		if !aside {
			continue
		}
		if !out.Written() {
			out = record.Record{}
		}
		s.gst.ownSetAside++
		s.setStore(n, uint32(id), out)
	}
	s.sync(n)
}

// linkDown is n noticing that its link to o went down.
func (s *Sim) linkDown(n, o *node) {
	n.peers.SetConnected(o.pid, false)
	if cu := n.catching[o.pid]; cu != nil {
		s.endCatchUp(n, o, cu) // its stream closed with the link
	}
	if s.cfg.NoCollect || n.gc.stab == nil {
		return
	}
	n.gc.stab.LinkDown(o.pid, s.wall(n))
	delete(n.gc.links, o.pid)
}

// gcLinkUp is n's link to o coming up: a forgotten member that comes back
// is a member again, and its records are filtered from now on at the
// stable time of its return.
func (s *Sim) gcLinkUp(n, o *node) {
	if s.cfg.NoCollect {
		return
	}
	g := &n.gc
	g.links[o.pid] = &ackLink{upAt: s.wall(n)}
	if g.stab.LinkUp(o.pid) || g.forgot[o.pid] {
		delete(g.forgot, o.pid)
		g.asideBelow[o.pid] = g.saved
		s.ck.setAsideAt(o.idx, g.saved)
		s.gst.returned++
	}
}

// gcLinkedAtStart is n's link to peer id, up when the run starts: the mesh
// has run before, so id has told n its peers.
func (s *Sim) gcLinkedAtStart(n *node, id mesh.PeerID) {
	g := &n.gc
	g.stab.LinkUp(id)
	g.stab.Exchanged(id)
	g.links[id] = &ackLink{}
}

// exchangePeers is a asking b for its peers when their link comes up
// (gossip's peer exchange: a request and a reply of about 64 bytes a peer,
// on a stream). Every member of a full mesh knows every other already, so
// what it changes is when a's stable time may move (mesh.Stability waits
// for every linked peer's).
func (s *Sim) exchangePeers(a, b *node) {
	var fifo [2]int64
	s.send(a, b, classPeers, 8, 0, &fifo[1], func() {
		s.send(b, a, classPeers, 8+64*b.peers.Len(), 0, &fifo[0], func() {
			if p := a.peers.Get(b.pid); p != nil && p.Connected && !s.cfg.NoCollect {
				a.gc.stab.Exchanged(b.pid)
			}
		})
	})
}

// gcLeft is n noticing that o left the mesh for good: the operator forgets
// it (redmesh forget), so it no longer holds collection back.
func (s *Sim) gcLeft(n, o *node) {
	if s.cfg.NoCollect || n.gc.stab == nil {
		return
	}
	n.gc.stab.Forget(o.pid)
	n.gc.forgot[o.pid] = true
	delete(n.gc.links, o.pid)
}

// pushed takes a push from its origin (mesh.Progress, as gossip's merge):
// it moves n's cursor in the origin's log when it follows on from what n
// has applied; one after a gap waits, and a gap still open after
// mesh.GapPatience makes n read the origin's log: without that, a lost
// push left n's cursor in the origin's log, and so what it acknowledges of
// it, behind for good, and the stable time with it.
func (s *Sim) pushed(n, origin *node, ps pushSeqs) {
	p := n.peers.Get(origin.pid)
	if p == nil {
		return
	}
	pr := n.gc.progress[origin.pid]
	if pr == nil {
		pr = &mesh.Progress{}
		n.gc.progress[origin.pid] = pr
	}
	if p.HasCursor {
		if p.Cursor.Epoch > ps.epoch {
			return // a push from before the origin's log changed
		}
		// A catch-up or a session may have moved the cursor since: what it
		// read is applied too. (The simulator's positions count from 0, so
		// a cursor's Next is the progress's Acked.)
		pr.Advance(p.Cursor.Epoch, p.Cursor.Next)
	}
	if pr.Pushed(ps.epoch, ps.prev, ps.to, s.wall(n)) {
		n.peers.AdvanceCursor(origin.pid, mesh.Cursor{Epoch: pr.Epoch, Next: pr.Acked})
		return
	}
	if pr.Waiting() > 0 {
		s.gapCheck(n, origin, pr)
	}
}

// gapCheck looks, mesh.GapPatience after a push came after a gap, whether the
// gap is still open, and if so has n read origin's log (gossip's maintain
// loop looks every second); it looks again while pushes wait.
func (s *Sim) gapCheck(n, origin *node, pr *mesh.Progress) {
	inc := n.inc
	s.at(s.now+int64(mesh.GapPatience+time.Millisecond), func() {
		if n.inc != inc || !n.up || n.gc.progress[origin.pid] != pr || pr.Waiting() == 0 {
			return
		}
		if p := n.peers.Get(origin.pid); p != nil && p.HasCursor && p.Cursor.Epoch == pr.Epoch {
			pr.Advance(p.Cursor.Epoch, p.Cursor.Next)
		}
		if p := n.peers.Get(origin.pid); p != nil && p.Connected && origin.up && pr.Overdue(s.wall(n), mesh.GapPatience) {
			s.startCatchUp(n, origin)
		}
		if pr.Waiting() > 0 {
			s.gapCheck(n, origin, pr)
		}
	})
}

// fresh is rec, from peer from, as record.Fresh leaves it at the horizon
// the node applies it at (gossip's apply and applyLog): the stable time of
// from's return when from is a forgotten member that came back (its writes
// up to then that n lacks are set aside, not merged), and for a record a
// catch-up brought (logged) at least n's fresh horizon
// (mesh.Stability.FreshHorizon, unless NoFreshCatchUp): a log entry as the
// write left it may hold what n has since removed and collected.
func (s *Sim) fresh(n, from *node, id uint32, rec record.Record, logged bool) record.Record {
	var h, fh hlc.Timestamp
	if !s.cfg.NoFresh {
		h = n.gc.asideBelow[from.pid]
	}
	if logged && !s.cfg.NoFreshCatchUp && !s.cfg.NoCollect {
		fh = n.gc.stab.FreshHorizon()
	}
	st := max(h, fh)
	if st == 0 || rec.Oldest() > st {
		return rec
	}
	out, aside := record.Fresh(n.st.get(id), rec, st)
	if aside {
		if st == h {
			s.gst.setAside++
		} else {
			s.gst.staleLogged++
		}
	}
	return out
}

// collect runs record.Collect over n's store with its stable time: keys
// gone are removed (and their Merkle leaves), changed ones rewritten;
// nothing is logged or pushed.
func (s *Sim) collect(n *node) {
	stable := s.collectHorizon(n)
	if stable == 0 {
		return
	}
	now := s.wall(n).UnixMilli()
	for i, r := range n.st.recs {
		if !collectable(r) {
			continue
		}
		out, gone, changed := r.Collect(stable, now)
		if !changed {
			continue
		}
		id := uint32(i)
		if gone {
			out = record.Record{}
			s.gst.tombstones++
			if !r.Value.Tombstone && r.Expiry.At != 0 {
				s.gst.expired++
			}
			s.ck.noteCollected(id, r)
		}
		s.gst.traces += int64(traces(r) - traces(out))
		s.setStore(n, id, out)
	}
	n.gc.collectedTo = stable
}

// collectIngress is r, a merge's result about to be stored at n, as
// collection leaves it: a record arriving with what n has collected already
// (a peer whose stable time lags behind sends it back by Merkle) is not
// stored again, to be collected again, while the stable times differ.
func (s *Sim) collectIngress(n *node, id uint32, r record.Record) (record.Record, bool) {
	stable := s.collectHorizon(n)
	if stable == 0 || !collectable(r) {
		return r, false
	}
	out, gone, changed := r.Collect(stable, s.wall(n).UnixMilli())
	if !changed {
		return r, false
	}
	if gone {
		s.gst.ingress++
		s.ck.noteCollected(id, r)
		return record.Record{}, true
	}
	return out, true
}

// collectHorizon is the time n collects up to: its saved stable time (0:
// none, or collection off).
func (s *Sim) collectHorizon(n *node) hlc.Timestamp {
	stable := n.gc.saved
	if stable == 0 || s.cfg.NoCollect {
		return 0
	}
	if s.cfg.CollectAhead > 0 {
		stable = hlc.New(stable.Millis()+s.cfg.CollectAhead.Milliseconds(), 0)
	}
	return stable
}

// collectable reports whether Collect may change r: a string without a
// deadline that is not deleted holds nothing to collect.
func collectable(r record.Record) bool {
	return r.Written() && (r.Typed != nil || r.Expiry.At != 0 || r.Value.Tombstone || r.Value.Version.IsZero())
}

// traces counts a record's removal traces (those of a large typed state
// are not counted).
func traces(r record.Record) int {
	if r.Typed == nil {
		return 0
	}
	return len(r.Typed.Removed)
}

// setStore changes n's record of key id other than by a write: never
// logged nor pushed, but undone by a crash before the next sync as any
// change to the store.
func (s *Sim) setStore(n *node, id uint32, r record.Record) {
	old := n.st.get(id)
	n.st.set(id, r)
	if s.cfg.Fsync != FsyncAlways {
		n.undo = append(n.undo, undoRec{id, old})
	}
	if n.up {
		// Collection goes back down the merge order, so the tracker's
		// merge of every live node's record must be worked out again.
		s.tr.recompute(s, id)
	}
}

// gcSettled reports whether every live node has collected with a stable
// time past the last acknowledged write: all there is to collect is gone.
func (s *Sim) gcSettled() bool {
	if s.cfg.NoCollect {
		return true
	}
	for _, n := range s.nodes {
		if n.up && n.gc.collectedTo < s.lastWrite {
			return false
		}
	}
	return true
}

// gcStats are the run's collection counters.
type gcStats struct {
	tombstones, traces      int64
	ingress                 int64 // records collected as they arrived
	staleLogged             int64 // catch-up records Fresh took from (Config.NoFreshCatchUp)
	expired                 int64 // of tombstones: expired keys
	setAside, ownSetAside   int64
	forgotten, returned     int64
	rejoins, acks, noStable int64
	lags                    []int64
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
