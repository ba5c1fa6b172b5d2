package record

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"unsafe"

	"github.com/redmesh/redmesh/hlc"
)

// A large list's elements are packed in runs: each leaf of a B+tree holds
// consecutive elements in one byte slice, each encoded against the one
// before it (the position's levels it shares, then its new levels' integer
// and timestamp as differences from its neighbour's, the node only where it
// changes, the dot only where it is not the position's own). A push's
// element so costs its value and four or five bytes, and a run of them one
// allocation, where an item of a B-tree of elements (big.go) costs 40 bytes
// and an allocation of its own; Redis keeps a list as such runs too (a
// quicklist of listpacks). Inner nodes count the elements below each child,
// so an index is found in O(log n). The tree is copied on write, as the
// other trees of a large state: a copy shares every node, and a change
// copies the nodes on its path that the copy does not own. No library
// offers a B-tree counted by its leaves' weights rather than its items, so
// this one is written here.
//
// A leaf's bytes are never changed once made: an edit builds the leaf's new
// bytes, so elements read from a leaf (values point into it) stay valid.

const (
	// maxRunBytes is the most bytes a leaf holds before it is split: an
	// edit copies its leaf, so smaller leaves copy less, and larger ones
	// cost less per element (a node, its first key). At 8 KiB a full
	// leaf's run is an object of Go's 8 KiB size class, one to a span: a
	// leaf left by a load shares no span with the garbage of the load's
	// copies, where smaller leaves, several to a span, would leave the
	// spans of a large list's leaves partly empty for good (Go's allocator
	// moves nothing).
	// Redis's quicklist nodes are 8 KiB too (list-max-listpack-size -2).
	maxRunBytes = 8192
	// endRunBytes is the most bytes a leaf pushed to at one of its ends
	// (RPUSH, LPUSH) holds before the push starts a leaf of its own: each
	// push copies its leaf, so a list's end leaf is kept small while it
	// fills, and joined with its full neighbour once full (joinFull).
	endRunBytes = 2048
	// maxRunKids is the most children of an inner node.
	maxRunKids = 32
	// runNodeSize is about a node's memory: the struct, its first key, a
	// leaf's tail levels and its share of its parent's children.
	runNodeSize = 176
)

// runID marks the nodes a tree may change in place: those it made since it
// was last copied.
type runID struct{ _ byte } // not empty: distinct IDs have distinct addresses

// runTree is a list's elements in runs; the zero value is empty.
type runTree struct {
	root  *runNode
	id    *runID
	data  int64 // bytes of the leaves' runs
	nodes int
	plain int64 // bytes of the elements' names and values, as Elems hold them
}

type runNode struct {
	id *runID
	n  int // elements below
	// first and firstDot are the first element's position and dot: what a
	// search by position compares.
	first    string
	firstDot Version
	kids     []*runNode // nil in a leaf
	data     []byte     // a leaf's run
	tail     runTail    // a leaf's
	// back is, for a leaf whose last element was deleted (RPOP), the tail
	// of each shorter run: back[i] is the tail of the run cut after its
	// element i, for i < n-1 (nil otherwise). A delete of the last walks
	// its run once to make it; the next ones take their new tail from it,
	// and their run is a prefix of the one before, so a pop from a list's
	// tail decodes one element rather than the leaf. Never changed in
	// place: the leaves cut from one run share it. memSize leaves it out:
	// about 50 bytes an element, held by the leaves popped from their end
	// (a list's last, as a rule) until their next other edit.
	back []runTail
}

// runTail is where a leaf's last element starts in its run, and the levels
// of the element before it, which that one is encoded against (none for a
// leaf's first element or one after a raw name): a write or read at a
// list's tail (RPUSH, RPOP, LINDEX -1) decodes that one element rather
// than the run from its start.
type runTail struct {
	off int
	lv  []level // never changed in place: copies of a node share it
}

// tailOf is run data's tail, found by decoding it.
func tailOf(data []byte) runTail {
	var c runCursor
	c.reset(data)
	var last runTail
	var bufs [2][4]level
	for k := 0; ; k++ {
		prev := append(bufs[k%2][:0], c.lv...)
		if !c.next() {
			last.lv = cloneLevels(last.lv)
			return last
		}
		last = runTail{off: c.start, lv: prev}
	}
}

// cloneLevels is lv in a slice of its own; nil if empty.
func cloneLevels(lv []level) []level {
	if len(lv) == 0 {
		return nil
	}
	return slices.Clone(lv)
}

func (t *runTree) len() int {
	if t.root == nil {
		return 0
	}
	return t.root.n
}

