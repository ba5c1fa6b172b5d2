package record

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/redmesh/redmesh/hlc"
)

// genBigOne draws a large hash, set or sorted set (kind), with elements of
// the other two kinds mixed in now and then (a type changed under
// concurrent writes), names written at two nodes at once, traces of
// removed elements and of elements still held elsewhere, and counts.
func genBigOne(r *rand.Rand, kind Kind, n int) *Typed {
	t := &Typed{Kind: kind, KindVersion: v(1, 1)}
	for i := range n {
		name := fmt.Appendf(nil, "name:%05d", r.IntN(2*n))
		d := v(uint64(10+r.IntN(4*n)), NodeID(1+r.IntN(3)))
		k := kind
		if r.IntN(20) == 0 {
			k = Kind(1 + r.IntN(3))
		}
		e := Elem{Name: name, Dot: d}
		switch k {
		case KindHash:
			e.Value = fmt.Appendf(nil, "v%d", i)
			t.Fields = append(t.Fields, e)
		case KindSet:
			t.Members = append(t.Members, e)
		default:
			e.Value = ScoreValue(float64(r.IntN(50)))
			t.Scored = append(t.Scored, e)
		}
		if r.IntN(5) == 0 { // removed, or traced by a remove that has not reached us yet
			t.Removed = append(t.Removed, trace(Elem{Name: name, Dot: d}, d.TS+hlc.Timestamp(r.IntN(3))))
		}
		if r.IntN(8) == 0 {
			c := Count{Name: name, Node: NodeID(1 + r.IntN(3)), Ver: d, Total: int64(r.IntN(9))}
			if kind == KindZSet {
				c.Total = bitsOf(float64(r.IntN(9)) * 0.5)
				t.ScoreCounts = append(t.ScoreCounts, c)
			} else {
				t.Counts = append(t.Counts, c)
			}
		}
	}
	t.Normalize()
	return t.Detached()
}

// randomOneWrite is a write of one element of kind into cur as a node's
// command builds it, at dot d: an add or a replace, a removal, an
// increment.
func randomOneWrite(r *rand.Rand, cur Record, kind Kind, d Version) Record {
	next := d
	op := BeginTyped(cur, true, kind, d, func() (Version, error) { next.TS++; return next, nil })
	op.Counter = d.Node
	name := fmt.Appendf(nil, "name:%05d", r.IntN(700))
	var err error
	switch kind {
	case KindHash:
		switch r.IntN(4) {
		case 0:
			op.DelField(name)
		case 1:
			op.IncrCounter(name, 3)
		default:
			_, err = op.SetField(name, fmt.Appendf(nil, "w%d", d.TS))
		}
	case KindSet:
		if r.IntN(3) == 0 {
			op.RemMember(name)
		} else {
			_, err = op.AddMember(name)
		}
	default:
		switch r.IntN(4) {
		case 0:
			op.RemScored(name)
		case 1:
			op.IncrScore(name, 1.5)
		default:
			_, err = op.SetScore(name, float64(r.IntN(50)))
		}
	}
	if err != nil {
		panic(err)
	}
	return op.Delta()
}

// The merge of one element's write into a large state (absorbOne) leaves
// what the general merge leaves: the same elements, traces and counts, the
// same digest (the Merkle tree's), names counted and score index; for
// writes built against the state as it is (a local command), against a
// state some writes old (a peer's push), writes merged again (a replay),
// and a removal traced again at another time (concurrent removes). Merged
// in place under an Owner, it leaves the state it started from as it was.
func TestAbsorbOneMatchesMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 15))
	for round := range 24 {
		kind := Kind(1 + round%3)
		start := Record{Typed: genBigOne(r, kind, 300+r.IntN(300))}
		before := AppendTyped(nil, start.Typed)
		fast, general := start, start
		var o *Owner
		var past []Record // the states the writes were built against
		var deltas []Record
		ts := uint64(1 << 20)
		for step := range 300 {
			if step%5 == 0 {
				o = new(Owner) // a step of the write path ends, its states published
			}
			ts += 3
			node := NodeID(1 + r.IntN(3))
			var delta Record
			switch k := r.IntN(10); {
			case k < 6 || len(past) == 0:
				delta = randomOneWrite(r, general, kind, v(ts, node))
			case k < 8:
				delta = randomOneWrite(r, past[r.IntN(len(past))], kind, v(ts, node))
			case k == 8:
				delta = deltas[r.IntN(len(deltas))]
			default: // an earlier removal traced again, sooner or later
				old := deltas[r.IntN(len(deltas))]
				if len(old.Typed.Removed) == 0 {
					continue
				}
				tr := old.Typed.Removed[0]
				at := tr.TraceAt() + hlc.Timestamp(r.IntN(5)) - 2
				delta = Record{Typed: &Typed{Kind: kind, KindVersion: v(ts, node), Removed: []Elem{trace(Elem{Name: tr.Name, Dot: tr.Dot}, max(at, tr.Dot.TS))}}}
			}
			past = append(past, general)
			deltas = append(deltas, delta)
			var fastChanged bool
			fast, fastChanged = mergeOneWith(fast, delta, o, false)
			want, wantChanged := mergeOneWith(general, delta, nil, true)
			general = want
			if fastChanged != wantChanged || !sameTyped(fast.Typed, general.Typed) || fast.Versions() != general.Versions() ||
				!sameZView(fast.Typed.ZView(), general.Typed.ZView()) || !indexMatches(fast.Typed) {
				t.Fatalf("round %d step %d: the merge of one element differs from the general merge (delta %+v)", round, step, delta.Typed)
			}
			if f, g := fast.Typed.big, general.Typed.big; f.names != g.names || f.bytes != g.bytes || f.sum != g.sum {
				t.Fatalf("round %d step %d: counted names %v, bytes %d, sum %x; want %v, %d, %x", round, step, f.names, f.bytes, f.sum, g.names, g.bytes, g.sum)
			}
		}
		if string(AppendTyped(nil, start.Typed)) != string(before) {
			t.Fatalf("round %d: merges in place changed the state they started from", round)
		}
	}
}

