package mesh

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/redmesh/redmesh/hlc"
)

// A node with peers B and C: the stable time is the oldest of how far each
// member has applied each member's writes, as their acknowledgements say.
func TestStability(t *testing.T) {
	const self, b, c PeerID = 1, 2, 3
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	s := NewStability(self, 0)
	s.Member(b)
	s.Member(c)
	s.LinkUp(b)
	s.LinkUp(c)
	s.Exchanged(b)
	s.Exchanged(c)
	s.Sample(10, 100) // at seq 10 the clock read 100
	s.Sample(20, 200)
	s.Update(at(0))
	if s.Stable() != 0 || s.Own() != 0 {
		t.Fatalf("before any acknowledgement: stable %v own %v", s.Stable(), s.Own())
	}
	s.Acked(b, 20)
	s.Acked(c, 15)
	s.Update(at(1))
	if s.Own() != 100 { // C has applied up to seq 15: the sample at 10 (ts 100)
		t.Fatalf("own %v, want 100", s.Own())
	}
	if s.Stable() != 0 || s.Holder() != b {
		t.Fatalf("stable %v held by %v before B and C reported", s.Stable(), s.Holder())
	}
	s.Reported(b, 150)
	s.Reported(c, 90)
	s.Update(at(3))
	if s.Stable() != 90 || s.Holder() != c {
		t.Fatalf("stable %v held by %v, want 90 by C", s.Stable(), s.Holder())
	}
	// C's link drops: what it acknowledged it had synced, so it still
	// counts, and C, not forgotten, holds the stable time where it was.
	s.Acked(c, 20)
	s.LinkDown(c, at(4))
	s.Reported(c, 95)
	s.Update(at(10))
	if s.Own() != 200 || s.Stable() != 95 {
		t.Fatalf("after C's link dropped: own %v stable %v", s.Own(), s.Stable())
	}
	// B and self are two of three: a majority, linked since 0 s.
	if got := s.Silent(at(10), 5*time.Second); len(got) != 1 || got[0] != c {
		t.Fatalf("silent %v, want C", got)
	}
	// Forgotten, C holds nothing back; back again, it is a member.
	s.Forget(c)
	s.Reported(b, 300)
	s.Acked(b, 20)
	s.Update(at(12))
	if s.Own() != 200 || s.Stable() != 200 || s.ForgottenCount() != 1 {
		t.Fatalf("C forgotten: own %v stable %v forgotten %d", s.Own(), s.Stable(), s.ForgottenCount())
	}
	if !s.LinkUp(c) || s.Forgotten(c) {
		t.Fatal("a forgotten member linking up is not reported back")
	}
	s.Update(at(13))
	if s.Stable() != 200 {
		t.Fatalf("the stable time went back to %v when C returned", s.Stable())
	}
}

// A node alone: its writes are stable as soon as sampled.
func TestStabilityAlone(t *testing.T) {
	s := NewStability(1, 0)
	s.Sample(5, hlc.Timestamp(70))
	s.Update(time.Unix(0, 0))
	if s.Stable() != 70 {
		t.Fatalf("stable %v, want 70", s.Stable())
	}
}

// Samples stay bounded and ordered however long a node runs.
func TestStabilitySamplesBounded(t *testing.T) {
	s := NewStability(1, 0)
	s.Member(2)
	for i := range 10 * maxSamples {
		s.Sample(uint64(i+1), hlc.Timestamp(10*(i+1)))
	}
	if len(s.samples) > maxSamples {
		t.Fatalf("%d samples", len(s.samples))
	}
	for i := 1; i < len(s.samples); i++ {
		if s.samples[i].seq <= s.samples[i-1].seq || s.samples[i].ts <= s.samples[i-1].ts {
			t.Fatalf("samples out of order at %d", i)
		}
	}
	if got := s.covered(uint64(10 * maxSamples)); got != hlc.Timestamp(100*maxSamples) {
		t.Fatalf("covered the last seq: %v", got)
	}
}

