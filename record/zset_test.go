package record

import (
	"bytes"
	"fmt"
	"math"
	"testing"
)

// zwrite builds a sorted-set write as a node does, over what the node saw.
func zwrite(d Version, seen Record, fn func(op *TypedOp)) Record {
	next := d
	op := BeginTyped(seen, seen.Exists(), KindZSet, d, func() (Version, error) {
		next.TS++
		return next, nil
	})
	fn(op)
	return op.Delta()
}

func zadd(d Version, seen Record, name string, score float64) Record {
	return zwrite(d, seen, func(op *TypedOp) { op.SetScore([]byte(name), score) })
}

func zincr(d Version, seen Record, name string, by float64) Record {
	return zwrite(d, seen, func(op *TypedOp) {
		if _, ok := seen.Typed.Score([]byte(name)); !ok {
			op.SetScore([]byte(name), 0)
		}
		op.IncrScore([]byte(name), by)
	})
}

func zrem(d Version, seen Record, name string) Record {
	return zwrite(d, seen, func(op *TypedOp) { op.RemScored([]byte(name)) })
}

func score(t *testing.T, r Record, name string) (float64, bool) {
	t.Helper()
	return r.Typed.Score([]byte(name))
}

func TestZAddConcurrentKeepsTheLaterScore(t *testing.T) {
	base := merged(zadd(v(1, 1), Record{}, "m", 1))
	a, b := zadd(v(5, 1), base, "m", 10), zadd(v(5, 2), base, "m", 20)
	for _, m := range []Record{merged(base, a, b), merged(b, base, a), merged(a, b, base)} {
		if s, ok := score(t, m, "m"); !ok || s != 20 || m.Typed.ZLen() != 1 || m.Kind() != KindZSet {
			t.Fatalf("concurrent ZADDs: score %v %v, len %d", s, ok, m.Typed.ZLen())
		}
	}
}

func TestZIncrByAddsUpAcrossNodes(t *testing.T) {
	base := merged(zadd(v(1, 1), Record{}, "m", 1.5))
	a := zincr(v(2, 1), base, "m", 2)
	b := zincr(v(2, 2), base, "m", 0.25)
	b2 := zincr(v(3, 2), merged(base, b), "m", 0.25)
	m := merged(base, a, b, b2)
	if s, _ := score(t, m, "m"); s != 4 {
		t.Fatalf("1.5 + 2 + 0.25 + 0.25 = %v", s)
	}
	if s, _ := score(t, merged(b2, a, b, base), "m"); s != 4 {
		t.Fatalf("in another order: %v", s)
	}
	// A ZADD that observed a's increment resets it, not b's.
	set := zadd(v(4, 1), merged(base, a), "m", 100)
	if s, _ := score(t, merged(base, a, b, b2, set), "m"); s != 100.5 {
		t.Fatalf("ZADD 100 with b's +0.5 unobserved = %v", s)
	}
	// Concurrent ZINCRBYs of a member neither node had.
	x, y := zincr(v(7, 1), Record{}, "n", 1), zincr(v(7, 2), Record{}, "n", 2)
	if s, ok := score(t, merged(x, y), "n"); !ok || s != 3 {
		t.Fatalf("1 + 2 from nothing = %v %v", s, ok)
	}
}

func TestZRemConcurrentWithZIncrByKeepsTheUnseenIncrement(t *testing.T) {
	base := merged(zadd(v(1, 1), Record{}, "m", 5), zincr(v(2, 2), Record{}, "m", 1))
	base = merged(base, zincr(v(3, 2), base, "m", 1)) // m = 5 + 2
	rem := zrem(v(5, 1), base, "m")
	inc := zincr(v(5, 2), base, "m", 3)
	for _, m := range []Record{merged(base, rem, inc), merged(base, inc, rem), merged(inc, rem, base)} {
		if s, ok := score(t, m, "m"); !ok || s != 3 {
			t.Fatalf("ZREM ∥ ZINCRBY 3: %v %v (want 3)", s, ok)
		}
	}
	// A ZREM that saw everything removes the member for good.
	all := merged(base, rem, inc)
	gone := merged(all, zrem(v(9, 1), all, "m"), base, inc)
	if _, ok := score(t, gone, "m"); ok || gone.Exists() {
		t.Fatal("the member came back")
	}
}

