package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"

	"github.com/redmesh/redmesh/hlc"
)

// A typed state's encoding: the type register, then counts, fields, members
// and traces, each list a count and its items, in their sorted order (so
// equal states encode alike):
//
//	kind(1) kindVersion(16)
//	n { nameLen name node(8) start(uvarint) ver(16) total(varint) resetVer(16) resetTotal(varint) }
//	[n { index(uvarint) fTotalLen fTotal fResetLen fReset }]   float counts
//	n { nameLen name dot(16) valueLen value }   fields
//	n { nameLen name dot(16) }                  members
//	n { nameLen name dot(16) at(8) }            traces
//	[n { nameLen name node(8) start(uvarint) ver(16) total(8) resetVer(16) resetTotal(8) }
//	 n { nameLen name dot(16) score(8) }]       sorted set (zset.go)
//	[n { posLen pos dot(16) valueLen value }]   list (list.go)
//	[sketch]                                    HyperLogLog (record/hll.go)
//
// A record written with flagShortCounts (every one this build writes) and
// the in-memory form write each count in the short form instead
// (appendCountShort), leaving out what is empty or said already:
//
//	n { parts(1) nameLen name node(8) [ver(16)] start(uvarint) total(varint) [resetVer(16) resetTotal(varint)] }
//
// A kind byte with kindHasFloats set says the float side of some counts
// follows them (exact.go): each such count's index in the counts, in
// order, and its FTotal and FReset. With kindHasHLL set a sketch follows, with kindHasList
// that a list's elements do, with kindHasZSet that a sorted set's score
// counts and members do (scores and totals as
// float64 bits); states without them encode as before. Every state is
// written with kindTimes set: counts carry their run's start and traces
// their removal time. A state written before them decodes with starts of
// zero and, as its traces' time, the newest timestamp the state holds: the
// best its encoding tells (a whole-key delete may have been later).

// minCountLen, minFieldLen, minMemberLen bound a list's length by the bytes
// left, so a decoder never allocates for items the input cannot hold.
const (
	minCountLen  = 1 + 8 + versionLen + 1 + versionLen + 1 // before kindTimes; a start adds a byte or more
	minFieldLen  = 1 + versionLen + 1
	minMemberLen = 1 + versionLen
	minTraceLen  = minMemberLen // before kindTimes; at adds 8
	// minShortCountLen is minCountLen of the short form: its parts, name's
	// length, node, start and total.
	minShortCountLen = 1 + 1 + 8 + 1 + 1
)

// A count's parts in the short form (appendCountShort), the bits of the
// byte that leads it.
const (
	// countVer: the count's version is written; without it, the count's
	// version is the type register's, as an increment leaves it.
	countVer = 1 << 0
	// countReset: the reset register is written; without it, it is empty,
	// as it stays until a SET or DEL observes the count.
	countReset = 1 << 1
	// countStartBack: start is written as its distance back from the
	// count's version's timestamp, 1 byte for a run's first increment.
	countStartBack  = 1 << 2
	countPartsKnown = countVer | countReset | countStartBack
)

// appendCountShort appends c's integer side in the short form, in a state
// whose type register's version is kind: an INCR's count takes 20 bytes or
// so where appendCount takes about 60.
func appendCountShort(dst []byte, c Count, kind Version) []byte {
	var parts byte
	if c.Ver != kind {
		parts |= countVer
	}
	if !c.ResetVer.IsZero() || c.ResetTotal != 0 {
		parts |= countReset
	}
	if c.Start <= c.Ver.TS {
		parts |= countStartBack
	}
	dst = append(dst, parts)
	dst = appendBytes(dst, c.Name)
	dst = binary.BigEndian.AppendUint64(dst, uint64(c.Node))
	if parts&countVer != 0 {
		dst = appendVersion(dst, c.Ver)
	}
	if parts&countStartBack != 0 {
		dst = binary.AppendUvarint(dst, uint64(c.Ver.TS-c.Start))
	} else {
		dst = binary.AppendUvarint(dst, uint64(c.Start))
	}
	dst = binary.AppendVarint(dst, c.Total)
	if parts&countReset != 0 {
		dst = appendVersion(dst, c.ResetVer)
		dst = binary.AppendVarint(dst, c.ResetTotal)
	}
	return dst
}

