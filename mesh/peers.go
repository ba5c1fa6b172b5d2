package mesh

import "sort"

// PeerID names a peer. A node uses the same identity as record.NodeID.
type PeerID uint64

// Cursor is a position in a peer's log: the log's epoch and the sequence
// number of the next entry to read. The zero Cursor is "none".
type Cursor struct {
	Epoch uint64
	Next  uint64
}

// Peer is what a node knows about one peer.
type Peer struct {
	ID        PeerID
	Connected bool
	// Root is the peer's Merkle root as last reported; RootKnown is false
	// until it has reported one.
	Root      uint64
	RootKnown bool
	// Cursor is where to resume reading the peer's log; HasCursor is false
	// until a catch-up or a fallback session has established one.
	Cursor    Cursor
	HasCursor bool
	// Serving: we stream our snapshot to it. It answers no Merkle session
	// meanwhile (see Bootstrapping), so none is started with it.
	Serving bool
	// pending is the cursor a running fallback session will establish.
	pending    Cursor
	hasPending bool
}

// Table is a node's set of peers, kept in ID order so that every choice made
// with the same random numbers is the same.
type Table struct {
	peers []Peer
	boot  bootState
}

func (t *Table) find(id PeerID) (int, bool) {
	i := sort.Search(len(t.peers), func(i int) bool { return t.peers[i].ID >= id })
	return i, i < len(t.peers) && t.peers[i].ID == id
}

// Add makes id a known peer (not connected) and returns it. Adding a known
// peer changes nothing.
func (t *Table) Add(id PeerID) *Peer {
	i, ok := t.find(id)
	if !ok {
		t.peers = append(t.peers, Peer{})
		copy(t.peers[i+1:], t.peers[i:])
		t.peers[i] = Peer{ID: id}
	}
	return &t.peers[i]
}

// Remove forgets id, cursor included (the peer left the mesh for good).
func (t *Table) Remove(id PeerID) {
	if i, ok := t.find(id); ok {
		t.peers = append(t.peers[:i], t.peers[i+1:]...)
	}
}

// Get returns the peer id, or nil if it is unknown. The pointer is valid
// until the next Add or Remove.
func (t *Table) Get(id PeerID) *Peer {
	if i, ok := t.find(id); ok {
		return &t.peers[i]
	}
	return nil
}

// Peers lists the known peers in ID order. The caller must not modify it.
func (t *Table) Peers() []Peer { return t.peers }

// Len is the number of known peers.
func (t *Table) Len() int { return len(t.peers) }

// Connected is the number of connected peers.
func (t *Table) Connected() int {
	n := 0
	for i := range t.peers {
		if t.peers[i].Connected {
			n++
		}
	}
	return n
}

// SetConnected records that the link to id came up or went down. A peer that
// goes down keeps its cursor; a fallback session in progress is forgotten.
func (t *Table) SetConnected(id PeerID, up bool) {
	if p := t.Get(id); p != nil {
		p.Connected = up
		if !up {
			p.hasPending = false
		}
	}
}

// DisconnectAll marks every peer disconnected, as after a restart.
func (t *Table) DisconnectAll() {
	for i := range t.peers {
		t.peers[i].Connected = false
		t.peers[i].hasPending = false
	}
}

// ObserveRoot records the Merkle root that id reported.
func (t *Table) ObserveRoot(id PeerID, root uint64) {
	if p := t.Get(id); p != nil {
		p.Root, p.RootKnown = root, true
	}
}

// ObserveRootAt records the root id reported at the end of a session, as
// ObserveRoot does, and when it equals ours (taken at any time before) moves
// our cursor in id's log to its head (see AdvanceCursor): our data held, by
// then, what every entry before that head carried, or newer. A node that
// applied a peer's writes as that peer forwarded them from others (not its
// own, which move the cursor as they arrive) thus need not read them again
// from its log after a restart. It reports whether the cursor moved.
func (t *Table) ObserveRootAt(id PeerID, r RootAt, ours uint64) bool {
	t.ObserveRoot(id, r.Root)
	if r.Root != ours {
		return false
	}
	return r.Head != 0 && t.AdvanceCursor(id, Cursor{Epoch: r.Epoch, Next: r.Head})
}

// ChooseSyncPeer picks the peer for the next anti-entropy session: uniformly
// among connected peers whose last known root differs from ours or is
// unknown, or, when every connected peer reported our root, uniformly among
// all connected peers (their roots may have moved since). Peers we stream a
// snapshot to are left out. intn(n) must
// return a number in [0, n). It reports false when no peer is connected.
func (t *Table) ChooseSyncPeer(ourRoot uint64, intn func(n int) int) (PeerID, bool) {
	differ, conn := 0, 0
	for i := range t.peers {
		p := &t.peers[i]
		if !p.Connected || p.Serving {
			continue
		}
		conn++
		if !p.RootKnown || p.Root != ourRoot {
			differ++
		}
	}
	if conn == 0 {
		return 0, false
	}
	wantDiffer := differ > 0
	k := intn(conn)
	if wantDiffer {
		k = intn(differ)
	}
	for i := range t.peers {
		p := &t.peers[i]
		if !p.Connected || p.Serving || (wantDiffer && p.RootKnown && p.Root == ourRoot) {
			continue
		}
		if k == 0 {
			return p.ID, true
		}
		k--
	}
	panic("mesh: intn out of range")
}

// AdvanceCursor moves id's cursor to c if that is further on: in another
// log epoch, or later in the same one. A node that learns it holds every
// entry of a peer's log before c.Next other than by catch-up (its pushes
// arrived without a gap) moves the cursor with it, so that a restart does
// not read again what pushes already brought. It reports whether the
// cursor moved.
func (t *Table) AdvanceCursor(id PeerID, c Cursor) bool {
	p := t.Get(id)
	if p == nil || p.HasCursor && p.Cursor.Epoch == c.Epoch && c.Next <= p.Cursor.Next {
		return false
	}
	p.Cursor, p.HasCursor = c, true
	return true
}

// SetCursor sets id's cursor, for a node that knows where it stands in the
// peer's log without a catch-up (loaded from storage, or a mesh started from
// one snapshot).
func (t *Table) SetCursor(id PeerID, c Cursor) {
	if p := t.Get(id); p != nil {
		p.Cursor, p.HasCursor = c, true
	}
}
