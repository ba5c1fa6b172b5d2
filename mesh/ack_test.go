package mesh

import (
	"testing"

	"github.com/redmesh/redmesh/hlc"
)

// FuzzDecodeAck: an acknowledgement or a request for one, from a peer,
// decodes or is refused, never panics, and what decodes encodes back to the
// same numbers.
func FuzzDecodeAck(f *testing.F) {
	f.Add(AppendAckWant(nil, 7, 1<<40))
	f.Add(AppendAck(nil, Ack{Epoch: 7, Seq: 9, Stable: 1 << 50, Durable: 8, AsideBelow: 1 << 40}))
	f.Add([]byte{0x80})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		if a, err := DecodeAck(b); err == nil {
			if a.Durable > a.Seq {
				t.Fatalf("%+v: durable beyond seq decoded", a)
			}
			if back, err := DecodeAck(AppendAck(nil, a)); err != nil || back != a {
				t.Fatalf("%+v does not survive a round trip: %+v, %v", a, back, err)
			}
		}
		epoch, seq, err := DecodeAckWant(b)
		if err != nil {
			return
		}
		if e2, s2, err := DecodeAckWant(AppendAckWant(nil, epoch, seq)); err != nil || e2 != epoch || s2 != seq {
			t.Fatalf("(%d, %d) does not survive a round trip: (%d, %d) %v", epoch, seq, e2, s2, err)
		}
	})
}

// TestAckOut: acknowledgements go out when they say something new, on the
// periodic tick or at once when the peer asked for one we can give.
func TestAckOut(t *testing.T) {
	var o AckOut
	p := Progress{Epoch: 3, Acked: 10}
	a := Ack{Epoch: 3, Seq: 10, Stable: 5}
	if o.Due(Ack{}, Progress{}, true) {
		t.Fatal("an ack that says nothing is due")
	}
	if !o.Due(Ack{Stable: 3}, Progress{}, true) {
		t.Fatal("nothing of the peer's log applied yet, and the stable time it carries is not sent")
	}
	if o.Due(a, p, false) {
		t.Fatal("due between ticks, unasked")
	}
	if !o.Due(a, p, true) {
		t.Fatal("not due on the tick with news")
	}
	o.Sent(a)
	if o.Due(a, p, true) {
		t.Fatal("due again with nothing new")
	}
	// The peer WAITs for its write 12: not yet applied here.
	o.Want(3, 12)
	if o.Wanted(p) {
		t.Fatal("wanted before it is applied")
	}
	p.Advance(3, 12)
	a.Seq = 12
	if !o.Wanted(p) || !o.Due(a, p, false) {
		t.Fatal("asked for and applied, but not due at once")
	}
	o.Sent(a)
	if o.Wanted(p) || o.Due(a, p, false) {
		t.Fatal("still wanted once sent")
	}
	// A request for a lower seq, or of an old epoch after a newer one,
	// changes nothing already sent; one of a new epoch replaces it.
	o.Want(3, 11)
	if o.Wanted(p) {
		t.Fatal("a lower request made it wanted again")
	}
	o.Want(4, 1)
	if o.Wanted(p) {
		t.Fatal("a request of another epoch than ours is wanted")
	}
	// Only the stable time moved: due on the tick.
	a.Stable = hlc.Timestamp(6)
	if o.Due(a, p, false) || !o.Due(a, p, true) {
		t.Fatal("a moved stable time is sent on the tick, and only then")
	}
}

// TestDurable: under a lazy fsync, progress counts as durable only once a
// sync that began after it completed; under fsync always at once.
func TestDurable(t *testing.T) {
	var d Durable
	p := Progress{Epoch: 1, Acked: 5}
	if !d.Update(p, false, 0, 1) || d.Acked != 0 {
		t.Fatalf("before any sync: %+v", d)
	}
	// Sync 1, the first to begin after acked 5 was seen, has not completed.
	if !d.Update(p, false, 0, 1) || d.Acked != 0 {
		t.Fatalf("sync not done: %+v", d)
	}
	// More applied (9) while sync 1 ran; sync 1 completes: 5 is durable, 9
	// waits for sync 2.
	p.Advance(1, 9)
	if !d.Update(p, false, 1, 2) || d.Acked != 5 {
		t.Fatalf("after sync 1: %+v", d)
	}
	if d.Update(p, false, 2, 3) || d.Acked != 9 {
		t.Fatalf("after sync 2: %+v", d)
	}
	// A new epoch of the peer's log starts from nothing.
	p = Progress{}
	p.Advance(2, 4)
	if !d.Update(p, false, 2, 3) || d.Acked != 0 || d.Epoch != 2 {
		t.Fatalf("new epoch: %+v", d)
	}
	if d.Update(p, true, 0, 0) || d.Acked != 4 {
		t.Fatalf("fsync always: %+v", d)
	}
}

// TestDurableWithoutSyncNumber: progress seen before the driver knew any
// sync number (mark 0) still counts once a later sync completes, though
// the progress does not move again (a joiner's only writes from a peer).
func TestDurableWithoutSyncNumber(t *testing.T) {
	var d Durable
	p := Progress{Epoch: 1, Acked: 5}
	d.Update(p, false, 0, 0)
	d.Update(p, false, 3, 4)
	if d.Update(p, false, 4, 5) || d.Acked != 5 {
		t.Fatalf("never counted: %+v", d)
	}
}

// TestDurableUnderSteadyProgress: progress that moves at every update, with
// syncs that each span several updates, still becomes durable a sync at a
// time.
func TestDurableUnderSteadyProgress(t *testing.T) {
	var d Durable
	var p Progress
	var synced uint64
	for i := uint64(1); i <= 40; i++ {
		p.Advance(1, 10*i)
		// Sync n begins at update 4n-3 and ends at update 4n.
		started := (i + 3) / 4
		if i%4 == 0 {
			synced = i / 4
		}
		d.Update(p, false, synced, started+1)
	}
	// The snapshot of update 36 (360) waited for sync 10, which began
	// after it (update 37) and ended at update 40. Replaced at every
	// update, no snapshot ever saw its sync end: nothing was durable.
	if d.Acked != 360 {
		t.Fatalf("durable %d after 40 updates, want 360", d.Acked)
	}
}
