package sim

import (
	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
)

// catchUp is one run of log catch-up from a peer, over one stream.
type catchUp struct {
	fifo [2]int64 // towards the reader, towards the server
	read int      // entries read since it took the turn
	// resume is the request to go on with when the turn comes back to a
	// catch-up that gave it up to those waiting.
	resume *mesh.LogRequest
}

// startCatchUp asks for a catch-up of a from b's log, scheduled as gossip
// schedules it (mesh.CatchUps): one per peer, run again when asked for
// while it runs, one reading at a time.
func (s *Sim) startCatchUp(a, b *node) {
	if s.cfg.NoCatchUp || !a.catchUps.Trigger(b.pid) {
		return
	}
	s.beginCatchUp(a, b)
}

// beginCatchUp starts a's catch-up from b, reading now if it has the turn.
func (s *Sim) beginCatchUp(a, b *node) {
	cu := &catchUp{}
	if a.catching == nil {
		a.catching = map[mesh.PeerID]*catchUp{}
	}
	a.catching[b.pid] = cu
	if a.catchUps.Take(b.pid) {
		s.readLog(a, b, cu)
	}
}

// readLog sends the first request of a catch-up that has the turn: from
// a's cursor in b's log, as the mesh policy says, or where it stopped when
// it gave the turn up.
func (s *Sim) readLog(a, b *node, cu *catchUp) {
	if req := cu.resume; req != nil {
		cu.resume = nil
		s.sendLogRequest(a, b, cu, *req)
		return
	}
	req := a.peers.StartCatchUp(b.pid, uint32(s.cfg.CatchUpBatch), a.st.tree.Root())
	s.st.catchUps++
	if req.Epoch == 0 {
		s.st.catchUpsNoCursor++
	}
	s.sendLogRequest(a, b, cu, req)
}

// giveTurn gives up a's turn (or b's place in the queue for it) and starts
// the catch-up that has it next.
func (s *Sim) giveTurn(a, b *node) {
	if next, ok := a.catchUps.Give(b.pid); ok {
		s.readLog(a, s.nodes[s.byID[next]], a.catching[next])
	}
}

// endCatchUp ends a's catch-up cu from b (done, fallen back and reconciled,
// or its link gone), and starts it again if it was asked for meanwhile.
func (s *Sim) endCatchUp(a, b *node, cu *catchUp) {
	if a.catching[b.pid] != cu {
		return
	}
	delete(a.catching, b.pid)
	s.giveTurn(a, b)
	p := a.peers.Get(b.pid)
	if a.catchUps.Ended(b.pid, a.up && p != nil && p.Connected) {
		s.beginCatchUp(a, b)
	}
}

func (s *Sim) sendLogRequest(a, b *node, cu *catchUp, req mesh.LogRequest) {
	buf := mesh.AppendLogRequest(nil, req)
	s.send(a, b, classCatchUp, len(buf), 0, &cu.fifo[1], func() { s.serveLog(b, a, cu, buf) })
}

// serveLog is b answering a's request from its log.
func (s *Sim) serveLog(b, a *node, cu *catchUp, buf []byte) {
	d, err := mesh.Decode(buf)
	if err != nil || d.Request == nil {
		s.st.decodeErrors++
		return
	}
	head := b.head()
	req := *d.Request
	if b.gc.asideBelow[a.pid] != 0 && !s.cfg.NoFresh {
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
		rec := e.rec
		if s.cfg.LogAsCurrent {
			rec = b.st.get(id)
		}
		p := record.Encode(rec)
		k := s.keys.names[id]
		reply.Records = append(reply.Records, merkle.Record{Key: k, Payload: p})
		size += len(k) + len(p) + 8
	}
	out := mesh.AppendLogReply(make([]byte, 0, size), reply)
	s.send(b, a, classCatchUp, len(out), mesh.PayloadBytes(reply.Records), &cu.fifo[0], func() { s.catchUpReply(a, b, cu, out) })
}

