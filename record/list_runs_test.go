package record

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// checkRuns verifies t's structure (counts, first keys, leaf bounds, its
// byte and node tallies) and that it holds exactly want, in order.
func checkRuns(t *testing.T, tr *runTree, want []Elem) {
	t.Helper()
	var data int64
	nodes := 0
	var walk func(n *runNode) int
	walk = func(n *runNode) int {
		nodes++
		if n.kids == nil {
			data += int64(len(n.data))
			var c runCursor
			c.reset(n.data)
			k := 0
			for c.next() {
				if k == 0 && (n.first != string(c.name) || n.firstDot != c.dot) {
					t.Fatalf("a leaf's first key is not its first element's")
				}
				k++
			}
			if k != n.n || k == 0 || len(n.data) > maxRunBytes && k > 1 {
				t.Fatalf("leaf of %d elements counts %d, %d bytes", k, n.n, len(n.data))
			}
			if want := tailOf(n.data); n.tail.off != want.off || !slices.Equal(n.tail.lv, want.lv) {
				t.Fatalf("a leaf's tail is at %d after %v, its last element at %d after %v", n.tail.off, n.tail.lv, want.off, want.lv)
			}
			if n.back != nil {
				if len(n.back) != n.n-1 {
					t.Fatalf("a leaf of %d elements keeps %d tails back", n.n, len(n.back))
				}
				var starts []int
				for c.reset(n.data); c.next(); {
					starts = append(starts, c.start)
				}
				for i, b := range n.back {
					want := tailOf(n.data[:starts[i+1]])
					if b.off != want.off || !slices.Equal(b.lv, want.lv) {
						t.Fatalf("a leaf's tail back %d is at %d after %v, its run's at %d after %v", i, b.off, b.lv, want.off, want.lv)
					}
				}
			}
			return k
		}
		sum := 0
		if len(n.kids) == 0 || len(n.kids) > maxRunKids || n.first != n.kids[0].first || n.firstDot != n.kids[0].firstDot {
			t.Fatalf("inner node of %d children, or its first key not its first child's", len(n.kids))
		}
		for _, k := range n.kids {
			sum += walk(k)
		}
		if sum != n.n {
			t.Fatalf("inner node counts %d, holds %d", n.n, sum)
		}
		return sum
	}
	if tr.root != nil {
		walk(tr.root)
	}
	if data != tr.data || nodes != tr.nodes {
		t.Fatalf("tallies %d bytes %d nodes, hold %d and %d", tr.data, tr.nodes, data, nodes)
	}
	var got []Elem
	tr.ascend(nil, Version{}, func(c *runCursor) bool { got = append(got, c.elem(nil)); return true })
	var plain int64
	for _, e := range want {
		plain += int64(len(e.Name) + len(e.Value))
	}
	if plain != tr.plain {
		t.Fatalf("tally of names and values %d, hold %d", tr.plain, plain)
	}
	if tr.len() != len(want) || !slices.EqualFunc(got, want, func(a, b Elem) bool { return compareElem(a, b) == 0 }) {
		t.Fatalf("holds %d elements, want %d", len(got), len(want))
	}
}

// runElem draws an element: mostly positions (one or several levels, the
// dot the last level's or not), some names that are not positions.
func runElem(r *rand.Rand) Elem {
	d := v(uint64(r.IntN(1<<20)), NodeID(r.IntN(3)))
	var name []byte
	switch r.IntN(10) {
	case 0:
		name = fmt.Appendf(nil, "raw%d", r.IntN(1000))
	case 1, 2:
		name = appendLevel(nil, level{int64(r.IntN(50)) - 25, v(uint64(r.IntN(1<<20)), NodeID(r.IntN(3)))})
		for range 1 + r.IntN(9) {
			name = appendLevel(name, level{int64(r.Uint64()), v(uint64(r.IntN(1<<30)), NodeID(r.IntN(3)))})
		}
		name = appendLevel(name, level{int64(r.IntN(5)), d})
	case 3:
		name = appendLevel(nil, level{int64(r.IntN(100)) - 50, v(uint64(r.IntN(40)), 1)}) // shared by several dots
	default:
		name = appendLevel(nil, level{int64(r.IntN(1 << 16)), d})
	}
	return Elem{Name: name, Dot: d, Value: bytes.Repeat([]byte{byte(r.IntN(256))}, r.IntN(300))}
}