// encodedSize is about the bytes of the elements' encoding in a typed
// state's (appendList), when no name nor value is longer than 127.
func (t *runTree) encodedSize() int {
	return int(t.plain) + t.len()*(1+versionLen+1)
}

// memSize is about the memory the tree holds.
func (t *runTree) memSize() int64 { return t.data + int64(t.nodes)*runNodeSize }

// copy is a copy of t sharing its nodes; both t and the copy copy a node
// before they change it from now on.
func (t *runTree) copy() runTree {
	t.id = new(runID)
	c := *t
	c.id = new(runID)
	return c
}

func (t *runTree) ensureID() {
	if t.id == nil {
		t.id = new(runID)
	}
}

// mut is n as t may change it: n itself if t made it, else a copy.
func (t *runTree) mut(n *runNode) *runNode {
	if n.id == t.id {
		return n
	}
	c := *n
	c.id = t.id
	if n.kids != nil {
		c.kids = slices.Clone(n.kids)
	}
	return &c
}

func compareKey(aName []byte, aDot Version, bName []byte, bDot Version) int {
	if c := bytes.Compare(aName, bName); c != 0 {
		return c
	}
	return aDot.Compare(bDot)
}

// child is the index of n's child where (name, dot) belongs: the last whose
// first element is not after it, or the first.
func (n *runNode) child(name []byte, dot Version) int {
	s := unsafe.String(unsafe.SliceData(name), len(name)) // compared only
	lo, hi := 1, len(n.kids)                              // the answer is in [lo-1, hi-1]
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		k := n.kids[m]
		c := strings.Compare(k.first, s)
		if c == 0 {
			c = k.firstDot.Compare(dot)
		}
		if c <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

// packed is an element as a run encodes it: its position's levels, or, for
// a name that is not a position (raw), the name alone.
type packed struct {
	lv    []level
	raw   bool
	name  []byte
	dot   Version
	value []byte
}

func toPacked(e Elem, buf []level) packed {
	lv, ok := appendPosition(buf, e.Name)
	return packed{lv: lv, raw: !ok, name: e.Name, dot: e.Dot, value: e.Value}
}

// appendPosition is parsePosition appending to dst.
func appendPosition(dst []level, p []byte) ([]level, bool) {
	if len(p) == 0 {
		return nil, false
	}
	for len(p) > 0 {
		l, rest, ok := readLevel(p)
		if !ok {
			return nil, false
		}
		dst = append(dst, l)
		p = rest
	}
	return dst, true
}

// An element's encoding in a run, after the element before it (prev: its
// levels; none for the first of a run or after a raw name):
//
//	header: bit 0 the dot is the last level's, bit 1 every new level's node
//	        is its reference's, bits 2-4 p, bits 5-7 m (7: more follows)
//	[uvarint p-7] [uvarint m-6, 0 for a raw name]
//	m { varint n-ref.n  varint ts-ref.ts  [node(8)] }
//	[varint ts-last.ts node(8)]   when the dot is not the last level's
//	uvarint valueLen value
//
// p levels are prev's first p; m new ones follow, each against its
// reference: prev's level at its depth, or the level before it. A raw name
// is written whole (uvarint len, name), then its dot (16), then its value.
func refLevel(prev, cur []level, d int) level {
	switch {
	case d < len(prev):
		return prev[d]
	case d > 0:
		return cur[d-1]
	}
	return level{}
}

func appendPacked(dst []byte, prev []level, e packed) []byte {
	if e.raw {
		dst = append(dst, 7<<5, 0)
		dst = appendBytes(dst, e.name)
		dst = appendVersion(dst, e.dot)
		return appendBytes(dst, e.value)
	}
	lv := e.lv
	p := 0
	for p < len(lv) && p < len(prev) && lv[p] == prev[p] {
		p++
	}
	m := len(lv) - p
	same := true
	for d := p; d < len(lv); d++ {
		if lv[d].dot.Node != refLevel(prev, lv, d).dot.Node {
			same = false
		}
	}
	last := lv[len(lv)-1]
	var h byte
	if e.dot == last.dot {
		h |= 1
	}
	if same {
		h |= 2
	}
	h |= byte(min(p, 7))<<2 | byte(min(m, 7))<<5
	dst = append(dst, h)
	if p >= 7 {
		dst = binary.AppendUvarint(dst, uint64(p-7))
	}
	if m >= 7 {
		dst = binary.AppendUvarint(dst, uint64(m-6))
	}
	for d := p; d < len(lv); d++ {
		r := refLevel(prev, lv, d)
		dst = binary.AppendVarint(dst, int64(uint64(lv[d].n)-uint64(r.n)))
		dst = binary.AppendVarint(dst, int64(uint64(lv[d].dot.TS)-uint64(r.dot.TS)))
		if !same {
			dst = binary.BigEndian.AppendUint64(dst, uint64(lv[d].dot.Node))
		}
	}
	if e.dot != last.dot {
		dst = binary.AppendVarint(dst, int64(uint64(e.dot.TS)-uint64(last.dot.TS)))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.dot.Node))
	}
	return appendBytes(dst, e.value)
}

