package record

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/redmesh/redmesh/hlc"
)

// sameListView compares two lists element by element.
func sameListView(a, b ListView) bool {
	if a.Len() != b.Len() {
		return false
	}
	var xs []Elem // At(i) on each index would decode its leaf from the start each time
	a.Ascend(0, func(e Elem) bool { xs = append(xs, e); return true })
	same, i := true, 0
	b.Ascend(0, func(e Elem) bool {
		same = compareElem(xs[i], e) == 0
		i++
		return same
	})
	return same
}

func listValues(t *Typed) []string {
	var out []string
	v := t.ListView()
	v.Ascend(0, func(e Elem) bool { out = append(out, string(e.Value)); return true })
	return out
}

// listOp builds a list write as the node's commands do.
func listOp(cur Record, d Version, fn func(op *TypedOp) error) Record {
	n := d
	op := BeginTyped(cur, cur.Typed.ListLen() > 0, KindList, d, func() (Version, error) {
		n.TS++
		return n, nil
	})
	if err := fn(op); err != nil {
		panic(err)
	}
	return op.Delta()
}

func rpush(cur Record, d Version, values ...string) Record {
	return listOp(cur, d, func(op *TypedOp) error {
		var last []byte
		if v := cur.Typed.ListView(); v.Len() > 0 {
			last = v.At(v.Len() - 1).Name
		}
		var vs [][]byte
		for _, x := range values {
			vs = append(vs, []byte(x))
		}
		_, err := op.PushListedRun(last, nil, vs)
		return err
	})
}

func lpush(cur Record, d Version, values ...string) Record {
	return listOp(cur, d, func(op *TypedOp) error {
		var first []byte
		if v := cur.Typed.ListView(); v.Len() > 0 {
			first = v.At(0).Name
		}
		var vs [][]byte
		for _, x := range values {
			vs = slices.Insert(vs, 0, []byte(x))
		}
		_, err := op.PushListedRun(nil, first, vs)
		return err
	})
}

func lpop(cur Record, d Version) Record {
	return listOp(cur, d, func(op *TypedOp) error {
		op.RemListed(cur.Typed.ListView().At(0).Name)
		return nil
	})
}