// countShort reads a count appendCountShort wrote in a state whose type
// register's version is kind.
func (r *typedReader) countShort(kind Version) (c Count) {
	if len(r.b) < 1 {
		r.fail("truncated count")
		return Count{}
	}
	parts := r.b[0]
	r.b = r.b[1:]
	if parts&^countPartsKnown != 0 {
		r.fail("unknown count parts")
		return Count{}
	}
	c.Name = r.bytes("count name")
	if len(r.b) < 8 {
		r.fail("truncated count")
		return Count{}
	}
	c.Node = NodeID(binary.BigEndian.Uint64(r.b))
	r.b = r.b[8:]
	c.Ver = kind
	if parts&countVer != 0 {
		c.Ver = r.version("count version")
	}
	start := r.uvarint("count start")
	if parts&countStartBack != 0 {
		if start > uint64(c.Ver.TS) {
			r.fail("count start before time began")
			return Count{}
		}
		start = uint64(c.Ver.TS) - start
	}
	c.Start = hlc.Timestamp(start)
	c.Total = r.varint("count total")
	if parts&countReset != 0 {
		c.ResetVer = r.version("reset version")
		c.ResetTotal = r.varint("reset total")
	}
	return c
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// Flags in the kind byte: kindHasHLL marks a state that ends with a sketch,
// kindTimes one whose counts and traces carry their times, kindHasZSet one
// with a sorted set's section.
const (
	kindHasHLL    = 0x80
	kindTimes     = 0x40
	kindHasZSet   = 0x20
	kindHasList   = 0x10
	kindHasFloats = 0x08
	kindFlags     = kindHasHLL | kindTimes | kindHasZSet | kindHasList | kindHasFloats
)

// hasFloats reports whether a count of counts has a float side.
func hasFloats(counts []Count) bool {
	for _, c := range counts {
		if c.FTotal != "" || c.FReset != "" {
			return true
		}
	}
	return false
}

// appendFloats appends the float side of counts (see appendTyped).
func appendFloats(dst []byte, counts []Count) []byte {
	n := 0
	for _, c := range counts {
		if c.FTotal != "" || c.FReset != "" {
			n++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	for i, c := range counts {
		if c.FTotal != "" || c.FReset != "" {
			dst = binary.AppendUvarint(dst, uint64(i))
			dst = appendBytes(dst, []byte(c.FTotal))
			dst = appendBytes(dst, []byte(c.FReset))
		}
	}
	return dst
}

// hasZSet reports whether t has a sorted set's section to encode.
func (t *Typed) hasZSet() bool { return t.scoreCountLen() > 0 || t.count(listScored) > 0 }

func appendTyped(dst []byte, t *Typed) []byte { return appendTypedForm(dst, t, nil, nil, false) }

// appendTypedForm is appendTyped; with dots non-nil, the in-memory form
// (AppendTyped): the type register's and the elements' dots are written by
// dots (dotWriter), the rest as appendTyped writes it. sp, if not nil,
// spills the encoding between elements (AppendBinarySpill). With long, the
// counts are in the long form (Encoding1's).
func appendTypedForm(dst []byte, t *Typed, dots *dotWriter, sp *spiller, long bool) []byte {
	kind := byte(t.Kind) | kindTimes
	if t.HLL != nil { // HyperLogLog hook (record/hll.go)
		kind |= kindHasHLL
	}
	if t.hasZSet() {
		kind |= kindHasZSet
	}
	if t.count(listList) > 0 {
		kind |= kindHasList
	}
	counts := t.countList()
	floats := hasFloats(counts)
	if floats {
		kind |= kindHasFloats
	}
	dst = append(dst, kind)
	if dots != nil {
		dst = dots.start(dst, t)
		dst = dots.put(dst, t.KindVersion)
	} else {
		dst = appendVersion(dst, t.KindVersion)
	}
	dst = binary.AppendUvarint(dst, uint64(len(counts)))
	for _, c := range counts {
		if long {
			dst = appendCount(dst, c)
		} else {
			dst = appendCountShort(dst, c, t.KindVersion)
		}
		dst = sp.check(dst)
	}
	if floats {
		dst = appendFloats(dst, counts)
	}
	for _, which := range []int{listFields, listMembers, listRemoved} {
		dst = binary.AppendUvarint(dst, uint64(t.count(which)))
		var prev []byte
		t.each(which, func(run []Elem) bool {
			for _, e := range run {
				if dots != nil {
					dst = appendSuffix(dst, prev, e.Name)
					prev = e.Name
					dst = dots.put(dst, e.Dot)
				} else {
					dst = appendBytes(dst, e.Name)
					dst = appendVersion(dst, e.Dot)
				}
				switch which {
				case listFields:
					dst = appendBytes(dst, e.Value)
				case listRemoved:
					dst = binary.BigEndian.AppendUint64(dst, uint64(e.TraceAt()))
				}
				dst = sp.check(dst)
			}
			return true
		})
	}
	if t.hasZSet() {
		dst = appendZSet(dst, t, sp)
	}
	if t.count(listList) > 0 {
		dst = appendList(dst, t, sp)
	}
	if t.HLL != nil { // HyperLogLog hook (record/hll.go)
		dst = appendHLL(dst, t.HLL)
	}
	return dst
}

// appendSuffix appends name as the in-memory form writes an element's name:
// the length of the prefix it shares with prev, the name before it in its
// list, then the rest. The names are sorted, so neighbours often share
// most of their bytes (field:1, field:2; user:1001:email, user:1001:name).
func appendSuffix(dst, prev, name []byte) []byte {
	shared := 0
	for shared < len(prev) && shared < len(name) && prev[shared] == name[shared] {
		shared++
	}
	dst = binary.AppendUvarint(dst, uint64(shared))
	return appendBytes(dst, name[shared:])
}

// dotWriter writes the dots of a typed state's in-memory form, where a
// 16-byte dot would be most of a small hash's or set's bytes: a table of
// the nodes the dots name, then each dot as its node's place in the table
// (left out when the table names one node, as it does for a key only one
// node wrote) and the difference of its timestamp from the dot written
// before it (the elements one command adds have dots a tick apart, one
// node's).
type dotWriter struct {
	nodes []NodeID
	prev  hlc.Timestamp
}

// start writes the node table of t's type register and elements.
func (w *dotWriter) start(dst []byte, t *Typed) []byte {
	w.nodes, w.prev = w.nodes[:0], 0
	w.node(t.KindVersion.Node)
	for _, which := range []int{listFields, listMembers, listRemoved} {
		t.each(which, func(run []Elem) bool {
			for _, e := range run {
				w.node(e.Dot.Node)
			}
			return true
		})
	}
	dst = binary.AppendUvarint(dst, uint64(len(w.nodes)))
	for _, n := range w.nodes {
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return dst
}

// node is n's place in the table, added if new. States in the small form
// name few nodes, so a scan finds them.
func (w *dotWriter) node(n NodeID) int {
	for i, m := range w.nodes {
		if m == n {
			return i
		}
	}
	w.nodes = append(w.nodes, n)
	return len(w.nodes) - 1
}

func (w *dotWriter) put(dst []byte, v Version) []byte {
	if i := w.node(v.Node); len(w.nodes) > 1 {
		dst = binary.AppendUvarint(dst, uint64(i))
	}
	dst = binary.AppendVarint(dst, int64(v.TS-w.prev))
	w.prev = v.TS
	return dst
}

// minDotLen is the fewest bytes a dotWriter writes a dot in.
const minDotLen = 1

// dotReader reads what a dotWriter wrote.
type dotReader struct {
	// The node table: in few when it names few nodes (most states), so that
	// a decode allocates nothing for it, else in more.
	few  [4]NodeID
	more []NodeID
	n    int
	prev hlc.Timestamp
}

func (d *dotReader) node(i uint64) NodeID {
	if d.more != nil {
		return d.more[i]
	}
	return d.few[i]
}

func (r *typedReader) startDots() {
	n := r.count("dot nodes", 8)
	if r.err != nil {
		return
	}
	r.inMemory = true
	r.dots.n = n
	if n > len(r.dots.few) {
		r.dots.more = make([]NodeID, n)
	}
	for i := range n {
		id := NodeID(binary.BigEndian.Uint64(r.b))
		r.b = r.b[8:]
		if r.dots.more != nil {
			r.dots.more[i] = id
		} else {
			r.dots.few[i] = id
		}
	}
}

// dot reads a dot, as the in-memory form writes it if r has a node table.
func (r *typedReader) dot(what string) Version {
	if !r.inMemory {
		return r.version(what)
	}
	var i uint64
	if r.dots.n != 1 {
		i = r.uvarint(what)
	}
	d := r.varint(what)
	if r.err != nil {
		return Version{}
	}
	if i >= uint64(r.dots.n) {
		r.fail(what + ": no such node")
		return Version{}
	}
	r.dots.prev += hlc.Timestamp(d)
	return Version{TS: r.dots.prev, Node: r.dots.node(i)}
}

// appendCount appends c's integer side in the long form, what a count's
// digest hashes (countDigest): the digests peers compare do not change
// with the encoding.
func appendCount(dst []byte, c Count) []byte {
	dst = appendBytes(dst, c.Name)
	dst = binary.BigEndian.AppendUint64(dst, uint64(c.Node))
	dst = binary.AppendUvarint(dst, uint64(c.Start))
	dst = appendVersion(dst, c.Ver)
	dst = binary.AppendVarint(dst, c.Total)
	dst = appendVersion(dst, c.ResetVer)
	return binary.AppendVarint(dst, c.ResetTotal)
}

// countDigest is one count's share of a typed state's digest, its float
// side included. The digest sums them, so that a large state's digest
// moves in O(1) per count changed.
func countDigest(c Count) uint64 {
	var buf [128]byte
	b := appendCount(buf[:0], c)
	if c.FTotal != "" || c.FReset != "" {
		b = appendBytes(b, []byte(c.FTotal))
		b = appendBytes(b, []byte(c.FReset))
	}
	return mix64(xxhash.Sum64(b))
}

// count is the number of elements (dots, not names) in list which.
func (t *Typed) count(which int) int {
	if t.big != nil {
		return t.big.count(which) // a list's in its runs (list_runs.go)
	}
	return len(t.list(which))
}

func (t *Typed) encodedSize() int {
	n := 1 + versionLen + 4*binary.MaxVarintLen64
	for _, c := range t.countList() {
		n += binary.MaxVarintLen64 + len(c.Name) + 8 + 2*versionLen + 3*binary.MaxVarintLen64
		n += 3*binary.MaxVarintLen64 + len(c.FTotal) + len(c.FReset)
	}
	n += t.scoreCountLen() * minScoreCountLen
	for _, c := range t.ScoreCountList() {
		n += binary.MaxVarintLen64 + len(c.Name)
	}
	for which := range numLists {
		t.each(which, func(run []Elem) bool {
			for _, e := range run {
				n += 2*binary.MaxVarintLen64 + len(e.Name) + versionLen + max(len(e.Value), 8)
			}
			return true
		})
	}
	if t.HLL != nil { // HyperLogLog hook (record/hll.go)
		n += t.HLL.encodedSize()
	}
	return n
}

// digest sums up a typed state: its type register hashed, plus every
// count's countDigest and every element's elemHash, which a large state
// keeps as they change. Equal states have equal digests, whichever form
// holds them.
func (t *Typed) digest() uint64 {
	var buf [1 + versionLen]byte
	b := append(buf[:0], byte(t.Kind))
	b = appendVersion(b, t.KindVersion)
	sum := mix64(xxhash.Sum64(b))
	if t.big != nil {
		sum += t.big.csum
	} else {
		for _, c := range t.Counts {
			sum += countDigest(c)
		}
	}
	// Sorted-set hook (zset.go):
	sum += t.scoreCountSum()
	if t.HLL != nil { // HyperLogLog hook (record/hll.go)
		sum += mix64(xxhash.Sum64(appendHLL(nil, t.HLL)))
	}
	if t.big != nil {
		return sum + t.big.sum
	}
	for which := range numLists {
		for _, e := range t.list(which) {
			sum += elemHash(which, e)
		}
	}
	return sum
}

// typedReader decodes a typed state, remembering the first error.
type typedReader struct {
	b        []byte
	err      error
	dots     dotReader // the in-memory form's (AppendTyped)
	inMemory bool      // whether dots holds a node table: the in-memory form
}

func (r *typedReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: typed state: %s", ErrCorrupt, what)
	}
	r.b = nil
}

func (r *typedReader) uvarint(what string) uint64 {
	v, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.fail("bad " + what)
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *typedReader) varint(what string) int64 {
	v, k := binary.Varint(r.b)
	if k <= 0 {
		r.fail("bad " + what)
		return 0
	}
	r.b = r.b[k:]
	return v
}

// count reads a list's length, refused if the bytes left cannot hold that
// many items of at least min bytes.
func (r *typedReader) count(what string, min int) int {
	n := r.uvarint(what) // names the list's count, if bad
	if n > uint64(len(r.b)/min) {
		r.fail(fmt.Sprintf("%d %s in %d bytes", n, what, len(r.b)))
		return 0
	}
	return int(n)
}

func (r *typedReader) bytes(what string) []byte {
	n := r.uvarint(what) // names the length, if bad
	if n > MaxValueLen || n > uint64(len(r.b)) {
		r.fail(what + " length exceeds what is left")
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	if n == 0 {
		return nil
	}
	return v
}

func (r *typedReader) version(what string) Version {
	if len(r.b) < versionLen {
		r.fail("truncated " + what)
		return Version{}
	}
	v, rest := readVersion(r.b)
	r.b = rest
	return v
}

// decodeTyped parses a typed state from the front of b; names and values
// alias b. The lists must be in their sorted order, without duplicates: a
// peer cannot hand the merge input it was not written for.
// With short, its counts are in the short form (appendCountShort), else in
// the long one an earlier build wrote.
func decodeTyped(b []byte, short bool) (*Typed, []byte, error) {
	return decodeTypedForm(b, false, short)
}

// decodeTypedForm is decodeTyped; with inMemory, of the in-memory form
// (AppendTyped), whose counts are always short.
func decodeTypedForm(b []byte, inMemory, short bool) (*Typed, []byte, error) {
	if min := 1 + versionLen; inMemory && len(b) < 3 || !inMemory && len(b) < min {
		return nil, nil, fmt.Errorf("%w: typed state truncated", ErrCorrupt)
	}
	kind := Kind(b[0] &^ kindFlags)
	times := b[0]&kindTimes != 0
	if kind != KindString && kind != KindHash && kind != KindSet && kind != KindZSet && kind != KindList {
		return nil, nil, fmt.Errorf("%w: unknown kind %d", ErrCorrupt, b[0])
	}
	r := &typedReader{b: b[1:]}
	if inMemory {
		r.startDots()
	}
	kindVersion := r.dot("kind version")
	short = short || inMemory
	minCount := minCountLen
	if short {
		minCount = minShortCountLen
	}
	n := r.count("counts", minCount)
	var t *Typed
	if n == 1 {
		// A counter one node increments, the most common state with
		// counts: the state and its count in one allocation.
		a := new(typedCount)
		t, a.t.Counts = &a.t, a.c[:]
	} else {
		t = new(Typed)
		if n > 0 {
			t.Counts = make([]Count, n)
		}
	}
	t.Kind, t.KindVersion = kind, kindVersion
	for i := range t.Counts {
		c := &t.Counts[i]
		if short {
			*c = r.countShort(kindVersion)
			if r.err == nil && i > 0 && compareCountKey(t.Counts[i-1], *c) >= 0 {
				r.fail("counts out of order")
			}
			continue
		}
		c.Name = r.bytes("count name")
		if len(r.b) < 8 {
			r.fail("truncated count")
			break
		}
		c.Node = NodeID(binary.BigEndian.Uint64(r.b))
		r.b = r.b[8:]
		if times {
			c.Start = hlc.Timestamp(r.uvarint("count start"))
		}
		c.Ver = r.version("count version")
		c.Total = r.varint("count total")
		c.ResetVer = r.version("reset version")
		c.ResetTotal = r.varint("reset total")
		if r.err == nil && i > 0 && compareCountKey(t.Counts[i-1], *c) >= 0 {
			r.fail("counts out of order")
		}
	}
	if b[0]&kindHasFloats != 0 {
		r.floats(t.Counts)
	}
	t.Fields = r.elems("fields", minFieldLen, listFields, true)
	t.Members = r.elems("members", minMemberLen, listMembers, true)
	t.Removed = r.elems("traces", minTraceLen, listRemoved, times)
	if b[0]&kindHasZSet != 0 {
		r.zset(t)
	}
	if b[0]&kindHasList != 0 {
		r.list(t)
	}
	if r.err != nil {
		return nil, nil, r.err
	}
	if !times && len(t.Removed) > 0 {
		at := Record{Typed: t}.Newest().TS
		for i := range t.Removed {
			t.Removed[i] = trace(t.Removed[i], at)
		}
	}
	if b[0]&kindHasHLL != 0 { // HyperLogLog hook (record/hll.go)
		var err error
		if t.HLL, r.b, err = decodeHLL(r.b); err != nil {
			return nil, nil, err
		}
	}
	return t, r.b, nil
}

// typedCount is a state and the one count it holds, allocated together.
type typedCount struct {
	t Typed
	c [1]Count
}

// floats reads the float side of counts (appendFloats): at least one, each
// of a count in order, canonical, and not both zero.
func (r *typedReader) floats(counts []Count) {
	n := r.count("float counts", 3)
	if n == 0 && r.err == nil {
		r.fail("empty float counts")
	}
	next := 0
	for range n {
		i := r.uvarint("float count index")
		total, reset := r.bytes("float total"), r.bytes("float reset")
		if r.err != nil {
			return
		}
		if i < uint64(next) || i >= uint64(len(counts)) {
			r.fail("float count index out of order")
			return
		}
		if !checkExact(total) || !checkExact(reset) || len(total) == 0 && len(reset) == 0 {
			r.fail("bad float total")
			return
		}
		counts[i].FTotal, counts[i].FReset = Exact(total), Exact(reset)
		next = int(i) + 1
	}
}

// elems reads list which; times says whether traces carry their time.
func (r *typedReader) elems(what string, min int, which int, times bool) []Elem {
	if r.inMemory {
		min += 1 - versionLen + minDotLen // a name's shared prefix, a dot in a byte
	}
	n := r.count(what, min)
	if n == 0 || r.err != nil {
		return nil
	}
	out := make([]Elem, n)
	var names []byte // the names that share a prefix, built
	for i := range out {
		e := &out[i]
		if !r.inMemory {
			e.Name = r.bytes("name")
		} else {
			var prev []byte
			if i > 0 {
				prev = out[i-1].Name
			}
			e.Name, names = r.suffixed(prev, names, n-i)
		}
		e.Dot = r.dot("dot")
		switch {
		case which == listFields:
			e.Value = r.bytes("value")
		case which == listRemoved && times:
			if len(r.b) < 8 {
				r.fail("truncated trace")
				return nil
			}
			e.Value = r.b[:8:8]
			r.b = r.b[8:]
		}
		if r.err != nil {
			return nil
		}
		if i > 0 && (bytes.Equal(out[i-1].Name, e.Name) && out[i-1].Dot.Compare(e.Dot) >= 0 || bytes.Compare(out[i-1].Name, e.Name) > 0) {
			r.fail(what + " out of order")
			return nil
		}
	}
	return out
}

// suffixed reads a name appendSuffix wrote after prev, the first of left
// names still to read in its list. A name that shares no prefix aliases
// the input; one that does is built at the end of names, which it returns
// grown: by room for left names of this one's length when it must grow,
// so that a list's names take one allocation when they are about as long.
func (r *typedReader) suffixed(prev, names []byte, left int) ([]byte, []byte) {
	shared := r.uvarint("name prefix")
	rest := r.bytes("name")
	if r.err != nil {
		return nil, names
	}
	if shared > uint64(len(prev)) || shared+uint64(len(rest)) > MaxValueLen {
		r.fail("name prefix longer than the name before it")
		return nil, names
	}
	if shared == 0 {
		return rest, names
	}
	n := int(shared) + len(rest)
	if len(names)+n > cap(names) {
		names = slices.Grow(names, left*n)
	}
	at := len(names)
	names = append(names, prev[:shared]...)
	names = append(names, rest...)
	return names[at:len(names):len(names)], names
}

// AppendTyped appends t's in-memory encoding to dst, for storage that
// keeps a typed state apart from its record's registers in memory: as
// appendTyped's, but with dots a byte or two each (dotWriter) and each
// element's name after the prefix it shares with the one before
// (appendSuffix), which takes a small hash of short fields to under half. It is never written to disk or sent: a
// build's in-memory form need not read another's.
func AppendTyped(dst []byte, t *Typed) []byte {
	var w dotWriter
	return appendTypedForm(dst, t, &w, nil, false)
}

// DecodeTypedDetached is DecodeTyped for a b that its owner may overwrite
// once the call returns: the state does not alias b. A string's counters
// (INCR's state, the common case on a write path) hold no name or value of
// b and decode in place; any other state is decoded from a copy of b.
func DecodeTypedDetached(b []byte) (*Typed, error) {
	if len(b) > 0 && Kind(b[0]&^kindFlags) == KindString && b[0]&(kindHasHLL|kindHasZSet|kindHasList) == 0 {
		t, err := DecodeTyped(b)
		if err != nil || !t.aliases() {
			return t, err
		}
	}
	return DecodeTyped(bytes.Clone(b))
}

// aliases reports whether a state decoded from an encoding may hold slices
// of it: elements, named counts, a sketch, the large form.
func (t *Typed) aliases() bool {
	if t.big != nil || t.HLL != nil || len(t.Fields)+len(t.Members)+len(t.Removed)+len(t.Scored)+len(t.ScoreCounts)+len(t.Listed) > 0 {
		return true
	}
	for _, c := range t.Counts {
		if len(c.Name) > 0 {
			return true
		}
	}
	return false
}

// DecodeTyped parses what AppendTyped wrote, all of b; values alias b, and
// names do but for those that share a prefix with the name before them.
func DecodeTyped(b []byte) (*Typed, error) {
	t, rest, err := decodeTypedForm(b, true, true)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%w: %d bytes after a typed state", ErrCorrupt, len(rest))
	}
	return t, err
}