// runCursor decodes a run's elements in order.
type runCursor struct {
	data  []byte
	off   int // of the next element
	start int // of the current one
	name  []byte
	ends  []int // where each level of name ends
	lv    []level
	raw   bool
	dot   Version
	value []byte
	// room for a usual position, so that a cursor allocates nothing
	nameBuf [3 * (minLevelLen + 4)]byte
	endsBuf [3]int
	lvBuf   [3]level
}

func (c *runCursor) reset(data []byte) {
	c.data, c.off, c.start = data, 0, 0
	if c.name == nil {
		c.name, c.ends, c.lv = c.nameBuf[:0], c.endsBuf[:0], c.lvBuf[:0]
	}
	c.name, c.ends, c.lv, c.raw = c.name[:0], c.ends[:0], c.lv[:0], false
}

// resume places c on run data as it is after decoding the element before
// a leaf's last (tl): the next call to next decodes the last element.
func (c *runCursor) resume(data []byte, tl runTail) {
	c.reset(data)
	c.off, c.start = tl.off, tl.off
	for _, l := range tl.lv {
		c.lv = append(c.lv, l)
		c.name = appendLevel(c.name, l)
		c.ends = append(c.ends, len(c.name))
	}
}

// seek places c on leaf n's run where the first element not before (name,
// dot) is decoded next, or before it: at the last element when the one
// before it has a position before name, else at the run's start.
func (c *runCursor) seek(n *runNode, name []byte) {
	if n.n > 1 && len(n.tail.lv) > 0 {
		c.resume(n.data, n.tail)
		if bytes.Compare(c.name, name) < 0 {
			return
		}
	}
	c.reset(n.data)
}

func (c *runCursor) uvarint() uint64 {
	x, k := binary.Uvarint(c.data[c.off:])
	c.off += k
	return x
}

func (c *runCursor) varint() int64 {
	x, k := binary.Varint(c.data[c.off:])
	c.off += k
	return x
}

func (c *runCursor) u64() uint64 {
	x := binary.BigEndian.Uint64(c.data[c.off:])
	c.off += 8
	return x
}

// next decodes the next element; false at the run's end. Runs are made by
// appendPacked only, never read from outside bytes.
func (c *runCursor) next() bool {
	if c.off >= len(c.data) {
		return false
	}
	c.start = c.off
	h := c.data[c.off]
	c.off++
	p, m := int(h>>2&7), int(h>>5)
	if p == 7 {
		p += int(c.uvarint())
	}
	if m == 7 {
		x := c.uvarint()
		if x == 0 {
			c.raw = true
			c.lv, c.ends = c.lv[:0], c.ends[:0]
			n := int(c.uvarint())
			c.name = append(c.name[:0], c.data[c.off:c.off+n]...)
			c.off += n
			c.dot.TS, c.dot.Node = hlc.Timestamp(c.u64()), NodeID(c.u64())
			c.readValue()
			return true
		}
		m = 6 + int(x)
	}
	c.raw = false
	old := len(c.lv)
	if p > 0 {
		c.name = c.name[:c.ends[p-1]]
	} else {
		c.name = c.name[:0]
	}
	c.ends = c.ends[:p]
	for d := p; d < p+m; d++ {
		var r level
		switch {
		case d < old:
			r = c.lv[d]
		case d > 0:
			r = c.lv[d-1]
		}
		l := level{n: int64(uint64(r.n) + uint64(c.varint()))}
		l.dot.TS = hlc.Timestamp(uint64(r.dot.TS) + uint64(c.varint()))
		if h&2 != 0 {
			l.dot.Node = r.dot.Node
		} else {
			l.dot.Node = NodeID(c.u64())
		}
		if d < len(c.lv) {
			c.lv[d] = l
		} else {
			c.lv = append(c.lv, l)
		}
		c.name = appendLevel(c.name, l)
		c.ends = append(c.ends, len(c.name))
	}
	c.lv = c.lv[:p+m]
	last := c.lv[p+m-1]
	c.dot = last.dot
	if h&1 == 0 {
		c.dot.TS = hlc.Timestamp(uint64(last.dot.TS) + uint64(c.varint()))
		c.dot.Node = NodeID(c.u64())
	}
	c.readValue()
	return true
}