// A large sorted set's score index follows merges of adds, increments and
// removes, and answers ranks.
func TestLargeZSetIndex(t *testing.T) {
	var rec Record
	n := 1000
	for i := range n {
		rec = Merge(rec, zadd(v(uint64(10+2*i), 1), rec, fmt.Sprintf("m%04d", i), float64(n-i)))
	}
	if rec.Typed.big == nil || rec.Typed.big.scores == nil {
		t.Fatal("not in the large form with an index")
	}
	view := rec.Typed.ZView()
	if view.Len() != n || string(view.At(0).Name) != "m0999" || view.At(0).Score != 1 {
		t.Fatalf("first: %s %v of %d", view.At(0).Name, view.At(0).Score, view.Len())
	}
	if r, ok := rec.Typed.Rank(view, []byte("m0000")); !ok || r != n-1 {
		t.Fatalf("rank of m0000: %d %v", r, ok)
	}
	before := AppendTyped(nil, rec.Typed)
	m := Merge(rec, zincr(v(5000, 2), rec, "m0999", 5000))
	m = Merge(m, zrem(v(5001, 2), m, "m0500"))
	if !bytes.Equal(AppendTyped(nil, rec.Typed), before) {
		t.Fatal("a merge changed the state it merged into")
	}
	mv := m.Typed.ZView()
	if mv.Len() != n-1 || string(mv.At(mv.Len()-1).Name) != "m0999" || mv.At(mv.Len()-1).Score != 5001 {
		t.Fatalf("last after ZINCRBY: %s %v", mv.At(mv.Len()-1).Name, mv.At(mv.Len()-1).Score)
	}
	if !indexMatches(m.Typed) {
		t.Fatal("index differs from the members' order")
	}
	lo := mv.Search(func(e ZEntry) bool { return e.Score >= 10 })
	hi := mv.Search(func(e ZEntry) bool { return e.Score > 20 })
	if lo != 8 || hi-lo != 11 {
		t.Fatalf("scores 10..20 at ranks %d..%d", lo, hi)
	}
	dec, err := DecodeTyped(AppendTyped(nil, m.Typed))
	if err != nil || !sameZView(dec.ZView(), mv) || !sameZView(dec.Detached().ZView(), mv) {
		t.Fatalf("decoded: %v", err)
	}
}

func TestZSetDecodeRefusesBadScores(t *testing.T) {
	good := &Typed{Kind: KindZSet, KindVersion: v(1, 1), Scored: []Elem{{Name: []byte("a"), Dot: v(1, 1), Value: ScoreValue(1)}}}
	if _, err := DecodeTyped(AppendTyped(nil, good)); err != nil {
		t.Fatal(err)
	}
	nan := &Typed{Kind: KindZSet, KindVersion: v(1, 1), Scored: []Elem{{Name: []byte("a"), Dot: v(1, 1), Value: ScoreValue(math.NaN())}}}
	if _, err := DecodeTyped(AppendTyped(nil, nan)); err == nil {
		t.Fatal("a NaN score decoded")
	}
	inf := &Typed{Kind: KindZSet, KindVersion: v(1, 1), ScoreCounts: []Count{{Name: []byte("a"), Node: 1, Ver: v(1, 1), Total: bitsOf(math.Inf(1))}}}
	if _, err := DecodeTyped(AppendTyped(nil, inf)); err == nil {
		t.Fatal("an infinite score count decoded")
	}
	disorder := &Typed{Kind: KindZSet, KindVersion: v(1, 1), Scored: []Elem{
		{Name: []byte("b"), Dot: v(1, 1), Value: ScoreValue(1)}, {Name: []byte("a"), Dot: v(1, 1), Value: ScoreValue(1)}}}
	if _, err := DecodeTyped(AppendTyped(nil, disorder)); err == nil {
		t.Fatal("members out of order decoded")
	}
}

// A large state is stored as it is, so a merge into it must not keep the
// names of a delta's counts, which point into a request buffer the server
// reuses: a large hash's HINCRBY and a large sorted set's ZINCRBY.
func TestLargeStateOwnsItsCounts(t *testing.T) {
	var rec Record
	for i := range 300 {
		rec = Merge(rec, zadd(v(uint64(10+2*i), 1), rec, fmt.Sprintf("m%03d", i), float64(i)))
	}
	buf := []byte("m005")
	rec = Merge(rec, zwrite(v(5000, 2), rec, func(op *TypedOp) { op.IncrScore(buf, 1000) }))
	hbuf := []byte("f")
	h := &Typed{Kind: KindHash, KindVersion: v(1, 1)}
	for i := range 300 {
		h.Fields = append(h.Fields, Elem{Name: fmt.Appendf(nil, "f%03d", i), Dot: v(uint64(10+i), 1), Value: []byte("0")})
	}
	h = mergeTyped(h.Detached(), &Typed{Kind: KindHash, KindVersion: v(2000, 1), Counts: []Count{{Name: hbuf, Node: 1, Ver: v(2000, 1), Total: 7}}})
	copy(buf, "xxxx")
	copy(hbuf, "x")
	if s, _ := rec.Typed.Score([]byte("m005")); s != 1005 {
		t.Fatalf("ZINCRBY's count lost its name: score %v", s)
	}
	if h.Added([]byte("f")) != 7 {
		t.Fatalf("HINCRBY's count lost its name: %d", h.Added([]byte("f")))
	}
}

// Fresh takes from a large incoming sorted set the members up to the stable
// time that local no longer holds, and its score index follows.
func TestFreshLargeZSetKeepsItsIndex(t *testing.T) {
	var in Record
	for i := range 300 {
		in = Merge(in, zadd(v(uint64(10+2*i), 1), in, fmt.Sprintf("m%03d", i), float64(i)))
	}
	late := zadd(v(5000, 2), in, "late", 7)
	in = Merge(in, late)
	out, aside := Fresh(Record{}, in, v(4000, 0).TS)
	if !aside || out.Typed == nil {
		t.Fatalf("nothing set aside: %v", aside)
	}
	view := out.Typed.ZView()
	if view.Len() != 1 || string(view.At(0).Name) != "late" || !indexMatches(out.Typed) {
		t.Fatalf("after Fresh: %d members, index matches %v", view.Len(), indexMatches(out.Typed))
	}
}
