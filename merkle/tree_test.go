package merkle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// The hash scheme is persisted by storage and compared between nodes, so its
// outputs are pinned: if one of these changes, HashXXH64 has been broken.
func TestHashSchemePinned(t *testing.T) {
	cases := []struct {
		name string
		got  uint64
		want uint64
	}{
		{"KeyHash(redmesh)", KeyHash([]byte("redmesh")), pinnedKeyHash},
		{"BucketOf(redmesh)", uint64(BucketOf([]byte("redmesh"))), pinnedKeyHash >> 48},
		{"EntryHash(k,[{1,2},{3,4}])", EntryHash([]byte("k"), []Version{{1, 2}, {3, 4}}), pinnedEntryHash},
		{"trailing zero versions are ignored", EntryHash([]byte("k"), []Version{{1, 2}, {3, 4}, {}}), pinnedEntryHash},
		{"no versions is absent", EntryHash([]byte("k"), []Version{{}}), 0},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

// TestEntryHashOnePass checks EntryHash's one pass over short keys against
// its documented input hashed in pieces, on both sides of the longest key it
// hashes so and for up to four versions.
func TestEntryHashOnePass(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for klen := range entryHashInline + 20 {
		key := make([]byte, klen)
		for i := range key {
			key[i] = byte(r.Uint32())
		}
		for nv := 1; nv <= 4; nv++ {
			vs := make([]Version, nv)
			for i := range vs {
				vs[i] = Version{TS: r.Uint64(), Node: r.Uint64()}
			}
			d := xxhash.New()
			d.Write(binary.AppendUvarint(nil, uint64(klen)))
			d.Write(key)
			for _, v := range vs {
				d.Write(binary.LittleEndian.AppendUint64(nil, v.TS))
				d.Write(binary.LittleEndian.AppendUint64(nil, v.Node))
			}
			if got, want := EntryHash(key, vs), d.Sum64(); got != want {
				t.Fatalf("EntryHash of a %d-byte key and %d versions = %#x, want %#x", klen, nv, got, want)
			}
		}
	}
}

const (
	pinnedKeyHash   = 0x7bc06d78d1d63d94
	pinnedEntryHash = 0x55a8fa6b448a4647
)

func TestShapeValidate(t *testing.T) {
	cases := []struct {
		shape Shape
		ok    bool
	}{
		{DefaultShape, true},
		{Shape{2, 1, HashXXH64}, true},
		{Shape{256, 3, HashXXH64}, true},
		{Shape{16, 6, HashXXH64}, true},
		{Shape{16, 7, HashXXH64}, false}, // 2^28 leaves
		{Shape{12, 4, HashXXH64}, false}, // not a power of two
		{Shape{1, 4, HashXXH64}, false},
		{Shape{512, 2, HashXXH64}, false},
		{Shape{16, 0, HashXXH64}, false},
		{Shape{16, 4, 9}, false},
	}
	for _, c := range cases {
		if err := c.shape.Validate(); (err == nil) != c.ok {
			t.Errorf("%v: err = %v", c.shape, err)
		}
	}
	if _, err := NewTree(Shape{12, 4, HashXXH64}); err == nil {
		t.Error("NewTree accepted a bad shape")
	}
}

func TestBucketRange(t *testing.T) {
	for _, sh := range []Shape{DefaultShape, {2, 1, HashXXH64}, {8, 5, HashXXH64}} {
		for i := range 1000 {
			k := fmt.Appendf(nil, "key%d", i)
			lo, hi := sh.BucketRange(sh.BucketOf(k))
			if h := KeyHash(k); h < lo || h > hi {
				t.Fatalf("%v: hash %#x of %q outside its bucket's range [%#x, %#x]", sh, h, k, lo, hi)
			}
		}
	}
}

func TestTreeUpdates(t *testing.T) {
	v1 := []Version{{10, 1}}
	v2 := []Version{{20, 1}, {20, 1}}
	type op struct {
		key      string
		old, new []Version
	}
	cases := []struct {
		name      string
		ops       []op
		sameAs    []op // the tree after ops equals the tree after these
		emptyRoot bool
	}{
		{name: "add then remove", ops: []op{{"a", nil, v1}, {"a", v1, nil}}, emptyRoot: true},
		{name: "remove then re-add", ops: []op{{"a", nil, v1}, {"a", v1, nil}, {"a", nil, v1}}, sameAs: []op{{"a", nil, v1}}},
		{name: "update", ops: []op{{"a", nil, v1}, {"a", v1, v2}}, sameAs: []op{{"a", nil, v2}}},
		{name: "order does not matter", ops: []op{{"a", nil, v1}, {"b", nil, v2}}, sameAs: []op{{"b", nil, v2}, {"a", nil, v1}}},
		{name: "no-op update", ops: []op{{"a", nil, v1}, {"a", v1, v1}}, sameAs: []op{{"a", nil, v1}}},
		{name: "trailing zero register", ops: []op{{"a", nil, []Version{{10, 1}, {}}}}, sameAs: []op{{"a", nil, v1}}},
		{name: "empty new is removal", ops: []op{{"a", nil, v1}, {"a", v1, []Version{}}}, emptyRoot: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			build := func(ops []op) *Tree {
				tr, err := NewTree(DefaultShape)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range ops {
					b, leaf := tr.Update([]byte(o.key), o.old, o.new)
					if b != BucketOf([]byte(o.key)) || leaf != tr.Leaf(b) {
						t.Fatalf("Update returned (%d, %#x)", b, leaf)
					}
				}
				return tr
			}
			got := build(c.ops)
			empty := build(nil)
			if c.emptyRoot && got.Root() != empty.Root() {
				t.Errorf("root %#x, want the empty tree's %#x", got.Root(), empty.Root())
			}
			if c.sameAs != nil && got.Root() != build(c.sameAs).Root() {
				t.Errorf("root differs from the equivalent tree's")
			}
			if !c.emptyRoot && got.Root() == empty.Root() {
				t.Errorf("root equals the empty tree's")
			}
		})
	}
}

// TestLazyRefresh interleaves random writes with reads of random nodes and
// checks every read against a tree recomputed from scratch.
func TestLazyRefresh(t *testing.T) {
	for _, sh := range []Shape{DefaultShape, {4, 3, HashXXH64}, {2, 6, HashXXH64}} {
		rng := rand.New(rand.NewPCG(9, uint64(sh.FanOut)))
		lazy, _ := NewTree(sh)
		ref, _ := NewTree(sh)
		cur := map[string][]Version{}
		for i := range 3000 {
			k := fmt.Sprintf("k%d", rng.IntN(200))
			var nv []Version
			if rng.IntN(5) > 0 {
				nv = []Version{{uint64(i + 1), uint64(rng.IntN(3))}}
			}
			lazy.Update([]byte(k), cur[k], nv)
			ref.Update([]byte(k), cur[k], nv)
			cur[k] = nv
			if rng.IntN(10) == 0 {
				lvl := rng.IntN(sh.Depth + 1)
				idx := uint32(rng.IntN(sh.Width(lvl)))
				ref.Recompute()
				if got, want := lazy.Digest(lvl, idx), ref.levels[lvl][idx]; got != want {
					t.Fatalf("%v op %d: node (%d,%d) lazy %#x, recomputed %#x", sh, i, lvl, idx, got, want)
				}
			}
		}
		ref.Recompute()
		if lazy.Root() != ref.levels[0][0] {
			t.Fatalf("%v: final roots differ", sh)
		}
		// Loading persisted leaves gives the same tree.
		loaded, _ := NewTree(sh)
		for b := range sh.Leaves() {
			loaded.SetLeaf(uint32(b), lazy.Leaf(uint32(b)))
		}
		if loaded.Root() != lazy.Root() {
			t.Fatalf("%v: tree loaded from leaves has another root", sh)
		}
	}
}

func TestTreeDigestOutsideShapePanics(t *testing.T) {
	tr, _ := NewTree(DefaultShape)
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	tr.Digest(1, 16)
}

func TestShapeErrorIs(t *testing.T) {
	err := error(&ShapeError{Local: DefaultShape, Remote: Shape{4, 4, HashXXH64}})
	if !errors.Is(err, ErrShapeMismatch) {
		t.Fatal("ShapeError is not ErrShapeMismatch")
	}
}

func TestNewerIn(t *testing.T) {
	cases := []struct {
		a, b       []Version
		aNew, bNew bool
	}{
		{[]Version{{2, 1}}, []Version{{1, 9}}, true, false},
		// Digests of typed states: any difference moves both ways.
		{[]Version{{1, 1}, {}, {DigestTS, 5}}, []Version{{1, 1}, {}, {DigestTS, 9}}, true, true},
		{[]Version{{1, 1}, {}, {DigestTS, 5}}, []Version{{1, 1}, {}, {DigestTS, 5}}, false, false},
		{[]Version{{1, 1}, {}, {DigestTS, 5}}, []Version{{1, 1}}, true, false},
		{[]Version{{2, 1}}, []Version{{2, 2}}, false, true}, // same time: node ID decides
		{[]Version{{2, 1}, {1, 1}}, []Version{{1, 1}, {3, 1}}, true, true},
		{[]Version{{2, 1}}, []Version{{2, 1}, {3, 1}}, false, true}, // missing register is zero
		{[]Version{{2, 1}}, []Version{{2, 1}}, false, false},
	}
	for i, c := range cases {
		if a, b := NewerIn(c.a, c.b); a != c.aNew || b != c.bNew {
			t.Errorf("case %d: got (%v, %v)", i, a, b)
		}
	}
}