func (c *runCursor) readValue() {
	n := int(c.uvarint())
	c.value = nil
	if n > 0 {
		c.value = c.data[c.off : c.off+n : c.off+n]
	}
	c.off += n
}

func (c *runCursor) compare(name []byte, dot Version) int {
	return compareKey(c.name, c.dot, name, dot)
}

func (c *runCursor) packed() packed {
	return packed{lv: c.lv, raw: c.raw, name: c.name, dot: c.dot, value: c.value}
}

// elem is the current element, its name copied (into *arena when given,
// a block shared by the names of one read) and its value pointing into the
// run.
func (c *runCursor) elem(arena *[]byte) Elem {
	var name []byte
	if arena == nil {
		name = bytes.Clone(c.name)
	} else {
		a := *arena
		if cap(a)-len(a) < len(c.name) {
			a = make([]byte, 0, max(1024, len(c.name)))
		}
		k := len(a)
		a = append(a, c.name...)
		name = a[k:len(a):len(a)]
		*arena = a
	}
	return Elem{Name: name, Dot: c.dot, Value: c.value}
}

// splice is run data with its bytes [from, to) replaced by ins, then the
// element after them, nxt (if any), encoded against ins's last levels
// insLv, then data[rest:]: one allocation of the exact size.
func splice(data []byte, from int, ins []byte, insLv []level, nxt *packed, rest int) []byte {
	var buf [64]byte
	tail := buf[:0]
	if nxt != nil {
		tail = appendPacked(tail, insLv, *nxt)
	}
	out := make([]byte, 0, from+len(ins)+len(tail)+len(data)-rest)
	out = append(out, data[:from]...)
	out = append(out, ins...)
	out = append(out, tail...)
	return append(out, data[rest:]...)
}

// leafSet puts e in leaf n's run: the new run and its tail, the element e
// replaced (same name and dot) if any, and e's index in the run. An
// element after the run's last, or replacing it, is found from the tail.
func leafSet(n *runNode, e packed) (out []byte, tl runTail, old Elem, replaced bool, at int) {
	data := n.data
	var c runCursor
	var buf [64]byte
	if n.n > 0 {
		c.resume(data, n.tail)
		c.next()
		switch cmp := c.compare(e.name, e.dot); {
		case cmp < 0:
			ins := appendPacked(buf[:0], c.lv, e)
			tl = runTail{off: len(data), lv: cloneLevels(c.lv)}
			return splice(data, len(data), ins, nil, nil, len(data)), tl, Elem{}, false, n.n
		case cmp == 0:
			ins := appendPacked(buf[:0], n.tail.lv, e)
			return splice(data, c.start, ins, nil, nil, c.off), n.tail, c.elem(nil), true, n.n - 1
		}
	}
	c.reset(data)
	var prevBuf [4]level
	prev := prevBuf[:0]
	for i := 0; ; i++ {
		prev = append(prev[:0], c.lv...)
		if !c.next() {
			ins := appendPacked(buf[:0], prev, e)
			return splice(data, len(data), ins, nil, nil, len(data)), runTail{off: len(data), lv: cloneLevels(prev)}, Elem{}, false, i
		}
		cmp := c.compare(e.name, e.dot)
		if cmp < 0 {
			continue
		}
		ins := appendPacked(buf[:0], prev, e)
		if cmp == 0 {
			out = splice(data, c.start, ins, nil, nil, c.off)
			tl = n.tail
			if i < n.n-1 {
				tl.off += len(out) - len(data)
			}
			return out, tl, c.elem(nil), true, i
		}
		nxt := c.packed()
		var eLv []level
		if !e.raw {
			eLv = e.lv
		}
		out = splice(data, c.start, ins, eLv, &nxt, c.off)
		if i == n.n-1 {
			// before the last, which is now encoded against e
			tl = runTail{off: c.start + len(ins), lv: cloneLevels(eLv)}
		} else {
			tl = n.tail
			tl.off += len(out) - len(data)
		}
		return out, tl, Elem{}, false, i
	}
}

