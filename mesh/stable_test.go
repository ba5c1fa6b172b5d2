package mesh

import (
	"testing"
	"time"

	"github.com/redmesh/redmesh/hlc"
)

// A node with peers B and C: the stable time is the oldest of how far each
// member has applied each member's writes, and waits for acknowledgements
// to be AckDurable old.
func TestStability(t *testing.T) {
	const self, b, c PeerID = 1, 2, 3
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	s := NewStability(self, 0)
	s.Member(b)
	s.Member(c)
	s.LinkUp(b)
	s.LinkUp(c)
	s.Sample(10, 100) // at seq 10 the clock read 100
	s.Sample(20, 200)
	s.Update(at(0))
	if s.Stable() != 0 || s.Own() != 0 {
		t.Fatalf("before any acknowledgement: stable %v own %v", s.Stable(), s.Own())
	}
	s.Acked(b, 20, at(0))
	s.Acked(c, 15, at(0))
	s.Update(at(1))
	if s.Own() != 0 {
		t.Fatalf("acknowledgements counted before they are %v old: own %v", AckDurable, s.Own())
	}
	s.Update(at(2))
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
	// C's link drops before its new acknowledgement is durable: it does not
	// count; the stable time does not go back.
	s.Acked(c, 20, at(3))
	s.LinkDown(c, at(4))
	s.Reported(c, 95)
	s.Update(at(10))
	if s.Own() != 100 || s.Stable() != 95 {
		t.Fatalf("after C's link dropped: own %v stable %v", s.Own(), s.Stable())
	}
	if got := s.Silent(at(10), 5*time.Second); len(got) != 1 || got[0] != c {
		t.Fatalf("silent %v, want C", got)
	}
	// Forgotten, C holds nothing back; back again, it is a member.
	s.Forget(c)
	s.Reported(b, 300)
	s.Acked(b, 20, at(10))
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

// Acknowledgements that keep coming, each before the last is AckDurable
// old, still count as each becomes old enough.
func TestStabilityUnderSteadyAcks(t *testing.T) {
	s := NewStability(1, 0)
	s.LinkUp(2)
	t0 := time.Unix(1000, 0)
	for i := range 10 {
		now := t0.Add(time.Duration(i) * time.Second)
		s.Sample(uint64(10*(i+1)), hlc.Timestamp(100*(i+1)))
		s.Acked(2, uint64(10*(i+1)), now)
		s.Reported(2, hlc.Timestamp(100*(i+1)))
		s.Update(now)
	}
	// At 9 s the acknowledgement of 7 s (seq 80, ts 800) is the newest
	// that is 2 s old.
	if s.Own() != 800 || s.Stable() != 800 {
		t.Fatalf("own %v stable %v, want 800", s.Own(), s.Stable())
	}
}