func TestListPushesConcurrentLandInOneOrder(t *testing.T) {
	base := rpush(Record{}, v(1, 1), "a", "b")
	x := rpush(base, v(10, 1), "x1", "x2")
	y := rpush(base, v(10, 2), "y1")
	h := lpush(base, v(11, 2), "h1", "h2")
	want := []string{"h2", "h1", "a", "b", "x1", "x2", "y1"}
	for _, order := range [][]Record{{base, x, y, h}, {h, y, x, base}, {y, base, h, x}} {
		if got := listValues(merged(order...).Typed); !slices.Equal(got, want) {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

func TestLInsertPlacesBetweenNeighbours(t *testing.T) {
	m := rpush(Record{}, v(1, 1), "a", "b")
	view := m.Typed.ListView()
	a, b := view.At(0).Name, view.At(1).Name
	// Repeated inserts before b and after a, from two nodes.
	for i := range 40 {
		view = m.Typed.ListView()
		var lo, hi []byte
		if i%2 == 0 {
			lo, hi = view.At(view.Len()-2).Name, b
		} else {
			lo, hi = a, view.At(1).Name
		}
		ins := listOp(m, v(uint64(100+i), NodeID(i%3)), func(op *TypedOp) error {
			_, err := op.PushListed(lo, hi, fmt.Appendf(nil, "i%d", i))
			return err
		})
		m = Merge(m, ins)
	}
	got := listValues(m.Typed)
	if got[0] != "a" || got[len(got)-1] != "b" || len(got) != 42 {
		t.Fatalf("list %v", got)
	}
	for _, e := range m.Typed.ListElements() {
		if len(e.Name) > 4*(minLevelLen+8) {
			t.Fatalf("position of %d bytes after 40 inserts", len(e.Name))
		}
	}
}

func TestBetweenIsStrictlyBetween(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 7))
	var pos [][]byte
	for i := range 3000 {
		d := v(uint64(1000+i), NodeID(r.IntN(4)))
		var lo, hi []byte
		if len(pos) > 0 {
			k := r.IntN(len(pos) + 1)
			if k > 0 {
				lo = pos[k-1]
			}
			if k < len(pos) {
				hi = pos[k]
			}
		}
		p, err := Between(lo, hi, d)
		if err != nil {
			t.Fatal(err)
		}
		if lo != nil && bytes.Compare(lo, p) >= 0 || hi != nil && bytes.Compare(p, hi) >= 0 {
			t.Fatalf("%x not between %x and %x", p, lo, hi)
		}
		if !ValidPosition(p) {
			t.Fatalf("invalid position %x", p)
		}
		i, _ := slices.BinarySearchFunc(pos, p, bytes.Compare)
		pos = slices.Insert(pos, i, p)
	}
	// Bounds: the integers' ends descend a level.
	top := appendLevel(nil, level{math.MaxInt64, v(1, 1)})
	if p, err := Between(top, nil, v(2, 2)); err != nil || bytes.Compare(p, top) <= 0 {
		t.Fatalf("after the largest integer: %x, %v", p, err)
	}
	bottom := appendLevel(nil, level{math.MinInt64, v(1, 1)})
	if _, err := Between(nil, bottom, v(2, 2)); err == nil {
		t.Fatal("before the smallest integer must fail, not wrap")
	}
	if _, err := Between(top, top, v(2, 2)); err == nil {
		t.Fatal("between a position and itself")
	}
}

func TestLevelEncodingOrder(t *testing.T) {
	ns := []int64{math.MinInt64, -1 << 40, -65537, -257, -256, -255, -2, -1, 0, 1, 255, 256, 65535, 1 << 40, math.MaxInt64}
	var prev []byte
	for _, n := range ns {
		b := appendLevel(nil, level{n, v(5, 5)})
		l, rest, ok := readLevel(b)
		if !ok || len(rest) != 0 || l.n != n {
			t.Fatalf("%d: read back %d %v", n, l.n, ok)
		}
		if prev != nil && bytes.Compare(prev, b) >= 0 {
			t.Fatalf("%d does not sort after its predecessor", n)
		}
		prev = b
	}
	if ValidPosition([]byte{0x82, 0x00, 0x01}) || ValidPosition(append([]byte{0x82, 0x00, 0x01}, make([]byte, 16)...)) {
		t.Fatal("a non-canonical integer was accepted")
	}
}

func TestLSetLastWriterWinsAndPopsRemoveWhatTheyObserved(t *testing.T) {
	base := rpush(Record{}, v(1, 1), "a", "b")
	pos := base.Typed.ListView().At(0).Name
	set1 := listOp(base, v(5, 1), func(op *TypedOp) error { return op.SetListed(pos, []byte("s1")) })
	set2 := listOp(base, v(5, 2), func(op *TypedOp) error { return op.SetListed(pos, []byte("s2")) })
	for _, order := range [][]Record{{base, set1, set2}, {set2, base, set1}} {
		m := merged(order...)
		if got := listValues(m.Typed); !slices.Equal(got, []string{"s2", "b"}) {
			t.Fatalf("concurrent LSETs: %v", got)
		}
	}
	// Two nodes pop the head at once: both took "a" (at least once); the
	// list loses it once.
	p1, p2 := lpop(base, v(6, 1)), lpop(base, v(6, 2))
	if got := listValues(merged(base, p1, p2).Typed); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("concurrent pops: %v", got)
	}
	// A pop concurrent with a push keeps the push.
	push := lpush(base, v(7, 2), "new")
	if got := listValues(merged(base, push, p1).Typed); !slices.Equal(got, []string{"new", "b"}) {
		t.Fatalf("pop ∥ push: %v", got)
	}
	// An LSET the pop did not observe keeps the element (add wins).
	if got := listValues(merged(base, set2, p1).Typed); !slices.Equal(got, []string{"s2", "b"}) {
		t.Fatalf("pop ∥ lset: %v", got)
	}
	// A DEL removes what it saw; the traces go once stable.
	all := merged(base, push)
	del := delKey(v(9, 1), all)
	m := merged(all, del)
	if m.Exists() {
		t.Fatalf("after DEL: %v", listValues(m.Typed))
	}
	if _, gone, _ := m.Collect(v(9, 1).TS, 0); !gone {
		t.Fatal("a deleted list's traces are not collected once stable")
	}
}