func TestRunTreeMatchesSortedList(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	var tr runTree
	var want []Elem
	type snap struct {
		tr   runTree
		want []Elem
	}
	var snaps []snap
	for step := range 30_000 {
		grow := step < 15_000 || step%3 == 0
		switch {
		case grow || len(want) == 0:
			e := runElem(r)
			i, found := slices.BinarySearchFunc(want, e, compareND)
			old, replaced := tr.set(e)
			if replaced != found || found && compareElem(old, want[i]) != 0 {
				t.Fatalf("step %d: set replaced %v, want %v", step, replaced, found)
			}
			if found {
				want[i] = e
			} else {
				want = slices.Insert(want, i, e)
			}
		default:
			i := r.IntN(len(want))
			e := want[i]
			if r.IntN(10) == 0 {
				e.Dot.TS++ // most likely not held
			}
			_, found := slices.BinarySearchFunc(want, e, compareND)
			if tr.has(e.Name, e.Dot) != found {
				t.Fatalf("step %d: has %v", step, !found)
			}
			old, ok := tr.delete(e.Name, e.Dot)
			if ok != found || ok && compareElem(old, e) != 0 {
				t.Fatalf("step %d: delete %v, want %v", step, ok, found)
			}
			if found {
				want = slices.Delete(want, i, i+1)
			}
		}
		if step%1000 == 0 {
			snaps = append(snaps, snap{tr.copy(), slices.Clone(want)})
		}
		if step%2500 == 0 {
			checkRuns(t, &tr, want)
			for range 50 {
				i := r.IntN(len(want))
				if compareElem(tr.at(i), want[i]) != 0 {
					t.Fatalf("at %d", i)
				}
				var up, down []Elem
				tr.ascendAt(i, func(c *runCursor) bool { up = append(up, c.elem(nil)); return len(up) < 40 })
				tr.descendAt(i, func(e Elem) bool { down = append(down, e); return len(down) < 40 })
				for k, e := range up {
					if compareElem(e, want[i+k]) != 0 {
						t.Fatalf("ascend from %d", i)
					}
				}
				for k, e := range down {
					if compareElem(e, want[i-k]) != 0 {
						t.Fatalf("descend from %d", i)
					}
				}
				name := want[i].Name
				var run []Elem
				for _, e := range want {
					if bytes.Equal(e.Name, name) {
						run = append(run, e)
					}
				}
				if !tr.named(name) || !slices.EqualFunc(tr.run(name), run, func(a, b Elem) bool { return compareElem(a, b) == 0 }) {
					t.Fatalf("run of %x", name)
				}
			}
		}
	}
	checkRuns(t, &tr, want)
	for _, s := range snaps { // copies are untouched by later changes
		checkRuns(t, &s.tr, s.want)
	}
	var loaded runTree
	if !loaded.load(want) {
		t.Fatal("load refused sorted elements")
	}
	checkRuns(t, &loaded, want)
	for len(want) > 0 { // empty it from both ends
		e := want[0]
		if len(want)%2 == 0 {
			e = want[len(want)-1]
			want = want[:len(want)-1]
		} else {
			want = want[1:]
		}
		if _, ok := loaded.delete(e.Name, e.Dot); !ok {
			t.Fatal("loaded tree lost an element")
		}
		if len(want)%997 == 0 {
			checkRuns(t, &loaded, want)
		}
	}
	if loaded.root != nil || loaded.nodes != 0 || loaded.data != 0 {
		t.Fatalf("empty tree holds %d nodes, %d bytes", loaded.nodes, loaded.data)
	}
}

