package sim

import (
	"math"
	"time"
)

// Traffic classes, for the byte counts.
const (
	classSession = iota // Merkle sessions (anti-entropy and fallbacks)
	classCatchUp        // log catch-up requests and replies
	classPush           // eager push
	classAck            // acknowledgements (garbage collection)
	classPeers          // peer exchange
	numClasses
)

var classNames = [numClasses]string{"session", "catch_up", "push", "ack", "peers"}

// send puts a message of size bytes (payload of them record payloads) on
// the stream from → to whose last message arrives at *fifo, and runs
// deliver when it arrives.
//
// Every message first waits for the sender's uplink (Bandwidth), then takes
// Latency plus log-normal jitter. Every message travels on a stream (a
// session, a catch-up, a link's push or acknowledgement stream), as on the
// node: it is never lost, each lost packet costs an RTO, and it arrives
// after the stream's previous message. Nothing crosses a partition, and
// nothing reaches a node that crashed since it was sent.
func (s *Sim) send(from, to *node, class, size, payload int, fifo *int64, deliver func()) {
	if at, ok := s.route(from, to, class, size, payload, fifo); ok {
		s.deliverAt(at, from, to, deliver)
	}
}

// route counts a message send puts on the network and returns when it
// arrives, or false when it is dropped at once.
func (s *Sim) route(from, to *node, class, size, payload int, fifo *int64) (int64, bool) {
	nw := &s.cfg.Network
	from.sent[class].meta += int64(size - payload)
	from.sent[class].payload += int64(payload)
	s.st.totalMeta += int64(size - payload)
	s.st.totalPayload += int64(payload)
	s.st.messages++
	if from.group != to.group || !to.up {
		s.st.dropped++
		return 0, false
	}
	dep := max(s.now, from.busy)
	if nw.Bandwidth > 0 {
		dep += int64(size) * int64(time.Second) / nw.Bandwidth
	}
	from.busy = dep
	at := dep + s.latency()
	for nw.Loss > 0 && s.rng.Float64() < nw.Loss {
		at += int64(nw.RTO)
		s.st.retransmits++
	}
	at = max(at, *fifo)
	*fifo = at
	return at, true
}

func (s *Sim) deliverAt(at int64, from, to *node, deliver func()) {
	inc := to.inc
	s.at(at, func() {
		if !to.up || to.inc != inc || from.group != to.group {
			s.st.dropped++
			return
		}
		deliver()
	})
}

// latency is one draw of the link delay: Latency plus a log-normal tail of
// mean Jitter.
func (s *Sim) latency() int64 {
	nw := &s.cfg.Network
	d := int64(nw.Latency)
	if nw.Jitter > 0 {
		sg := nw.JitterSigma
		d += int64(float64(nw.Jitter) * math.Exp(sg*s.rng.NormFloat64()-sg*sg/2))
	}
	return d
}

// reachable reports whether a link between a and b can be up now.
func reachable(a, b *node) bool {
	return a.up && b.up && a.group == b.group
}

// linkUp connects a and b (a libp2p connection came up): each tells its
// replicator, which starts a catch-up from the other's log, and each asks
// the other for its peers.
func (s *Sim) linkUp(a, b *node) {
	if !reachable(a, b) || a.r.Table().Get(b.pid) == nil || b.r.Table().Get(a.pid) == nil {
		return
	}
	a.r.LinkUp(b.pid, s.wall(a))
	b.r.LinkUp(a.pid, s.wall(b))
	s.st.connects++
	s.drive(a)
	s.drive(b)
	s.exchangePeers(a, b)
	s.exchangePeers(b, a)
}

// scheduleLinkUp reconnects a and b after a random delay, if by then they
// can reach each other.
func (s *Sim) scheduleLinkUp(a, b *node) {
	ai, bi := a.inc, b.inc
	s.at(s.now+s.rng.Int64N(int64(s.cfg.Network.Reconnect)+1), func() {
		if a.inc == ai && b.inc == bi {
			s.linkUp(a, b)
		}
	})
}

// linkRandom links n to k random live nodes it has no link with.
func (s *Sim) linkRandom(n *node, k int) {
	live := 0
	for _, o := range s.nodes {
		if o.up && o != n {
			live++
		}
	}
	for tries := 0; k > 0 && tries < 8*k+16 && live > n.r.Table().Len(); tries++ {
		o := s.nodes[s.rng.IntN(len(s.nodes))]
		if !o.up || o == n || n.r.Table().Get(o.pid) != nil {
			continue
		}
		n.r.AddPeer(o.pid)
		o.r.AddPeer(n.pid)
		s.scheduleLinkUp(n, o)
		k--
	}
}

// partition assigns groups: each listed group is cut off from the others
// and from the unlisted nodes (group 0). Links that cross are noticed down
// after Detect; links that no longer cross come back up.
func (s *Sim) partition(groups [][]span) {
	for _, n := range s.nodes {
		n.group = 0
	}
	for g, sp := range groups {
		for _, r := range sp {
			for i := r.lo; i < r.hi; i++ {
				s.nodes[i].group = int32(g + 1)
			}
		}
	}
	s.relink()
}

// relink schedules link-downs for links that now cross a partition and
// link-ups for links that no longer do.
func (s *Sim) relink() {
	detect := int64(s.cfg.Network.Detect)
	for _, a := range s.nodes {
		if !a.up {
			continue
		}
		for _, p := range a.r.Table().Peers() {
			b := s.nodes[s.byID[p.ID]]
			switch {
			case p.Connected && a.group != b.group:
				s.at(s.now+detect, func() {
					if a.group != b.group {
						s.linkDown(a, b)
					}
				})
			case !p.Connected && a.idx < b.idx && reachable(a, b):
				s.scheduleLinkUp(a, b)
			}
		}
	}
}