func (s *Sim) catchUpReply(a, b *node, cu *catchUp, buf []byte) {
	d, err := mesh.Decode(buf)
	if err != nil || d.Reply == nil {
		s.st.decodeErrors++
		return
	}
	if a.catching[b.pid] != cu {
		return // a catch-up that ended (its link went down, or a's crash)
	}
	for _, r := range d.Reply.Records {
		s.applyRemote(a, b, r.Key, r.Payload, true)
	}
	s.st.logEntries += int64(len(d.Reply.Records))
	act, req := a.peers.CatchUpReply(b.pid, d.Reply, uint32(s.cfg.CatchUpBatch), a.st.tree.Root())
	switch act {
	case mesh.ReadLog:
		cu.read += len(d.Reply.Records)
		if a.catchUps.Yield(b.pid, cu.read) {
			// A long read lets the catch-ups waiting go first.
			cu.read = 0
			s.giveTurn(a, b)
			if !a.catchUps.Take(b.pid) {
				cu.resume = &req // readLog goes on when the turn comes back
				return
			}
		}
		s.sendLogRequest(a, b, cu, req)
	case mesh.Reconcile:
		s.st.fallbacks++
		// The session repairs what b has for us: the turn goes to the
		// others, the catch-up ends with the session.
		s.giveTurn(a, b)
		s.startSession(a, b, cu)
	case mesh.Idle:
		s.st.catchUpsByLog++
		s.endCatchUp(a, b, cu)
	}
}

// pushItem is a local write queued for eager push: its key and its place
// in the log (the position just after it).
type pushItem struct {
	id  uint32
	seq uint64
}

// pushSeqs is what an origin's push says of its log, as the node's push
// message does: epoch, the position after the previous local write pushed
// (prev) and after the last in this push (to). A receiver that has applied
// every local write up to prev has, with this push, every one up to to.
type pushSeqs struct{ epoch, prev, to uint64 }

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

// sendOwnPush pushes a batch of n's own writes, with their log positions
// when collection is on (acknowledgements are made of them).
func (s *Sim) sendOwnPush(n *node, batch []pushItem) {
	ids := make([]uint32, len(batch))
	for i, it := range batch {
		ids[i] = it.id
	}
	var seqs *pushSeqs
	if !s.cfg.NoCollect {
		to := batch[len(batch)-1].seq
		seqs = &pushSeqs{epoch: n.epoch, prev: n.gc.pushRange.Next(batch[0].seq, to), to: to}
	}
	s.sendPush(n, ids, 0, seqs)
}

// sendPush sends the current records of keys ids to up to PushFanout
// connected peers other than exclude.
func (s *Sim) sendPush(n *node, ids []uint32, exclude mesh.PeerID, seqs *pushSeqs) {
	recs := make([]merkle.Record, len(ids))
	for i, id := range ids {
		recs[i] = merkle.Record{Key: s.keys.names[id], Payload: record.Encode(n.st.get(id))}
	}
	size := 16
	for _, r := range recs {
		size += len(r.Key) + len(r.Payload) + 8
	}
	buf := mesh.AppendPush(make([]byte, 0, size), recs)
	pay := mesh.PayloadBytes(recs)
	hdr := 0
	if seqs != nil {
		hdr = uvarintLen(seqs.epoch) + uvarintLen(seqs.prev) + uvarintLen(seqs.to)
	}
	s.targets = n.peers.PushTargets(s.targets[:0], exclude, s.cfg.PushFanout, s.rng.IntN)
	s.st.pushBatches++
	for _, t := range s.targets {
		to := s.nodes[s.byID[t]]
		s.send(n, to, classPush, len(buf)+hdr, pay, nil, func() { s.recvPush(to, n, buf, seqs) })
	}
}

// recvPush merges a pushed batch and forwards what won, as GossipSub would
// forward a message not seen before: a record that loses was seen, so
// nothing loops. A push from its origin moves what n acknowledges of the
// origin's log.
func (s *Sim) recvPush(n, from *node, buf []byte, seqs *pushSeqs) {
	d, err := mesh.Decode(buf)
	if err != nil || d.Push == nil {
		s.st.decodeErrors++
		return
	}
	var fwd []uint32
	for _, r := range d.Push {
		if id, won := s.applyRemote(n, from, r.Key, r.Payload, false); won {
			fwd = append(fwd, id)
		}
	}
	s.st.pushRecords += int64(len(d.Push))
	if seqs != nil {
		s.pushed(n, from, *seqs)
	}
	if len(fwd) > 0 {
		s.sendPush(n, fwd, from.pid, nil)
	}
}
