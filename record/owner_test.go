package record

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// Merges under one Owner, which change a large state's trees in place,
// give what merges that copy give, step by step, and leave the state they
// started from (the keyspace's, which readers hold) as it was: lists
// pushed, popped and set at both ends and in the middle, sorted sets
// added to, incremented and removed from.
func TestMergeOwnedMatchesCopies(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 24))
	for round := range 12 {
		var start Record
		if round%2 == 0 {
			start = bigList(300 + r.IntN(200))
		} else {
			start = bigZSet(300 + r.IntN(200))
		}
		before := AppendTyped(nil, start.Typed)
		o := new(Owner)
		owned, copied := start, start
		ts := uint64(1 << 20)
		for step := range 300 {
			ts += 2
			node := NodeID(2 + r.IntN(3))
			var delta Record
			if round%2 == 0 {
				delta = randomListWrite(r, owned, v(ts, node))
			} else {
				delta = randomZSetWrite(r, owned, v(ts, node))
			}
			var changed bool
			owned, changed = MergeOwned(owned, delta, o)
			want, wantChanged := MergeInto(copied, delta)
			copied = want
			if changed != wantChanged || !sameTyped(owned.Typed, copied.Typed) || !indexMatches(owned.Typed) {
				t.Fatalf("round %d step %d: the merge in place differs from the merge that copies", round, step)
			}
		}
		if string(AppendTyped(nil, start.Typed)) != string(before) {
			t.Fatalf("round %d: merges in place changed the state they started from", round)
		}
	}
}

// bigZSet is a sorted set of n members in the large form.
func bigZSet(n int) Record {
	t := &Typed{Kind: KindZSet, KindVersion: v(1, 1)}
	for i := range n {
		t.Scored = append(t.Scored, Elem{Name: fmt.Appendf(nil, "member:%06d", i), Dot: v(uint64(10+i), 1), Value: ScoreValue(float64(i * 7 % n))})
	}
	return Record{Typed: t.Detached()}
}

func randomListWrite(r *rand.Rand, cur Record, d Version) Record {
	return listOp(cur, d, func(op *TypedOp) error {
		view := cur.Typed.ListView()
		n := view.Len()
		value := fmt.Appendf(nil, "v%d", d.TS)
		switch k := r.IntN(6); {
		case k == 0 || n == 0:
			var hi []byte
			if n > 0 {
				hi = view.At(0).Name
			}
			_, err := op.PushListedRun(nil, hi, [][]byte{value, value})
			return err
		case k == 1:
			_, err := op.PushListedRun(view.At(n-1).Name, nil, [][]byte{value})
			return err
		case k == 2:
			op.RemListed(view.At(0).Name)
		case k == 3:
			op.RemListed(view.At(n - 1).Name)
		case k == 4:
			return op.SetListed(view.At(r.IntN(n)).Name, value)
		default:
			i := r.IntN(n)
			var hi []byte
			if i+1 < n {
				hi = view.At(i + 1).Name
			}
			_, err := op.PushListed(view.At(i).Name, hi, value)
			return err
		}
		return nil
	})
}

func randomZSetWrite(r *rand.Rand, cur Record, d Version) Record {
	next := d
	op := BeginTyped(cur, true, KindZSet, d, func() (Version, error) { next.TS++; return next, nil })
	name := fmt.Appendf(nil, "member:%06d", r.IntN(600))
	switch r.IntN(3) {
	case 0:
		if _, err := op.SetScore(name, float64(r.IntN(1000))); err != nil {
			panic(err)
		}
	case 1:
		op.IncrScore(name, float64(r.IntN(10)))
	default:
		op.RemScored(name)
	}
	return op.Delta()
}

// A state built under an Owner that comes in as another key's write (as
// RENAME and COPY pass a key's state on) is then held by two keys: merges
// into either under the same Owner leave the other as it was.
func TestMergeOwnedStateSharedByTwoKeys(t *testing.T) {
	o := new(Owner)
	k, _ := MergeOwned(bigList(300), rpush(bigList(300), v(1<<20, 2), "x"), o)
	k, _ = MergeOwned(k, rpush(k, v(1<<20+10, 2), "y"), o) // in place: k's own
	k2, _ := MergeOwned(Record{}, k, o)
	held := AppendTyped(nil, k2.Typed)
	k, _ = MergeOwned(k, rpush(k, v(1<<20+20, 2), "z"), o)
	k, _ = MergeOwned(k, Record{Typed: k.Typed.Clear(1<<20 + 30)}, o)
	if string(AppendTyped(nil, k2.Typed)) != string(held) || k.Typed.ListLen() != 0 {
		t.Fatalf("a merge into one key changed the other's state (%d elements left in the first)", k.Typed.ListLen())
	}
}

