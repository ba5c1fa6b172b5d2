package node

import (
	"bytes"
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

// setAside remembers the keys whose records held writes this node had
// removed and collected, which it kept out (record.Fresh): from a forgotten
// member that came back, from old entries of a peer's log a catch-up read,
// or its own once it learned it was forgotten (SetAsideBelow).
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

func (s *setAside) total() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
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

// setAsideStep is how many entries SetAsideBelow looks at per hold of the
// write lock.
const setAsideStep = 1024

// SetAsideBelow is what a node does when the mesh tells it that it was
// forgotten and came back (gossip.Local): every write up to horizon goes
// out of its keyspace (record.Fresh against nothing), its keys listed as set
// aside, as local changes made durable by a checkpoint. The mesh collected
// deletes up to horizon that those old writes would bring back; what the
// mesh still holds of them comes back by Merkle repair. It returns how many
// keys it changed.
func (n *Node) SetAsideBelow(horizon hlc.Timestamp) (int, error) {
	n.merkle.wait()
	type change struct {
		key  []byte
		out  record.Record
		gone bool
	}
	changed := 0
	var cursor uint64
	for {
		var todo []change
		var next uint64
		err := n.db.Local(func(l *keyspace.Local) {
			next = l.Walk(cursor, setAsideStep, func(key []byte, rec record.Record) {
				if rec.Oldest() > horizon {
					return
				}
				out, aside := record.Fresh(record.Record{}, rec, horizon)
				if !aside {
					return
				}
				n.setAside.add(key, rec, time.Now())
				gone := out.Value.Version.IsZero() && out.Expiry.Version.IsZero() && out.Typed.IsZero()
				if !gone {
					// A copy: out aliases the table, which the changes
					// before it may move. Rare enough to encode.
					var err error
					if out, err = record.Decode(record.Encode(out)); err != nil {
						return // cannot happen: what Encode writes decodes
					}
				}
				todo = append(todo, change{bytes.Clone(key), out, gone})
			})
			for _, c := range todo {
				if c.gone {
					l.Remove(c.key)
				} else {
					l.Set(c.key, c.out)
				}
			}
		})
		if err != nil {
			return changed, fmt.Errorf("set aside writes up to %v: %w", horizon, err)
		}
		changed += len(todo)
		if next == 0 {
			break
		}
		cursor = next
	}
	if err := n.db.Checkpoint(); err != nil {
		return changed, fmt.Errorf("checkpoint after setting aside writes up to %v: %w", horizon, err)
	}
	return changed, nil
}