// leafDelete removes the element (name, dot) from leaf n's run: the new run
// and its tail, and its back (see runNode.back); the element, its index; ok
// false if the run does not hold it. The last element is found from the
// tail: the run without it is a prefix of the run, which shares its bytes
// (they never change).
func leafDelete(n *runNode, name []byte, dot Version) (out []byte, tl runTail, back []runTail, old Elem, ok bool, at int) {
	data := n.data
	var c runCursor
	if n.n > 0 {
		c.resume(data, n.tail)
		c.next()
		switch cmp := c.compare(name, dot); {
		case cmp < 0:
			return data, n.tail, n.back, Elem{}, false, 0
		case cmp == 0:
			old = c.elem(nil)
			if n.n == 1 {
				return nil, runTail{}, nil, old, true, 0
			}
			back = n.back
			if back == nil {
				back = runBacks(data, n.n-1)
			}
			k := n.n - 2
			return data[:n.tail.off:n.tail.off], back[k], back[:k:k], old, true, n.n - 1
		}
	}
	c.reset(data)
	var prevBuf [4]level
	prev := prevBuf[:0]
	for i := 0; ; i++ {
		prev = append(prev[:0], c.lv...)
		if !c.next() {
			return data, n.tail, n.back, Elem{}, false, 0
		}
		cmp := c.compare(name, dot)
		if cmp < 0 {
			continue
		}
		if cmp > 0 {
			return data, n.tail, n.back, Elem{}, false, 0
		}
		old, start := c.elem(nil), c.start
		c.next() // not the last: that one was found from the tail
		nxt := c.packed()
		out = splice(data, start, nil, prev, &nxt, c.off)
		if i == n.n-2 {
			// before the last, which is now encoded against the one before
			tl = runTail{off: start, lv: cloneLevels(prev)}
		} else {
			tl = n.tail
			tl.off += len(out) - len(data)
		}
		return out, tl, nil, old, true, i
	}
}

// runBacks is a back (see runNode.back) for the run data's first k
// elements: the tail each prefix of the run would have, from one walk, the
// levels of all in one allocation.
func runBacks(data []byte, k int) []runTail {
	back := make([]runTail, k)
	ends := make([]int, k)
	var flat []level
	var c runCursor
	c.reset(data)
	for i := range k {
		flat = append(flat, c.lv...)
		ends[i] = len(flat)
		c.next()
		back[i].off = c.start
	}
	from := 0
	for i := range back {
		if ends[i] > from {
			back[i].lv = flat[from:ends[i]:ends[i]]
		}
		from = ends[i]
	}
	return back
}

// leafCut splits a run before its element k (0 < k < its length).
func leafCut(data []byte, k int) (left, right []byte) {
	var c runCursor
	c.reset(data)
	for range k + 1 {
		c.next()
	}
	left = slices.Clip(bytes.Clone(data[:c.start]))
	nxt := c.packed()
	return left, splice(data, 0, nil, nil, &nxt, c.off)
}

// leafMiddle is the index of the first element of a run that starts in its
// second half (at least 1).
func leafMiddle(data []byte) int {
	var c runCursor
	c.reset(data)
	for i := 0; c.next(); i++ {
		if i > 0 && c.start >= len(data)/2 {
			return i
		}
	}
	return 1
}

// leafJoin is run a followed by run b.
func leafJoin(a, b []byte) []byte {
	var c, d runCursor
	c.reset(a)
	for c.next() {
	}
	d.reset(b)
	if !d.next() {
		return a
	}
	var buf [64]byte
	mid := appendPacked(buf[:0], c.lv, d.packed())
	out := make([]byte, 0, len(a)+len(mid)+len(b)-d.off)
	return append(append(append(out, a...), mid...), b[d.off:]...)
}

// setFirst sets a leaf's first key from its run.
func (n *runNode) setFirst() {
	var c runCursor
	c.reset(n.data)
	if c.next() {
		n.first, n.firstDot = string(c.name), c.dot
	}
}

// newLeaf is a leaf of t holding run data.
func (t *runTree) newLeaf(data []byte, n int) *runNode {
	return t.newLeafTail(data, n, tailOf(data))
}

// newLeafTail is newLeaf for a run whose tail the caller knows.
func (t *runTree) newLeafTail(data []byte, n int, tl runTail) *runNode {
	l := &runNode{id: t.id, n: n, data: data, tail: tl}
	l.setFirst()
	t.nodes++
	t.data += int64(len(data))
	return l
}

// set puts e in the tree: the element it replaced (same name and dot), if
// any.
func (t *runTree) set(e Elem) (old Elem, replaced bool) {
	t.ensureID()
	var buf [4]level
	pe := toPacked(e, buf[:0])
	t.plain += int64(len(e.Name) + len(e.Value))
	if t.root == nil {
		t.root = t.newLeafTail(appendPacked(nil, nil, pe), 1, runTail{})
		return Elem{}, false
	}
	t.root = t.mut(t.root)
	old, replaced, right := t.setIn(t.root, pe)
	t.grow(right)
	if replaced {
		t.plain -= int64(len(old.Name) + len(old.Value))
	}
	return old, replaced
}