// Acknowledgements count as they arrive, and one that arrives after a
// later one (it was sent first) takes nothing back.
func TestStabilityUnderSteadyAcks(t *testing.T) {
	s := NewStability(1, 0)
	s.LinkUp(2)
	s.Exchanged(2)
	t0 := time.Unix(1000, 0)
	for i := range 10 {
		now := t0.Add(time.Duration(i) * time.Second)
		s.Sample(uint64(10*(i+1)), hlc.Timestamp(100*(i+1)))
		s.Acked(2, uint64(10*(i+1)))
		s.Reported(2, hlc.Timestamp(100*(i+1)))
		s.Update(now)
	}
	if s.Own() != 1000 || s.Stable() != 1000 {
		t.Fatalf("own %v stable %v, want 1000", s.Own(), s.Stable())
	}
	s.Acked(2, 50)
	s.Update(t0.Add(10 * time.Second))
	if s.Own() != 1000 {
		t.Fatalf("an older acknowledgement took own back to %v", s.Own())
	}
}

// A node cut off from the majority forgets no one, however long.
func TestStabilityForgetsOnlyWithAMajority(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := NewStability(1, 0)
	for id := PeerID(2); id <= 5; id++ {
		s.LinkUp(id)
	}
	s.Sample(1, 10)
	s.Update(t0)
	for id := PeerID(2); id <= 4; id++ { // a partition: self and 5 apart from 2, 3, 4
		s.LinkDown(id, t0)
	}
	s.Update(t0.Add(time.Second))
	if got := s.Silent(t0.Add(time.Hour), time.Minute); got != nil {
		t.Fatalf("a minority forgets %v", got)
	}
	// The majority side: 2, 3, 4 and self linked, 5 down.
	m := NewStability(2, 0)
	for _, id := range []PeerID{1, 3, 4, 5} {
		m.LinkUp(id)
	}
	m.Update(t0)
	m.LinkDown(1, t0)
	m.LinkDown(5, t0)
	m.Update(t0.Add(time.Second))
	if got := m.Silent(t0.Add(30*time.Second), time.Minute); got != nil {
		t.Fatalf("forgotten before a minute: %v", got)
	}
	m.Update(t0.Add(2 * time.Minute))
	if got := m.Silent(t0.Add(2*time.Minute), time.Minute); len(got) != 2 {
		t.Fatalf("the majority forgets %v, want 1 and 5", got)
	}
}

// The stable time does not move while a linked member has not told us its
// peers since its link came up; the fresh horizon is the stable time, which
// a member's restart does not lower, and never below what this node set
// aside of its own.
func TestStabilityWaitsForPeersAndFreshHorizon(t *testing.T) {
	const self, b, c PeerID = 1, 2, 3
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	s := NewStability(self, 0)
	s.Member(b)
	s.LinkUp(b)
	s.Sample(10, 100)
	s.Acked(b, 10)
	s.Reported(b, 80)
	s.Update(at(2))
	if s.Stable() != 0 || s.FreshHorizon() != 0 || s.Holder() != b {
		t.Fatalf("stable %v, fresh horizon %v, held by %v before B told us its peers", s.Stable(), s.FreshHorizon(), s.Holder())
	}
	s.Exchanged(b)
	s.Update(at(3))
	if s.Stable() != 80 || s.FreshHorizon() != 80 {
		t.Fatalf("stable %v, fresh horizon %v, want 80", s.Stable(), s.FreshHorizon())
	}
	// B restarts: its link drops and comes back, and its first words say 0
	// (its acknowledgements count from nothing). The stable time waits for
	// its peers again and for its words to move, but neither it nor the
	// fresh horizon goes back.
	s.LinkDown(b, at(4))
	s.LinkUp(b)
	s.Reported(b, 0)
	s.Update(at(5))
	if s.Stable() != 80 || s.FreshHorizon() != 80 {
		t.Fatalf("B restarted: stable %v, fresh horizon %v, want 80", s.Stable(), s.FreshHorizon())
	}
	s.Sample(20, 200)
	s.Acked(b, 20)
	s.Reported(b, 150)
	s.Update(at(7))
	if s.Stable() != 80 {
		t.Fatalf("stable %v moved before B, linked again, told us its peers", s.Stable())
	}
	// An exchange that arrives for a link that is down counts for nothing.
	s.LinkDown(b, at(7))
	s.Exchanged(b)
	s.LinkUp(b)
	s.Update(at(8))
	if s.Stable() != 80 {
		t.Fatalf("stable %v moved on an exchange from before B's link came up", s.Stable())
	}
	s.Exchanged(b)
	s.Update(at(9))
	if s.Stable() != 150 {
		t.Fatalf("stable %v, want 150", s.Stable())
	}
	// C, linked and then forgotten, holds nothing back, not even its peers.
	s.LinkUp(c)
	s.Forget(c)
	s.Update(at(10))
	if s.Stable() != 150 {
		t.Fatalf("stable %v with C forgotten", s.Stable())
	}
	// What this node set aside of its own is a floor.
	s.SetAside(220)
	s.SetAside(210)
	if h := s.FreshHorizon(); h != 220 {
		t.Fatalf("fresh horizon %v, want the set-aside horizon 220", h)
	}
}

