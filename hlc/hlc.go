// Package hlc is the hybrid logical clock that versions every write.
//
// A Timestamp packs 48 bits of wall-clock milliseconds and a 16-bit logical
// counter into a uint64, so timestamps compare as plain integers and stay
// close to real time, which makes last-writer-wins behave as people expect.
//
// The clock never goes backwards, across restarts too: it issues no
// timestamp beyond its persisted high-water mark, and persists a new mark a
// window ahead of now before it would, so a restart (even with a wall clock
// set back) starts above every timestamp issued before it, at the cost of
// one synced write per window rather than one per timestamp. The caller's
// Extend persists the next mark while the current one still has half a window
// to run, so a clock in steady use never makes a write wait for a sync.
// A clean stop (Close) persists the exact latest timestamp instead, so that
// the next start does not begin up to a window ahead of real time; and a mark
// is a window ahead of the wall clock, not of the latest timestamp, so that a
// clock that starts ahead (after a crash) does not move further ahead with
// every restart.
package hlc

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Timestamp is 48 bits of Unix milliseconds followed by a 16-bit counter.
type Timestamp uint64

const counterBits = 16

// maxMillis is the largest millisecond value a Timestamp can carry (year 10889).
const maxMillis = 1<<48 - 1

// New builds a timestamp from wall-clock milliseconds and a counter.
func New(millis int64, counter uint16) Timestamp {
	return Timestamp(uint64(millis)<<counterBits | uint64(counter))
}

// FromTime is the first timestamp of the millisecond that t falls in.
func FromTime(t time.Time) Timestamp { return New(t.UnixMilli(), 0) }

// Millis is the wall-clock part, in Unix milliseconds.
func (t Timestamp) Millis() int64 { return int64(t >> counterBits) }

// Counter is the logical part.
func (t Timestamp) Counter() uint16 { return uint16(t) }

// Time is the wall-clock part as a time.Time.
func (t Timestamp) Time() time.Time { return time.UnixMilli(t.Millis()) }

func (t Timestamp) String() string {
	return fmt.Sprintf("%d.%d", t.Millis(), t.Counter())
}

// ErrClockSkew is returned by Observe for a remote timestamp too far ahead of
// the local wall clock. Adopting it would let one bad clock win every conflict
// for as long as it stays ahead, so it is refused instead.
var ErrClockSkew = errors.New("remote timestamp too far ahead of local clock")

// Config configures a Clock.
type Config struct {
	// Now reads the wall clock; time.Now when nil. The simulator and tests
	// pass their own.
	Now func() time.Time
	// MaxSkew is how far ahead of the local wall clock a remote timestamp may
	// be before Observe refuses it. Zero means DefaultMaxSkew.
	MaxSkew time.Duration
	// HighWater is the mark persisted by an earlier run; the clock starts
	// above it.
	HighWater Timestamp
	// Persist durably stores a new high-water mark; the clock issues nothing
	// above the mark until it returns nil. Extend calls it about once per
	// half Window of issued time; Now and Observe call it, holding the
	// clock's lock, only when Extend has not kept ahead (the first write
	// after an idle spell). Calls never overlap, and each mark is higher
	// than the last, except Close's, the exact latest timestamp, which may be
	// lower. Nil means the clock is not persisted (tests, the simulator).
	Persist func(Timestamp) error
	// Window is how far ahead of the issued time a persisted mark reaches.
	// Zero means DefaultWindow.
	Window time.Duration
}

// Defaults for Config.
const (
	DefaultMaxSkew = time.Minute
	DefaultWindow  = 5 * time.Second
)

// Clock is a hybrid logical clock. It is safe for concurrent use.
type Clock struct {
	now     func() time.Time
	maxSkew time.Duration
	window  Timestamp
	lead    Timestamp // the least a mark runs ahead of an observed timestamp it covers
	persist func(Timestamp) error

	mu        sync.Mutex
	last      Timestamp
	highWater Timestamp // persisted: nothing above it is issued
	used      bool      // something was issued or observed since start

	// persistMu orders the calls of persist, so that marks are stored in
	// increasing order; it is taken with or without mu, never before it.
	persistMu sync.Mutex
	written   Timestamp // the highest mark persisted; guarded by persistMu

	refused atomic.Uint64
}