// TestRunTreeTail works a list at its tail, as RPUSH and RPOP do, where
// reads and writes start from each leaf's last element rather than its
// run's start: every read is checked against a plain list, and the leaves'
// tails against their runs (checkRuns).
func TestRunTreeTail(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var tr runTree
	var want []Elem
	next := int64(0)
	for step := range 20_000 {
		switch {
		case r.IntN(3) > 0 || len(want) == 0: // push at the tail, now and then a level deeper
			e := tailPush(r, step, &next, want)
			if _, replaced := tr.set(e); replaced {
				t.Fatalf("step %d: a push replaced an element", step)
			}
			want = append(want, e)
		case r.IntN(4) == 0: // an LSET of the last
			e := want[len(want)-1]
			e.Value = []byte("set")
			if old, replaced := tr.set(e); !replaced || compareElem(old, want[len(want)-1]) != 0 {
				t.Fatalf("step %d: set of the last replaced %v", step, replaced)
			}
			want[len(want)-1] = e
		default: // pop the tail
			e := want[len(want)-1]
			if !tr.has(e.Name, e.Dot) || !tr.named(e.Name) {
				t.Fatalf("step %d: the last element is not found", step)
			}
			if old, ok := tr.delete(e.Name, e.Dot); !ok || compareElem(old, e) != 0 {
				t.Fatalf("step %d: pop %v", step, ok)
			}
			want = want[:len(want)-1]
			if tr.named(e.Name) || tr.has(e.Name, e.Dot) {
				t.Fatalf("step %d: a popped element is found", step)
			}
		}
		if len(want) > 0 {
			if got := tr.at(len(want) - 1); compareElem(got, want[len(want)-1]) != 0 {
				t.Fatalf("step %d: the last element reads %x", step, got.Name)
			}
			var up []Elem
			tr.ascendAt(len(want)-1, func(c *runCursor) bool { up = append(up, c.elem(nil)); return true })
			if len(up) != 1 || compareElem(up[0], want[len(want)-1]) != 0 {
				t.Fatalf("step %d: ascend from the last reads %d elements", step, len(up))
			}
			var down []Elem
			tr.descendAt(len(want)-1, func(e Elem) bool { down = append(down, e); return len(down) < 3 })
			for k, e := range down {
				if compareElem(e, want[len(want)-1-k]) != 0 {
					t.Fatalf("step %d: descend from the last reads %x at %d", step, e.Name, k)
				}
			}
			if len(down) != min(3, len(want)) {
				t.Fatalf("step %d: descend from the last reads %d elements", step, len(down))
			}
			last := want[len(want)-1].Name
			if run := tr.run(last); len(run) != 1 || compareElem(run[0], want[len(want)-1]) != 0 {
				t.Fatalf("step %d: run of the last holds %d", step, len(run))
			}
		}
		if step%500 == 0 {
			checkRuns(t, &tr, want)
		}
	}
	checkRuns(t, &tr, want)
}

