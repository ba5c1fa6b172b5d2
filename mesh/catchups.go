package mesh

// CatchUps schedules a node's log catch-ups and holds anti-entropy back
// while they run.
//
// One catch-up runs per peer at a time: a trigger while it runs (a new
// link, a push gap that outlasted its patience, a log the peer's root shows
// ahead)
// makes it run once more when it ends, since what triggered it may have
// come after its last read.
//
// And one reads at a time: the turn. A node back from an outage would
// otherwise read every peer's log at once, and in a mesh that kept in step
// those logs hold the same writes: it would apply each of them once per
// peer. In turns, the first peer's log brings the writes and the others,
// whose roots now match ours, answer with their heads (ServeLog). Waiters
// get the turn in the order they asked; so that a peer whose log holds much
// we already have (our cursor there is old) does not hold up one that has
// what we lack, a catch-up that has read TurnEntries entries while others
// wait goes to the back (Yield).
type CatchUps struct {
	runs     map[PeerID]bool // running; true: run again when it ends
	holder   PeerID
	held     bool
	queue    []PeerID
	deferred int
}

// TurnEntries is how many log entries a catch-up reads before it lets
// waiting ones go first.
const TurnEntries = 16 << 10

// MaxDeferredRounds bounds how many anti-entropy rounds in a row wait for
// catch-ups.
const MaxDeferredRounds = 5

// Trigger asks for a catch-up from p and reports whether the caller starts
// one now; if one runs already it runs again when it ends.
func (c *CatchUps) Trigger(p PeerID) bool {
	if c.runs == nil {
		c.runs = map[PeerID]bool{}
	}
	if _, running := c.runs[p]; running {
		c.runs[p] = true
		return false
	}
	c.runs[p] = false
	return true
}

// Ended records that the catch-up from p ended, its turn given up, and
// reports whether it runs again (it was triggered meanwhile and may, as
// the link is still up: goOn).
func (c *CatchUps) Ended(p PeerID, goOn bool) bool {
	if again := c.runs[p]; again && goOn {
		c.runs[p] = false
		return true
	}
	delete(c.runs, p)
	return false
}

// Running reports whether any catch-up runs.
func (c *CatchUps) Running() bool { return len(c.runs) > 0 }

// Take asks for the turn for p's catch-up: true, it has it; false, it is
// queued and Give hands it over later.
func (c *CatchUps) Take(p PeerID) bool {
	if !c.held {
		c.holder, c.held = p, true
		return true
	}
	c.queue = append(c.queue, p)
	return false
}

// Give gives up p's turn, or p's place in the queue; next, if ok, has the
// turn now.
func (c *CatchUps) Give(p PeerID) (next PeerID, ok bool) {
	if !c.held || c.holder != p {
		for i, q := range c.queue {
			if q == p {
				c.queue = append(c.queue[:i], c.queue[i+1:]...)
				break
			}
		}
		return 0, false
	}
	if len(c.queue) == 0 {
		c.held = false
		return 0, false
	}
	c.holder, c.queue = c.queue[0], c.queue[1:]
	return c.holder, true
}

// Yield reports whether p's catch-up, having read read entries since it
// took the turn, should give it to those waiting and queue again.
func (c *CatchUps) Yield(p PeerID, read int) bool {
	return c.held && c.holder == p && read >= TurnEntries && len(c.queue) > 0
}

// Waiting is how many catch-ups wait for the turn.
func (c *CatchUps) Waiting() int { return len(c.queue) }

// DeferRound reports whether an anti-entropy round due now should wait: a
// log catch-up repairs the same keys for less, and a session now would only
// contend with it. Never more than MaxDeferredRounds in a row, so that
// catch-ups that keep starting cannot starve anti-entropy.
func (c *CatchUps) DeferRound() bool {
	if c.Running() && c.deferred < MaxDeferredRounds {
		c.deferred++
		return true
	}
	c.deferred = 0
	return false
}
