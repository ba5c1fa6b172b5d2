package node

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"syscall"
	"time"
)

// Go runs goroutines on GOMAXPROCS threads, by default one per core. A node
// hands each write from goroutine to goroutine (event loop, committer,
// Badger), and at a light load every hand-off to an idle thread wakes it
// (a futex call) and sets it spinning for work: measured on two cores beside
// the client, a node under a probe of 2,000 writes a second spent a third
// more CPU, and its replication latency doubled at the 99th percentile,
// with two threads rather than one. Under a heavy load a second thread can
// pay for itself (Badger's flushes and compactions beside the commands).
// So the node sets GOMAXPROCS to what its load needs: it grows when the
// threads it has are nearly all busy, and shrinks when fewer would be less
// than well used, re-evaluated four times a second. Busy is not enough to
// grow on: the clients' commands run in one event loop, and a loop busy
// with requests one at a time (-P 1) costs more CPU a command on two
// threads than on one (the hand-offs' wakes) and answers fewer, while its
// CPU then stays past the bound to shrink. So a count grown is kept only if
// the node answers more commands a second with it (bench/RESULTS.md).

// ProcsPolicy sets GOMAXPROCS between 1 and Max by the CPU the process used
// over the last Interval and, while clients are served, by whether a count
// grown served them faster.
type ProcsPolicy struct {
	// Max is the most threads used: GOMAXPROCS as the runtime found it.
	Max int
	// Interval is how often the load is measured.
	Interval time.Duration
	// Grow is the share of its threads' time the process must use to get
	// twice as many.
	Grow float64
	// Shrink is the share of half its threads' time under which the process
	// drops to half as many.
	Shrink float64
	// Served, if set, is how many commands the node has answered so far. A
	// count grown while clients were served at least MinServed commands a
	// second is then undone after an interval in which the commands
	// answered a second did not rise by Gain, and growth at such a rate
	// waits Hold, twice as long after each such try in a row, up to
	// MaxHold. A load of the mesh's, with a trickle of commands beside it
	// (a monitor's INFO), is judged by the CPU alone.
	Served    func() uint64
	MinServed float64
	Gain      float64
	Hold      time.Duration
	MaxHold   time.Duration
}

// DefaultProcsPolicy is what redmesh serve applies unless GOMAXPROCS is set.
func DefaultProcsPolicy() ProcsPolicy {
	return ProcsPolicy{
		Max: runtime.GOMAXPROCS(0), Interval: 250 * time.Millisecond, Grow: 0.95, Shrink: 0.8,
		MinServed: 1000, Gain: 0.05, Hold: 2 * time.Second, MaxHold: time.Minute,
	}
}

// Next is the thread count for a process with procs threads that used used
// cores (CPU seconds a second) over the last interval.
func (p ProcsPolicy) Next(procs int, used float64) int {
	switch {
	case used >= p.Grow*float64(procs) && procs < p.Max:
		return min(2*procs, p.Max)
	case procs > 1 && used <= p.Shrink*float64(procs/2):
		return procs / 2
	}
	return procs
}

// paid reports whether a count grown is kept: the commands answered a
// second rose from before to after by Gain.
func (p ProcsPolicy) paid(before, after float64) bool {
	return after >= before*(1+p.Gain)
}

// ManageProcs applies p until ctx is done, unless GOMAXPROCS is set in the
// environment; it then restores the count it found. It starts from one
// thread: a node that has just opened is idle until clients or peers come,
// and a load grows it within an interval. Like the memory limit, GOMAXPROCS
// is process-wide: only redmesh serve calls it, once, after the node opened
// (loading the index uses every core).
func ManageProcs(ctx context.Context, p ProcsPolicy, log *slog.Logger) {
	if v := os.Getenv("GOMAXPROCS"); v != "" || p.Max <= 1 {
		return
	}
	procs := 1
	found := runtime.GOMAXPROCS(procs)
	defer runtime.GOMAXPROCS(found)
	last, err := cpuTime()
	if err != nil {
		log.Warn("cannot read the process's CPU time; GOMAXPROCS left as is", "err", err)
		return
	}
	lastAt := time.Now()
	var (
		lastServed   uint64
		lastServedAt time.Time
		triedFrom    int // the count before a growth on trial, or 0
		rateBefore   float64
		hold         time.Duration
		holdUntil    time.Time
	)
	if p.Served != nil {
		lastServed, lastServedAt = p.Served(), time.Now()
	}
	set := func(next int, used float64) {
		runtime.GOMAXPROCS(next)
		log.Debug("GOMAXPROCS changed", "from", procs, "to", next, "cores_used", used)
		procs = next
	}
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cpu, err := cpuTime()
			if err != nil {
				continue
			}
			secs := now.Sub(lastAt).Seconds()
			used := (cpu - last).Seconds() / secs
			last, lastAt = cpu, now
			var rate float64
			if p.Served != nil {
				// Timed by its own reads: a thread descheduled between the
				// tick and the read would otherwise count a late read's
				// commands in one interval's rate and leave them out of the
				// next's.
				served, at := p.Served(), time.Now()
				if served >= lastServed { // CONFIG RESETSTAT clears the count
					rate = float64(served-lastServed) / max(at.Sub(lastServedAt).Seconds(), 1e-3)
				}
				lastServed, lastServedAt = served, at
			}
			if from := triedFrom; from > 0 {
				triedFrom = 0
				if !p.paid(rateBefore, rate) {
					hold = min(max(2*hold, p.Hold), p.MaxHold)
					holdUntil = now.Add(hold)
					set(from, used)
					continue
				}
				hold = 0
			}
			next := p.Next(procs, used)
			if next > procs && p.Served != nil && rate >= max(p.MinServed, 1) {
				if now.Before(holdUntil) {
					continue
				}
				triedFrom, rateBefore = procs, rate
			}
			if next != procs {
				set(next, used)
			}
		}
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
