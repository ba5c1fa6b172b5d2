package record

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"

	"github.com/redmesh/redmesh/hlc"
)

// A list's elements are elements of Listed whose Name is the element's
// position and whose Value is its value. Positions are byte strings whose
// order is the list's order, so the list needs no structure of its own: the
// elements sorted by name are the list, a large list's runs of them
// (list_runs.go, a counted B+tree) answer an index in O(log n), and an
// element is added, removed and traced as a hash field is.
//
// A position is a sequence of levels, each an integer and a dot (Logoot's
// identifiers): levels compare by integer, then dot, and a position that is
// a prefix of another comes first. A push takes one level past the end it
// pushes to (the last element's integer plus one, or the first's minus
// one), with the new element's dot, so concurrent pushes at two nodes both
// land, in the order of their dots everywhere; an insert between two
// neighbours takes the shortest position between them (Between), one level
// deeper at most than the deeper of the two. Every position ends with the
// dot of the write that made it, so no two elements share one by chance.
//
// A name with several dots is one element written concurrently by several
// LSETs: the highest dot's value shows, as a hash field's does, and a
// remove (LPOP, LREM, LTRIM, DEL) traces the dots it observed, so an LSET
// it did not observe keeps the element with its value.

// minLevelLen is the shortest level's encoding: a header and a dot.
const minLevelLen = 1 + versionLen

// errPositions is what Between answers when no position fits, which only
// positions at the integers' bounds (a peer's, never a push's) can cause.
var errPositions = errors.New("list positions exhausted between these elements")

// level is one level of a position.
type level struct {
	n   int64
	dot Version
}

func compareLevel(a, b level) int {
	switch {
	case a.n < b.n:
		return -1
	case a.n > b.n:
		return 1
	}
	return a.dot.Compare(b.dot)
}

// appendLevel encodes a level so that encodings compare as levels do: the
// integer in an order-preserving variable length (a header byte that says
// the sign and length, then the bytes), then the dot's timestamp and node,
// big-endian. Every level is self-delimiting, so positions compare as
// sequences of levels.
func appendLevel(dst []byte, l level) []byte {
	if l.n >= 0 {
		k := intLen(uint64(l.n))
		dst = append(dst, byte(0x80+k))
		for i := k - 1; i >= 0; i-- {
			dst = append(dst, byte(uint64(l.n)>>(8*i)))
		}
	} else {
		k := intLen(uint64(^l.n))
		dst = append(dst, byte(0x7f-k))
		for i := k - 1; i >= 0; i-- {
			dst = append(dst, byte(uint64(l.n)>>(8*i)))
		}
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(l.dot.TS))
	return binary.BigEndian.AppendUint64(dst, uint64(l.dot.Node))
}

// intLen is the bytes of x without its leading zero bytes.
func intLen(x uint64) int {
	k := 0
	for x != 0 {
		k++
		x >>= 8
	}
	return k
}

// readLevel decodes the first level of b, refusing an encoding that is not
// the one appendLevel writes (so that equal positions have equal bytes).
func readLevel(b []byte) (level, []byte, bool) {
	if len(b) == 0 {
		return level{}, nil, false
	}
	h := int(b[0])
	var k int
	neg := h < 0x80
	if neg {
		k = 0x7f - h
	} else {
		k = h - 0x80
	}
	if k < 0 || k > 8 || len(b) < 1+k+16 {
		return level{}, nil, false
	}
	var u uint64
	for _, c := range b[1 : 1+k] {
		u = u<<8 | uint64(c)
	}
	var l level
	if neg {
		if k < 8 {
			u |= ^uint64(0) << (8 * k) // sign-extend
		}
		l.n = int64(u)
		if l.n >= 0 || intLen(uint64(^l.n)) != k {
			return level{}, nil, false
		}
	} else {
		l.n = int64(u)
		if l.n < 0 || intLen(u) != k {
			return level{}, nil, false
		}
	}
	b = b[1+k:]
	l.dot = Version{TS: hlc.Timestamp(binary.BigEndian.Uint64(b)), Node: NodeID(binary.BigEndian.Uint64(b[8:]))}
	return l, b[16:], true
}

// parsePosition splits a position into its levels.
func parsePosition(p []byte) ([]level, bool) {
	if len(p) == 0 {
		return nil, false
	}
	var out []level
	for len(p) > 0 {
		l, rest, ok := readLevel(p)
		if !ok {
			return nil, false
		}
		out = append(out, l)
		p = rest
	}
	return out, true
}

// ValidPosition reports whether p is a position as Between makes them.
func ValidPosition(p []byte) bool {
	_, ok := parsePosition(p)
	return ok
}