// Steps of one writer's line, an Owner each, that take over the state the
// step before published (MergePublished) give what merges that copy give;
// the published state's header (length, versions, a list's count of its
// runs) stays as it was while a step changes its trees; a state a reader
// froze stays as it was; and Undo puts the published state back, giving a
// state to replace it with. Lists are pushed, popped and set at both ends
// and in the middle.
func TestMergePublishedMatchesCopies(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 41))
	line := new(Line)
	for round := range 12 {
		kind := []Kind{KindHash, KindSet, KindZSet, KindList}[round%4]
		var pub Record
		if kind == KindList {
			pub = bigList(300 + r.IntN(300))
		} else {
			pub = bigTyped(kind, 300+r.IntN(300))
		}
		copied := pub
		ts := uint64(1 << 20)
		type held struct {
			t   *Typed
			enc []byte
		}
		var frozen []held
		adopted, undone := 0, 0
		for step := range 200 {
			o := NewOwner(line)
			pubEnc, pubLen, pubVers := AppendTyped(nil, pub.Typed), pub.Typed.Len(), pub.Versions()
			pubSize := pub.Typed.size()
			undo := r.IntN(6) == 0
			cur, ref := pub, copied
			for w := range 1 + r.IntN(4) {
				ts += 4
				var delta Record
				if kind == KindList {
					delta = randomListWrite(r, cur, v(ts, NodeID(2+r.IntN(3))))
				} else {
					delta = randomElemWrite(r, kind, cur, v(ts, NodeID(2+r.IntN(3))), step >= 170)
				}
				var m Record
				var changed bool
				if w == 0 {
					m, changed = MergePublished(cur, delta, o)
				} else {
					m, changed = MergeOwned(cur, delta, o)
				}
				want, wantChanged := MergeInto(ref, delta)
				if changed != wantChanged || !sameTyped(m.Typed, want.Typed) || !indexMatches(m.Typed) {
					t.Fatalf("round %d step %d write %d: the merge differs from the merge that copies", round, step, w)
				}
				if changed {
					cur, ref = m, want
				}
				if pub.Typed.Len() != pubLen || pub.Versions() != pubVers || pub.Typed.size() != pubSize {
					t.Fatalf("round %d step %d: the published state's header moved", round, step)
				}
			}
			adopted += o.Adoptions()
			if undo {
				pubs, repaired := o.Undo()
				if len(pubs) > 1 || len(pubs) == 1 && pubs[0] != pub.Typed {
					t.Fatalf("round %d step %d: Undo names %d states", round, step, len(pubs))
				}
				if len(pubs) == 1 {
					pub.Typed = repaired[0]
					undone++
				}
				if !bytes.Equal(AppendTyped(nil, pub.Typed), pubEnc) || !sameTyped(pub.Typed, copied.Typed) || !indexMatches(pub.Typed) {
					t.Fatalf("round %d step %d: Undo did not put the published state back", round, step)
				}
				continue
			}
			pub, copied = cur, ref
			if r.IntN(10) == 0 {
				pub.Typed.Freeze()
				frozen = append(frozen, held{pub.Typed, AppendTyped(nil, pub.Typed)})
			}
		}
		for i, f := range frozen {
			if !bytes.Equal(AppendTyped(nil, f.t), f.enc) {
				t.Fatalf("round %d: frozen state %d changed", round, i)
			}
		}
		if adopted < 100 || undone == 0 {
			t.Fatalf("round %d: %d steps took the published state over, %d undone", round, adopted, undone)
		}
	}
}

// bigTyped is a hash, set or sorted set of n elements in the large form.
func bigTyped(kind Kind, n int) Record {
	t := &Typed{Kind: kind, KindVersion: v(1, 1)}
	for i := range n {
		e := Elem{Name: fmt.Appendf(nil, "element:%06d", i*2), Dot: v(uint64(10+i), 1)}
		switch kind {
		case KindHash:
			e.Value = e.Name
			t.Fields = append(t.Fields, e)
		case KindSet:
			t.Members = append(t.Members, e)
		default:
			e.Value = ScoreValue(float64(i * 7 % n))
			t.Scored = append(t.Scored, e)
		}
	}
	return Record{Typed: t.Detached()}
}

