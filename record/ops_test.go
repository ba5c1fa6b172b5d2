package record

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"testing"
)

// versions returns a source of fresh versions of node, from ts on.
func versions(node NodeID, ts uint64) func() (Version, error) {
	return func() (Version, error) {
		ts++
		return v(ts, node), nil
	}
}

// Two nodes edit one set and one counter concurrently through TypedOp: the
// remove takes only the member it observed, the increments add up, and a
// DEL (OverValue) resets only the count it saw.
func TestTypedOpDeltasMerge(t *testing.T) {
	// Node 1 makes the set {a, b} and counts 5.
	op := BeginTyped(Record{}, false, KindSet, v(1, 1), versions(1, 1))
	da, _ := op.AddMember([]byte("a"))
	db, _ := op.AddMember([]byte("b"))
	if da == db {
		t.Fatalf("two members share dot %v", da)
	}
	if again, _ := op.AddMember([]byte("a")); again != da {
		t.Fatalf("re-adding a in one write gave a new dot %v", again)
	}
	base := op.Delta()
	cop := BeginTyped(Record{}, false, KindString, v(2, 1), versions(1, 2))
	cop.Rec.Value = Value{Version: cop.V, Data: []byte("0")}
	cop.IncrCounter(nil, 5)
	counter := cop.Delta()

	// Concurrently: node 2 removes a, node 3 removes a and adds it back.
	rem := BeginTyped(base, true, KindSet, v(10, 2), versions(2, 10))
	rem.RemMember([]byte("a"))
	r3 := BeginTyped(base, true, KindSet, v(10, 3), versions(3, 10))
	r3.RemMember([]byte("a"))
	mid := Merge(base, r3.Delta())
	add := BeginTyped(mid, true, KindSet, v(11, 3), versions(3, 11))
	add.AddMember([]byte("a"))
	for _, order := range [][]Record{{rem.Delta(), r3.Delta(), add.Delta()}, {add.Delta(), rem.Delta(), r3.Delta()}} {
		m := base
		for _, d := range order {
			m = Merge(m, d)
		}
		if !m.Typed.HasMember([]byte("a")) || !m.Typed.HasMember([]byte("b")) || m.Typed.Len() != 2 {
			t.Fatalf("want {a, b}: the re-add was not observed by node 2's SREM")
		}
	}

	// Node 2 increments by 3 while node 1 deletes the counter it saw.
	inc := BeginTyped(counter, true, KindString, v(20, 2), versions(2, 20))
	inc.IncrCounter(nil, 3)
	del := OverValue(counter, Record{Value: Value{Version: v(20, 1), Tombstone: true}, Expiry: Expiry{Version: v(20, 1)}})
	m := Merge(Merge(counter, del), inc.Delta())
	if got := string(m.StringData()); got != "3" || !m.Exists() {
		t.Fatalf("counter after a DEL and a concurrent INCRBY 3 reads %q", got)
	}
	// A SET over a hash takes the type register and removes every field.
	h := BeginTyped(Record{}, false, KindHash, v(30, 1), versions(1, 30))
	h.SetField([]byte("f"), []byte("1"))
	hash := h.Delta()
	set := Merge(hash, OverValue(hash, Record{Value: Value{Version: v(31, 2), Data: []byte("x")}, Expiry: Expiry{Version: v(31, 2)}}))
	if set.Kind() != KindString || string(set.StringData()) != "x" {
		t.Fatalf("SET over a hash: kind %v, value %q", set.Kind(), set.StringData())
	}
	if _, ok := set.Typed.FieldValue([]byte("f")); ok {
		t.Fatal("SET over a hash left its field")
	}
}

