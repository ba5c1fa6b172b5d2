package record

import (
	"fmt"
	"testing"
)

// A large sorted set's reads: a member's rank, a score range's first
// member, and a score.
func BenchmarkZSetReads(b *testing.B) {
	const n = 1_000_000
	t := &Typed{Kind: KindZSet, KindVersion: v(1, 1)}
	for i := range n {
		t.Scored = append(t.Scored, Elem{Name: fmt.Appendf(nil, "member:%012d", i), Dot: v(uint64(10+i), 1), Value: ScoreValue(float64(i * 7919 % n))})
	}
	t = t.Detached()
	view := t.ZView()
	b.Run("rank", func(b *testing.B) {
		for i := range b.N {
			if _, ok := t.Rank(view, fmt.Appendf(nil, "member:%012d", i*31%n)); !ok {
				b.Fatal("no rank")
			}
		}
	})
	b.Run("range", func(b *testing.B) {
		for i := range b.N {
			s := float64(i * 31 % n)
			lo := view.Search(func(e ZEntry) bool { return e.Score >= s })
			k := 0
			view.Ascend(lo, func(ZEntry) bool { k++; return k < 10 })
		}
	})
	b.Run("score", func(b *testing.B) {
		for i := range b.N {
			t.Score(fmt.Appendf(nil, "member:%012d", i*31%n))
		}
	})
}
