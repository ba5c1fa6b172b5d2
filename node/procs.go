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
// hands each write from goroutine to goroutine (connection, committer,
// Badger), and at a light load every hand-off to an idle thread wakes it
// (a futex call) and sets it spinning for work: measured on two cores beside
// the client, a node under a probe of 2,000 writes a second spent a third
// more CPU, and its replication latency doubled at the 99th percentile,
// with two threads rather than one. Under a heavy load the second thread
// pays for itself (Badger's flushes and compactions run beside the
// commands: SET -P 16 is 25% faster). So the node sets GOMAXPROCS to what
// its load needs: it grows when the threads it has are nearly all busy, and
// shrinks when fewer would be less than well used, re-evaluated four times
// a second.

// ProcsPolicy sets GOMAXPROCS between 1 and Max by the CPU the process used
// over the last Interval.
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
}

// DefaultProcsPolicy is what redmesh serve applies unless GOMAXPROCS is set.
func DefaultProcsPolicy() ProcsPolicy {
	return ProcsPolicy{Max: runtime.GOMAXPROCS(0), Interval: 250 * time.Millisecond, Grow: 0.95, Shrink: 0.8}
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
			used := (cpu - last).Seconds() / now.Sub(lastAt).Seconds()
			last, lastAt = cpu, now
			if next := p.Next(procs, used); next != procs {
				runtime.GOMAXPROCS(next)
				log.Debug("GOMAXPROCS changed", "from", procs, "to", next, "cores_used", used)
				procs = next
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