// Between is a new position strictly between positions lo and hi, ending
// with dot d (a fresh write's, so unique); a nil lo is before the first
// element and a nil hi after the last. It is the shortest the rule below
// allows: at the first level where lo and hi differ, an integer strictly
// between theirs if there is one, else lo's level and one more.
func Between(lo, hi []byte, d Version) ([]byte, error) {
	var a, b []level
	var ok bool
	if lo != nil {
		if a, ok = parsePosition(lo); !ok {
			return nil, errors.New("list position: malformed lower neighbour")
		}
	}
	if hi != nil {
		if b, ok = parsePosition(hi); !ok {
			return nil, errors.New("list position: malformed upper neighbour")
		}
	}
	loEq, hiEq := lo != nil, hi != nil // the levels so far equal lo's, hi's
	var out []byte
	for i := 0; ; i++ {
		if hiEq && i >= len(b) {
			return nil, errors.New("list position: neighbours out of order")
		}
		aHas := loEq && i < len(a)
		switch {
		case !aHas && !hiEq:
			return appendLevel(out, level{0, d}), nil
		case !aHas:
			if b[i].n == math.MinInt64 {
				return nil, errPositions
			}
			return appendLevel(out, level{b[i].n - 1, d}), nil
		case !hiEq:
			if a[i].n < math.MaxInt64 {
				return appendLevel(out, level{a[i].n + 1, d}), nil
			}
		default:
			if compareLevel(a[i], b[i]) > 0 {
				return nil, errors.New("list position: neighbours out of order")
			}
			if a[i].n < b[i].n && uint64(b[i].n-a[i].n) >= 2 {
				return appendLevel(out, level{a[i].n + int64(uint64(b[i].n-a[i].n)/2), d}), nil
			}
			hiEq = a[i] == b[i]
		}
		out = appendLevel(out, a[i]) // one level deeper, under lo's
	}
}

// ListLen is the number of elements of a list.
func (t *Typed) ListLen() int {
	if t == nil {
		return 0
	}
	if t.big != nil {
		return t.big.names[listList]
	}
	n := 0
	t.each(listList, func([]Elem) bool { n++; return true })
	return n
}

// ListView is a list's elements in order, by index: each position once,
// with the value of its highest dot. A large list's runs answer an index
// in O(log n); a small list, or a large one holding a position with
// several dots (concurrent LSETs not yet overwritten), is listed on read.
type ListView struct {
	small []Elem
	runs  runTree // a large list's, when it has no position twice
}

// ListView returns t's list elements in order.
func (t *Typed) ListView() ListView {
	if t == nil {
		return ListView{}
	}
	if t.big != nil && t.big.listed.len() == t.big.names[listList] {
		return ListView{runs: runTree{root: t.big.listed.root}}
	}
	var out []Elem
	t.each(listList, func(run []Elem) bool {
		out = append(out, run[len(run)-1])
		return true
	})
	return ListView{small: out}
}

// Len is the number of elements.
func (v ListView) Len() int {
	if v.runs.root != nil {
		return v.runs.len()
	}
	return len(v.small)
}

// At is the element at index i, 0 <= i < Len: its position (Name), the dot
// of its value and its value. Read-only.
func (v ListView) At(i int) Elem {
	if v.runs.root != nil {
		return v.runs.at(i)
	}
	return v.small[i]
}

// Ascend calls fn with the elements from index i on, until it returns
// false.
func (v ListView) Ascend(i int, fn func(Elem) bool) {
	if i < 0 || i >= v.Len() {
		return
	}
	if v.runs.root != nil {
		var arena []byte
		v.runs.ascendAt(i, func(c *runCursor) bool { return fn(c.elem(&arena)) })
		return
	}
	for _, e := range v.small[i:] {
		if !fn(e) {
			return
		}
	}
}

// Descend calls fn with the elements from index i down, until it returns
// false.
func (v ListView) Descend(i int, fn func(Elem) bool) {
	if i < 0 || i >= v.Len() {
		return
	}
	if v.runs.root != nil {
		v.runs.descendAt(i, fn)
		return
	}
	for j := i; j >= 0; j-- {
		if !fn(v.small[j]) {
			return
		}
	}
}

// ObservedListed is the list element at position pos as a write at
// timestamp at that removes or replaces it observed it: the traces to
// record (every dot it holds).
func (t *Typed) ObservedListed(pos []byte, at hlc.Timestamp) []Elem {
	return traces(t.run(listList, pos), at)
}

// ListElements lists a list's elements with every dot, in order, for
// checkers. They are read-only.
func (t *Typed) ListElements() []Elem {
	var out []Elem
	t.each(listList, func(run []Elem) bool {
		out = append(out, run...)
		return true
	})
	return out
}

