package node

import (
	"sync"
	"sync/atomic"
)

// watching counts the keys clients WATCH, so that the sweep and collection
// leave them be: a key WATCH saw deleted that collection then took out would
// look untouched at EXEC even if it was written and deleted again between,
// and an expired key the sweep took out would look like one never written.
// As Redis keeps its watched_keys, by key.
type watching struct {
	n    atomic.Int64 // keys watched, counted with repeats: 0 skips the map
	mu   sync.Mutex
	keys map[string]int
}

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

// unwatch forgets the client's watched keys.
func (c *client) unwatch() {
	c.n.watching.drop(c.watched)
	c.watched = nil
}