// grow puts a new root above the root and right, its new sibling, if any.
func (t *runTree) grow(right *runNode) {
	if right != nil {
		l := t.root
		t.root = &runNode{id: t.id, n: l.n + right.n, first: l.first, firstDot: l.firstDot, kids: []*runNode{l, right}}
		t.nodes++
	}
}

// setIn puts e under n, which t may change; right is a new sibling to put
// after n when n grew past its bounds.
func (t *runTree) setIn(n *runNode, e packed) (old Elem, replaced bool, right *runNode) {
	if n.kids == nil {
		out, tl, old, replaced, at := leafSet(n, e)
		t.data += int64(len(out) - len(n.data))
		n.data, n.tail, n.back = out, tl, nil
		if !replaced {
			n.n++
		}
		if at == 0 {
			n.first, n.firstDot = string(e.name), e.dot
		}
		end := !replaced && (at == 0 || at == n.n-1)
		if n.n > 1 && (len(n.data) > maxRunBytes || end && len(n.data) > endRunBytes) {
			// A push at an end starts a leaf of its own, so that leaves
			// filled from one end stay full (as a quicklist's nodes).
			k := leafMiddle(n.data)
			switch {
			case replaced:
			case at == 0:
				k = 1
			case at == n.n-1:
				k = n.n - 1
			}
			right = t.cutLeaf(n, k)
		}
		return old, replaced, right
	}
	i := n.child(e.name, e.dot)
	c := t.mut(n.kids[i])
	n.kids[i] = c
	old, replaced, r := t.setIn(c, e)
	if !replaced {
		n.n++
	}
	return old, replaced, t.adopt(n, i, r)
}

// adopt puts r, a new sibling of n's child i, after it; it returns n's own
// new sibling if n grew past its bounds.
func (t *runTree) adopt(n *runNode, i int, r *runNode) (right *runNode) {
	if r != nil {
		n.kids = slices.Insert(n.kids, i+1, r)
		t.joinFull(n, i+1)
		t.joinFull(n, i-1)
	}
	n.first, n.firstDot = n.kids[0].first, n.kids[0].firstDot
	if len(n.kids) > maxRunKids {
		h := len(n.kids) / 2
		right = &runNode{id: t.id, kids: slices.Clone(n.kids[h:]), first: n.kids[h].first, firstDot: n.kids[h].firstDot}
		for _, k := range right.kids {
			right.n += k.n
		}
		n.kids = slices.Clone(n.kids[:h])
		n.n -= right.n
		t.nodes++
	}
	return right
}

// cutLeaf moves leaf n's elements from index k on to a new leaf, returned.
func (t *runTree) cutLeaf(n *runNode, k int) *runNode {
	left, right := leafCut(n.data, k)
	t.data += int64(len(left) - len(n.data))
	r := t.newLeaf(right, n.n-k)
	n.data, n.n, n.tail, n.back = left, k, tailOf(left), nil
	return r
}

// delete removes the element (name, dot): the element, and whether the
// tree held it.
func (t *runTree) delete(name []byte, dot Version) (old Elem, ok bool) {
	if t.root == nil {
		return Elem{}, false
	}
	t.ensureID()
	t.root = t.mut(t.root)
	old, ok, right := t.deleteIn(t.root, name, dot)
	t.grow(right)
	if ok {
		t.plain -= int64(len(old.Name) + len(old.Value))
	}
	switch r := t.root; {
	case r.n == 0:
		t.root = nil
		t.nodes--
	case r.kids != nil && len(r.kids) == 1:
		t.root = r.kids[0]
		t.nodes--
	}
	return old, ok
}

// deleteIn removes the element (name, dot) under n, which t may change;
// right is as setIn's: an element's encoding after another than before
// may be longer, and its run so grow past its bound.
func (t *runTree) deleteIn(n *runNode, name []byte, dot Version) (old Elem, ok bool, right *runNode) {
	if n.kids == nil {
		out, tl, back, old, ok, at := leafDelete(n, name, dot)
		if !ok {
			return Elem{}, false, nil
		}
		t.data += int64(len(out) - len(n.data))
		n.data, n.tail, n.back = out, tl, back
		n.n--
		if at == 0 {
			n.setFirst()
		}
		if len(n.data) > maxRunBytes && n.n > 1 {
			right = t.cutLeaf(n, leafMiddle(n.data))
		}
		return old, true, right
	}
	i := n.child(name, dot)
	c := t.mut(n.kids[i])
	n.kids[i] = c
	old, ok, r := t.deleteIn(c, name, dot)
	if !ok {
		return Elem{}, false, nil
	}
	n.n--
	if r != nil {
		return old, true, t.adopt(n, i, r)
	}
	switch {
	case c.n == 0:
		n.kids = slices.Delete(n.kids, i, i+1)
		t.nodes--
		t.data -= int64(len(c.data))
	case c.kids == nil && len(c.data) < maxRunBytes/4 || c.kids != nil && len(c.kids) < maxRunKids/4:
		t.rejoin(n, i)
	}
	if len(n.kids) > 0 {
		n.first, n.firstDot = n.kids[0].first, n.kids[0].firstDot
	}
	return old, true, nil
}

