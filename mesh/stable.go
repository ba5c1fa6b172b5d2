package mesh

import (
	"slices"
	"sort"
	"time"

	"github.com/redmesh/redmesh/hlc"
)

// Stability works out how far every member of the mesh has applied every
// member's writes: the stable time, up to which garbage collection may drop
// tombstones and removal traces and a peer's old writes are filtered
// (record.Collect, record.Fresh). It is pure: the caller feeds it samples,
// acknowledgements and reports, with the time.
//
// A node samples its log and clock together (Sample): at sequence number
// seq its clock read ts, so every local write up to ts is at or before seq
// (local writes are stamped in log order). A peer's acknowledgement of the
// log up to seq (Acked) therefore says it has applied every write of ours up
// to that sample's ts. The oldest of those over the members is how far our
// writes are stable (Own), which each node reports to its peers (Reported);
// the stable time is the oldest over every member, this node included. It
// never goes back.
//
// An acknowledgement counts as it arrives: it carries only what the peer
// has synced (Ack.Durable), which a crash of the peer does not take back.
type Stability struct {
	samples []sample
	// A member heard of and nothing more (never linked, acknowledged,
	// reported or forgotten) is its ID in idle alone: its state is the
	// zero state, the same for all of them, so Update counts them and takes
	// the lowest of their IDs (idle is sorted and free of duplicates once
	// tidied) instead of reading each, and a node of a mesh of 10,000
	// members, linked to a few dozen, keeps 8 bytes for each of the rest.
	// members indexes list, the members with a state of their own; list is
	// read in order where a map of pointers took a cache miss each.
	idle   []PeerID
	untidy bool // idle may be out of order or hold duplicates
	// common is a sorted list of idle members given whole (Members) and
	// never written, so that the nodes of a simulated mesh share one; its
	// IDs that are members with a state of their own, or this node, stay
	// in it, hidden, and count in hidden. commonFirst is where its first
	// ID not hidden may be: IDs only ever become hidden, so it only moves
	// on. idle holds no ID of common.
	common      []PeerID
	hidden      int
	commonFirst int
	members     map[PeerID]int
	list        []memberStability
	self        PeerID
	own         hlc.Timestamp
	stable      hlc.Timestamp
	holder      PeerID
	movedAt     time.Time
	// updated is when Update last ran.
	updated time.Time
	// aside is the horizon up to which this node set aside its own writes
	// when it learned it had been forgotten (SetAside).
	aside hlc.Timestamp
	// quorumSince is since when this node has been linked to a majority of
	// the members, itself included (zero: it is not).
	quorumSince time.Time
}

// maxSamples bounds the samples kept.
const maxSamples = 256

type sample struct {
	seq uint64
	ts  hlc.Timestamp
}

type memberStability struct {
	id        PeerID
	acked     uint64 // how far it has synced our log (Ack.Durable)
	reported  hlc.Timestamp
	up        bool
	downSince time.Time
	forgotten bool
	// exchanged: since the link came up, the member has told us its peers
	// (Exchanged).
	exchanged bool
}

// NewStability starts with the stable time saved before (0 if none).
func NewStability(self PeerID, saved hlc.Timestamp) *Stability {
	return &Stability{members: map[PeerID]int{}, self: self, stable: saved}
}

// member returns id's state, made a member if it was not; the pointer is
// valid until the next call.
func (s *Stability) member(id PeerID) *memberStability {
	i, ok := s.members[id]
	if !ok {
		s.tidyIdle()
		if j, found := slices.BinarySearch(s.idle, id); found {
			s.idle = slices.Delete(s.idle, j, j+1)
		} else if s.inCommon(id) && id != s.self {
			s.hidden++
		}
		i = len(s.list)
		s.members[id] = i
		s.list = append(s.list, memberStability{id: id})
	}
	return &s.list[i]
}

// find returns id's state, nil if it is not a member or an idle one (whose
// state is the zero state).
func (s *Stability) find(id PeerID) *memberStability {
	if i, ok := s.members[id]; ok {
		return &s.list[i]
	}
	return nil
}

