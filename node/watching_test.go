package node

import (
	"testing"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/record"
)

// A watched key's versions moved by unseen writes only are unchanged; one
// write in between that a client sees breaks the chain.
func TestWatchingUnseenWrites(t *testing.T) {
	vs := func(ts uint64) [3]record.Version { return [3]record.Version{{TS: hlc.Timestamp(ts)}} }
	var w watching
	key := []byte("k")
	w.unseen(key, vs(1), vs(2)) // nobody watches: not kept
	w.add(key)
	if w.unchanged(key, vs(1), vs(2)) {
		t.Fatal("a step recorded while nobody watched the key")
	}
	w.unseen(key, vs(1), vs(2))
	w.unseen(key, vs(2), vs(3))
	if !w.unchanged(key, vs(1), vs(3)) {
		t.Fatal("two unseen writes broke the watch")
	}
	w.unseen(key, vs(4), vs(5)) // after a write from 3 to 4 that a client saw
	if w.unchanged(key, vs(1), vs(5)) {
		t.Fatal("a seen write between unseen ones did not break the watch")
	}
	w.drop([]watchedKey{{key: key}})
	if len(w.quiet) != 0 {
		t.Fatal("the steps outlived the last watcher")
	}
}
