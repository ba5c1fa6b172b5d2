package node

import (
	"time"

	"github.com/redmesh/redmesh/gossip"
)

// Stats is a snapshot of a node's counters and state, read when asked (a
// Prometheus scrape), never kept up to date on the command path.
type Stats struct {
	Keys, ExpiringKeys int64
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
	s := Stats{
		Keys:                n.db.KeyCount(),
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
	select {
	case <-n.stop:
		return false, "shutting down"
	default:
	}
	if m := n.mesh.Load(); m != nil && !m.Ready() {
		return false, "waiting for the first sync with a peer"
	}
	return true, "ready"
}

// Uptime is how long the node has run.
func (n *Node) Uptime() time.Duration { return time.Since(n.started) }
