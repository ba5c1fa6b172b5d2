package gossip

import (
	"testing"
)

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