// randomElemWrite is a write of a hash, set or sorted set: of one element
// mostly, of several in one command (HSET of many fields, SADD, ZADD, HDEL,
// SREM, ZREM of many) one time in five: each an add or a removal, or if
// incr (rarely) a sorted set's increment, after which no step takes the
// state over (its counts are not journaled).
func randomElemWrite(r *rand.Rand, kind Kind, cur Record, d Version, incr bool) Record {
	next := d
	op := BeginTyped(cur, true, kind, d, func() (Version, error) { next.TS++; return next, nil })
	n := 1
	if r.IntN(5) == 0 {
		n = 2 + r.IntN(12)
	}
	for range n {
		name := fmt.Appendf(nil, "element:%06d", r.IntN(1200))
		add := r.IntN(3) > 0
		var err error
		switch {
		case kind == KindHash && add:
			_, err = op.SetField(name, fmt.Appendf(nil, "v%d", r.IntN(100)))
		case kind == KindHash:
			op.DelField(name)
		case kind == KindSet && add:
			_, err = op.AddMember(name)
		case kind == KindSet:
			op.RemMember(name)
		case incr && r.IntN(10) == 0:
			op.IncrScore(name, 1)
		case add:
			_, err = op.SetScore(name, float64(r.IntN(1000)))
		default:
			op.RemScored(name)
		}
		if err != nil {
			panic(err)
		}
	}
	return op.Delta()
}

// An item's pfx orders two names as their bytes do wherever both are set
// and differ: names past the tree's prefix short, long, holding zero
// bytes, and names without the prefix (whose pfx is zero: compared by
// their bytes). A large state whose later names lack the prefix its first
// ones shared lists them in order.
func TestItemPrefixOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 6))
	const prefix = "element:00"
	name := func() []byte {
		b := []byte(prefix)
		if r.IntN(8) == 0 {
			b = []byte("el")
		}
		for range r.IntN(7) {
			b = append(b, []byte{0, 1, '0', '5', '9', 0xff}[r.IntN(6)])
		}
		return b
	}
	for range 20_000 {
		a, b := name(), name()
		pa, pb := namePfx(a, prefix), namePfx(b, prefix)
		if pa != 0 && pb != 0 && pa != pb && (pa < pb) != (bytes.Compare(a, b) < 0) {
			t.Fatalf("%q %x, %q %x: the prefixes order them otherwise", a, pa, b, pb)
		}
		ia, ib := item{kv: string(a), nlen: uint32(len(a)), pfx: pa}, item{kv: string(b), nlen: uint32(len(b)), pfx: pb}
		if lessItem(ia, ib) != (bytes.Compare(a, b) < 0) {
			t.Fatalf("%q, %q: lessItem orders them otherwise", a, b)
		}
	}
	set := bigTyped(KindSet, 300)
	want := map[string]bool{}
	set.Typed.EachMember(func(n []byte) bool { want[string(n)] = true; return true })
	if set.Typed.big.prefixes[listMembers] != "element:000" {
		t.Fatalf("prefix %q", set.Typed.big.prefixes[listMembers])
	}
	for i := range 300 {
		n := name()
		want[string(n)] = true
		set = Merge(set, Record{Typed: &Typed{Kind: KindSet, KindVersion: v(uint64(5000+i), 2),
			Members: []Elem{{Name: n, Dot: v(uint64(5000+i), 2)}}}})
	}
	var got []string
	set.Typed.EachMember(func(n []byte) bool { got = append(got, string(n)); return true })
	if len(got) != len(want) || !slices.IsSorted(got) {
		t.Fatalf("%d members listed of %d, sorted %v", len(got), len(want), slices.IsSorted(got))
	}
}

// A state a step took over that comes in as another key's write (RENAME,
// COPY) is that key's own from then on: the step's Undo, which puts the
// published state's trees back in place, leaves it as it was.
func TestTakenOverStateSharedByTwoKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	line := new(Line)
	for _, kind := range []Kind{KindList, KindSet} {
		write := func(cur Record, ts uint64) Record {
			if kind == KindList {
				return randomListWrite(r, cur, v(ts, 2))
			}
			return randomElemWrite(r, kind, cur, v(ts, 2), false)
		}
		pub := bigTyped(kind, 400)
		if kind == KindList {
			pub = bigList(400)
		}
		pub, _ = MergeOwned(pub, write(pub, 1<<19), NewOwner(line)) // a step's, published
		pubEnc := AppendTyped(nil, pub.Typed)
		o := NewOwner(line)
		var k Record
		for i := 0; i < 10 && o.Adoptions() == 0; i++ { // a removal of a name not held changes nothing
			k, _ = MergePublished(pub, write(pub, uint64(1<<20-10*i)), o)
		}
		if o.Adoptions() != 1 {
			t.Fatalf("%v: the published state was not taken over", kind)
		}
		k2, _ := MergeOwned(Record{}, k, o)
		held := AppendTyped(nil, k2.Typed)
		for i := range 50 {
			k, _ = MergeOwned(k, write(k, uint64(1<<20+10*(i+1))), o)
		}
		pubs, repaired := o.Undo()
		if len(pubs) != 1 || !bytes.Equal(AppendTyped(nil, repaired[0]), pubEnc) {
			t.Fatalf("%v: Undo did not put the published state back", kind)
		}
		if !bytes.Equal(AppendTyped(nil, k2.Typed), held) {
			t.Fatalf("%v: Undo changed the state another key holds", kind)
		}
	}
}
