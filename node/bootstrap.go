package node

import (
	"github.com/redmesh/redmesh/record"
)

// The node's side of a bootstrap: the mesh streams the keyspace to a peer
// that holds nothing (gossip.Snapshotter), and, with --serve-stale-data no,
// clients get an error for data commands until the first sync with the
// mesh is done, as a Redis replica with replica-serve-stale-data no.

// SnapshotRange visits keys in key-hash order for a snapshot a peer streams.
func (n *Node) SnapshotRange(from uint64, fn func(h uint64, key []byte, rec record.Record) bool) (uint64, bool) {
	return n.db.Table().SnapshotRange(from, fn)
}

// SnapshotSize estimates the keyspace's snapshot.
func (n *Node) SnapshotSize() (keys, bytes int64) { return n.db.Table().SnapshotSize() }

// Empty reports whether the node holds no key, not even a tombstone.
func (n *Node) Empty() bool {
	entries, _ := n.db.Table().SnapshotSize()
	return entries == 0
}

// errStale is Redis's -MASTERDOWN, adapted to the mesh.
const errStale = "MASTERDOWN The first sync with the mesh is in progress and serve-stale-data is set to 'no'."

// staleRefused reports whether a command is refused now: a data command
// (one that reads or writes keys) while --serve-stale-data is no and the
// node's first sync with the mesh is not done.
func (n *Node) staleRefused(spec *commandSpec) bool {
	if !spec.data || n.serveStale.Load() {
		return false
	}
	m := n.mesh.Load()
	return m != nil && m.SyncInProgress()
}
