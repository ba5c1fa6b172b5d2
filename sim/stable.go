package sim

import (
	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
)

// Garbage collection, as a real node does it, driving the node's own pure
// code: the replicator (mesh.Replicator, with its mesh.Stability) works
// out the stable time from the samples, acknowledgements and reports fed
// to it here, record.Collect drops what every member has applied, and
// record.Fresh filters what a forgotten member that came back sends.
//
// Each node, every AckInterval (random phase; spaced by the mesh's size as
// mesh.Replicator.TickInterval says): samples its log at its last
// local write with its clock; ticks its replicator, which forgets members
// silent longer than ForgetAfter, works the stable time out (saved at once:
// it survives a crash, as the real node syncs it before use) and sends each
// connected peer an acknowledgement that moved; and collects its store
// with the stable time.
//
// What a node acknowledges of a peer's writes is its progress through them
// (mesh.Progress: pushes from their origin that follow on, log reads,
// completed fallbacks, sessions that end with equal roots) and, for the
// stable time, how far that is synced here (mesh.Durable), as the node's
// acknowledgement says.
//
// A member that marks a returning forgotten node tells it the horizon it
// filters that node's records at (carried on the acknowledgement, as the
// fourth field of the node's ack/3), and the returning node drops its own
// writes up to it (record.Fresh against nothing, as node.SetAsideBelow),
// which the others set aside, and takes the rest back from its peers by
// Merkle. Without that it would keep, and serve, the keys the mesh deleted
// and collected while it was away, and never converge.

// gcState is a node's part in garbage collection that its replicator does
// not hold: where its samples are taken, and how far it collected.
type gcState struct {
	// lastLocal is the sequence number of the node's last local write
	// (what its samples are taken at).
	lastLocal uint64
	// collectedTo is the stable time of the last collection.
	collectedTo hlc.Timestamp
}

// gcStart sets up n's collection state when it joins or restarts: every
// node of the mesh is a member (a real mesh connects every member to
// every other), and n a member of theirs, holding collection back until
// it reports. The starting nodes are told of each other at once (build).
func (s *Sim) gcStart(n *node) {
	for _, o := range s.nodes {
		if o == n || o.gone {
			continue
		}
		n.r.Member(o.pid)
		o.r.Member(n.pid)
	}
	n.gc.lastLocal = min(n.gc.lastLocal, n.head()-1)
}

// startGC starts n's acknowledgement tick (gossip's AckInterval), unless
// collection is off (the simulator models no WAIT: acknowledgements serve
// only collection here).
func (s *Sim) startGC(n *node) {
	if s.cfg.NoCollect {
		return
	}
	inc := n.inc
	var tick func()
	tick = func() {
		if n.inc != inc {
			return
		}
		s.at(s.now+int64(n.r.TickInterval(s.cfg.AckInterval)), tick)
		s.gcTick(n)
	}
	s.at(s.now+s.rng.Int64N(int64(n.r.TickInterval(s.cfg.AckInterval))), tick)
}

// gcTick samples n's log and clock, lets its replicator tick (gaps,
// forgetting, the stable time, acknowledgements) and collects.
func (s *Sim) gcTick(n *node) {
	now := s.wall(n)
	if ts, err := n.clock.Now(); err == nil {
		n.r.Sample(n.gc.lastLocal, ts)
	}
	n.r.Tick(now)
	s.drive(n)
	if saved := n.r.Stable(); saved != 0 {
		s.gst.lags = append(s.gst.lags, now.UnixMilli()-saved.Millis())
	} else {
		s.gst.noStable++
	}
	s.collect(n)
}

// sendAck sends o the acknowledgement n's replicator decided, on n's
// acknowledgement stream to it (ordered, as the node's).
func (s *Sim) sendAck(n, o *node, a mesh.Ack) {
	if s.cfg.NoFresh {
		a.AsideBelow = 0
	}
	frame := mesh.AppendAck(nil, a)
	s.gst.acks++
	s.send(n, o, classAck, uvarintLen(uint64(len(frame)))+len(frame), 0, linkFifo(&n.ackFifo, o.pid), func() { s.recvAck(o, n, frame) })
}

// recvAck is n receiving from's acknowledgement of n's log.
func (s *Sim) recvAck(n, from *node, frame []byte) {
	a, err := mesh.DecodeAck(frame)
	if err != nil {
		s.st.decodeErrors++
		return
	}
	n.r.Step(from.pid, mesh.AckMsg{Ack: a, At: s.wall(n)})
	s.drive(n)
}

// rejoin is n learning that it was forgotten and that its peers set aside
// its writes up to horizon: it drops them too (never logged or pushed,
// synced at once), and takes back by Merkle, from its peers, what they
// still hold.
func (s *Sim) rejoin(n *node, horizon hlc.Timestamp) {
	s.ck.setAsideAt(n.idx, horizon)
	s.gst.rejoins++
	for id, r := range n.st.all() {
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
		s.setStore(n, id, out)
	}
	s.sync(n)
	n.r.AsideDone(horizon)
}

// linkDown is n noticing that its link to o went down: its catch-up from
// o ends with the stream.
func (s *Sim) linkDown(n, o *node) {
	n.r.LinkDown(o.pid, s.wall(n))
	delete(n.streams, o.pid)
	delete(n.ackFifo, o.pid)
	n.dropPushLink(o.pid)
	s.drive(n)
}

// exchangePeers is a asking b for its peers when their link comes up
// (gossip's peer exchange: a request and a reply of about 64 bytes a peer,
// on a stream). Every member of a full mesh knows every other already, so
// what it changes is when a's stable time may move (mesh.Stability waits
// for every linked peer's).
func (s *Sim) exchangePeers(a, b *node) {
	var fifo [2]int64
	s.send(a, b, classPeers, 8, 0, &fifo[1], func() {
		s.send(b, a, classPeers, 8+64*b.r.Table().Len(), 0, &fifo[0], func() {
			a.r.Step(b.pid, mesh.PeersMsg{})
			s.drive(a)
		})
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
	oldest := rec.Oldest()
	if logged && !s.cfg.NoFreshCatchUp && !s.cfg.NoCollect {
		fh = n.r.FreshHorizon()
	}
	if !s.cfg.NoFresh {
		// A peer's horizon is the stable time saved when it came back,
		// which never goes back: a record newer than both needs no look
		// at the peer (a lookup per record received was a fifth of a
		// large run's time).
		if oldest <= max(n.r.Stable(), fh) {
			h = n.r.AsideBelow(from.pid)
		}
	}
	st := max(h, fh)
	if st == 0 || oldest > st {
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
	for id, r := range n.st.all() {
		if !collectable(r) {
			continue
		}
		out, gone, changed := r.Collect(stable, now)
		if !changed {
			continue
		}
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
	stable := n.r.Stable()
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
	old := n.st.ref(id)
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
