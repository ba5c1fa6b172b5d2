package node

import (
	"sync"
	"sync/atomic"

	"github.com/redmesh/redmesh/record"
)

// watching counts the keys clients WATCH, so that the sweep and collection
// leave them be: a key WATCH saw deleted that collection then took out would
// look untouched at EXEC even if it was written and deleted again between,
// and an expired key the sweep took out would look like one never written.
// As Redis keeps its watched_keys, by key.
//
// It also keeps, per watched key, the writes that changed its versions
// without changing anything a client sees (an SADD of a member the set
// holds adds it again with a fresh dot, so that it wins over a concurrent
// remove elsewhere): Redis does not count those as modifications, so they
// must not abort EXEC.
type watching struct {
	n    atomic.Int64 // keys watched, counted with repeats: 0 skips the map
	mu   sync.Mutex
	keys map[string]int
	// quiet holds, per watched key, such writes' version changes, in
	// order; at most maxQuietSteps (past that, a watcher sees a change:
	// an abort is always safe).
	quiet map[string][]versionStep
}

// versionStep is one write's change of a key's versions.
type versionStep struct{ from, to [3]record.Version }

const maxQuietSteps = 64

func (w *watching) add(key []byte) {
	w.mu.Lock()
	if w.keys == nil {
		w.keys = map[string]int{}
	}
	w.keys[string(key)]++
	w.mu.Unlock()
	w.n.Add(1)
}

func (w *watching) drop(ws []watchedKey) {
	if len(ws) == 0 {
		return
	}
	w.mu.Lock()
	for _, k := range ws {
		if w.keys[string(k.key)]--; w.keys[string(k.key)] <= 0 {
			delete(w.keys, string(k.key))
			delete(w.quiet, string(k.key))
		}
	}
	w.mu.Unlock()
	w.n.Add(-int64(len(ws)))
}

// has reports whether a client watches key.
func (w *watching) has(key []byte) bool {
	if w.n.Load() == 0 {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.keys[string(key)] > 0
}

// unseen records that a write moved key's versions from from to to without
// changing what a client sees of it.
func (w *watching) unseen(key []byte, from, to [3]record.Version) {
	if w.n.Load() == 0 || from == to {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.keys[string(key)] <= 0 {
		return
	}
	if w.quiet == nil {
		w.quiet = map[string][]versionStep{}
	}
	if steps := w.quiet[string(key)]; len(steps) < maxQuietSteps {
		w.quiet[string(key)] = append(steps, versionStep{from, to})
	}
}

// unchanged reports whether key's versions went from from to to by writes
// a client does not see alone.
func (w *watching) unchanged(key []byte, from, to [3]record.Version) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.quiet[string(key)] {
		if s.from == from {
			from = s.to
		}
	}
	return from == to
}

// unwatch forgets the client's watched keys.
func (c *client) unwatch() {
	c.n.watching.drop(c.watched)
	c.watched = nil
}
