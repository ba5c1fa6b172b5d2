package mesh

import "testing"

// The pushes seen spread over every slot of the table: a fingerprint's
// lowest bit, always set, does not pick its slot.
func TestPushSeenUsesEverySlot(t *testing.T) {
	var s pushSeen
	var keys []uint64
	for i := range uint64(20 * seenSlots) {
		k := pushKey(PushHeader{Origin: PeerID(i%7 + 1), Epoch: 1, Prev: i, To: i + 1})
		s.add(k)
		keys = append(keys, k)
	}
	used := 0
	for _, k := range s.slots {
		if k != 0 {
			used++
		}
	}
	if used != seenSlots {
		t.Fatalf("%d of %d slots used", used, seenSlots)
	}
	last := keys[len(keys)-1]
	if !s.has(last) {
		t.Fatal("the last push added is not held")
	}
	s.remove(last)
	if s.has(last) {
		t.Fatal("a removed push is still held")
	}
}