// TestRunTreePopsFromTail pops a list from its tail in long runs, as RPOP
// does, with now and then a push, an LSET of the last, a delete inside the
// last leaf, and a copy taken that the pops after must leave as it was:
// each leaf's tails back (runNode.back) are checked against its run, and
// every state against a plain list.
func TestRunTreePopsFromTail(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 3))
	var tr runTree
	var want []Elem
	next := int64(0)
	push := func(step int) {
		e := tailPush(r, step, &next, want)
		tr.set(e)
		want = append(want, e)
	}
	for i := range 3000 {
		push(i)
	}
	type held struct {
		tr   runTree
		want []Elem
	}
	var copies []held
	for step := 3000; step < 30_000; step++ {
		switch k := r.IntN(100); {
		case k < 8 || len(want) == 0:
			for range 1 + r.IntN(20) {
				push(step)
			}
		case k < 10:
			e := want[len(want)-1]
			e.Value = []byte("set")
			tr.set(e)
			want[len(want)-1] = e
		case k < 12 && len(want) > 3: // a delete just before the last
			i := len(want) - 1 - 1 - r.IntN(2)
			if _, ok := tr.delete(want[i].Name, want[i].Dot); !ok {
				t.Fatalf("step %d: delete of %d of %d not found", step, i, len(want))
			}
			want = slices.Delete(want, i, i+1)
		case k < 13:
			copies = append(copies, held{tr.copy(), slices.Clone(want)})
		default:
			e := want[len(want)-1]
			if old, ok := tr.delete(e.Name, e.Dot); !ok || compareElem(old, e) != 0 {
				t.Fatalf("step %d: pop %v", step, ok)
			}
			want = want[:len(want)-1]
			if _, ok := tr.delete(e.Name, e.Dot); ok {
				t.Fatalf("step %d: a popped element deleted again", step)
			}
		}
		if len(want) > 0 {
			if got := tr.at(len(want) - 1); compareElem(got, want[len(want)-1]) != 0 {
				t.Fatalf("step %d: the last element reads %x", step, got.Name)
			}
		}
		if step%300 == 0 {
			checkRuns(t, &tr, want)
		}
	}
	checkRuns(t, &tr, want)
	for i := range copies {
		checkRuns(t, &copies[i].tr, copies[i].want)
	}
}

// tailPush is a random push after want's last element at step: now and
// then a level deeper than it, and now and then with a dot that is not its
// last level's. next is the next free position of the first level.
func tailPush(r *rand.Rand, step int, next *int64, want []Elem) Elem {
	d := v(uint64(step+1), NodeID(1+r.IntN(2)))
	name := appendLevel(nil, level{*next, d})
	if r.IntN(8) == 0 && len(want) > 0 {
		name = appendLevel(slices.Clone(want[len(want)-1].Name), level{int64(r.IntN(3)), d})
	} else {
		*next += int64(1 + r.IntN(3))
	}
	e := Elem{Name: name, Dot: d, Value: bytes.Repeat([]byte{'v'}, r.IntN(40))}
	if r.IntN(10) == 0 {
		e.Dot.TS++
	}
	return e
}

// A list pushed at both ends keeps its end leaves, which each push copies,
// at endRunBytes, and its other leaves joined up to maxRunBytes: nearly
// all of its bytes in leaves over half of maxRunBytes.
func TestRunTreeEndLeaves(t *testing.T) {
	var tr runTree
	var heads, tails []Elem
	value := []byte("element:000000000000")
	for i := range 20_000 {
		d := v(uint64(10+i), 1)
		tail := Elem{Name: appendLevel(nil, level{int64(i + 1), d}), Dot: d, Value: value}
		tr.set(tail)
		d.TS += 1 << 20
		head := Elem{Name: appendLevel(nil, level{int64(-i - 1), d}), Dot: d, Value: value}
		tr.set(head)
		heads, tails = append(heads, head), append(tails, tail)
	}
	slices.Reverse(heads)
	checkRuns(t, &tr, append(heads, tails...))
	var leaves []*runNode
	var walk func(n *runNode)
	walk = func(n *runNode) {
		if n.kids == nil {
			leaves = append(leaves, n)
		}
		for _, k := range n.kids {
			walk(k)
		}
	}
	walk(tr.root)
	for _, l := range []*runNode{leaves[0], leaves[len(leaves)-1]} {
		if len(l.data) > endRunBytes {
			t.Errorf("an end leaf holds %d bytes, over %d", len(l.data), endRunBytes)
		}
	}
	var full int64
	for _, l := range leaves {
		if len(l.data) > maxRunBytes/2 {
			full += int64(len(l.data))
		}
	}
	if full < tr.data*9/10 {
		t.Errorf("%d of %d bytes in leaves over %d bytes, in %d leaves", full, tr.data, maxRunBytes/2, len(leaves))
	}
}
