package sim

import (
	"time"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
)

// session is one Merkle reconciliation between two nodes, driven through
// the event queue: each side is a real merkle.Session reading the node's
// store, and every message is encoded, sent over the network model and
// decoded on arrival.
type session struct {
	ends     [2]*node // initiator, responder
	incs     [2]uint32
	ss       [2]*merkle.Session
	fifo     [2]int64 // arrival time of the last message towards each side
	fallback uint64   // the catch-up run that fell back to it (0: anti-entropy)
	refused  [2]bool  // a side refused a record (mesh.Admit)
	finished bool
}

// syncRound is one anti-entropy round of n: a session with a peer chosen by
// the replicator, unless n's previous session is still running or
// catch-ups hold it back (mesh.Replicator.Round).
func (s *Sim) syncRound(n *node) {
	s.st.rounds++
	switch n.r.Round(n.st.tree.Root()) {
	case mesh.RoundStarted:
	case mesh.RoundAlone:
		s.st.roundsAlone++
	default:
		s.st.roundsBusy++
	}
	s.drive(n)
}

func (s *Sim) startSession(a, b *node, fallback uint64) {
	ss := &session{ends: [2]*node{a, b}, incs: [2]uint32{a.inc, b.inc}, fallback: fallback}
	if !b.r.AcceptSession(a.pid) {
		s.st.sessionsRefused++
		s.endSession(ss, false)
		return
	}
	var err error
	ss.ss[0], err = merkle.NewInitiator(merkle.Config{Shape: s.cfg.Shape, Local: a.st, Salt: s.rng.Uint64()})
	if err == nil {
		ss.ss[1], err = merkle.NewResponder(merkle.Config{Shape: s.cfg.Shape, Local: b.st})
	}
	var out merkle.Output
	if err == nil {
		out, err = ss.ss[0].Start()
	}
	if err != nil {
		s.st.sessionErrors++
		s.endSession(ss, false)
		return
	}
	s.st.sessions++
	if fallback != 0 {
		s.st.fallbackSessions++
	}
	s.sendFlight(ss, 0, out.Msgs)
	s.at(s.now+int64(s.cfg.SessionTimeout), func() {
		if !ss.finished {
			s.st.sessionTimeouts++
			s.endSession(ss, false)
		}
	})
}

func (s *Sim) sendFlight(ss *session, from int, msgs []merkle.Message) {
	to := 1 - from
	for _, m := range msgs {
		buf := merkle.Marshal(m)
		pay := 0
		if t, ok := m.(*merkle.Transfer); ok {
			pay = mesh.PayloadBytes(t.Records)
		}
		s.send(ss.ends[from], ss.ends[to], classSession, len(buf), pay, &ss.fifo[to], func() {
			s.recvSession(ss, to, buf)
		})
	}
}

func (s *Sim) recvSession(ss *session, side int, buf []byte) {
	if ss.finished || ss.ends[side].inc != ss.incs[side] {
		return
	}
	n := ss.ends[side]
	m, err := merkle.Unmarshal(buf)
	if err != nil {
		s.st.sessionErrors++
		s.endSession(ss, false)
		return
	}
	out, err := ss.ss[side].Step(m)
	for _, r := range out.Records {
		if _, a := s.applyRemote(n, ss.ends[1-side], r.Key, r.Payload, false); a.refused {
			ss.refused[side] = true
		}
	}
	s.sendFlight(ss, side, out.Msgs)
	if err != nil {
		s.st.sessionErrors++
		s.endSession(ss, false)
		return
	}
	if ss.ss[0].Done() && ss.ss[1].Done() {
		s.endSession(ss, true)
	}
}

// endSession closes a session; one that completed ends, as in the gossip
// layer, with each side telling the other its mesh.RootAt (counted as
// metadata).
func (s *Sim) endSession(ss *session, ok bool) {
	ss.finished = true
	a, b := ss.ends[0], ss.ends[1]
	aLive, bLive := a.inc == ss.incs[0], b.inc == ss.incs[1]
	if aLive && ss.fallback == 0 {
		a.r.SessionDone()
	}
	if ok {
		s.st.sessionsDone++
		res := ss.ss[0].Result()
		if res.Equal {
			s.st.sessionsEqual++
		}
		s.st.keysPulled += int64(len(res.Pulled))
		s.st.keysPushed += int64(len(res.Pushed))
		// Each side learns the other's root, and its log's head, when the
		// session ends.
		ra, rb := a.rootAt(), b.rootAt()
		if aLive && bLive {
			a.r.Step(b.pid, mesh.RootsMsg{Theirs: rb, Ours: ra.Root})
			b.r.Step(a.pid, mesh.RootsMsg{Theirs: ra, Ours: rb.Root})
		}
		na, nb := len(mesh.AppendRootAt(nil, ra)), len(mesh.AppendRootAt(nil, rb))
		a.sent[classSession].meta += int64(na)
		b.sent[classSession].meta += int64(nb)
		s.st.totalMeta += int64(na + nb)
	}
	if ss.fallback != 0 && aLive {
		if run, live := a.r.CatchUpRun(b.pid); ok && !ss.refused[0] && live && run == ss.fallback {
			s.st.fallbacksDone++
		}
		// A session in which the initiator refused a record did not bring
		// everything of the peer's log, as on a real node.
		a.r.FallbackDone(b.pid, ss.fallback, ok && !ss.refused[0])
	}
	if aLive {
		s.drive(a)
	}
	if bLive {
		s.drive(b)
	}
}

// applyRemote merges a record received from peer from (session, catch-up
// or push) and reports what became of it. As on a real node, mesh.Admit refuses (and the clock counts) a record with a
// version too far ahead of this node's clock: it stays with its writer
// until time catches up with it, and what brought it does not count as
// applied. A record from a forgotten member that came back goes through
// record.Fresh first (stable.go), as does one a catch-up brought (logged),
// unless NoFreshCatchUp.
func (s *Sim) applyRemote(n, from *node, key, payload []byte, logged bool) (id uint32, out applied) {
	rec, err := record.Decode(payload)
	if err != nil {
		s.st.decodeErrors++
		return 0, applied{refused: true}
	}
	if mesh.Admit(n.clock, rec) != nil {
		return 0, applied{refused: true, admitAt: mesh.AdmitAt(n.clock, rec)}
	}
	id = s.keys.id(key)
	s.tr.grow(s.keys.len())
	if rec = s.fresh(n, from, id, rec, logged); !rec.Written() {
		return id, applied{}
	}
	return id, applied{won: s.apply(n, id, rec)}
}

// applied is what became of a record from a peer: it won (changed the
// node's copy), or it was refused, its clock admitting it from admitAt.
type applied struct {
	won, refused bool
	admitAt      time.Time
}

// intern returns the one copy of data kept for the whole run, so that
// records decoded from messages do not pin the message buffers and equal
// values are stored once.
func (s *Sim) intern(data []byte) []byte {
	if data == nil {
		return nil
	}
	if v, ok := s.values[string(data)]; ok {
		return v
	}
	v := []byte(string(data))
	s.values[string(v)] = v
	return v
}