// joinFull joins n's children i and i+1 when both are leaves at least half
// of endRunBytes and the two fit in one leaf: a leaf a push at an end cut
// off full joins its neighbour, so that a list filled from an end is made
// of leaves of up to maxRunBytes while its end leaf, which each push
// copies, stays small.
func (t *runTree) joinFull(n *runNode, i int) {
	if i < 0 || i+1 >= len(n.kids) {
		return
	}
	a, b := n.kids[i], n.kids[i+1]
	if a.kids != nil || b.kids != nil || len(a.data) < endRunBytes/2 || len(b.data) < endRunBytes/2 || len(a.data)+len(b.data) > maxRunBytes {
		return
	}
	t.rejoin(n, i)
}

// rejoin merges n's small child i with a neighbour, when the two fit in one.
func (t *runTree) rejoin(n *runNode, i int) {
	if len(n.kids) < 2 {
		return
	}
	if i == len(n.kids)-1 {
		i--
	}
	a, b := n.kids[i], n.kids[i+1]
	if a.kids == nil != (b.kids == nil) {
		return
	}
	if a.kids == nil {
		if len(a.data)+len(b.data) > maxRunBytes {
			return
		}
		joined := leafJoin(a.data, b.data)
		if len(joined) > maxRunBytes {
			return
		}
		a = t.mut(a)
		t.data += int64(len(joined) - len(a.data) - len(b.data))
		a.data, a.tail, a.back = joined, tailOf(joined), nil
	} else {
		if len(a.kids)+len(b.kids) > maxRunKids {
			return
		}
		a = t.mut(a)
		a.kids = append(slices.Clip(a.kids), b.kids...)
	}
	a.n += b.n
	n.kids[i] = a
	n.kids = slices.Delete(n.kids, i+1, i+2)
	t.nodes--
}

// ascend calls fn with each element from the first not before (name, dot)
// (every element for a nil name) until fn returns false. The cursor is
// fn's only for the call.
func (t *runTree) ascend(name []byte, dot Version, fn func(*runCursor) bool) {
	if t.root != nil {
		ascendRuns(t.root, name, dot, name != nil, fn)
	}
}

func ascendRuns(n *runNode, name []byte, dot Version, seek bool, fn func(*runCursor) bool) bool {
	if n.kids == nil {
		var c runCursor
		if seek {
			c.seek(n, name)
		} else {
			c.reset(n.data)
		}
		for c.next() {
			if seek && c.compare(name, dot) < 0 {
				continue
			}
			if !fn(&c) {
				return false
			}
		}
		return true
	}
	i := 0
	if seek {
		i = n.child(name, dot)
	}
	for j, k := range n.kids[i:] {
		if !ascendRuns(k, name, dot, seek && j == 0, fn) {
			return false
		}
	}
	return true
}

// ascendAt calls fn with each element from index i on until fn returns
// false.
func (t *runTree) ascendAt(i int, fn func(*runCursor) bool) {
	if t.root != nil && i >= 0 && i < t.root.n {
		ascendRunsAt(t.root, i, fn)
	}
}

func ascendRunsAt(n *runNode, i int, fn func(*runCursor) bool) bool {
	if n.kids == nil {
		var c runCursor
		j := 0
		if i == n.n-1 {
			c.resume(n.data, n.tail)
			j = i
		} else {
			c.reset(n.data)
		}
		for ; c.next(); j++ {
			if j >= i && !fn(&c) {
				return false
			}
		}
		return true
	}
	for _, k := range n.kids {
		if i >= k.n {
			i -= k.n
			continue
		}
		if !ascendRunsAt(k, i, fn) {
			return false
		}
		i = 0
	}
	return true
}

// descendAt calls fn with each element from index i down until fn returns
// false.
func (t *runTree) descendAt(i int, fn func(Elem) bool) {
	if t.root != nil && i >= 0 && i < t.root.n {
		var arena []byte
		descendRunsAt(t.root, i, &arena, fn)
	}
}

