package node

import (
	"bytes"
	"errors"
	"math"
	"runtime/debug"
	"time"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
)

// Collection takes out of the keyspace what nothing is left to keep of: a
// tombstone, an expired value, a typed state's removal traces, once every
// member has the writes they record (the horizon). Each node collects by
// itself, without logging or pushing anything: a record collected here is
// one every member already holds in the same state, so it can never come
// back from them (the ingress filter sees to old copies), and a replay after
// a crash that brings it back only has it collected again. Checkpoints then
// do not hold it, nor, once retention passes it, the log.

// collectHorizon is the HLC timestamp up to which every member has applied
// every write: a version at or below it is stable. With the mesh, its stable
// time (0, nothing, until it runs and has found one; a node without peers
// finds its own clock); with the mesh disabled, everything, unless the node
// remembers peers from an earlier run, which may still lack its deletes.
func (n *Node) collectHorizon() uint64 {
	if n.cfg.Mesh.Disabled {
		if n.rememberedPeers.Load() {
			return 0
		}
		return math.MaxUint64
	}
	return uint64(n.stableTime())
}

// logStable is the stable time as log retention reads it
// (wal.Options.Stable): the collection horizon, everything on a node alone.
func (n *Node) logStable() hlc.Timestamp { return hlc.Timestamp(n.collectHorizon()) }

// collectRecord is what collection makes of rec at the horizon stable
// (record.Collect).
func collectRecord(rec record.Record, stable uint64, nowMillis int64) (out record.Record, gone, changed bool) {
	return rec.Collect(hlc.Timestamp(stable), nowMillis)
}

const (
	// collectStep is how many entries one hold of the write lock looks at:
	// a fifth of a millisecond at most (all tombstones), so writers barely
	// wait.
	collectStep = 1024
	// collectEvery is how often a pass over the keyspace starts while it
	// holds tombstones (entries beyond its keys), and collectIdle how often
	// otherwise (removal traces in typed keys are not counted).
	collectEvery = time.Second
	collectIdle  = time.Minute
)

// collector is the background loop: a pass over the table in steps, one
// step per hold of the write lock, a pause between them.
func (n *Node) collector() {
	defer n.wg.Done()
	t := time.NewTicker(collectEvery)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		tab := n.db.Table()
		// Removal traces in typed keys keep the quick pace as tombstones
		// do: collected only on the idle pace, they kept quiet nodes'
		// Merkle roots apart (and their sessions repairing) for up to a
		// minute after every member had the removals.
		tombstones := tab.Stats().Entries > tab.KeyCount()
		if !tombstones && !n.tracesPending.Swap(false) && time.Since(last) < collectIdle {
			continue
		}
		last = time.Now()
		if err := n.collectPass(); err != nil {
			if !errors.Is(err, keyspace.ErrClosed) {
				n.log.Error("collection", "err", err)
			}
		}
	}
}

// collectPass walks the whole table once, collecting what the horizon allows.
func (n *Node) collectPass() error {
	stable := n.collectHorizon()
	if stable == 0 {
		n.tracesPending.Store(true) // what the pass could not look at waits
		return nil
	}
	var cursor uint64
	for {
		next, err := n.collectStep(cursor, stable)
		if err != nil || next == 0 {
			return err
		}
		cursor = next
		select {
		case <-n.stop:
			return nil
		case <-time.After(time.Millisecond):
		}
	}
}

// collectStep collects among collectStep entries from cursor on, under the
// write lock, and returns where to go on (0 at the end).
func (n *Node) collectStep(cursor, stable uint64) (uint64, error) {
	type verdict struct {
		key     []byte
		out     record.Record
		gone    bool
		expired bool // an expired value the sweep had not reached: counted as Redis counts expired keys
	}
	var todo []verdict
	var next, collected, expired uint64
	err := n.db.Local(func(l *keyspace.Local) {
		now := n.nowMillis()
		next = l.WalkCollectable(cursor, collectStep, func(key []byte, rec record.Record) {
			out, gone, changed := collectRecord(rec, stable, now)
			if !gone && out.Typed.HasTraces() {
				n.tracesPending.Store(true) // not yet stable, or kept below: the next pass
			}
			if gone || changed {
				if !gone {
					out.Value.Data = bytes.Clone(out.Value.Data) // it aliases the table
				}
				todo = append(todo, verdict{bytes.Clone(key), out, gone, gone && !rec.Value.Tombstone && rec.Expired(now)})
			}
		})
		for _, v := range todo {
			if !l.Settled(v.key) || n.watching.has(v.key) {
				continue // its last write has yet to reach the log, or a client watches it: the next pass
			}
			if v.gone {
				l.Remove(v.key)
			} else {
				l.Set(v.key, v.out)
			}
			if v.expired {
				expired++
			}
			collected++
		}
	})
	n.stats.collected.Add(collected)
	n.stats.expiredKeys.Add(expired)
	return next, err
}

// releaseAfter is how many keys the sweep takes out before it returns the
// memory they held to the OS once nothing more is due.
const releaseAfter = 1 << 16

// releaseSwept returns to the OS what the sweep freed, once it freed much
// and is done: a cache of short-lived keys empties in bursts, and the
// memory a burst held would otherwise stay resident until the heap has been
// quiet for a while (see MemoryPolicy), which the sweep itself delays.
func (n *Node) releaseSwept() {
	if n.stats.sweptSinceRelease.Load() < releaseAfter {
		return
	}
	n.stats.sweptSinceRelease.Store(0)
	debug.FreeOSMemory()
}

const (
	// sweepBatch is how many expired keys one hold of the write lock
	// sweeps.
	sweepBatch = 512
	// sweepBudget is how long a sweep may run each sweepInterval: a
	// quarter of a core at most, Redis's budget for its active expiry.
	sweepInterval = 100 * time.Millisecond
	sweepBudget   = sweepInterval / 4
)

// sweepExpired is the active expiry: it turns records whose deadline passed
// into what a sweep leaves (record.Swept: a tombstone of the same version),
// and takes that out at once where it is stable, as it is on a node alone.
// Nothing of it is logged or pushed: a swept record is a function of the
// record and the clock, which every node reaches by itself, and a replay
// after a crash brings back the expired value, which is swept again.
// Reads and WATCH do not depend on it: an expired key reads as absent
// whether swept or not.
func (n *Node) sweepExpired() {
	start := time.Now()
	stable := n.collectHorizon()
	for time.Since(start) < sweepBudget {
		now := n.nowMillis()
		keys := n.db.Table().Expired(now, sweepBatch)
		if len(keys) == 0 {
			n.releaseSwept()
			return
		}
		var swept uint64
		err := n.db.Local(func(l *keyspace.Local) {
			for _, k := range keys {
				if !l.Settled(k) {
					continue // its last write has yet to reach the log: the next tick
				}
				cur := l.Peek(k)
				if !cur.Exists() || !cur.Expired(now) {
					continue // rewritten since it was listed
				}
				left := cur.Swept()
				out, gone, _ := collectRecord(left, stable, now)
				switch {
				case gone && !n.watching.has(k):
					l.Remove(k)
				case gone:
					l.Set(k, left) // collection takes it once no client watches it
				default:
					l.Set(k, out)
				}
				swept++
			}
		})
		n.stats.expiredKeys.Add(swept)
		n.stats.sweptSinceRelease.Add(swept)
		if err != nil {
			if !errors.Is(err, keyspace.ErrClosed) {
				n.log.Error("expiry sweep", "err", err)
			}
			return
		}
		if swept == 0 {
			return // all waiting for the log: the next tick
		}
	}
}
