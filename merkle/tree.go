package merkle

import (
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// Tree is the Merkle index of one store: a leaf digest per bucket and
// interior digests above them, all held in flat arrays because the shape never
// changes.
//
// A leaf digest is the sum modulo 2^64 of the EntryHash of every entry in the
// bucket, so a write adjusts it in O(1) without reading the bucket's other
// keys (a sum rather than XOR so that two equal entries never cancel out).
// An interior digest is xxHash64 of its children's digests (little-endian,
// in order); it is recomputed only when read and marked dirty, so writes stay
// O(1) amortised and a root read refreshes only the paths written since.
//
// A Tree is not safe for concurrent use; its owner serialises writes and
// sessions.
type Tree struct {
	shape  Shape
	levels [][]uint64 // levels[0] is the root, levels[Depth] the leaves
	dirty  [][]bool   // dirty[l][i]: levels[l][i] is stale (l < Depth)
	buf    []byte
}

// NewTree returns an empty tree of the given shape.
func NewTree(shape Shape) (*Tree, error) {
	if err := shape.Validate(); err != nil {
		return nil, err
	}
	t := &Tree{shape: shape, buf: make([]byte, 8*shape.FanOut)}
	t.levels = make([][]uint64, shape.Depth+1)
	t.dirty = make([][]bool, shape.Depth)
	for l := 0; l <= shape.Depth; l++ {
		t.levels[l] = make([]uint64, shape.Width(l))
		if l < shape.Depth {
			d := make([]bool, shape.Width(l))
			for i := range d {
				d[i] = true // an empty subtree's digest is computed on first read
			}
			t.dirty[l] = d
		}
	}
	return t, nil
}

// Shape returns the tree's shape.
func (t *Tree) Shape() Shape { return t.shape }

// Update records that key's versions changed from old to new (nil or empty
// old: the key was absent; nil or empty new: it is gone). It returns the
// bucket and its new leaf digest, which storage persists in the same
// transaction as the write.
func (t *Tree) Update(key []byte, old, new []Version) (bucket uint32, leaf uint64) {
	return t.UpdateIn(t.shape.BucketOf(key), key, old, new)
}

// UpdateIn is Update of a key whose bucket b the caller has computed
// (BucketOf), as for Prefetch.
func (t *Tree) UpdateIn(b uint32, key []byte, old, new []Version) (bucket uint32, leaf uint64) {
	ho, hn := EntryHash(key, old), EntryHash(key, new)
	if ho != hn {
		t.levels[t.shape.Depth][b] += hn - ho
		t.markDirty(b)
	}
	return b, t.levels[t.shape.Depth][b]
}

// Prefetch reads the leaves of buckets, and the flags Update checks above
// them, into the CPU's caches together, before a batch of updates: the
// leaves of a large tree are mostly cache misses, which then overlap rather
// than follow one another. The sum it returns means nothing; returning it
// keeps the loads.
func (t *Tree) Prefetch(buckets []uint32) (sum uint64) {
	leaves := t.levels[t.shape.Depth]
	var above []bool
	if t.shape.Depth > 0 {
		above = t.dirty[t.shape.Depth-1]
	}
	lf := t.shape.logFanOut()
	for _, b := range buckets {
		sum += leaves[b]
		if above != nil && above[b>>lf] {
			sum++
		}
	}
	return sum
}

// Leaf returns the digest of bucket b.
func (t *Tree) Leaf(b uint32) uint64 { return t.levels[t.shape.Depth][b] }

// SetLeaf overwrites the digest of bucket b, for loading persisted digests.
func (t *Tree) SetLeaf(b uint32, d uint64) {
	if t.levels[t.shape.Depth][b] != d {
		t.levels[t.shape.Depth][b] = d
		t.markDirty(b)
	}
}

// markDirty flags the ancestors of leaf b. It stops at the first ancestor
// already dirty, because a dirty node's ancestors are always dirty (a refresh
// cleans a whole subtree, never a node alone), so repeated writes under the
// same stale path cost O(1).
func (t *Tree) markDirty(b uint32) {
	idx := int(b)
	lf := t.shape.logFanOut()
	for l := t.shape.Depth - 1; l >= 0; l-- {
		idx >>= lf
		if t.dirty[l][idx] {
			return
		}
		t.dirty[l][idx] = true
	}
}

// Root returns the root digest.
func (t *Tree) Root() uint64 { return t.Digest(0, 0) }

// Digest returns the digest of node index at level (0 is the root, Depth the
// leaves), refreshing the stale nodes below it first.
func (t *Tree) Digest(level int, index uint32) uint64 {
	if level < 0 || level > t.shape.Depth || int(index) >= len(t.levels[level]) {
		panic(fmt.Sprintf("merkle: node (%d, %d) outside shape %v", level, index, t.shape))
	}
	if level < t.shape.Depth && t.dirty[level][index] {
		t.refresh(level, int(index))
	}
	return t.levels[level][index]
}

func (t *Tree) refresh(level, idx int) {
	f := t.shape.FanOut
	first := idx * f
	if level+1 < t.shape.Depth {
		for c := first; c < first+f; c++ {
			if t.dirty[level+1][c] {
				t.refresh(level+1, c)
			}
		}
	}
	t.levels[level][idx] = t.combine(t.levels[level+1][first : first+f])
	t.dirty[level][idx] = false
}

func (t *Tree) combine(children []uint64) uint64 {
	b := t.buf[:0]
	for _, c := range children {
		b = binary.LittleEndian.AppendUint64(b, c)
	}
	return xxhash.Sum64(b)
}

// Recompute rebuilds every interior digest from the leaves, ignoring the
// dirty flags. It is the reference the lazy refresh must agree with.
func (t *Tree) Recompute() {
	f := t.shape.FanOut
	for l := t.shape.Depth - 1; l >= 0; l-- {
		for i := range t.levels[l] {
			t.levels[l][i] = t.combine(t.levels[l+1][i*f : (i+1)*f])
			t.dirty[l][i] = false
		}
	}
}
