package sim

import "time"

// gapPatience is how long a push gap may stay open before the reader reads
// the origin's log, as gossip does (a push it missed, or one that is late).
const gapPatience = int64(time.Second)

// gapCatchUp is n, which received a push from origin after a gap (it has not
// applied origin's local writes up to ps.prev), reading origin's log if the
// gap is still open after gapPatience: without it a lost push left n's cursor
// in origin's log, and so what n acknowledges of it, behind for good, and
// the stable time with it.
func (s *Sim) gapCatchUp(n, origin *node, ps pushSeqs) {
	s.at(s.now+gapPatience, func() {
		if !n.up || !origin.up {
			return
		}
		p := n.peers.Get(origin.pid)
		if p == nil || !p.Connected || p.HasCursor && (p.Cursor.Epoch != ps.epoch || p.Cursor.Next >= ps.prev) {
			return
		}
		s.startCatchUp(n, origin)
	})
}