// PushListed adds an element with value at a new position between lo and
// hi (nil: an end; see Between). It returns the position.
func (op *TypedOp) PushListed(lo, hi, value []byte) ([]byte, error) {
	d, err := op.dot()
	if err != nil {
		return nil, err
	}
	pos, err := Between(lo, hi, d)
	if err != nil {
		return nil, err
	}
	op.Rec.Typed.Listed = append(op.Rec.Typed.Listed, Elem{Name: pos, Dot: d, Value: value})
	return pos, nil
}

// PushListedRun adds values, in this order, at new positions between lo and
// hi (nil: an end), next to each other: a push of several values is one
// run that a concurrent push elsewhere does not split. A run of more than
// one takes a position between lo and hi (the anchor, which holds no
// element) and puts its values one level under it. It returns the
// positions.
func (op *TypedOp) PushListedRun(lo, hi []byte, values [][]byte) ([][]byte, error) {
	if len(values) == 1 {
		p, err := op.PushListed(lo, hi, values[0])
		return [][]byte{p}, err
	}
	out := make([][]byte, len(values))
	var anchor []byte
	for i, value := range values {
		d, err := op.dot()
		if err != nil {
			return nil, err
		}
		if anchor == nil {
			if anchor, err = Between(lo, hi, d); err != nil {
				return nil, err
			}
		}
		pos := appendLevel(anchor[:len(anchor):len(anchor)], level{int64(i), d})
		op.Rec.Typed.Listed = append(op.Rec.Typed.Listed, Elem{Name: pos, Dot: d, Value: value})
		out[i] = pos
	}
	return out, nil
}

// SetListed writes value at the list element at pos (LSET): the dots it had
// are removed, and the new one, the write's, shows.
func (op *TypedOp) SetListed(pos, value []byte) error {
	t := op.Rec.Typed
	if i := op.ownElem(&t.Listed, pos); i >= 0 {
		t.Listed[i].Value = value
		return nil
	}
	d, err := op.dot()
	if err != nil {
		return err
	}
	t.Removed = append(t.Removed, op.Cur.Typed.ObservedListed(pos, op.V.TS)...)
	t.Listed = append(t.Listed, Elem{Name: pos, Dot: d, Value: value})
	return nil
}

// RemListed removes the list element at pos as the writer sees it.
func (op *TypedOp) RemListed(pos []byte) {
	t := op.Rec.Typed
	if i := op.ownElem(&t.Listed, pos); i >= 0 {
		t.Listed = append(t.Listed[:i:i], t.Listed[i+1:]...)
		op.movedOwn(&t.Listed)
	}
	t.Removed = append(t.Removed, op.Cur.Typed.ObservedListed(pos, op.V.TS)...)
}

// list encoding (see typed_encoding.go): after the sorted set's section,
//
//	n { posLen pos dot(16) valueLen value }

const minListedLen = 1 + minLevelLen + versionLen + 1

func appendList(dst []byte, t *Typed, sp *spiller) []byte {
	dst = binary.AppendUvarint(dst, uint64(t.count(listList)))
	if t.big != nil { // straight from the runs, without an element's copy
		if sp == nil {
			dst = slices.Grow(dst, t.big.listed.encodedSize())
		}
		t.big.listed.ascend(nil, Version{}, func(c *runCursor) bool {
			dst = appendBytes(dst, c.name)
			dst = appendVersion(dst, c.dot)
			dst = appendBytes(dst, c.value)
			dst = sp.check(dst)
			return true
		})
		return dst
	}
	t.each(listList, func(run []Elem) bool {
		for _, e := range run {
			dst = appendBytes(dst, e.Name)
			dst = appendVersion(dst, e.Dot)
			dst = appendBytes(dst, e.Value)
			dst = sp.check(dst)
		}
		return true
	})
	return dst
}

// list reads a list's section: elements in order, at valid positions.
func (r *typedReader) list(t *Typed) {
	n := r.count("list elements", minListedLen)
	if n == 0 || r.err != nil {
		return
	}
	t.Listed = make([]Elem, n)
	for i := range t.Listed {
		e := &t.Listed[i]
		e.Name = r.bytes("list position")
		e.Dot = r.version("list dot")
		e.Value = r.bytes("list value")
		if r.err != nil {
			return
		}
		if !ValidPosition(e.Name) {
			r.fail("malformed list position")
			return
		}
		if i > 0 && compareND(t.Listed[i-1], *e) >= 0 {
			r.fail("list elements out of order")
			return
		}
	}
}