// tidyIdle sorts idle and drops its duplicates: Member appends without
// looking (a node learns every member of a large mesh at its start, and a
// search of the sorted list at each would move it whole each time).
func (s *Stability) tidyIdle() {
	if !s.untidy {
		return
	}
	slices.Sort(s.idle)
	s.idle = slices.Compact(s.idle)
	if cap(s.idle) > len(s.idle)+len(s.idle)/4+16 {
		s.idle = slices.Clone(s.idle)
	}
	s.untidy = false
}

func (s *Stability) inCommon(id PeerID) bool {
	_, found := slices.BinarySearch(s.common, id)
	return found
}

// Member makes id a member (a remembered or configured peer, not yet
// heard from, holds the stable time at zero until it reports).
func (s *Stability) Member(id PeerID) {
	if _, ok := s.members[id]; ok {
		return
	}
	if s.inCommon(id) && id != s.self {
		return
	}
	if n := len(s.idle); n > 0 && s.idle[n-1] >= id {
		s.untidy = true
	}
	s.idle = append(s.idle, id)
}

// Members makes every ID of ids a member, as Member does, this node's own
// excepted. ids must be sorted and free of duplicates; it is kept, not
// copied, and never written, so that the nodes of a simulated mesh of
// 10,000 members share one list of them where each built its own (10^8
// calls of Member, and 800 MB). Only the first call keeps ids: a later
// one adds them one by one.
func (s *Stability) Members(ids []PeerID) {
	if s.common != nil {
		for _, id := range ids {
			if id != s.self {
				s.Member(id)
			}
		}
		return
	}
	s.tidyIdle()
	s.common, s.commonFirst, s.hidden = ids, 0, 0
	if s.inCommon(s.self) {
		s.hidden++
	}
	for id := range s.members {
		if s.inCommon(id) && id != s.self {
			s.hidden++
		}
	}
	// What idle held of ids is in common now.
	s.idle = slices.DeleteFunc(s.idle, func(id PeerID) bool { return s.inCommon(id) && id != s.self })
}

// lowestCommon is the lowest ID of common not hidden, false if none.
func (s *Stability) lowestCommon() (PeerID, bool) {
	for s.commonFirst < len(s.common) {
		id := s.common[s.commonFirst]
		if _, member := s.members[id]; !member && id != s.self {
			return id, true
		}
		s.commonFirst++
	}
	return 0, false
}

// Sample records that at seq, with every entry up to it committed, the
// clock read ts.
func (s *Stability) Sample(seq uint64, ts hlc.Timestamp) {
	n := len(s.samples)
	if n > 0 && (s.samples[n-1].ts >= ts) {
		return
	}
	if n > 0 && s.samples[n-1].seq == seq {
		s.samples[n-1].ts = ts // nothing written since: the later reading covers as much
		return
	}
	if n == maxSamples {
		// Thin out every other sample, keeping the first: a peer far
		// behind still finds a sample its acknowledgement covers, if an
		// older one.
		kept := s.samples[:1]
		for i := 2; i < n; i += 2 {
			kept = append(kept, s.samples[i])
		}
		s.samples = kept
	}
	s.samples = append(s.samples, sample{seq, ts})
}

// Acked records that peer id has applied and synced our log up to seq
// (Ack.Durable).
func (s *Stability) Acked(id PeerID, seq uint64) {
	m := s.member(id)
	m.acked = max(m.acked, seq)
}

// ReportedBy is how far peer id last said its own writes are stable.
func (s *Stability) ReportedBy(id PeerID) hlc.Timestamp {
	if m := s.find(id); m != nil {
		return m.reported
	}
	return 0
}

// Reported records how far peer id says its own writes are stable: its
// latest word, which goes down when a member joins it (the newcomer has
// applied none of its writes) or when it restarts. The stable time does not
// go down with it (Stable).
func (s *Stability) Reported(id PeerID, ts hlc.Timestamp) { s.member(id).reported = ts }

