package gossip

import (
	"fmt"
	"testing"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/record"
)

// testPush is the push of n records, (prev, prev+n] of epoch, encoded as
// the publisher does.
func testPush(epoch, prev uint64, n, valueLen int) *outPush {
	recs := make([]merkle.Record, n)
	for i := range recs {
		v := record.Version{TS: 1 << 20, Node: 7}
		rec := record.Record{Value: record.Value{Version: v, Data: make([]byte, valueLen)}, Expiry: record.Expiry{Version: v}}
		recs[i] = merkle.Record{Key: fmt.Appendf(nil, "k%09d", prev+uint64(i)+1), Payload: record.Encode(rec)}
	}
	to := prev + uint64(n)
	msg := appendPushMsg(nil, epoch, prev, to, 0, 0, recs)
	return &outPush{epoch: epoch, prev: prev, to: to, recs: recs, msg: msg, size: len(msg)}
}

// drain decodes every push waiting on o, in order.
func drain(t *testing.T, o *pushOut) []pushMsg {
	t.Helper()
	var out []pushMsg
	for {
		msg, ok := o.next()
		if !ok {
			break
		}
		if len(msg) > maxPushMessage {
			t.Fatalf("a %d-byte push: the frame bound is %d", len(msg), maxPushMessage)
		}
		pm, err := decodePushMsg(msg)
		if err != nil {
			t.Fatalf("queued push: %v", err)
		}
		out = append(out, pm)
	}
	if o.bytes != 0 {
		t.Fatalf("%d bytes counted with nothing queued", o.bytes)
	}
	return out
}

// TestPushQueueBounded: what waits for a peer's push stream is bounded in
// messages and in bytes; past either bound a push is dropped for the peer.
// Each push here leaves a hole after the last, so none is coalesced.
func TestPushQueueBounded(t *testing.T) {
	for _, valueLen := range []int{1, 64 << 10} {
		o := newPushOut(nil)
		queued, size, total, prev := 0, 0, 0, uint64(0)
		for {
			p := testPush(1, prev+1, 1, valueLen)
			size = p.size
			if !o.send(p) {
				break
			}
			prev = p.to
			queued++
			total += size
			if queued > pushQueueLen {
				t.Fatalf("%d-byte pushes: more than %d queued", size, pushQueueLen)
			}
		}
		if queued != pushQueueLen && total+size <= maxPushQueued {
			t.Fatalf("%d-byte pushes: one dropped with %d queued in %d bytes", size, queued, total)
		}
		if o.bytes != total || o.bytes > maxPushQueued {
			t.Fatalf("%d-byte pushes: %d bytes counted for %d queued", size, o.bytes, queued)
		}
		if _, ok := o.next(); !ok {
			t.Fatalf("%d-byte pushes: none to take", size)
		}
		if !o.send(testPush(1, prev+1, 1, valueLen)) {
			t.Fatalf("%d-byte pushes: none queued once one left", size)
		}
	}
}

