package mesh

import "time"

// Relayed pushes. A node pushes its own writes to every peer linked to it
// (PushTargets). Where the overlay is partial (a partition between some
// members, or the simulator's overlay of a few links a node), that reaches
// only the origin's neighbours, and everyone else would get the write from
// anti-entropy and the logs, which cost far more per record. So a push
// carries a hop budget (PushHeader.Hops) the origin sets: 0 when it is,
// or was, linked to every member it knows (a full mesh: nobody relays, no
// traffic is added), otherwise enough for the overlay (relayHops). A receiver to which the
// push was news (a record of it won) and whose budget is left relays the
// origin's message, its header intact and the budget one less, to Fanout
// of its linked peers, neither the one it came from nor the origin. A copy
// already held is dropped before its records are merged (PushHeld).
//
// A relayed copy never moves the progress through the origin's writes nor
// starts a catch-up (pushed): its header is the origin's word as another
// peer repeats it, and a gap it shows is the gap of one path among many.

// DefaultFanout is ReplicatorConfig.Fanout when unset: each receiver to
// which a push was news relays it to that many linked peers. When each
// node relays a message once, to f peers at random, the share of the mesh
// it never reaches is about e^(-f·reached): 6% at 3, 2% at 4, 0.7% at 5,
// while every relay costs each receiver a copy to drop; at 4 the few left
// out are what anti-entropy repairs.
const DefaultFanout = 4

// MaxHops bounds a push's hop budget (a byte on the wire, its top bit a
// flag).
const MaxHops = 127

// seenSlots is how many pushes pushSeen holds at most: far more than are
// in flight while one spreads (a relayed copy comes a few latencies after
// the first).
const seenSlots = 512

// pushSeen remembers the pushes whose records this node holds, by a
// fingerprint of their header, so that the copies of one that arrive by
// other paths are dropped without being merged. It is a direct-mapped
// table: a push takes the slot of its fingerprint, pushing out the one
// there. Forgetting one early costs only a merge: a copy whose records all
// lose is no news and goes no further. One look is one cache line, where
// a map takes several (a node looks up every copy it gets, about Fanout
// of each push), and its 4 KiB are made only once a node relays or is
// relayed to.
type pushSeen struct {
	slots *[seenSlots]uint64
}

func (s *pushSeen) has(k uint64) bool {
	return s.slots != nil && s.slots[seenSlot(k)] == k
}

func (s *pushSeen) add(k uint64) {
	if s.slots == nil {
		s.slots = new([seenSlots]uint64)
	}
	s.slots[seenSlot(k)] = k
}

// remove empties k's slot, if k still holds it.
func (s *pushSeen) remove(k uint64) {
	if s.has(k) {
		s.slots[seenSlot(k)] = 0
	}
}

// seenSlot is the slot of fingerprint k, by its bits above the lowest,
// which pushKey always sets: by k itself only the odd half would be used.
func seenSlot(k uint64) uint64 { return (k >> 1) % seenSlots }

// peerFilter is a Bloom filter of one hash over peer IDs: has is false for
// every ID never added, and true for few others while a few dozen are. A
// relayed copy's origin is mostly a member this node holds no state for,
// which it learns here without a look into the map of peers (several cache
// misses on a node whose memory is cold, a third of the held check).
type peerFilter [4]uint64

func (f *peerFilter) add(id PeerID) {
	b := mix(uint64(id)) % 256
	f[b/64] |= 1 << (b % 64)
}

func (f *peerFilter) has(id PeerID) bool {
	b := mix(uint64(id)) % 256
	return f[b/64]&(1<<(b%64)) != 0
}

// pushKey is a fingerprint of a push's header, its origin and range; never
// 0, which is an empty slot.
func pushKey(h PushHeader) uint64 {
	k := mix(uint64(h.Origin))
	k = mix(k ^ h.Epoch)
	k = mix(k ^ h.Prev)
	return mix(k^h.To) | 1
}

// mix is splitmix64's finaliser.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func (r *Replicator) fanout() int {
	if r.cfg.Fanout > 0 {
		return r.cfg.Fanout
	}
	return DefaultFanout
}

// relayHops is the hop budget of this node's pushes: 0 when it is, or
// was, linked to every member it knows, otherwise ceil(log_f(members)) + 1
// for fanout f. The origin's neighbours and f more at each hop reach every
// member in about log_f(members) hops; the one more lets a push go round
// the members the first wave missed.
//
// A member whose link went down does not count as unlinked: on a full
// mesh that is a member crashed or cut off, which relays would not reach
// either, and every push would be copied Fanout times to every peer for
// nothing (a 100-node mesh with one member down, four copies of each push
// a node). A member never linked is one the overlay does not link here,
// which others may.
func (r *Replicator) relayHops() uint8 {
	members, unheard := r.stab.Count()
	if unheard == 0 {
		return 0
	}
	f := r.fanout()
	hops := 1
	for reach := f; reach < members; reach *= f {
		hops++
	}
	return uint8(min(hops+1, MaxHops))
}

// PushHeld reports whether every record of a push that arrived from peer
// from is already applied here: by this node's progress through the
// origin's writes, or because a copy of the same push was merged before or
// is being merged. The driver then leaves its records unmerged, and still
// hands the header to Step (a push from its origin moves the progress) and
// to Relay.
//
// A push not held is claimed: until Relay releases it (its records refused)
// every other copy is held. A driver that merges copies from several
// streams at once would otherwise merge two copies that arrived together
// and relay both, the mark that a push is here being set only after its
// merge.
func (r *Replicator) PushHeld(from PeerID, h PushHeader) bool {
	k := pushKey(h)
	if r.seen.has(k) {
		return true
	}
	if r.known.has(h.Origin) {
		if p := r.peers[h.Origin]; p != nil && p.prog.Epoch == h.Epoch && h.To <= p.prog.Acked {
			return true
		}
	}
	// A push its origin sent with no budget is relayed by nobody: no copy
	// of it will come to be held.
	if h.Hops != 0 || from != h.Origin {
		r.seen.add(k)
	}
	return false
}

// Relay takes a push from peer from once its records were merged (h.Won:
// one of them won here; h.Refused: one could not be applied, and the claim
// PushHeld made is released, so that a copy by another path is merged) and
// Step took its header. It returns the header the push goes on with and
// appends to dst the peers it goes to: Fanout of the linked peers, at
// random, neither from nor the origin, when the push was news and its
// budget is left; otherwise dst as it was. The driver sends the origin's
// records, as they came, under that header.
func (r *Replicator) Relay(from PeerID, h PushHeader, dst []PeerID) (PushHeader, []PeerID) {
	if h.Refused {
		r.seen.remove(pushKey(h))
	}
	if h.Hops == 0 || !h.Won {
		return h, dst
	}
	base := len(dst)
	for i := range r.table.peers {
		if p := &r.table.peers[i]; p.Connected && p.ID != from && p.ID != h.Origin {
			dst = append(dst, p.ID)
		}
	}
	cand := dst[base:]
	n := min(r.fanout(), len(cand))
	for i := range n {
		j := i + r.cfg.Intn(len(cand)-i)
		cand[i], cand[j] = cand[j], cand[i]
	}
	h.Hops--
	h.Won, h.Refused, h.AdmitAt = false, false, time.Time{}
	return h, dst[:base+n]
}