// LinkUp and LinkDown record a link to id opening and closing. A forgotten
// member that links up is a member again (returned).
func (s *Stability) LinkUp(id PeerID) (returned bool) {
	m := s.member(id)
	m.up, m.downSince, m.exchanged = true, time.Time{}, false
	returned, m.forgotten = m.forgotten, false
	return returned
}

func (s *Stability) LinkDown(id PeerID, now time.Time) {
	m := s.member(id)
	m.up, m.downSince, m.exchanged = false, now, false
}

// Exchanged records that peer id, linked, has told us its peers since its
// link came up: the members it knows are ours too (the stable time waits
// for it).
func (s *Stability) Exchanged(id PeerID) {
	if m := s.find(id); m != nil && m.up {
		m.exchanged = true
	}
}

// SetAside records that this node, told it had been forgotten, set aside
// its own writes up to h: what its peers collected up to then it must not
// take back from their logs either (FreshHorizon).
func (s *Stability) SetAside(h hlc.Timestamp) { s.aside = max(s.aside, h) }

// Forget removes id from the membership: it no longer holds the stable time
// back.
func (s *Stability) Forget(id PeerID) { s.member(id).forgotten = true }

// Forgotten reports whether id was forgotten.
func (s *Stability) Forgotten(id PeerID) bool {
	m := s.find(id)
	return m != nil && m.forgotten
}

// Silent lists the members down for longer than d, not yet forgotten, for
// forgetting them without an operator: only while this node has been linked
// to a majority of the members (itself included) for d without a break. A
// node cut off with a minority would otherwise forget the majority, and the
// majority it: at the heal each side would set aside the other's writes.
func (s *Stability) Silent(now time.Time, d time.Duration) []PeerID {
	if s.quorumSince.IsZero() || now.Sub(s.quorumSince) < d {
		return nil
	}
	var out []PeerID
	for i := range s.list {
		if m := &s.list[i]; !m.forgotten && !m.up && !m.downSince.IsZero() && now.Sub(m.downSince) > d {
			out = append(out, m.id)
		}
	}
	return out
}

// covered is the newest sample ts whose seq is at or before seq. Samples
// are in order of seq; a search, since Update asks for every member at
// every tick (a scan of the samples was most of a 1,000-node simulation).
func (s *Stability) covered(seq uint64) hlc.Timestamp {
	i := sort.Search(len(s.samples), func(i int) bool { return s.samples[i].seq > seq })
	if i == 0 {
		return 0
	}
	return s.samples[i-1].ts
}

// Update works the own and stable times out again at now. It reads the
// members with a state of their own; the idle ones (nothing acknowledged or
// reported, never linked) count as one, the lowest of their IDs.
func (s *Stability) Update(now time.Time) {
	s.tidyIdle()
	idle := len(s.idle) + len(s.common) - s.hidden
	members, up := 1+idle, 1
	for i := range s.list {
		if m := &s.list[i]; !m.forgotten {
			members++
			if m.up {
				up++
			}
		}
	}
	switch {
	case 2*up <= members:
		s.quorumSince = time.Time{}
	case s.quorumSince.IsZero():
		s.quorumSince = now
	}
	if len(s.samples) == 0 {
		return
	}
	// The holder is the member whose progress the stable time waits for:
	// one that has not applied our writes as far, or reports its own as
	// stable least far. Ties go to the lowest ID, so the holder does not
	// depend on the members' order.
	own, ownHolder := s.samples[len(s.samples)-1].ts, s.self
	stable, holder := own, s.self
	consider := func(id PeerID, acked uint64, reported hlc.Timestamp) {
		if c := s.covered(acked); c < own || c == own && ownHolder != s.self && id < ownHolder {
			own, ownHolder = c, id
		}
		if reported < stable || reported == stable && holder != s.self && id < holder {
			stable, holder = reported, id
		}
	}
	if idle > 0 {
		lowest, ok := s.lowestCommon()
		if len(s.idle) > 0 && (!ok || s.idle[0] < lowest) {
			lowest = s.idle[0]
		}
		consider(lowest, 0, 0)
	}
	for i := range s.list {
		if m := &s.list[i]; !m.forgotten {
			consider(m.id, m.acked, m.reported)
		}
	}
	if own <= stable {
		stable, holder = own, ownHolder
	}
	waiting, unknown := s.peersUnknown()
	if unknown && stable > s.stable {
		holder = waiting // its peers are what the stable time waits for
	}
	s.own, s.holder, s.updated = own, holder, now
	if stable > s.stable && !unknown {
		s.stable, s.movedAt = stable, now
	}
}

