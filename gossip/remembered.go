package gossip

import (
	"encoding/binary"

	"github.com/redmesh/redmesh/wal"
)

// RememberedPeers reports whether the store remembers a peer or a cursor
// into one's log from an earlier run, before a mesh is started on it: a
// node that did is not alone, whatever its flags now say.
func RememberedPeers(store *wal.Store) bool {
	for _, name := range []string{metaPeers, metaCursors} {
		if b, ok, err := store.GetMeta(name); err != nil || ok && listed(b) {
			return true // unreadable: assume it does
		}
	}
	return false
}

// listed reports whether a saved list (its count first) holds anything.
func listed(b []byte) bool {
	n, k := binary.Uvarint(b)
	return k <= 0 || n > 0
}