// refStability is the stable time worked out the plain way, every member
// read at every Update, to check Stability against: same calls, same
// answers.
type refStability struct {
	self        PeerID
	ids         []PeerID
	m           map[PeerID]*memberStability
	samples     Stability // only its samples and covered are used
	own, stable hlc.Timestamp
	holder      PeerID
	movedAt     time.Time
	quorumSince time.Time
}

func (r *refStability) member(id PeerID) *memberStability {
	if r.m[id] == nil {
		r.m[id] = &memberStability{id: id}
		r.ids = append(r.ids, id)
	}
	return r.m[id]
}

func (r *refStability) update(now time.Time) {
	members, up := 1, 1
	for _, id := range r.ids {
		if m := r.m[id]; !m.forgotten {
			members++
			if m.up {
				up++
			}
		}
	}
	switch {
	case 2*up <= members:
		r.quorumSince = time.Time{}
	case r.quorumSince.IsZero():
		r.quorumSince = now
	}
	if len(r.samples.samples) == 0 {
		return
	}
	own, ownHolder := r.samples.samples[len(r.samples.samples)-1].ts, r.self
	stable, holder := own, r.self
	var waiting PeerID
	unknown := false
	for _, id := range r.ids {
		m := r.m[id]
		if m.forgotten {
			continue
		}
		if c := r.samples.covered(m.acked); c < own || c == own && ownHolder != r.self && id < ownHolder {
			own, ownHolder = c, id
		}
		if m.reported < stable || m.reported == stable && holder != r.self && id < holder {
			stable, holder = m.reported, id
		}
		if m.up && !m.exchanged && (!unknown || id < waiting) {
			waiting, unknown = id, true
		}
	}
	if own <= stable {
		stable, holder = own, ownHolder
	}
	if unknown && stable > r.stable {
		holder = waiting
	}
	r.own, r.holder = own, holder
	if stable > r.stable && !unknown {
		r.stable, r.movedAt = stable, now
	}
}

func (r *refStability) silent(now time.Time, d time.Duration) []PeerID {
	if r.quorumSince.IsZero() || now.Sub(r.quorumSince) < d {
		return nil
	}
	var out []PeerID
	for _, id := range r.ids {
		if m := r.m[id]; !m.forgotten && !m.up && !m.downSince.IsZero() && now.Sub(m.downSince) > d {
			out = append(out, id)
		}
	}
	return out
}