// A large list's view by index matches the list read in order, through
// merges and removes.
func TestLargeListIndex(t *testing.T) {
	m := rpush(Record{}, v(1, 1))
	var vals []string
	for i := range 600 {
		vals = append(vals, fmt.Sprint(i))
	}
	m = Merge(m, rpush(m, v(10, 1), vals...))
	m = Merge(m, lpush(m, v(5000, 2), "h"))
	if m.Typed.big == nil {
		t.Fatal("not large")
	}
	for range 50 {
		m = Merge(m, lpop(m, v(uint64(m.Newest().TS)+1, 1)))
	}
	view := m.Typed.ListView()
	if view.runs.root == nil || view.Len() != 551 || m.Typed.ListLen() != 551 {
		t.Fatalf("len %d (runs %v)", view.Len(), view.runs.root != nil)
	}
	small, err := DecodeTyped(AppendTyped(nil, m.Typed))
	if err != nil {
		t.Fatal(err)
	}
	if !sameListView(view, small.ListView()) || small.digest() != m.Typed.digest() {
		t.Fatal("the large form's view differs from the decoded list")
	}
	if string(view.At(0).Value) != "49" || string(view.At(550).Value) != "599" {
		t.Fatalf("ends %q %q", view.At(0).Value, view.At(550).Value)
	}
	var back []string
	view.Descend(3, func(e Elem) bool { back = append(back, string(e.Value)); return true })
	if !slices.Equal(back, []string{"52", "51", "50", "49"}) {
		t.Fatalf("descend %v", back)
	}
}

func FuzzBetween(f *testing.F) {
	f.Add(appendLevel(nil, level{3, v(1, 1)}), appendLevel(nil, level{4, v(1, 1)}))
	f.Add([]byte{}, appendLevel(nil, level{-1, v(1, 1)}))
	f.Fuzz(func(t *testing.T, lo, hi []byte) {
		if len(lo) == 0 {
			lo = nil
		}
		if len(hi) == 0 {
			hi = nil
		}
		p, err := Between(lo, hi, v(1<<40, 9))
		if err != nil {
			return
		}
		if lo != nil && bytes.Compare(lo, p) >= 0 || hi != nil && bytes.Compare(p, hi) >= 0 || !ValidPosition(p) {
			t.Fatalf("%x not between %x and %x", p, lo, hi)
		}
	})
}

// Collecting a large list's traces, all of them or some, leaves what
// collecting the same state in the small form leaves.
func TestCollectLargeListTraces(t *testing.T) {
	cur := bigList(400)
	for i := range 150 { // pops at the head, at timestamps 1<<20+i
		cur = Merge(cur, listOp(cur, v(uint64(1<<20+i), 2), func(op *TypedOp) error {
			op.RemListed(cur.Typed.ListView().At(0).Name)
			return nil
		}))
	}
	small, err := DecodeTyped(AppendTyped(nil, cur.Typed))
	if err != nil {
		t.Fatal(err)
	}
	// Fewer traces go than stay; more go than stay; all go.
	for _, stable := range []uint64{1<<20 + 70, 1<<20 + 140, 1<<20 + 1000} {
		got, _ := cur.Typed.collect(hlc.Timestamp(stable))
		want, _ := small.collect(hlc.Timestamp(stable))
		if !sameTyped(got, want) || got.HasTraces() != (stable < 1<<20+149) {
			t.Fatalf("collected at %d: the large form differs from the small", stable)
		}
	}
}

// Compacting a large state's trees changes nothing it holds, nor the state
// it was copied from, which merges into the compacted one leave as they were.
func TestCompactKeepsStates(t *testing.T) {
	cur := bigList(1000)
	before := AppendTyped(nil, cur.Typed)
	c := &Typed{Kind: cur.Typed.Kind, KindVersion: cur.Typed.KindVersion, big: cur.Typed.bigCopy()}
	c.big.compact()
	if !sameTyped(c, cur.Typed) {
		t.Fatal("the compacted state differs")
	}
	o := new(Owner)
	next := Record{Typed: c}
	for i := range 300 {
		next, _ = MergeOwned(next, listOp(next, v(uint64(1<<20+i), 2), func(op *TypedOp) error {
			op.RemListed(next.Typed.ListView().At(0).Name)
			return nil
		}), o)
	}
	if !bytes.Equal(AppendTyped(nil, cur.Typed), before) || cur.Typed.ListLen() != 1000 {
		t.Fatal("merges into the compacted state changed the one it was copied from")
	}
	if next.Typed.ListLen() != 700 {
		t.Fatalf("%d elements after 300 pops of 1000", next.Typed.ListLen())
	}
}
