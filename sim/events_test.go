package sim

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestQueueOrder: events come out by time, and in the order they were
// scheduled at one instant, however pushes and pops interleave.
func TestQueueOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var q queue
	type ev struct {
		at  int64
		seq uint64
	}
	var want, got []ev
	var pending []ev
	var seq uint64
	now := int64(0)
	for range 20000 {
		if q.len() > 0 && rng.IntN(3) == 0 {
			e := q.pop()
			if e.at < now {
				t.Fatalf("event at %d popped after %d", e.at, now)
			}
			now = e.at
			got = append(got, ev{e.at, e.seq})
			continue
		}
		at := now + int64(rng.IntN(8)) // many ties
		seq++
		q.push(event{at: at})
		pending = append(pending, ev{at, seq})
	}
	for q.len() > 0 {
		e := q.pop()
		got = append(got, ev{e.at, e.seq})
	}
	// Every event pushed comes out once; those popped in a row come out
	// in (at, seq) order among what was queued.
	want = slices.Clone(pending)
	slices.SortFunc(want, func(a, b ev) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.seq, b.seq)) })
	sorted := slices.Clone(got)
	slices.SortFunc(sorted, func(a, b ev) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.seq, b.seq)) })
	if !slices.Equal(sorted, want) {
		t.Fatalf("popped %d events, pushed %d, or not the same ones", len(got), len(want))
	}
	for i := 1; i < len(got); i++ {
		if got[i].at < got[i-1].at || got[i].at == got[i-1].at && got[i].seq < got[i-1].seq {
			// A later push may precede an earlier pop only if it is
			// earlier than what had been popped: never, since pushes are
			// at now or later.
			t.Fatalf("out of order at %d: %+v after %+v", i, got[i], got[i-1])
		}
	}
}