// Adding what a node already holds is still an add: a set member, a hash
// field with the value it has, a sorted-set member at the score it has
// each take a fresh dot, so a concurrent remove at another node, which
// observed only the older dot, does not take it (add wins), in either
// order of delivery; the older dot is gone everywhere.
func TestReAddWinsOverConcurrentRemove(t *testing.T) {
	name := []byte("m")
	cases := []struct {
		kind Kind
		add  func(op *TypedOp) error
		rem  func(op *TypedOp)
		has  func(t *Typed) bool
		dots func(t *Typed) int
	}{{
		kind: KindSet,
		add:  func(op *TypedOp) error { _, err := op.AddMember(name); return err },
		rem:  func(op *TypedOp) { op.RemMember(name) },
		has:  func(t *Typed) bool { return t.HasMember(name) },
		dots: func(t *Typed) int { return len(t.run(listMembers, name)) },
	}, {
		kind: KindHash,
		add:  func(op *TypedOp) error { _, err := op.SetField(name, []byte("v")); return err },
		rem:  func(op *TypedOp) { op.DelField(name) },
		has:  func(t *Typed) bool { v, ok := t.FieldValue(name); return ok && string(v) == "v" },
		dots: func(t *Typed) int { return len(t.run(listFields, name)) },
	}, {
		kind: KindZSet,
		add:  func(op *TypedOp) error { _, err := op.SetScore(name, 2.5); return err },
		rem:  func(op *TypedOp) { op.RemScored(name) },
		has:  func(t *Typed) bool { s, ok := t.Score(name); return ok && s == 2.5 },
		dots: func(t *Typed) int { return len(t.run(listScored, name)) },
	}}
	for _, c := range cases {
		// Node 1 adds the element; every node holds it.
		first := BeginTyped(Record{}, false, c.kind, v(1, 1), versions(1, 1))
		if err := c.add(first); err != nil {
			t.Fatal(err)
		}
		base := first.Delta()
		// Node 1 adds it again (Redis: 0 added, nothing changed) while
		// node 2, which holds the first dot only, removes it.
		again := BeginTyped(base, true, c.kind, v(10, 1), versions(1, 10))
		if err := c.add(again); err != nil {
			t.Fatal(err)
		}
		rem := BeginTyped(base, true, c.kind, v(10, 2), versions(2, 10))
		c.rem(rem)
		for _, order := range [][]Record{{again.Delta(), rem.Delta()}, {rem.Delta(), again.Delta()}} {
			m := base
			for _, d := range order {
				m = Merge(m, d)
			}
			if !c.has(m.Typed) {
				t.Errorf("kind %v: the element is gone after a re-add and a concurrent remove that did not see it", c.kind)
			}
			if n := c.dots(m.Typed); n != 1 {
				t.Errorf("kind %v: the element holds %d dots after a re-add, want 1 (the older one removed)", c.kind, n)
			}
		}
	}
}

// A write adding many elements finds its own by a map past ownScan: the
// same answers as a search one by one, through additions, overwrites,
// deletions, and names whose hashes collide.
func TestOwnElemMatchesAScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, collide := range []bool{false, true} {
		var next Version
		next.Node, next.TS = 1, 1
		op := BeginTyped(Record{}, false, KindHash, next, func() (Version, error) { next.TS++; return next, nil })
		want := map[string]string{}
		for i := range 3000 {
			name := []byte(fmt.Sprint("f", rng.IntN(400)))
			switch rng.IntN(4) {
			case 0:
				op.DelField(name)
				delete(want, string(name))
			default:
				v := fmt.Sprint(i)
				if _, err := op.SetField(name, []byte(v)); err != nil {
					t.Fatal(err)
				}
				want[string(name)] = v
			}
			if collide && op.own != nil && op.own.m != nil && !op.own.collided {
				// Point another name's hash at the first element, as a
				// collision would: lookups must still find it.
				es := op.Rec.Typed.Fields
				last := es[len(es)-1].Name
				op.ownElem(&op.Rec.Typed.Fields, last) // index it
				op.own.m[maphash.Bytes(op.own.seed, last)] = 0
				op.own.collided = true
			}
			probe := []byte(fmt.Sprint("f", rng.IntN(400)))
			got := op.ownElem(&op.Rec.Typed.Fields, probe)
			scan := slices.IndexFunc(op.Rec.Typed.Fields, func(e Elem) bool { return bytes.Equal(e.Name, probe) })
			if got != scan {
				t.Fatalf("collide %v, step %d: ownElem(%s) = %d, a scan finds %d", collide, i, probe, got, scan)
			}
		}
		if len(op.Rec.Typed.Fields) != len(want) {
			t.Fatalf("collide %v: %d fields, want %d", collide, len(op.Rec.Typed.Fields), len(want))
		}
		for _, e := range op.Rec.Typed.Fields {
			if want[string(e.Name)] != string(e.Value) {
				t.Fatalf("collide %v: field %s = %s, want %s", collide, e.Name, e.Value, want[string(e.Name)])
			}
		}
	}
}

// A write adding a member for each of a large set's (SUNIONSTORE, COPY).
func BenchmarkAddManyMembers(b *testing.B) {
	names := make([][]byte, 20000)
	for i := range names {
		names[i] = fmt.Appendf(nil, "member:%d", i)
	}
	for b.Loop() {
		var next Version
		next.Node, next.TS = 1, 1
		op := BeginTyped(Record{}, false, KindSet, next, func() (Version, error) { next.TS++; return next, nil })
		for _, n := range names {
			if _, err := op.AddMember(n); err != nil {
				b.Fatal(err)
			}
		}
	}
}