// TestPushQueueCoalesces: pushes that continue the last one waiting are
// coalesced into it, so a burst far past pushQueueLen pushes is queued
// whole, as frames of at most maxPushMessage holding every record of the
// range in order; a push shared with another peer's queue is not changed;
// a hole or a new epoch starts a new message; past maxPushQueued bytes a
// push is still dropped.
func TestPushQueueCoalesces(t *testing.T) {
	o, other := newPushOut(nil), newPushOut(nil)
	const burst, batch = 4 * pushQueueLen, 4
	var shared []*outPush
	prev := uint64(0)
	for i := range burst {
		p := testPush(1, prev, batch, 1)
		if i < 2 {
			// The first two are queued for another peer too, as the
			// publisher does.
			if !other.send(p) {
				t.Fatalf("push %d: dropped for the other peer", i)
			}
			shared = append(shared, p)
		}
		if !o.send(p) {
			t.Fatalf("push %d of a contiguous burst dropped (%d bytes queued in %d messages)", i, o.bytes, len(o.q))
		}
		prev = p.to
	}
	if len(o.q) >= burst/8 {
		t.Fatalf("%d pushes queued as %d messages", burst, len(o.q))
	}
	// A hole, then a new epoch: neither is coalesced into what waits.
	if !o.send(testPush(1, prev+5, batch, 1)) || !o.send(testPush(2, 0, batch, 1)) {
		t.Fatal("a push after the burst dropped")
	}
	msgs := drain(t, o)
	next := uint64(1)
	for i, pm := range msgs[:len(msgs)-2] {
		if pm.epoch != 1 || pm.prev != next-1 || pm.to-pm.prev != uint64(len(pm.recs)) {
			t.Fatalf("message %d: epoch %d (%d, %d] with %d records, want prev %d", i, pm.epoch, pm.prev, pm.to, len(pm.recs), next-1)
		}
		for _, r := range pm.recs {
			if want := fmt.Sprintf("k%09d", next); string(r.Key) != want {
				t.Fatalf("message %d: record %q, want %q", i, r.Key, want)
			}
			next++
		}
	}
	if next-1 != burst*batch {
		t.Fatalf("the burst's messages end at %d, want %d", next-1, burst*batch)
	}
	if hole, epoch := msgs[len(msgs)-2], msgs[len(msgs)-1]; hole.prev != prev+5 || epoch.epoch != 2 || epoch.prev != 0 {
		t.Fatalf("after the burst: (%d, %d] of %d and (%d, %d] of %d", hole.prev, hole.to, hole.epoch, epoch.prev, epoch.to, epoch.epoch)
	}
	// The other peer's queue, sharing the first two, has them as they were.
	got := drain(t, other)
	if len(got) != 1 || got[0].prev != 0 || got[0].to != 2*batch || len(got[0].recs) != 2*batch {
		t.Fatalf("the other peer's queue: %+v", got)
	}
	for i, p := range shared {
		if pm, err := decodePushMsg(p.msg); err != nil || pm.prev != uint64(i*batch) || pm.to != uint64((i+1)*batch) || len(p.recs) != batch {
			t.Fatalf("shared push %d changed: (%d, %d], %d records, %v", i, pm.prev, pm.to, len(p.recs), err)
		}
	}

	// The byte bound holds for coalesced pushes too.
	o, prev = newPushOut(nil), 0
	dropped := false
	for range 4 * maxPushQueued / (batch * 64) {
		p := testPush(1, prev, batch, 64)
		if !o.send(p) {
			dropped = true
			break
		}
		prev = p.to
		if o.bytes > maxPushQueued {
			t.Fatalf("%d bytes queued, the bound is %d", o.bytes, maxPushQueued)
		}
	}
	if !dropped {
		t.Fatalf("%d bytes of pushes queued, none dropped", 4*maxPushQueued)
	}
}

// TestRelayDroppedCounted: a relayed copy a peer's full queue cannot take
// is counted as dropped, not as relayed; the peer whose queue took it
// counts as relayed.
func TestRelayDroppedCounted(t *testing.T) {
	full, open := newPushOut(nil), newPushOut(nil)
	for prev := uint64(0); ; prev += 2 {
		if !full.send(testPush(1, prev, 1, 1)) {
			break
		}
	}
	p := testPush(1, 0, 1, 1)
	p.origin = 9
	m := &Mesh{}
	m.relay([]*pushOut{full, open}, p)
	if relayed, dropped := m.st.pushRelayed.Load(), m.st.pushRelayDropped.Load(); relayed != 1 || dropped != 1 {
		t.Fatalf("relayed %d, dropped %d; want 1 and 1", relayed, dropped)
	}
	if got := drain(t, open); len(got) != 1 {
		t.Fatalf("the open queue holds %d pushes, want 1", len(got))
	}
}
