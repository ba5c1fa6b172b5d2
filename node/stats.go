package node

import (
	"time"

	"github.com/redmesh/redmesh/gossip"
	"github.com/redmesh/redmesh/keyspace"
)

// Stats is a snapshot of a node's counters and state, read when asked (a
// Prometheus scrape), never kept up to date on the command path.
type Stats struct {
	Keys, ExpiringKeys int64
	// Tombstones are the entries of deleted (or expired and swept) keys
	// the keyspace keeps, so that a peer that missed the delete cannot
	// bring the key back.
	Tombstones int64
	// TombstonesCollected counts the tombstones dropped once every member
	// had applied them (INFO's tombstones_collected).
	TombstonesCollected uint64
	// SetAside counts the records of forgotten members back that held
	// writes the mesh had collected, not merged (MESH SETASIDE).
	SetAside uint64
	// CheckpointAt is when the last checkpoint was written or loaded (the
	// node's start if none was); CheckpointBytes its size.
	CheckpointAt    time.Time
	CheckpointBytes int64
	// The write-ahead log: the sequence numbers of its first and last
	// entries, and its size; DiskBytes is the whole data directory.
	LogFirst, LogLast   uint64
	LogBytes, DiskBytes int64

	ConnectionsReceived, RejectedConnections uint64
	ConnectedClients                         int64
	CommandsProcessed                        uint64
	KeyspaceHits, KeyspaceMisses             uint64
	ExpiredKeys                              uint64
	ErrorReplies                             uint64
	// RefusedClockSkew counts remote versions refused for being too far
	// ahead of this node's clock.
	RefusedClockSkew uint64
	MerkleRoot       uint64

	Commands []CommandStat     // by name, only those called or rejected
	Errors   map[string]uint64 // error replies by prefix (ERR, WRONGTYPE...)

	// Mesh is nil on a node without a mesh.
	Mesh *gossip.Info
}

// Stats returns a snapshot of the node's counters.
func (n *Node) Stats() Stats {
	sum := n.counts()
	first, last := n.wal.LogBounds()
	ck := n.checkpoint()
	s := Stats{
		Keys:                n.db.KeyCount(),
		Tombstones:          n.tombstones(),
		TombstonesCollected: n.stats.collected.Load(),
		SetAside:            n.setAside.total(),
		CheckpointAt:        ck.At,
		CheckpointBytes:     ck.Bytes,
		ExpiringKeys:        n.db.ExpiresCount(),
		LogFirst:            first,
		LogLast:             last,
		LogBytes:            n.wal.LogBytes(),
		DiskBytes:           n.wal.DiskSize(),
		ConnectionsReceived: n.stats.connections.Load(),
		RejectedConnections: n.cmds.rejectedConns.Load(),
		ConnectedClients:    n.nclients.Load(),
		CommandsProcessed:   sum.commands.Load(),
		KeyspaceHits:        sum.hits.Load(),
		KeyspaceMisses:      sum.misses.Load(),
		ExpiredKeys:         n.stats.expiredKeys.Load(),
		ErrorReplies:        n.cmds.errTotal.Load(),
		RefusedClockSkew:    n.clock.Refused(),
		MerkleRoot:          n.MerkleRoot(),
		Commands:            n.cmds.commands(),
		Errors:              n.cmds.errorKinds(),
	}
	if m := n.mesh.Load(); m != nil {
		in := m.Info()
		s.Mesh = &in
	}
	return s
}

// Ready reports whether the node serves what it should: its data is loaded
// (Open has returned) and, where peers were known at start, it has
// completed a sync with one of them; why says what it waits for.
func (n *Node) Ready() (ready bool, why string) {
	if n.shut.started.Load() || n.conns.draining.Load() {
		return false, "shutting down"
	}
	if m := n.mesh.Load(); m != nil && !m.Ready() {
		return false, "waiting for the first sync with a peer"
	}
	return true, "ready"
}

// Uptime is how long the node has run.
func (n *Node) Uptime() time.Duration { return time.Since(n.started) }

// checkpoint describes the last checkpoint, dated at the node's start if
// none was written or loaded since: the keyspace has gone without one since.
func (n *Node) checkpoint() keyspace.CheckpointInfo {
	ck := n.db.LastCheckpoint()
	if ck.At.IsZero() {
		ck.At = n.started
	}
	return ck
}

// tombstones counts the table's entries that hold no key: the table's
// entries less its keys, read one after the other (a write in between
// could make it negative for a moment).
func (n *Node) tombstones() int64 {
	return max(n.db.Table().Stats().Entries-n.db.KeyCount(), 0)
}
