package mesh

import "time"

// Progress is how far a node has applied one origin's local writes: every
// write the origin logged in epoch Epoch up to sequence number Acked. It is
// what the node acknowledges to the origin (WAIT, the stable time) and
// where its catch-up cursor in the origin's log may move.
//
// The origin's pushes each carry the range (prev, to] of its log they
// hold, all of its local writes in it; one may be lost (the origin dropped
// it for a slow peer, or its stream failed) or arrive late, across a new
// stream. A push that follows on from Acked moves it; one that
// comes after a missing push waits (up to MaxAhead of them) until the
// missing writes arrive by a late push or a log read, and the gap's age
// tells the caller when to stop waiting and read the origin's log (Overdue).
type Progress struct {
	Epoch, Acked uint64
	// ahead: pushes that came after a gap, prev → to.
	ahead map[uint64]uint64
	// missed: the end of the latest push this node could not apply
	// (Missed), which a log read must reach.
	missed   uint64
	gapSince time.Time
	// notBefore: the missed writes cannot be applied before then (a record
	// the clock refused, admitted from then on): reading the log sooner
	// would only stop at it again.
	notBefore time.Time
}

// GapPatience is how long a missing push may be late before the origin's
// log is read instead (Overdue).
const GapPatience = time.Second

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
	if len(p.ahead) == 0 && p.Acked >= p.missed {
		p.gapSince, p.notBefore = time.Time{}, time.Time{}
	}
	return true
}

// Missed records that the origin's writes up to to of epoch, which a push
// or a log read brought at now, could not all be applied here: the log
// refused them (a full disk), or the clock refused a record (mesh.Admit),
// which it admits from admitAt (zero: unknown). They are missing as a lost
// push's writes are, and the origin's log is read once they have been for
// the patience and admitAt has passed (Overdue), even if no later push
// comes to show the gap: an origin that wrote nothing more would otherwise
// stay unread, its writes unacknowledged, and the mesh's stable time
// stuck; and a peer whose clock runs far ahead is not read again every
// patience only to be refused again.
func (p *Progress) Missed(epoch, to uint64, now, admitAt time.Time) {
	p.enter(epoch)
	if to <= p.Acked {
		return
	}
	p.missed = max(p.missed, to)
	if p.gapSince.IsZero() {
		p.gapSince = now
	}
	if admitAt.After(p.notBefore) {
		p.notBefore = admitAt
	}
}

func (p *Progress) enter(epoch uint64) {
	if p.Epoch != epoch {
		p.Epoch, p.Acked, p.ahead, p.missed, p.gapSince, p.notBefore = epoch, 0, nil, 0, time.Time{}, time.Time{}
	}
}

// Overdue reports whether a push has been missing for longer than patience
// at now, and what was refused may be admitted (Missed); if so the caller reads the origin's log, and the gap's clock
// starts again, so a read that does not close it is retried a patience
// later.
func (p *Progress) Overdue(now time.Time, patience time.Duration) bool {
	if p.gapSince.IsZero() || now.Sub(p.gapSince) <= patience || now.Before(p.notBefore) {
		return false
	}
	p.gapSince = now
	return true
}

// Waiting is how many pushes wait for a missing one.
func (p Progress) Waiting() int { return len(p.ahead) }

// PushRange is the origin's side of Progress: the range of its log each
// of its pushes says it holds. A local write that is not pushed (no peer
// connected, the queue full, too large for a message, a publish that
// failed) must show as a hole, so that receivers read it from the log
// rather than take the next push as following on.
type PushRange struct {
	last, skipped uint64
}

// Start says the log ended at seq when pushing began: receivers learn of
// anything before it from the log.
func (r *PushRange) Start(seq uint64) { r.last = seq }

// Skip records that the local write at seq will not be pushed.
func (r *PushRange) Skip(seq uint64) { r.skipped = max(r.skipped, seq) }

// Next returns prev for a push of the local writes first to to, every one
// between them included, and takes to as pushed.
func (r *PushRange) Next(first, to uint64) (prev uint64) {
	prev = r.last
	if r.skipped > prev && r.skipped < first {
		prev = r.skipped
	}
	r.last = to
	return prev
}
