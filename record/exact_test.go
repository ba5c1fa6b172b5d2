package record

import (
	"bytes"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/redmesh/redmesh/longdouble"
)

// floatNode is a node's copy of one string counter, written as the node's
// commands write it (node/strings.go): INCRBYFLOAT, INCRBY, SET and DEL.
type floatNode struct {
	id  NodeID
	rec Record
}

func ld(s string) *big.Float {
	f, ok := longdouble.Parse([]byte(s))
	if !ok {
		panic("not a long double: " + s)
	}
	return f
}

// incrByFloat is INCRBYFLOAT at version d: the reply and the delta.
func (n *floatNode) incrByFloat(t *testing.T, d Version, by string) (string, Record) {
	t.Helper()
	live := n.rec.Live(0)
	old := longdouble.New()
	if live {
		old = ld(string(n.rec.StringData()))
	}
	result := longdouble.Format(longdouble.New().Add(old, ld(by)))
	op := BeginTyped(n.rec, live, KindString, d, nil)
	if !live {
		op.Rec.Value = Value{Version: d, Data: []byte("0")}
		op.Rec.Expiry = Expiry{Version: d}
	} else if n.rec.Value.Tombstone {
		op.Rec.Value = Value{Version: d, Data: []byte("0")}
	}
	if err := op.IncrFloat(nil, n.rec.CounterBase(), live, ld(result)); err != nil {
		t.Fatal(err)
	}
	delta := op.Delta()
	n.rec = Merge(n.rec, delta)
	if got := string(n.rec.StringData()); got != result {
		t.Fatalf("INCRBYFLOAT %s replied %s, the key reads %s", by, result, got)
	}
	return result, delta
}

// incrBy is INCRBY on a counter holding no float counts.
func (n *floatNode) incrBy(d Version, by int64) Record {
	op := BeginTyped(n.rec, true, KindString, d, nil)
	op.IncrCounter(nil, by)
	delta := op.Delta()
	n.rec = Merge(n.rec, delta)
	return delta
}

// set is SET (value "" for DEL) at version d.
func (n *floatNode) set(d Version, value string) Record {
	rec := Record{Value: Value{Version: d, Data: []byte(value)}, Expiry: Expiry{Version: d}}
	if value == "" {
		rec.Value = Value{Version: d, Tombstone: true}
	}
	delta := OverValue(n.rec, rec)
	n.rec = Merge(n.rec, delta)
	return delta
}

// TestFloatChainIsRedis: on one node, a run of INCRBYFLOATs (INCRBYs and
// SETs between) reads after each step exactly as Redis's chain of results,
// each the previous result as printed plus the increment in long double.
func TestFloatChainIsRedis(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 14))
	incs := []string{"0.1", "0.2", "-0.3", "1.5", "1e-3", "123456789.123456789", "-1e10", "1e-20", "7", "0x1p-3", "3.14159"}
	for run := range 200 {
		n := &floatNode{id: 1}
		want := "0"
		for step := range 40 {
			d := v(uint64(run*100+step+1), 1)
			switch k := r.IntN(10); {
			case k == 0:
				want = fmt.Sprint(r.IntN(50))
				n.set(d, want)
			case k == 1 && !bytes.ContainsAny([]byte(want), ".e"):
				// An integer: INCRBY, in the float form once the counter
				// holds float counts (as the node does).
				if n.rec.Typed.HasFloatCounts(nil) {
					old := ld(want)
					want = longdouble.Format(old.Add(old, ld("5")))
					op := BeginTyped(n.rec, true, KindString, d, nil)
					if err := op.IncrFloat(nil, n.rec.CounterBase(), true, ld(want)); err != nil {
						t.Fatal(err)
					}
					n.rec = Merge(n.rec, op.Delta())
				} else {
					n.incrBy(d, 5)
					want = fmt.Sprint(mustInt(want) + 5)
				}
			default:
				by := incs[r.IntN(len(incs))]
				got, _ := n.incrByFloat(t, d, by)
				old := ld(want)
				want = longdouble.Format(old.Add(old, ld(by)))
				if got != want {
					t.Fatalf("run %d step %d: INCRBYFLOAT %s = %s, Redis's chain %s", run, step, by, got, want)
				}
			}
			if got := string(n.rec.StringData()); got != want {
				t.Fatalf("run %d step %d: reads %s, Redis's chain %s", run, step, got, want)
			}
		}
	}
}

func mustInt(s string) int64 {
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		panic(err)
	}
	return n
}

// TestFloatIncrementsAddUp: nodes that increment at once, each having seen
// none of the others' increments, end with every increment counted, the
// sum exact where the increments are binary fractions; a SET resets what
// it observed, whatever the versions' order.
func TestFloatIncrementsAddUp(t *testing.T) {
	a, b, c := &floatNode{id: 1}, &floatNode{id: 2}, &floatNode{id: 3}
	seed := a.set(v(1, 1), "10.5")
	for _, n := range []*floatNode{b, c} {
		n.rec = Merge(n.rec, seed)
	}
	var deltas []Record
	for i := range 5 {
		_, d1 := a.incrByFloat(t, v(uint64(10+i), 1), "1.5")
		_, d2 := b.incrByFloat(t, v(uint64(10+i), 2), "-0.25")
		_, d3 := c.incrByFloat(t, v(uint64(10+i), 3), "0x1p-10")
		deltas = append(deltas, d1, d2, d3)
	}
	all := merged(append([]Record{seed}, deltas...)...)
	want := longdouble.Format(ld("10.5").Add(ld("10.5"), ld(fmt.Sprint(5*1.5-5*0.25+5.0/1024))))
	if got := string(all.StringData()); got != want {
		t.Fatalf("concurrent increments read %s, want %s", got, want)
	}

	// SET at one node, an increment not observed by it at another: the
	// SET's value plus the increment, whichever version is higher.
	for _, setTS := range []uint64{30, 40} {
		x, y := &floatNode{id: 1, rec: all}, &floatNode{id: 2, rec: all}
		s := x.set(v(setTS, 1), "100")
		_, inc := y.incrByFloat(t, v(35, 2), "2.5")
		if got := string(merged(all, s, inc).StringData()); got != "102.5" {
			t.Fatalf("SET at %d with a concurrent INCRBYFLOAT 2.5: %s, want 102.5", setTS, got)
		}
		// DEL likewise: the increment it did not observe stays, on 0.
		x = &floatNode{id: 1, rec: all}
		del := x.set(v(setTS, 1), "")
		if got := string(merged(all, del, inc).StringData()); got != "2.5" {
			t.Fatalf("DEL at %d with a concurrent INCRBYFLOAT 2.5: %s, want 2.5", setTS, got)
		}
	}
}

