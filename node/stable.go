package node

import (
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
)

// Frontier is the mesh's sample of the log and the clock (gossip.Local):
// the clock is read under the write lock, so every local write stamped up
// to ts is at or before seq, and seq is committed when it returns.
func (n *Node) Frontier() (uint64, hlc.Timestamp, error) {
	var ts hlc.Timestamp
	var cerr error
	seq, err := n.db.Frontier(func() { ts, cerr = n.clock.Now() })
	if err != nil {
		return 0, 0, err
	}
	return seq, ts, cerr
}

// stableTime is the time up to which every member of the mesh has applied
// every write (gossip.Mesh.Stable), what collection may drop; 0 before the
// mesh has found one, or without a mesh.
func (n *Node) stableTime() hlc.Timestamp {
	if m := n.mesh.Load(); m != nil {
		return m.Stable()
	}
	return 0
}

// maxSetAside bounds the set-aside records a node lists (MESH SETASIDE);
// it counts them all.
const maxSetAside = 1000

// setAside remembers the keys whose records from a forgotten member that
// came back held writes from before what the mesh collected, which this node
// no longer had: they were not merged (record.Fresh).
type setAside struct {
	mu     sync.Mutex
	count  uint64
	recent []setAsideKey // the latest maxSetAside, oldest first
}

type setAsideKey struct {
	key  string
	at   time.Time
	news record.Version // the newest version the record held
}

func (s *setAside) add(key []byte, rec record.Record, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	if len(s.recent) == maxSetAside {
		copy(s.recent, s.recent[1:])
		s.recent = s.recent[:maxSetAside-1]
	}
	s.recent = append(s.recent, setAsideKey{string(key), now, rec.Newest()})
}

func (s *setAside) snapshot() (uint64, []setAsideKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count, append([]setAsideKey(nil), s.recent...)
}

// fresh is rec, a peer's record of key, as record.Fresh leaves it against
// horizon (0: none): what the mesh collected up to it is set aside, not
// merged.
func (n *Node) fresh(tx *keyspace.Tx, key []byte, rec record.Record, horizon hlc.Timestamp) record.Record {
	if horizon == 0 || rec.Oldest() > horizon {
		return rec
	}
	cur, err := tx.Get(key)
	if err != nil {
		return rec // the merge reports it
	}
	out, aside := record.Fresh(cur, rec, horizon)
	if aside {
		n.setAside.add(key, rec, time.Now())
	}
	return out
}

// meshForget is MESH FORGET peer-id.
func (n *Node) meshForget(id string) error {
	m := n.mesh.Load()
	if m == nil {
		return fmt.Errorf("this node runs without a mesh")
	}
	p, err := peer.Decode(id)
	if err != nil {
		return fmt.Errorf("not a peer ID: %q", id)
	}
	return m.Forget(p)
}