func descendRunsAt(n *runNode, i int, arena *[]byte, fn func(Elem) bool) bool {
	if n.kids == nil {
		var c runCursor
		if i == n.n-1 {
			// from the last (RPOP), found from the leaf's tail; its name
			// in a copy of its own, as most such reads list it alone
			c.resume(n.data, n.tail)
			c.next()
			if !fn(c.elem(nil)) {
				return false
			}
			if i--; i < 0 {
				return true
			}
		}
		c.reset(n.data)
		elems := make([]Elem, 0, i+1)
		for j := 0; j <= i && c.next(); j++ {
			elems = append(elems, c.elem(arena))
		}
		for j := len(elems) - 1; j >= 0; j-- {
			if !fn(elems[j]) {
				return false
			}
		}
		return true
	}
	j := 0
	for ; j < len(n.kids)-1 && i >= n.kids[j].n; j++ {
		i -= n.kids[j].n
	}
	for ; j >= 0; j-- {
		if !descendRunsAt(n.kids[j], i, arena, fn) {
			return false
		}
		if j > 0 {
			i = n.kids[j-1].n - 1
		}
	}
	return true
}

// at is the element at index i, 0 <= i < len.
func (t *runTree) at(i int) Elem {
	n := t.root
	for n.kids != nil {
		j := 0
		for ; j < len(n.kids)-1 && i >= n.kids[j].n; j++ {
			i -= n.kids[j].n
		}
		n = n.kids[j]
	}
	var c runCursor
	if i == n.n-1 {
		c.resume(n.data, n.tail)
		i = 0
	} else {
		c.reset(n.data)
	}
	for range i + 1 {
		c.next()
	}
	return c.elem(nil)
}

// has reports whether the tree holds the element (name, dot).
func (t *runTree) has(name []byte, dot Version) bool {
	found := false
	t.ascend(name, dot, func(c *runCursor) bool {
		found = c.compare(name, dot) == 0
		return false
	})
	return found
}

// named reports whether the tree holds an element named name.
func (t *runTree) named(name []byte) bool {
	found := false
	t.ascend(name, Version{}, func(c *runCursor) bool {
		found = bytes.Equal(c.name, name)
		return false
	})
	return found
}

// run is the elements named name, in dot order.
func (t *runTree) run(name []byte) []Elem {
	var out []Elem
	t.ascend(name, Version{}, func(c *runCursor) bool {
		if !bytes.Equal(c.name, name) {
			return false
		}
		out = append(out, c.elem(nil))
		return true
	})
	return out
}

// load fills an empty tree with elems, sorted by name then dot with no two
// alike, in full leaves; false (the tree left empty) if they are not so.
func (t *runTree) load(elems []Elem) bool {
	for i := 1; i < len(elems); i++ {
		if compareND(elems[i-1], elems[i]) >= 0 {
			return false
		}
	}
	t.ensureID()
	var row []*runNode
	var run []byte
	var prev []level
	var tail runTail
	count := 0
	flush := func() {
		if count > 0 {
			row = append(row, t.newLeafTail(slices.Clip(bytes.Clone(run)), count, tail))
		}
		run, prev, count = run[:0], nil, 0
	}
	for _, e := range elems {
		t.plain += int64(len(e.Name) + len(e.Value))
		pe := toPacked(e, nil)
		k := len(run)
		run = appendPacked(run, prev, pe)
		if len(run) > maxRunBytes && count > 0 {
			run = run[:k]
			flush()
			run = appendPacked(run, nil, pe)
			k = 0
		}
		tail = runTail{off: k, lv: prev}
		count++
		if !pe.raw {
			prev = pe.lv
		} else {
			prev = nil
		}
	}
	flush()
	for len(row) > 1 {
		var up []*runNode
		for i := 0; i < len(row); i += maxRunKids {
			kids := slices.Clone(row[i:min(i+maxRunKids, len(row))])
			p := &runNode{id: t.id, kids: kids, first: kids[0].first, firstDot: kids[0].firstDot}
			for _, k := range kids {
				p.n += k.n
			}
			up = append(up, p)
			t.nodes++
		}
		row = up
	}
	if len(row) == 1 {
		t.root = row[0]
	}
	return true
}

// loadList puts a small state's sorted list elements in b's empty runs at
// once; false if they are not strictly ordered (a dot with two values),
// for the caller to insert them one by one.
func (b *bigState) loadList(elems []Elem) bool {
	if len(elems) == 0 || !b.listed.load(elems) {
		return false
	}
	for i, e := range elems {
		if i == 0 || !bytes.Equal(elems[i-1].Name, e.Name) {
			b.names[listList]++
		}
		b.sum += elemHash(listList, e)
	}
	return true
}