// NewClock returns a clock that starts above cfg.HighWater.
func NewClock(cfg Config) *Clock {
	c := &Clock{
		now:       cfg.Now,
		maxSkew:   cfg.MaxSkew,
		persist:   cfg.Persist,
		last:      cfg.HighWater,
		highWater: cfg.HighWater,
		written:   cfg.HighWater,
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.maxSkew <= 0 {
		c.maxSkew = DefaultMaxSkew
	}
	w := cfg.Window
	if w <= 0 {
		w = DefaultWindow
	}
	c.window = New(w.Milliseconds(), 0)
	c.lead = New(max(w.Milliseconds()/10, 1), 0)
	return c
}

// Now issues a timestamp greater than every timestamp this clock has issued
// or observed, and than any issued before the last restart.
func (c *Clock) Now() (Timestamp, error) { return c.NowN(1) }

// NowN issues n timestamps (n ≥ 1) at once, as n calls of Now would: the
// first is returned, the others are the n-1 after it, first+1 ... first+n-1.
// A command that writes several keys, each at a version of its own, so reads
// the wall clock and takes the lock once.
func (c *Clock) NowN(n int) (Timestamp, error) {
	if n < 1 {
		return 0, fmt.Errorf("hlc: %d timestamps asked for", n)
	}
	wall := FromTime(c.now())
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.last + 1
	if wall > next {
		next = wall
	}
	last := next + Timestamp(n-1)
	if last.Millis() > maxMillis || last < next {
		return 0, fmt.Errorf("hlc: timestamp overflow at %v", next)
	}
	if err := c.ensureHighWater(last, wall, minLead); err != nil {
		return 0, err
	}
	c.last, c.used = last, true
	return next, nil
}

// Observe folds a remote timestamp into the clock so that later local
// timestamps order after it. A timestamp more than MaxSkew ahead of the local
// wall clock is refused with ErrClockSkew, counted, and not adopted.
func (c *Clock) Observe(remote Timestamp) error {
	wall := c.now()
	if remote.Millis() > wall.Add(c.maxSkew).UnixMilli() {
		c.refused.Add(1)
		return fmt.Errorf("%w: %v is %v ahead (max %v)", ErrClockSkew, remote,
			remote.Time().Sub(wall).Round(time.Millisecond), c.maxSkew)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if remote <= c.last {
		return nil
	}
	if err := c.ensureHighWater(remote, FromTime(wall), c.lead); err != nil {
		return err
	}
	c.last, c.used = remote, true
	return nil
}

// minLead is how far ahead of a local timestamp its mark runs at least: a
// millisecond of counter, 65,536 timestamps.
const minLead = Timestamp(1 << counterBits)

// markFor is the mark that covers t: a window ahead of the wall clock, or,
// if t is itself about that far ahead, lead ahead of t. A clock restarted at
// a mark runs ahead of the wall clock until real time catches up; a mark a
// window ahead of t would put the next start a window further ahead still,
// and a node restarted a few times within seconds ran further ahead than
// --max-clock-skew, its peers refusing every write it took (chaos runs). The
// price: while the latest timestamp is more than half a window ahead of the
// wall clock (after such a restart, or observed from a peer that far
// ahead), Extend persists at every call, Now once per 65,536 timestamps and
// Observe once per tenth of a window of the peer's time.
func (c *Clock) markFor(t, wall, lead Timestamp) Timestamp {
	return max(t+lead, wall+c.window)
}

// ensureHighWater persists a new mark before t passes the current one. It
// runs with c.mu held: every Now and Observe waits for it.
func (c *Clock) ensureHighWater(t, wall, lead Timestamp) error {
	if c.persist == nil || t <= c.highWater {
		return nil
	}
	mark, err := c.persistMark(c.markFor(t, wall, lead))
	if err != nil {
		return err
	}
	c.highWater = max(c.highWater, mark)
	return nil
}

// Extend persists the next high-water mark, a window ahead, once the
// timestamps issued or observed have come within half a window of the
// current one, so that Now and Observe seldom have to. It does not hold the
// clock's lock while it persists. Call it more often than every half window
// (the node does, from a goroutine of its own); a clock that issues nothing
// is not extended, so an idle node does not sync.
func (c *Clock) Extend() error {
	if c.persist == nil {
		return nil
	}
	wall := FromTime(c.now())
	c.mu.Lock()
	due := c.used && c.last+c.window/2 > c.highWater
	next := c.markFor(c.last, wall, minLead)
	c.mu.Unlock()
	if !due {
		return nil
	}
	mark, err := c.persistMark(next)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.highWater = max(c.highWater, mark)
	c.mu.Unlock()
	return nil
}

// persistMark persists mark unless a higher one already is, and returns the
// highest mark persisted.
func (c *Clock) persistMark(mark Timestamp) (Timestamp, error) {
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	if mark <= c.written {
		return c.written, nil
	}
	if err := c.persist(mark); err != nil {
		return 0, fmt.Errorf("hlc: persist high-water mark: %w", err)
	}
	c.written = mark
	return mark, nil
}

// Close persists the latest timestamp issued or observed as the high-water
// mark, for a clean stop: the next start begins there, not up to a window
// ahead of it. Call it once nothing more is issued or observed (a timestamp
// issued after it persists a new mark first, as after a start).
func (c *Clock) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.persist == nil || !c.used {
		return nil // the mark it started from is as good
	}
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	if err := c.persist(c.last); err != nil {
		return fmt.Errorf("hlc: persist the last timestamp: %w", err)
	}
	c.written, c.highWater = c.last, c.last
	return nil
}

// Last is the latest timestamp issued or observed.
func (c *Clock) Last() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Refused counts remote timestamps refused for clock skew.
func (c *Clock) Refused() uint64 { return c.refused.Load() }

// MaxSkew is the configured skew limit.
func (c *Clock) MaxSkew() time.Duration { return c.maxSkew }
