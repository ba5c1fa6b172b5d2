package sim

import (
	"math"
	"slices"
	"time"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
)

// logStream is the catch-up stream to a peer: the run it carries (a new
// run opens a new stream) and the arrival time of its last message each
// way (streams are ordered).
type logStream struct {
	run  uint64
	fifo [2]int64 // towards the reader, towards the server
}

// drive carries out what n's replicator decided: log requests, fallback
// sessions, anti-entropy sessions and acknowledgements go out over the
// network model; the stable time is saved (at once: the simulator's
// metadata is durable); a node told it was forgotten sets its writes
// aside; under --fsync no an acknowledgement waiting for a sync makes one,
// as the node's does.
func (s *Sim) drive(n *node) {
	for {
		rd := n.r.Ready()
		if rd.Empty() || !n.up {
			return // a node that is down does nothing
		}
		if s.cfg.Decisions != nil {
			s.cfg.Decisions(n.idx, rd, func(p mesh.PeerID) int { return int(s.byID[p]) })
		}
		s.carryOut(n, rd)
	}
}

func (s *Sim) carryOut(n *node, rd mesh.Ready) {
	for _, x := range rd.Reads {
		b := s.nodes[s.byID[x.Peer]]
		if x.First {
			s.st.catchUps++
			if x.Req.Epoch == 0 {
				s.st.catchUpsNoCursor++
			}
		}
		st := n.streams[x.Peer]
		if st == nil || st.run != x.Run {
			st = &logStream{run: x.Run}
			if n.streams == nil {
				n.streams = map[mesh.PeerID]*logStream{}
			}
			n.streams[x.Peer] = st
		}
		req := x.Req
		req.Root = n.st.tree.Root()
		s.sendLogRequest(n, b, st, req)
	}
	for _, x := range rd.Reconciles {
		s.st.fallbacks++
		s.startSession(n, s.nodes[s.byID[x.Peer]], x.Run)
	}
	for _, x := range rd.Bootstraps {
		// The simulator never says a node is empty: it has no snapshot
		// stream.
		n.r.BootstrapDone(x.Peer, x.Run, false)
	}
	s.st.catchUpsByLog += int64(len(rd.CaughtUp))
	for _, p := range rd.Sessions {
		s.startSession(n, s.nodes[s.byID[p]], 0)
	}
	if !s.cfg.NoCollect { // no acknowledgement streams without collection (startGC)
		for _, x := range rd.Acks {
			s.sendAck(n, s.nodes[s.byID[x.Peer]], x.Ack)
		}
	}
	if rd.SaveStable != 0 {
		n.r.StableSaved(rd.SaveStable)
	}
	s.gst.forgotten += int64(len(rd.Forget))
	for _, p := range rd.Returned {
		s.ck.setAsideAt(int(s.byID[p]), n.r.AsideBelow(p))
		s.gst.returned++
	}
	if rd.SetAside != 0 {
		s.rejoin(n, rd.SetAside)
	}
	if rd.SyncWanted && s.cfg.Fsync == FsyncNo {
		s.sync(n)
	}
}

func (s *Sim) sendLogRequest(a, b *node, st *logStream, req mesh.LogRequest) {
	buf := mesh.AppendLogRequest(nil, req)
	s.send(a, b, classCatchUp, len(buf), 0, &st.fifo[1], func() { s.serveLog(b, a, st, buf) })
}

// serveLog is b answering a's request from its log.
func (s *Sim) serveLog(b, a *node, st *logStream, buf []byte) {
	d, err := mesh.Decode(buf)
	if err != nil || d.Request == nil {
		s.st.decodeErrors++
		return
	}
	head := b.head()
	req := *d.Request
	if b.r.AsideBelow(a.pid) != 0 && !s.cfg.NoFresh {
		req = mesh.ForReturned(req)
	}
	from, to, trunc := mesh.ServeLog(req, b.epoch, b.logFirst, head, uint32(s.cfg.CatchUpBatch), b.st.tree.Root())
	reply := &mesh.LogReply{Epoch: b.epoch, Head: head, Next: to, Truncated: trunc}
	size := 64
	if to > from {
		reply.Records = make([]merkle.Record, 0, to-from)
	}
	for seq := from; seq < to; seq++ {
		e := b.log[seq-b.logFirst]
		id := e.id
		rec := *e.rec
		if s.cfg.LogAsCurrent {
			rec = b.st.get(id)
		}
		p := record.Encode(rec)
		k := s.keys.names[id]
		reply.Records = append(reply.Records, merkle.Record{Key: k, Payload: p})
		size += len(k) + len(p) + 8
	}
	out := mesh.AppendLogReply(make([]byte, 0, size), reply)
	s.send(b, a, classCatchUp, len(out), mesh.PayloadBytes(reply.Records), &st.fifo[0], func() { s.catchUpReply(a, b, st, out) })
}