// peersUnknown is the linked member (the lowest ID) that has not told us
// its peers since its link came up (Exchanged), if any. Until every one has,
// the stable time does not move: a member we do not know yet has told us
// nothing of how far we have applied its writes, and a node that has just
// joined knows only the peers it was given.
func (s *Stability) peersUnknown() (PeerID, bool) {
	var first PeerID
	found := false
	for i := range s.list {
		if m := &s.list[i]; m.up && !m.exchanged && !m.forgotten && (!found || m.id < first) {
			first, found = m.id, true
		}
	}
	return first, found
}

// Own is how far every member has applied this node's writes: what it
// reports to its peers.
func (s *Stability) Own() hlc.Timestamp { return s.own }

// OwnFor is Own as it may be told to a peer that linked up at since: 0
// until Update has run with it a member, so that a newcomer never takes a
// word given before it counted for how far it has applied our writes.
func (s *Stability) OwnFor(since time.Time) hlc.Timestamp {
	if !s.updated.After(since) {
		return 0
	}
	return s.own
}

// FreshHorizon is the horizon a catch-up passes the records it reads from a
// peer's log through record.Fresh at: an entry holds its key's record as
// that write left it, which a cursor that lags may bring long after this
// node removed what it held and collected the trace or tombstone. It is the
// stable time: every member, this node included, has applied every write up
// to it, so what this node lacks of them it removed. It is never below what
// this node set aside of its own when it learned it had been forgotten
// (SetAside): an old entry of a peer's log up to that must not bring back
// what the mesh collected either.
//
// Unlike the members' latest words, which go to zero when a member restarts
// (its acknowledgements count again from nothing) and stay there for the
// seconds in which its link's first catch-up runs, the stable time never
// goes back: the simulator found an old value of a collected key coming
// back through that catch-up.
func (s *Stability) FreshHorizon() hlc.Timestamp { return max(s.stable, s.aside) }

// Stable is the stable time: every member has applied every write up to it.
func (s *Stability) Stable() hlc.Timestamp { return s.stable }

// Holder is the member whose progress the stable time waits for (this
// node's own ID when it has no member), and MovedAt when the stable time
// last moved.
func (s *Stability) Holder() PeerID     { return s.holder }
func (s *Stability) MovedAt() time.Time { return s.movedAt }

// Count is the number of members, this node and the forgotten ones left
// out; Unheard, how many of them were never linked to this node nor heard
// from (their state is the zero state).
func (s *Stability) Count() (members, unheard int) {
	s.tidyIdle()
	unheard = len(s.idle) + len(s.common) - s.hidden
	members = unheard
	for i := range s.list {
		if m := &s.list[i]; !m.forgotten && m.id != s.self {
			members++
		}
	}
	return members, unheard
}

// ForgottenCount is the number of forgotten members.
func (s *Stability) ForgottenCount() int {
	n := 0
	for i := range s.list {
		if s.list[i].forgotten {
			n++
		}
	}
	return n
}

// ForReturned is a log request from a forgotten member that came back, as
// it is served: without its cursor, so that it repairs by Merkle (current
// records) rather than from old entries of the log, which would bring back
// what the mesh collected before it learns that it was forgotten.
func ForReturned(req LogRequest) LogRequest {
	req.Epoch, req.From = 0, 0
	return req
}