// Random calls on a mesh of a few members, most of them never heard from,
// give what reading every member gives.
func TestStabilityMatchesReadingEveryMember(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 1))
		const self PeerID = 50
		s := NewStability(self, 0)
		ref := &refStability{self: self, m: map[PeerID]*memberStability{}}
		if seed%2 == 1 {
			// Half the runs start with the members given whole, self
			// among them (as the simulator's shared list), some of them
			// before or after a few met one by one.
			var common []PeerID
			for x := PeerID(1); x <= 101; x++ {
				if x == self || rng.IntN(3) == 0 {
					common = append(common, x)
				}
			}
			before := rng.IntN(3)
			for range before {
				x := PeerID(1 + rng.IntN(101))
				if x != self {
					s.LinkUp(x)
					m := ref.member(x)
					m.up = true
				}
			}
			s.Members(common)
			for _, x := range common {
				if x != self {
					ref.member(x)
				}
			}
		}
		now := time.Unix(1000, 0)
		var seq uint64
		var ts hlc.Timestamp
		// Never self: a node is not a member of its own mesh (with self a
		// member, the holder would depend on the members' order).
		id := func() PeerID {
			if x := PeerID(1 + rng.IntN(100)); x < self {
				return x
			} else {
				return x + 1
			}
		}
		for step := range 400 {
			now = now.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
			switch k := rng.IntN(10); k {
			case 0:
				x := id()
				s.Member(x)
				ref.member(x)
			case 1:
				x := id()
				s.LinkUp(x)
				m := ref.member(x)
				m.up, m.downSince, m.exchanged, m.forgotten = true, time.Time{}, false, false
			case 2:
				x := id()
				s.LinkDown(x, now)
				m := ref.member(x)
				m.up, m.downSince, m.exchanged = false, now, false
			case 3:
				x := id()
				s.Exchanged(x)
				if m := ref.m[x]; m != nil && m.up {
					m.exchanged = true
				}
			case 4:
				x := id()
				a := uint64(rng.IntN(int(seq) + 1))
				s.Acked(x, a)
				m := ref.member(x)
				m.acked = max(m.acked, a)
			case 5:
				x := id()
				rep := hlc.Timestamp(rng.IntN(int(ts) + 1))
				s.Reported(x, rep)
				ref.member(x).reported = rep
			case 6:
				if rng.IntN(8) == 0 {
					x := id()
					s.Forget(x)
					ref.member(x).forgotten = true
				}
			case 7:
				seq += uint64(rng.IntN(3))
				ts += hlc.Timestamp(1 + rng.IntN(10))
				s.Sample(seq, ts)
				ref.samples.Sample(seq, ts)
			default:
				s.Update(now)
				ref.update(now)
			}
			if s.Own() != ref.own || s.Stable() != ref.stable || s.Holder() != ref.holder || !s.MovedAt().Equal(ref.movedAt) {
				t.Fatalf("seed %d step %d: own %v stable %v holder %v moved %v, reading every member: %v %v %v %v",
					seed, step, s.Own(), s.Stable(), s.Holder(), s.MovedAt(), ref.own, ref.stable, ref.holder, ref.movedAt)
			}
			got, want := s.Silent(now, 5*time.Second), ref.silent(now, 5*time.Second)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d step %d: silent %v, want %v", seed, step, got, want)
			}
			x := id()
			forgotten, reported := false, hlc.Timestamp(0)
			if m := ref.m[x]; m != nil {
				forgotten, reported = m.forgotten, m.reported
			}
			if s.Forgotten(x) != forgotten || s.ReportedBy(x) != reported {
				t.Fatalf("seed %d step %d: member %v forgotten %v reported %v, want %v %v", seed, step, x, s.Forgotten(x), s.ReportedBy(x), forgotten, reported)
			}
		}
	}
}

// Members given whole count as Member's would: the IDs of the list that
// have a state of their own, and this node's, count once, and the holder
// is the lowest of the rest.
func TestStabilityMembersShared(t *testing.T) {
	const self PeerID = 10
	common := []PeerID{1, 2, 3, 4, 7, self}
	now := time.Unix(1000, 0)
	s := NewStability(self, 0)
	s.LinkUp(1) // a member before the list, as a configured peer is
	s.Members(common)
	s.Member(4) // already in the list
	for _, id := range []PeerID{2, 3, 8, 9} {
		s.LinkUp(id)
	}
	for _, id := range []PeerID{1, 2, 3, 8, 9} {
		s.Acked(id, 1)
		s.Reported(id, 5)
	}
	s.Sample(1, 5)
	s.LinkDown(3, now)
	// Eight members: self; 1, 2, 3, 8 and 9 with a state; 4 and 7 idle.
	// Self, 1, 2, 8 and 9 up: a majority.
	s.Update(now)
	if s.Holder() != 4 {
		t.Fatalf("holder %v, want 4 (the lowest idle member)", s.Holder())
	}
	later := now.Add(6 * time.Second)
	s.Update(later)
	if got := s.Silent(later, 5*time.Second); !slices.Equal(got, []PeerID{3}) {
		t.Fatalf("silent %v, want [3] (a majority up since %v)", got, now)
	}
	s.Acked(4, 1)
	s.Reported(4, 5)
	s.Update(later)
	if s.Holder() != 7 {
		t.Fatalf("holder %v, want 7", s.Holder())
	}
}