// TestFloatCounterMergeOrder: nodes incrementing (float and integer),
// setting and deleting one counter, each write applied at once where it was
// made and delivered elsewhere in a random order; once every node has every
// write they all hold the same record, read the same bytes, and so does
// any order of merging the writes from nothing.
func TestFloatCounterMergeOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 2))
	incs := []string{"0.1", "1.5", "-2.25", "1e-3", "1e10", "0.3", "-7"}
	for run := range 300 {
		nodes := []*floatNode{{id: 1}, {id: 2}, {id: 3}}
		var writes []Record
		pending := make([][]Record, len(nodes))
		for step := range 30 {
			i := r.IntN(len(nodes))
			n := nodes[i]
			d := v(uint64(step+1), n.id)
			var w Record
			switch k := r.IntN(12); {
			case k == 0:
				w = n.set(d, fmt.Sprint(r.IntN(9)))
			case k == 1:
				w = n.set(d, "")
			case k == 2 && n.rec.Live(0) && !n.rec.Typed.HasFloatCounts(nil) &&
				!bytes.ContainsAny(n.rec.StringData(), ".e"):
				w = n.incrBy(d, int64(r.IntN(5))-2)
			default:
				_, w = n.incrByFloat(t, d, incs[r.IntN(len(incs))])
			}
			writes = append(writes, w)
			for j := range nodes {
				if j != i {
					pending[j] = append(pending[j], w)
				}
			}
			// Deliver some pending writes, in any order.
			for j, n := range nodes {
				r.Shuffle(len(pending[j]), func(a, b int) { pending[j][a], pending[j][b] = pending[j][b], pending[j][a] })
				k := r.IntN(len(pending[j]) + 1)
				for _, w := range pending[j][:k] {
					n.rec = Merge(n.rec, w)
				}
				pending[j] = pending[j][k:]
			}
		}
		for j, n := range nodes {
			for _, w := range pending[j] {
				n.rec = Merge(n.rec, w)
			}
		}
		want := nodes[0].rec
		for _, n := range nodes[1:] {
			if !Equal(n.rec, want) || !bytes.Equal(n.rec.StringData(), want.StringData()) {
				t.Fatalf("run %d: node %v reads %q, node 1 %q", run, n.id, n.rec.StringData(), want.StringData())
			}
		}
		for range 5 {
			r.Shuffle(len(writes), func(a, b int) { writes[a], writes[b] = writes[b], writes[a] })
			m := merged(writes...)
			if !Equal(m, want) || !bytes.Equal(m.StringData(), want.StringData()) ||
				!bytes.Equal(Encode(m), Encode(want)) {
				t.Fatalf("run %d: another order reads %q, want %q", run, m.StringData(), want.StringData())
			}
		}
	}
}

// TestExactArithmetic checks Exact's encoding and sums against math/big.
func TestExactArithmetic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	vals := []string{"0", "1", "-1", "0.1", "1e4000", "-1e-4000", "3", "0x1p-16400", "123456789.123456789", "-0.5"}
	for range 2000 {
		sum := new(dyadic)
		want := new(big.Float).SetPrec(100_000)
		for range r.IntN(6) {
			s := vals[r.IntN(len(vals))]
			sign := 1
			if r.IntN(2) == 0 {
				sign = -1
			}
			x := dyadicOf(ld(s)).encode() // through the encoding
			if !checkExact([]byte(x)) {
				t.Fatalf("%s encodes as a non-canonical %x", s, x)
			}
			sum.add(x.decode(), sign)
			f := ld(s)
			if sign < 0 {
				f.Neg(f)
			}
			want.Add(want, f)
		}
		e := sum.encode()
		if !checkExact([]byte(e)) {
			t.Fatalf("sum encodes as a non-canonical %x", e)
		}
		got := e.decode()
		g := new(big.Float).SetPrec(100_000).SetInt(&got.m)
		g.SetMantExp(g, got.e)
		if g.Cmp(want) != 0 {
			t.Fatalf("exact sum %v, math/big %v", g, want)
		}
		if ld := got.longDouble(); ld.Cmp(longdouble.New().Set(want)) != 0 && !ld.IsInf() {
			t.Fatalf("rounded %v, want %v", ld, want)
		}
	}
	for _, bad := range [][]byte{{2, 0, 1}, {0, 0}, {0, 0, 2}, {0, 0, 0, 1}, {1}, {0, 0x80}} {
		if checkExact(bad) {
			t.Errorf("%x taken as an exact total", bad)
		}
	}
}