func (s *Sim) catchUpReply(a, b *node, st *logStream, buf []byte) {
	d, err := mesh.Decode(buf)
	if err != nil || d.Reply == nil {
		s.st.decodeErrors++
		return
	}
	if run, ok := a.r.CatchUpRun(b.pid); !ok || run != st.run {
		return // a catch-up that ended (its link went down, or a's crash)
	}
	// As the reply arrives the replicator may ask for the entries after it
	// (Read.Early), with the root from before the merge, as a node does.
	a.r.Step(b.pid, mesh.LogArrivedMsg{Run: st.run, Reply: d.Reply})
	s.drive(a)
	m := mesh.LogReplyMsg{Run: st.run, Reply: d.Reply, At: s.wall(a)}
	for i, r := range d.Reply.Records {
		// After a refused record the others are merged too, as a real
		// node's batch is, but the read stops before it (LogReplyMsg).
		if _, ap := s.applyRemote(a, b, r.Key, r.Payload, true); ap.refused && !m.Refused {
			m.Reply, m.Refused, m.AdmitAt = d.Reply.Before(i), true, ap.admitAt
		}
	}
	s.st.logEntries += int64(len(d.Reply.Records))
	a.r.Step(b.pid, m)
	s.drive(a)
}

// pushItem is a local write queued for eager push: its key and its
// sequence number in the log.
type pushItem struct {
	id  uint32
	seq uint64
}

// queuePush hands a fresh local write to eager push. The batch leaves when
// it is full or, at the latest, once the node has handled everything else
// due at this instant (its queue emptied).
func (s *Sim) queuePush(n *node, id uint32) {
	if s.cfg.NoPush {
		return
	}
	if batch := n.push.Add(pushItem{id, n.gc.lastLocal}); batch != nil {
		s.sendOwnPush(n, batch)
	}
	if n.flushQueued {
		return
	}
	n.flushQueued = true
	inc := n.inc
	s.at(s.now, func() {
		if n.inc != inc {
			return
		}
		n.flushQueued = false
		if batch := n.push.Flush(); batch != nil {
			s.sendOwnPush(n, batch)
		}
	})
}

// sendOwnPush pushes a batch of n's own writes, under the header the
// replicator gives it (which range of n's log it holds), to every peer the
// replicator names (mesh.Replicator.PushTargets: every linked one), each on
// the push stream of its link, as the node does.
func (s *Sim) sendOwnPush(n *node, batch []pushItem) {
	h := n.r.PushHeader(batch[0].seq, batch[len(batch)-1].seq)
	recs := make([]merkle.Record, len(batch))
	size := 16
	for i, it := range batch {
		recs[i] = merkle.Record{Key: s.keys.names[it.id], Payload: record.Encode(n.st.get(it.id))}
		size += len(recs[i].Key) + len(recs[i].Payload) + 8
	}
	buf := mesh.AppendPush(make([]byte, 0, size), recs)
	s.targets = n.r.PushTargets(s.targets[:0])
	s.st.pushBatches++
	s.sendPush(n, s.targets, buf, mesh.PayloadBytes(recs), h, s.now)
}

// sendPush sends a push message, the mesh push buf under header h, to each
// of targets on the push stream of n's link to it: n's own, or one it
// relays. sent is when its origin sent it (virtual time).
func (s *Sim) sendPush(n *node, targets []mesh.PeerID, buf []byte, pay int, h mesh.PushHeader, sent int64) {
	// The node's push message: version, epoch, prev, to, hops, and the
	// origin when it is relayed.
	hdr := 1 + uvarintLen(h.Epoch) + uvarintLen(h.Prev) + uvarintLen(h.To) + 1
	if h.Origin != n.pid {
		hdr += 8
	}
	var m *pushMsg // one for every target's delivery, not one each
	for _, t := range targets {
		l := n.pushLink(t)
		if l == nil {
			n.pushLinks = append(n.pushLinks, pushLink{id: t, to: s.nodes[s.byID[t]]})
			l = &n.pushLinks[len(n.pushLinks)-1]
		}
		to := l.to
		at, ok := s.route(n, to, classPush, len(buf)+hdr, pay, &l.fifo)
		if !ok {
			continue
		}
		if m == nil {
			m = &pushMsg{from: n, buf: buf, h: h, sent: sent}
		}
		s.q.push(event{at: at, push: m, to: int32(to.idx), inc: to.inc})
	}
}

// pushMsg is a push message as sent to one or more targets.
type pushMsg struct {
	from *node
	buf  []byte
	h    mesh.PushHeader
	sent int64
}

// deliverPush is the arrival of push m at node to, sent to its incarnation
// inc: dropped as deliverAt drops a message, otherwise received.
func (s *Sim) deliverPush(m *pushMsg, to int32, inc uint32) {
	n := s.nodes[to]
	if !n.up || n.inc != inc || m.from.group != n.group {
		s.st.dropped++
		return
	}
	s.recvPush(n, m.from, m.buf, m.h, m.sent)
}

