package mesh

import "time"

// Progress is how far a node has applied one origin's local writes: every
// write the origin logged in epoch Epoch up to sequence number Acked. It is
// what the node acknowledges to the origin (WAIT, the stable time) and
// where its catch-up cursor in the origin's log may move.
//
// The origin's pushes each carry the range (prev, to] of its log they
// hold, all of its local writes in it; GossipSub may deliver them out of
// order or lose one. A push that follows on from Acked moves it; one that
// comes after a missing push waits (up to MaxAhead of them) until the
// missing writes arrive by a late push or a log read, and the gap's age
// tells the caller when to stop waiting and read the origin's log (Overdue).
type Progress struct {
	Epoch, Acked uint64
	// ahead: pushes that came after a gap, prev → to.
	ahead    map[uint64]uint64
	gapSince time.Time
}

// MaxAhead bounds the pushes kept per origin while one before them is
// missing.
const MaxAhead = 1024

// Pushed takes a push of the origin's writes (prev, to] of epoch that
// arrived at now, its records already applied. It reports whether Acked
// moved. A push of another epoch than the one tracked starts over from it:
// the origin's log changed (a crash under a lazy fsync), and what was
// acknowledged of the old one says nothing of the new.
func (p *Progress) Pushed(epoch, prev, to uint64, now time.Time) bool {
	p.enter(epoch)
	if prev <= p.Acked {
		return p.Advance(epoch, to)
	}
	// A push is missing before this one: it may only be late.
	if p.ahead == nil {
		p.ahead = map[uint64]uint64{}
	}
	if len(p.ahead) < MaxAhead {
		p.ahead[prev] = max(p.ahead[prev], to)
	}
	if p.gapSince.IsZero() {
		p.gapSince = now
	}
	return false
}

// Advance records that every write of epoch up to acked is applied (a log
// read reached it), and takes in the pushes that waited for it. It reports
// whether Acked moved.
func (p *Progress) Advance(epoch, acked uint64) bool {
	p.enter(epoch)
	if acked <= p.Acked {
		return false
	}
	p.Acked = acked
	for moved := true; moved; {
		moved = false
		for prev, to := range p.ahead {
			if prev <= p.Acked {
				p.Acked = max(p.Acked, to)
				delete(p.ahead, prev)
				moved = true
			}
		}
	}
	if len(p.ahead) == 0 {
		p.gapSince = time.Time{}
	}
	return true
}

func (p *Progress) enter(epoch uint64) {
	if p.Epoch != epoch {
		p.Epoch, p.Acked, p.ahead, p.gapSince = epoch, 0, nil, time.Time{}
	}
}

// News reports whether a push of the origin's writes up to to of epoch
// holds writes not yet applied here.
func (p *Progress) News(epoch, to uint64) bool { return p.Epoch != epoch || p.Acked < to }

// Overdue reports whether a push has been missing for longer than patience
// at now; if so the caller reads the origin's log, and the gap's clock
// starts again, so a read that does not close it is retried a patience
// later.
func (p *Progress) Overdue(now time.Time, patience time.Duration) bool {
	if p.gapSince.IsZero() || now.Sub(p.gapSince) <= patience {
		return false
	}
	p.gapSince = now
	return true
}

// Waiting is how many pushes wait for a missing one.
func (p *Progress) Waiting() int { return len(p.ahead) }