// mergeOneWith is MergeOwned of a typed write, taking the general merge if
// general.
func mergeOneWith(cur, delta Record, o *Owner, general bool) (Record, bool) {
	was := printOwned(cur.Typed, o)
	m := Record{Value: cur.Value, Expiry: cur.Expiry, Typed: mergeTypedWith(cur.Typed, delta.Typed, o, false, general)}
	return m, changedFrom(m, cur, was)
}

// A write's reads of the element it writes (TypedOp.Field, HasMember,
// Score), which read the key's state once, answer what the state's own
// reads answer, and its delta, the log's entry, is the one built from
// those (the traces of what the state holds of the name, its counts
// reset), for states large and small and names held or not.
func TestOpReadsMatchState(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 9))
	for round := range 30 {
		kind := Kind(1 + round%3)
		st := genBigOne(r, kind, 20+r.IntN(2)*400)
		cur := Record{Typed: st}
		for range 40 {
			name := fmt.Appendf(nil, "name:%05d", r.IntN(900))
			d := v(1<<20, 2)
			op := BeginTyped(cur, true, kind, d, nil)
			var want *Typed
			switch kind {
			case KindHash:
				e, ok := op.Field(name)
				we, wok := st.Field(name)
				if ok != wok || compareElem(e, we) != 0 {
					t.Fatalf("round %d: field %s read %v %v, want %v %v", round, name, e, ok, we, wok)
				}
				if _, err := op.SetField(name, []byte("x")); err != nil {
					t.Fatal(err)
				}
				want = &Typed{Fields: []Elem{{Name: name, Dot: d, Value: []byte("x")}}, Removed: traces(st.run(listFields, name), d.TS), Counts: st.Resets(name)}
			case KindSet:
				if op.HasMember(name) != st.HasMember(name) {
					t.Fatalf("round %d: member %s held %v, want %v", round, name, op.HasMember(name), st.HasMember(name))
				}
				if r.IntN(2) == 0 {
					op.RemMember(name)
					want = &Typed{Removed: traces(st.run(listMembers, name), d.TS)}
				} else {
					if _, err := op.AddMember(name); err != nil {
						t.Fatal(err)
					}
					want = &Typed{Members: []Elem{{Name: name, Dot: d}}, Removed: traces(st.run(listMembers, name), d.TS)}
				}
			default:
				s, ok := op.Score(name)
				ws, wok := st.Score(name)
				if ok != wok || s != ws {
					t.Fatalf("round %d: score of %s %v %v, want %v %v", round, name, s, ok, ws, wok)
				}
				if _, err := op.SetScore(name, 4); err != nil {
					t.Fatal(err)
				}
				want = &Typed{Scored: []Elem{{Name: name, Dot: d, Value: ScoreValue(4)}}, Removed: traces(st.run(listScored, name), d.TS), ScoreCounts: st.scoreResets(name)}
			}
			want.Kind, want.KindVersion = kind, d
			want.Normalize()
			if got := op.Delta(); !bytes.Equal(AppendTyped(nil, got.Typed), AppendTyped(nil, want)) {
				t.Fatalf("round %d: the delta of a write of %s is %+v, want %+v", round, name, got.Typed, want)
			}
		}
	}
}