// pushLink is n's push stream to a peer: the peer, and the arrival time of
// the last message on it.
type pushLink struct {
	id   mesh.PeerID
	to   *node
	fifo int64
}

// pushLink returns n's push stream to id, nil if none is open. A node has
// a few dozen links at most: a look through them is one run of memory,
// where a map's look-up takes several cache misses.
func (n *node) pushLink(id mesh.PeerID) *pushLink {
	for i := range n.pushLinks {
		if n.pushLinks[i].id == id {
			return &n.pushLinks[i]
		}
	}
	return nil
}

// dropPushLink closes n's push stream to id.
func (n *node) dropPushLink(id mesh.PeerID) {
	n.pushLinks = slices.DeleteFunc(n.pushLinks, func(l pushLink) bool { return l.id == id })
}

// linkFifo is the arrival time of the last message on a stream of the link
// to id, one of *m's (a map of them per link, made as needed).
func linkFifo(m *map[mesh.PeerID]*int64, id mesh.PeerID) *int64 {
	if *m == nil {
		*m = map[mesh.PeerID]*int64{}
	}
	f := (*m)[id]
	if f == nil {
		f = new(int64)
		(*m)[id] = f
	}
	return f
}

// recvPush takes a push from peer from (its origin's, or relayed), as the
// node does: a copy the replicator says is held is not merged; otherwise
// its records are. The replicator moves n's progress through the origin's
// writes or waits for a missing push (checkGaps), and names the peers the
// push is relayed to, if any. A push that was news here counts its time
// from the origin's send (sent) in the propagation's distribution.
func (s *Sim) recvPush(n, from *node, buf []byte, h mesh.PushHeader, sent int64) {
	h.At = s.wall(n)
	pay := 0
	if n.r.PushHeld(from.pid, h) {
		s.st.pushHeld++
	} else {
		d, err := mesh.Decode(buf)
		if err != nil || d.Push == nil {
			// Its writes are missing, as a lost push's: refused, which
			// also releases the claim PushHeld made on it.
			s.st.decodeErrors++
			h.Refused = true
		}
		var refused *applied // the first record refused
		for _, r := range d.Push {
			_, a := s.applyRemote(n, from, r.Key, r.Payload, false)
			h.Won = h.Won || a.won
			if a.refused && refused == nil {
				refused = &a
			}
		}
		s.st.pushRecords += int64(len(d.Push))
		pay = mesh.PayloadBytes(d.Push)
		if refused != nil {
			h.Refused, h.AdmitAt = true, refused.admitAt
		}
		if h.Won {
			s.st.propagation.add(s.now - sent)
		}
	}
	n.r.Step(from.pid, h)
	rh, targets := n.r.Relay(from.pid, h, s.targets[:0])
	s.targets = targets
	if len(targets) > 0 {
		s.st.pushRelayed += int64(len(targets))
		s.sendPush(n, targets, buf, pay, rh, sent)
	}
	s.drive(n)
	// Only the origin's own push opens a gap (a relayed copy moves nothing).
	if h.Origin == from.pid && n.r.Peer(from.pid).Progress.Waiting() > 0 {
		s.checkGaps(n)
	}
}

// gapCheckEvery is how often a node with a push missing looks whether it
// is overdue, as gossip's maintain loop does.
const gapCheckEvery = 250 * time.Millisecond

// checkGaps looks at n's push gaps every gapCheckEvery while one is open
// (mesh.Replicator.CheckGaps reads the log of an origin whose missing push
// is late past mesh.GapPatience).
func (s *Sim) checkGaps(n *node) {
	if n.gapCheck {
		return
	}
	n.gapCheck = true
	inc := n.inc
	var look func()
	look = func() {
		if n.inc != inc {
			return
		}
		n.r.CheckGaps(s.wall(n))
		s.drive(n)
		if !n.r.GapsOpen() {
			n.gapCheck = false
			return
		}
		s.at(s.now+int64(gapCheckEvery), look)
	}
	s.at(s.now+int64(gapCheckEvery), look)
}

// msHist is a distribution of durations at a millisecond's resolution, up
// to a minute (longer ones count as a minute).
type msHist struct {
	n      int64
	counts []int64
}

func (h *msHist) add(d int64) {
	if h.counts == nil {
		h.counts = make([]int64, 60_001)
	}
	h.counts[min(max(d/int64(time.Millisecond), 0), int64(len(h.counts)-1))]++
	h.n++
}

// quantile is the smallest duration in ms at or below which a share q of
// the samples lie (0 with none).
func (h *msHist) quantile(q float64) int64 {
	want := int64(math.Ceil(q * float64(h.n)))
	var seen int64
	for ms, c := range h.counts {
		seen += c
		if seen >= want && seen > 0 {
			return int64(ms)
		}
	}
	return 0
}
