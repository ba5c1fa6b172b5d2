package node

import (
	"context"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The Go runtime, left alone, lets the heap grow to twice what was live at
// the last collection and hands freed memory back to the OS only slowly. A
// node's heap is mostly its keyspace, which stays live as long as its keys,
// plus Badger's bursts (a memtable flush or a compaction holds megabytes for
// a moment). A fixed GOMEMLIMIT is
// no answer for a database whose data set grows: once the live heap passes
// it, the collector runs back to back. Instead the node sets a soft limit
// that follows the live heap, re-evaluated every second; and once the
// collector has been idle for a few seconds after running, it collects a few
// more times, further and further apart, and returns the freed memory to the
// OS (as a JVM's periodic idle collection does): the last collection before a
// burst ended saw the burst's garbage as live, and nothing else would collect
// it for minutes.
//
// While the policy runs, GOGC is off: the limit alone decides when to
// collect. With GOGC=100 beside it, a node whose live heap is small (tens of
// megabytes) collected every few megabytes of garbage, every two seconds
// under a trickle of writes, and on a node running on one thread each
// collection held up the writes and pushes in flight by up to a
// millisecond: most of the slowest one percent of them.

// MemoryPolicy is a soft memory limit that follows the live heap
// (Live × Factor + Headroom, never below Floor) and a collection when idle.
type MemoryPolicy struct {
	// Factor is how much the heap may grow over what is live, as GOGC does
	// (GOGC=100 is a factor of 2).
	Factor float64
	// Headroom is added to the limit: room for what the runtime holds beside
	// the heap (stacks, its own metadata) and for storage's bursts between
	// two evaluations.
	Headroom uint64
	// Floor is the lowest limit set, so that a nearly empty node does not
	// collect at every allocation.
	Floor uint64
	// Interval is how often the limit is re-evaluated.
	Interval time.Duration
	// IdleAfter is how long the collector must have been idle, after it ran,
	// before the node collects and returns free memory to the OS (and again
	// after 4 and 16 times as long); zero never does.
	IdleAfter time.Duration
}

// DefaultMemoryPolicy is what redmesh serve applies unless GOMEMLIMIT or GOGC
// is set. The factor and headroom doubled the collector's CPU while a
// million keys loaded (about 1.5 s more, some 5% of the node's CPU for the
// load; the heap is then about 200 MB live, a quarter of it a compaction's
// buffers); once idle, the node holds little more than its live heap
// whatever they are.
func DefaultMemoryPolicy() MemoryPolicy {
	return MemoryPolicy{
		Factor:    1.25,
		Headroom:  64 << 20,
		Floor:     128 << 20,
		Interval:  time.Second,
		IdleAfter: 2 * time.Second,
	}
}

// Limit is the soft memory limit for a heap with live bytes live.
func (p MemoryPolicy) Limit(live uint64) int64 {
	l := float64(live)*max(p.Factor, 1) + float64(p.Headroom)
	if l >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(max(uint64(l), p.Floor))
}

// idleCollector decides when the heap has gone quiet: the collector ran and
// since then little was allocated. It collects after the quiet spell's first
// IdleAfter, then again after four and sixteen times as long, because
// storage lets go of some memory only later (Badger drops its pooled table
// builders one every two seconds), and stops until the collector runs by
// itself or the node allocates again: a few collections per quiet spell,
// whatever its length. A node that keeps allocating is not quiet, though its
// limit may be far off: the limit collects in time. Start-up counts as a
// burst: a node whose heap stays under the floor never collects by itself,
// and still has what starting touched to release.
type idleCollector struct {
	after   time.Duration
	started bool          // a step was taken
	cycles  uint64        // completed collections at the last step
	allocs  uint64        // bytes ever allocated, at the last step
	since   time.Time     // when the spell began, or the last idle collection
	wait    time.Duration // how long after since to collect; 0: not armed
}

const (
	idleRounds = 3       // collections per quiet spell: after, 4×, 16×
	quietAlloc = 1 << 20 // bytes allocated between two steps that still leave the heap quiet
)

// step takes the count of completed collections and of bytes ever allocated
// at now, and reports whether to collect now.
func (c *idleCollector) step(now time.Time, cycles, allocs uint64) bool {
	busy := allocs-c.allocs > quietAlloc
	c.allocs = allocs
	if !c.started || cycles != c.cycles || busy {
		c.started, c.cycles, c.since, c.wait = true, cycles, now, c.after
		return false
	}
	return c.wait > 0 && now.Sub(c.since) >= c.wait
}

// collected records, at now, the collection step asked for, which moved the
// counts to cycles and allocs.
func (c *idleCollector) collected(now time.Time, cycles, allocs uint64) {
	c.cycles, c.allocs, c.since = cycles, allocs, now
	if c.wait *= 4; c.wait > c.after*(1<<(2*(idleRounds-1))) {
		c.wait = 0
	}
}

// userSetsGC reports whether the user tuned Go's collector through the
// environment (GOMEMLIMIT or GOGC); the runtime has applied that, and a node
// must not override it.
func userSetsGC(getenv func(string) string) bool {
	return getenv("GOMEMLIMIT") != "" || getenv("GOGC") != ""
}

// ManageMemory applies p until ctx is done, unless the user tuned the
// collector through the environment; it then restores the limit it found.
// The memory limit is process-wide, so only the program that owns the
// process (redmesh serve) calls it, once.
func ManageMemory(ctx context.Context, p MemoryPolicy, log *slog.Logger) {
	if userSetsGC(os.Getenv) {
		log.Info("Go memory settings from the environment; no memory policy", "GOMEMLIMIT", os.Getenv("GOMEMLIMIT"), "GOGC", os.Getenv("GOGC"))
		return
	}
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)
	samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/allocs:bytes"}}
	read := func() (live, cycles, allocs uint64, ok bool) {
		metrics.Read(samples)
		for _, s := range samples {
			if s.Value.Kind() != metrics.KindUint64 {
				return 0, 0, 0, false // not reported by this runtime
			}
		}
		return samples[0].Value.Uint64(), samples[1].Value.Uint64(), samples[2].Value.Uint64(), true
	}
	idle := idleCollector{after: max(p.IdleAfter, 0)}
	if live, _, _, ok := read(); ok {
		debug.SetMemoryLimit(p.Limit(live))
		defer debug.SetGCPercent(debug.SetGCPercent(-1))
	}
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		if live, cycles, allocs, ok := read(); ok {
			if idle.step(time.Now(), cycles, allocs) {
				debug.FreeOSMemory() // collects, then returns what is free
				live, cycles, allocs, _ = read()
				idle.collected(time.Now(), cycles, allocs)
			}
			debug.SetMemoryLimit(p.Limit(live))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// errOOM is Redis's refusal over maxmemory, to the byte.
const errOOM = "OOM command not allowed when used memory > 'maxmemory'."

// usedMemory is the memory counted against --maxmemory and shown as INFO's
// used_memory: what the keyspace's table has allocated now, plus the rest
// of the heap as live at the last collection (the heap's total would count
// garbage not yet collected, which the memory policy lets grow on purpose).
func (n *Node) usedMemory() uint64 {
	return uint64(n.db.Table().Bytes()) + n.memOverhead.Load()
}

// sampleMemory refreshes the heap's part of usedMemory, and logs when the
// node goes over --maxmemory and back.
func (n *Node) sampleMemory() {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	live := s[0].Value.Uint64() + s[1].Value.Uint64()
	table := uint64(n.db.Table().Bytes())
	n.memOverhead.Store(live - min(live, table))
	over := n.overMemory()
	if was := n.wasOver.Swap(over); over != was {
		if over {
			n.log.Warn("over maxmemory: refusing client writes that add data; peers' records are still applied", "used", n.usedMemory(), "maxmemory", n.maxMemory.Load())
		} else {
			n.log.Info("under maxmemory: client writes are accepted", "used", n.usedMemory(), "maxmemory", n.maxMemory.Load())
		}
	}
}

// overMemory reports whether client writes that add data are refused.
func (n *Node) overMemory() bool {
	max := n.maxMemory.Load()
	return max > 0 && n.usedMemory() > uint64(max)
}
