package gossip

import (
	"testing"
)

// TestPushRelay: pushes go on the push streams while every member is
// linked to the origin, and GossipSub carries nothing; a member cut off
// from the origin but linked to a peer of it gets the origin's writes
// relayed through that peer, merged without moving its progress through
// the origin's log.
func TestPushRelay(t *testing.T) {
	n := newMemNet()
	a, la := startMemMesh(t, n, nil)
	b, lb := startMemMesh(t, n, nil, a.ID())
	c, lc := startMemMesh(t, n, nil, a.ID(), b.ID())
	waitFor(t, "the links and first syncs", func() bool {
		return a.linked.Load() == 2 && b.linked.Load() == 2 && c.linked.Load() == 2 && b.Ready() && c.Ready()
	})
	has := func(l *testLocal, key, val string) bool { return string(l.db.Get([]byte(key)).Value.Data) == val }

	la.set(t, a.cfg.Self, "k1", "1")
	waitFor(t, "k1 everywhere", func() bool { return has(lb, "k1", "1") && has(lc, "k1", "1") })
	n.mu.Lock()
	published := n.published
	n.mu.Unlock()
	if published != 0 {
		t.Fatalf("%d pushes published to GossipSub while every member was linked", published)
	}

	n.partition(a.ID(), c.ID())
	waitFor(t, "a and c apart", func() bool { return a.linked.Load() == 1 && c.linked.Load() == 1 })
	c.mu.Lock()
	before := c.r.Peer(c.midOf(a.ID())).Progress
	c.mu.Unlock()
	la.set(t, a.cfg.Self, "k2", "2")
	waitFor(t, "k2 at c, relayed by b", func() bool { return has(lc, "k2", "2") })
	c.mu.Lock()
	after := c.r.Peer(c.midOf(a.ID())).Progress
	c.mu.Unlock()
	if after.Epoch != before.Epoch || after.Acked != before.Acked {
		t.Fatalf("a relayed push moved c's progress through a's log: %+v, was %+v", after, before)
	}
}

// TestPushQueueBounded: what waits for a peer's push stream is bounded in
// messages and in bytes; past either bound a push is dropped for the peer.
func TestPushQueueBounded(t *testing.T) {
	for _, size := range []int{16, 64 << 10} {
		o := &pushOut{q: make(chan []byte, pushQueueLen)}
		msg := make([]byte, size)
		queued := 0
		for o.send(msg) {
			queued++
			if queued > pushQueueLen {
				t.Fatalf("%d-byte pushes: more than %d queued", size, pushQueueLen)
			}
		}
		if want := min(pushQueueLen, maxPushQueued/size); queued != want {
			t.Fatalf("%d-byte pushes: %d queued, want %d", size, queued, want)
		}
		if got := o.queued.Load(); got != int64(queued*size) || got > maxPushQueued {
			t.Fatalf("%d-byte pushes: %d bytes counted for %d queued", size, got, queued)
		}
		<-o.q
		o.queued.Add(-int64(size)) // as the writer does
		if !o.send(msg) {
			t.Fatalf("%d-byte pushes: none queued once one left", size)
		}
	}
}
