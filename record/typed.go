package record

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"

	"github.com/redmesh/redmesh/hlc"
)

// Typed is a key's state beyond its string register: the Redis type the key
// holds and that type's elements, each tagged with the dot (the version) of
// the write that added it, so that concurrent edits merge element by element.
//
// Merging is a union: elements and counts from both sides, minus the
// elements a remove has traced. A remove (HDEL, SREM, DEL, a SET over a hash)
// removes exactly the elements (name and dot) it observed and records them
// as traces, so an element added concurrently elsewhere, with a dot the
// remover never saw, survives: adds win over concurrent removes, as in Redis
// Enterprise's Active-Active. Nothing here depends on the order in which
// writes arrive, so a peer may deliver deltas in any order, twice, or as whole
// states (Merkle repair), and every node ends with the same state.
//
// A Typed is immutable once built: merges return new states that share what
// they did not change, so readers may keep one while a writer merges.
// Small states are sorted slices (Fields, Members, Removed); past bigElems
// elements a state is held in copy-on-write B-trees instead (see big.go), so
// a write to a large hash or set costs O(log n), not O(n). Read elements
// through the methods, which serve both forms.
type Typed struct {
	// Kind and KindVersion are the type register: the type of the key's
	// latest write other than a delete. Under concurrent writes of two types
	// the later one shows; the other's elements stay, hidden, until a write
	// removes them.
	Kind        Kind
	KindVersion Version
	// Counts are counters' increments, per counter (Name: empty for the
	// string's counter, a field's name for HINCRBY) and per node that
	// incremented it, sorted by name then node. A counter's value is its
	// base (the string register, or the field's value) plus what its counts
	// add. Nil in the large form (read them through the methods).
	Counts []Count
	// Fields are a hash's fields and Members a set's members, each sorted by
	// name then dot. A name holds several dots when it was written
	// concurrently at several nodes; the highest dot's value shows. Nil in
	// the large form.
	Fields  []Elem
	Members []Elem
	// Removed are the removed elements' traces, sorted: the name and dot of
	// each, so that a late copy of an add does not bring its element back,
	// and when it was removed (TraceAt), so that collection knows when every
	// member has seen the removal (Collect). Traces are never shown. Nil in
	// the large form.
	Removed []Elem
	// Scored are a sorted set's members, Value the score the adding write
	// gave (see zset.go), and ScoreCounts their ZINCRBY increments, as
	// Counts are a hash field's; sorted as Fields and Counts. Both are nil
	// in the large form (read them through the methods).
	Scored      []Elem
	ScoreCounts []Count
	// Listed are a list's elements (see list.go): Name is the element's
	// position, Value its value; sorted as Fields, which is list order. Nil
	// in the large form.
	Listed []Elem

	big *bigState // the large form of the lists and counts
	// hints, in a write's delta over a large state, are the paths the
	// write's reads of that state took (TypedOp.observed): a guess for the
	// merge's searches, never part of the state.
	hints *hints

	// HLL is a HyperLogLog's sketch (record/hll.go), nil for other keys.
	HLL *HLL
}

// Kinds of value a key can hold beyond strings.
const (
	KindHash Kind = 1
	KindSet  Kind = 2
	KindZSet Kind = 3
	KindList Kind = 4
)

// Count is one node's increments of one counter. Only that node writes Ver
// and Total; any node that overwrites or deletes the counter writes the Reset
// pair: the node's Total as it observed it. A counter therefore adds up
// increments made concurrently at different nodes, and a SET or DEL clears
// only the increments it saw.
type Count struct {
	Name []byte
	Node NodeID
	// Start is the timestamp of the first increment of this run of counts:
	// a node that collected its count (every count reset, and stable)
	// starts the next from zero, and the newer run replaces the older
	// wherever the older is still held, so a copy of the old reset cannot
	// take from the new total.
	Start      hlc.Timestamp
	Ver        Version // of the node's latest increment
	Total      int64   // the sum of the node's increments
	ResetVer   Version // Ver of the Total that was reset
	ResetTotal int64
	// FTotal and FReset are Total and ResetTotal's float side: the exact
	// sum of the node's INCRBYFLOAT and HINCRBYFLOAT increments, and that
	// sum as the reset observed it (see exact.go).
	FTotal, FReset Exact
}

// Elem is a hash field or a set member, with the dot of the write that added
// it, or a trace of one removed.
type Elem struct {
	Name []byte
	Dot  Version
	// Value is a field's value; nil for a member. A trace's holds the
	// timestamp of the write that removed the element (8 bytes, big-endian:
	// TraceAt), which stays inside the encoded state and costs no field in
	// every element.
	Value []byte
}

// TraceAt is when trace e's element was removed: the timestamp of the
// removing write.
func (e Elem) TraceAt() hlc.Timestamp {
	if len(e.Value) != 8 {
		return e.Dot.TS
	}
	return hlc.Timestamp(binary.BigEndian.Uint64(e.Value))
}

// trace is element e as a write at timestamp at records its removal. A
// removal is never older than what it removes, so a trace's time is at least
// its element's dot.
func trace(e Elem, at hlc.Timestamp) Elem { return traceIn(nil, e, at) }

// traceIn is trace, its timestamp appended to stamp.
func traceIn(stamp []byte, e Elem, at hlc.Timestamp) Elem {
	return Elem{Name: e.Name, Dot: e.Dot, Value: binary.BigEndian.AppendUint64(stamp, uint64(max(at, e.Dot.TS)))}
}

// added is a Count's contribution to its counter's value.
func (c Count) added() int64 { return c.Total - c.ResetTotal }

// compareElem orders elements by name, then dot (and value, so that merge
// stays a total function even on input where one dot carries two values).
func compareElem(a, b Elem) int {
	if c := compareND(a, b); c != 0 {
		return c
	}
	return bytes.Compare(a.Value, b.Value)
}

// compareND orders elements by name, then dot: how elements and traces are
// found.
func compareND(a, b Elem) int {
	if c := bytes.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return a.Dot.Compare(b.Dot)
}

func compareCountKey(a, b Count) int {
	if c := bytes.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return cmp.Compare(a.Node, b.Node)
}

// Typed's element lists, by index.
const (
	listFields = iota
	listMembers
	listRemoved
	listScored
	listList
	numLists
)

// elemLists are the lists that hold elements (all but the traces).
var elemLists = []int{listFields, listMembers, listScored, listList}

func (t *Typed) list(which int) []Elem {
	switch which {
	case listFields:
		return t.Fields
	case listMembers:
		return t.Members
	case listScored:
		return t.Scored
	case listList:
		return t.Listed
	}
	return t.Removed
}

// size is the number of elements and traces.
func (t *Typed) size() int {
	if t == nil {
		return 0
	}
	if t.big != nil {
		return t.big.size()
	}
	return len(t.Fields) + len(t.Members) + len(t.Removed) + len(t.Scored) + len(t.Listed)
}

// mergeTyped merges two typed states; either may be nil.
func mergeTyped(a, b *Typed) *Typed { return mergeTypedOwned(a, b, nil) }

// mergeTypedOwned is mergeTyped for a writer that owns o (see Owner): a
// large side built under o, which only that writer has seen, is merged
// into in place rather than copied, and is not to be read again.
func mergeTypedOwned(a, b *Typed, o *Owner) *Typed { return mergeTypedWith(a, b, o, false, false) }

// mergeTypedWith is mergeTypedOwned; published says that a is the state
// the keyspace holds, which o may take over if an earlier step of its line
// built it (see Owner); general takes the general merge of a large state
// even where the merge of one element would do (for the tests that hold
// the two alike).
func mergeTypedWith(a, b *Typed, o *Owner, published, general bool) *Typed {
	if o != nil && b != nil && b.big != nil {
		// A state comes in as another key's write (RENAME, COPY): two keys
		// now hold its trees, so neither may change them in place.
		switch {
		case b.big.owner == o:
			if b.big.adopted {
				b.big.ownTrees() // the journal's changes, if undone, are not this state's
			}
			b.big.owner = nil
		case b.big.owner != nil:
			b.Freeze() // an earlier step's: under the writer's lock, as Freeze asks
		}
	}
	switch {
	case a.empty():
		return b
	case b.empty():
		return a
	}
	if oneCount(a) && oneCount(b) && compareCountKey(a.Counts[0], b.Counts[0]) == 0 {
		// An increment of a counter that one node increments (INCR,
		// HINCRBY on a field alone): the merged state and its count in
		// one allocation, as a decode makes them.
		x := new(typedCount)
		m := &x.t
		m.Kind, m.KindVersion = mergedKind(a, b)
		x.c[0] = mergeCount(a.Counts[0], b.Counts[0])
		m.Counts = x.c[:]
		return m
	}
	m := &Typed{}
	m.Kind, m.KindVersion = mergedKind(a, b)
	m.HLL = mergeHLL(a.HLL, b.HLL) // HyperLogLog hook (record/hll.go)
	if a.big == nil && b.big == nil && a.weight()+b.weight() <= bigElems {
		m.Counts = mergeCounts(a.Counts, b.Counts)
		m.ScoreCounts = mergeCounts(a.ScoreCounts, b.ScoreCounts)
		m.Removed = unionTraces(a.Removed, b.Removed)
		m.Fields = mergeElems(a.Fields, b.Fields, m.Removed)
		m.Members = mergeElems(a.Members, b.Members, m.Removed)
		m.Scored = mergeElems(a.Scored, b.Scored, m.Removed)
		m.Listed = mergeElems(a.Listed, b.Listed, m.Removed)
		return m
	}
	// The larger side is copied (in O(1), copy on write) and the smaller
	// merged into it: a delta into a large state costs O(delta log n).
	base, other := a, b
	if b.weight() > a.weight() {
		base, other = b, a
	}
	// The merge's path hints, for the searches of each element it takes in:
	// where a write's delta comes with the paths its reads took, those.
	var h hints
	if other.hints != nil {
		h = *other.hints
	}
	name, one := oneName(other)
	one = one && !general && base.count(listList) == 0
	indexed := base.big != nil && base.big.scores != nil
	var olds []touchedScore
	switch {
	case !one:
		olds = base.touchedScores(other, &h) // before base's trees change (in place)
	case indexed:
		olds = []touchedScore{{name: name}} // its score, from the run absorbOne reads
	}
	// inPlace: the merge changes only what a state taken over journals,
	// element by element (a large other is another key's whole state).
	inPlace := journaled(other) && other.big == nil
	switch bb := base.big; {
	case bb == nil:
		m.big = base.bigCopy()
	case o != nil && bb.owner == o && (!bb.adopted || inPlace):
		// o's own: changed in place, counts too (no one else holds it;
		// mergeOwned tells a change by its print before)
		m.big = bb
	case published && inPlace && o != nil && o.line != nil && bb.owner != o &&
		bb.owner != nil && bb.owner.line == o.line && base.Mutable():
		m.big = bb.adopt(base, o)
	default:
		m.big = base.bigCopy()
	}
	m.big.owner = o
	var scoredWas, scored []Elem
	if one {
		if indexed {
			olds[0].counts = m.big.scoreCountRun(name)
		}
		scoredWas, scored = m.big.absorbOne(other, name, indexed, &h)
	} else {
		m.big.absorb(other, &h)
	}
	for _, c := range other.ScoreCountList() { // sorted-set hook (zset.go)
		m.big.setScoreCount(c)
	}
	for _, c := range other.countList() {
		m.big.setCount(c)
	}
	if one && indexed {
		olds[0].score, olds[0].had = scoreFrom(scoredWas, olds[0].counts)
		m.big.rescore(m.big.scores, olds[0], scored)
	} else {
		m.reindexScores(base, olds, &h)
	}
	if m.big.compactDue() {
		m.big.compact()
	}
	return m
}

// journaled reports whether a merge of other changes only what an adopted
// state's journal records (see Owner): elements and traces, and the score
// index, not counts.
func journaled(other *Typed) bool {
	return len(other.Counts) == 0 && len(other.ScoreCounts) == 0 && other.HLL == nil
}

// oneName reports whether the small state t's elements and traces, one at
// least, and its score counts all bear one name, and returns it: a write of
// one element, merged by bigState.absorbOne.
func oneName(t *Typed) ([]byte, bool) {
	if t.big != nil || len(t.Listed) > 0 {
		return nil, false
	}
	var name []byte
	found := false
	for _, l := range [...][]Elem{t.Fields, t.Members, t.Scored, t.Removed} {
		for _, e := range l {
			if !found {
				name, found = e.Name, true
			} else if !bytes.Equal(e.Name, name) {
				return nil, false
			}
		}
	}
	for _, c := range t.ScoreCounts {
		if !found || !bytes.Equal(c.Name, name) {
			return nil, false
		}
	}
	return name, found
}

// mergedKind is the type register of a and b merged: the later write's.
func mergedKind(a, b *Typed) (Kind, Version) {
	if c := b.KindVersion.Compare(a.KindVersion); c > 0 || c == 0 && b.Kind > a.Kind {
		return b.Kind, b.KindVersion
	}
	return a.Kind, a.KindVersion
}

// oneCount reports whether t is a small state of one count and nothing
// else.
func oneCount(t *Typed) bool {
	return t.big == nil && t.HLL == nil && len(t.Counts) == 1 && len(t.Fields) == 0 && len(t.Members) == 0 &&
		len(t.Removed) == 0 && len(t.Scored) == 0 && len(t.ScoreCounts) == 0 && len(t.Listed) == 0
}

func unionElems(a, b []Elem) []Elem {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	return mergeElems(a, b, nil)
}

// unionTraces is the union of two sorted trace lists. An element removed by
// two writes (concurrent removes that observed it) keeps one trace, the
// earlier removal's: every member that saw it dropped the element, and
// merging this way does not depend on order.
func unionTraces(a, b []Elem) []Elem {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	return unionSorted(a, b, compareND, earlierTrace)
}

func earlierTrace(x, y Elem) Elem {
	if y.TraceAt() < x.TraceAt() {
		return y
	}
	return x
}

// traced reports whether element e is among the sorted traces.
func traced(traces []Elem, e Elem) bool {
	_, found := slices.BinarySearchFunc(traces, e, compareND)
	return found
}

// mergeElems is the union of two sorted element lists without the elements
// traced as removed.
func mergeElems(a, b []Elem, traces []Elem) []Elem {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	out := unionSorted(a, b, compareElem, func(x, _ Elem) Elem { return x })
	out = slices.DeleteFunc(out, func(e Elem) bool { return traced(traces, e) })
	if len(out) == 0 {
		return nil
	}
	return out
}

func mergeCounts(a, b []Count) []Count {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	return unionSorted(a, b, compareCountKey, mergeCount)
}

// unionSorted merges two sorted lists into a new one; items that compare
// equal become one, by same.
func unionSorted[T any](a, b []T, compare func(T, T) int, same func(T, T) T) []T {
	out := make([]T, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var c int
		switch {
		case j == len(b):
			c = -1
		case i == len(a):
			c = 1
		default:
			c = compare(a[i], b[j])
		}
		switch {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
		default:
			out = append(out, same(a[i], b[j]))
			i, j = i+1, j+1
		}
	}
	return out
}

func mergeCount(a, b Count) Count {
	if a.Start != b.Start {
		if b.Start > a.Start {
			return b
		}
		return a
	}
	m := a
	if c := b.Ver.Compare(a.Ver); c > 0 || c == 0 && (b.Total > a.Total || b.Total == a.Total && b.FTotal > a.FTotal) {
		m.Ver, m.Total, m.FTotal = b.Ver, b.Total, b.FTotal
	}
	if c := b.ResetVer.Compare(a.ResetVer); c > 0 ||
		c == 0 && (b.ResetTotal > a.ResetTotal || b.ResetTotal == a.ResetTotal && b.FReset > a.FReset) {
		m.ResetVer, m.ResetTotal, m.FReset = b.ResetVer, b.ResetTotal, b.FReset
	}
	return m
}

func equalCount(x, y Count) bool {
	return compareCountKey(x, y) == 0 && x.Start == y.Start && x.Ver == y.Ver && x.Total == y.Total &&
		x.ResetVer == y.ResetVer && x.ResetTotal == y.ResetTotal && x.FTotal == y.FTotal && x.FReset == y.FReset
}

// spent reports whether a reset observed all of c: it adds nothing.
func (c Count) spent() bool {
	return c.ResetVer == c.Ver && c.ResetTotal == c.Total && c.FReset == c.FTotal
}

// equalTyped reports whether two states are the same. Two states of which
// one is large are compared by size and digest, which a write never leaves
// equal by chance in practice (64 bits), so that deciding whether a merge
// changed a large state costs O(1).
func equalTyped(a, b *Typed) bool {
	if a.empty() || b.empty() {
		return a.empty() && b.empty()
	}
	if a.Kind != b.Kind || a.KindVersion != b.KindVersion ||
		!equalHLL(a.HLL, b.HLL) { // HyperLogLog hook (record/hll.go)
		return false
	}
	if a.big != nil || b.big != nil {
		return a.size() == b.size() && a.countLen() == b.countLen() && a.digest() == b.digest()
	}
	if !slices.EqualFunc(a.Counts, b.Counts, equalCount) {
		return false
	}
	eq := func(x, y []Elem) bool {
		return slices.EqualFunc(x, y, func(p, q Elem) bool { return compareElem(p, q) == 0 })
	}
	return eq(a.Removed, b.Removed) && eq(a.Fields, b.Fields) && eq(a.Members, b.Members) && eq(a.Scored, b.Scored) &&
		eq(a.Listed, b.Listed) &&
		slices.EqualFunc(a.ScoreCounts, b.ScoreCounts, equalCount)
}

// IsZero reports whether t holds nothing at all (nil included).
func (t *Typed) IsZero() bool { return t.empty() }

func (t *Typed) empty() bool {
	return t == nil || t.KindVersion.IsZero() && t.Kind == 0 && t.countLen() == 0 && t.scoreCountLen() == 0 && t.size() == 0 &&
		t.HLL == nil // HyperLogLog hook (record/hll.go)
}

// Added is what the integer counts of the counter name add to its base.
func (t *Typed) Added(name []byte) int64 {
	if t == nil {
		return 0
	}
	var sum int64
	for _, c := range t.countsOf(name) {
		sum += c.added()
	}
	return sum
}

// countsOf is the counts of the counter name, in node order.
func (t *Typed) countsOf(name []byte) []Count {
	switch {
	case t == nil:
		return nil
	case t.big != nil:
		return t.big.countRun(name)
	}
	return countRun(t.Counts, name)
}

// setCounts makes t's counts kept, t being a copy of in (Fresh).
func (t *Typed) setCounts(in *Typed, kept []Count) {
	if in.big == nil {
		t.Counts = nil
		if len(kept) > 0 {
			t.Counts = kept
		}
		return
	}
	if t.big == in.big {
		t.big = in.bigCopy()
	}
	t.big.counts, t.big.csum, t.big.cbytes = nil, 0, 0
	for _, c := range kept {
		t.big.setCount(c)
	}
}

// CountList is every count, in order, whichever form holds them: for
// encodings, collection and checkers. A large state's are listed anew.
func (t *Typed) CountList() []Count { return t.countList() }

func (t *Typed) countList() []Count {
	switch {
	case t == nil:
		return nil
	case t.big != nil:
		if t.big.counts == nil {
			return nil
		}
		return t.big.counts.Items()
	}
	return t.Counts
}

func (t *Typed) countLen() int {
	switch {
	case t == nil:
		return 0
	case t.big != nil:
		if t.big.counts == nil {
			return 0
		}
		return t.big.counts.Len()
	}
	return len(t.Counts)
}

// countRun is the run of sorted counts named name.
func countRun(counts []Count, name []byte) []Count {
	lo, _ := slices.BinarySearchFunc(counts, name, func(c Count, n []byte) int { return bytes.Compare(c.Name, n) })
	hi := lo
	for hi < len(counts) && bytes.Equal(counts[hi].Name, name) {
		hi++
	}
	return counts[lo:hi]
}

// Count returns node's count of the counter name (zero if none).
func (t *Typed) Count(name []byte, node NodeID) Count {
	if t != nil {
		for _, c := range t.countsOf(name) {
			if c.Node == node {
				return c
			}
		}
	}
	return Count{Name: name, Node: node}
}

// reset is c as a write that overwrites or deletes its counter records it.
func reset(c Count) Count {
	return Count{Name: c.Name, Node: c.Node, Start: c.Start, ResetVer: c.Ver, ResetTotal: c.Total, FReset: c.FTotal}
}

// Resets is the counts of counter name as a write that overwrites or
// deletes it records them: every count observed, reset.
func (t *Typed) Resets(name []byte) []Count {
	if t == nil {
		return nil
	}
	var out []Count
	for _, c := range t.countsOf(name) {
		if !c.spent() {
			out = append(out, reset(c))
		}
	}
	return out
}

// AllResets is Resets of every counter.
func (t *Typed) AllResets() []Count {
	if t == nil {
		return nil
	}
	return allResets(t.countList())
}

func allResets(counts []Count) []Count {
	var out []Count
	for _, c := range counts {
		if !c.spent() {
			out = append(out, reset(c))
		}
	}
	return out
}

// run is the elements of list named name, in dot order.
func (t *Typed) run(which int, name []byte) []Elem {
	if t == nil {
		return nil
	}
	if t.big != nil {
		return t.big.run(which, name, nil)
	}
	elems := t.list(which)
	lo, _ := slices.BinarySearchFunc(elems, name, func(e Elem, n []byte) int { return bytes.Compare(e.Name, n) })
	hi := lo
	for hi < len(elems) && bytes.Equal(elems[hi].Name, name) {
		hi++
	}
	return elems[lo:hi]
}

// each calls fn with each name of a list and its elements, in name order.
func (t *Typed) each(which int, fn func(run []Elem) bool) {
	if t == nil {
		return
	}
	if t.big != nil {
		t.big.each(which, fn)
		return
	}
	elems := t.list(which)
	for i := 0; i < len(elems); {
		j := i + 1
		for j < len(elems) && bytes.Equal(elems[j].Name, elems[i].Name) {
			j++
		}
		if !fn(elems[i:j]) {
			return
		}
		i = j
	}
}

// Field returns hash field name's element (its highest dot), if present.
//
// A field whose elements an HDEL removed while an HINCRBY it did not observe
// was made elsewhere shows as that increment: an element with no dot, whose
// base is 0 (as a string counter outlives a concurrent DEL).
func (t *Typed) Field(name []byte) (Elem, bool) {
	run := t.run(listFields, name)
	if len(run) == 0 {
		if len(name) > 0 && countsAdd(t.countsOf(name)) {
			return Elem{Name: name, Value: []byte("0")}, true
		}
		return Elem{}, false
	}
	return run[len(run)-1], true
}

// FieldValue is hash field name's value as a client reads it: the value of
// its highest dot plus what its counter's counts add, when that value is a
// number (see counterValue).
func (t *Typed) FieldValue(name []byte) ([]byte, bool) {
	e, ok := t.Field(name)
	if !ok {
		return nil, false
	}
	return counterValue(e.Value, t.countsOf(name)), true
}

// HasFloatCounts reports whether counter name (nil: the string's) holds
// float increments that a reset did not observe: its value is then an exact
// sum (counterValue), and an increment of it goes in as a float (TypedOp.IncrFloat).
func (t *Typed) HasFloatCounts(name []byte) bool {
	return t != nil && floatCounts(t.countsOf(name))
}

// countedFields lists, in name order, the fields that have counts adding
// something but no element (see Field).
func (t *Typed) countedFields() [][]byte {
	var out [][]byte
	t.eachCounted(func(name []byte) bool {
		out = append(out, name)
		return true
	})
	return out
}

// eachCounted calls fn with each field that has counts adding something
// but no element, in name order, until fn returns false.
func (t *Typed) eachCounted(fn func(name []byte) bool) {
	var run []Count
	flush := func() bool {
		name := run[0].Name
		if len(name) > 0 && countsAdd(run) && !t.hasField(name) {
			return fn(name)
		}
		return true
	}
	visit := func(c Count) bool {
		if len(run) > 0 && !bytes.Equal(run[0].Name, c.Name) {
			if !flush() {
				run = nil
				return false
			}
			run = run[:0]
		}
		run = append(run, c)
		return true
	}
	switch {
	case t == nil:
		return
	case t.big != nil:
		if t.big.counts != nil {
			t.big.counts.Scan(visit)
		}
	default:
		for _, c := range t.Counts {
			if !visit(c) {
				break
			}
		}
	}
	if len(run) > 0 {
		flush()
	}
}

// hasField reports whether hash field name has an element.
func (t *Typed) hasField(name []byte) bool {
	if t.big != nil {
		return t.big.named(listFields, name, nil)
	}
	return len(t.run(listFields, name)) > 0
}

// shows reports whether t's type holds anything a client sees (Len() > 0)
// without counting it: a large hash's counters are counted only when it
// has no field.
func (t *Typed) shows() bool {
	switch {
	case t == nil:
		return false
	case t.Kind == KindHash && t.big != nil && t.big.names[listFields] > 0:
		return true
	case t.Kind == KindHash && len(t.Fields) > 0:
		return true
	case t.Kind == KindHash:
		found := false
		t.eachCounted(func([]byte) bool { found = true; return false })
		return found
	}
	return t.Len() > 0
}

// traces is a run of elements as the traces a write at timestamp at that
// removes them records.
func traces(run []Elem, at hlc.Timestamp) []Elem {
	out := make([]Elem, len(run))
	for i, e := range run {
		out[i] = trace(e, at)
	}
	return out
}

// HasMember reports whether set member name is present.
func (t *Typed) HasMember(name []byte) bool {
	if t != nil && t.big != nil {
		return t.big.named(listMembers, name, nil) // no run to build
	}
	return len(t.run(listMembers, name)) > 0
}

// EachField calls fn with each hash field's name and value, in name order.
func (t *Typed) EachField(fn func(name, value []byte) bool) {
	if t == nil {
		return
	}
	counted := t.countedFields()
	emit := func(name []byte) bool {
		v, _ := t.FieldValue(name)
		return fn(name, v)
	}
	ok := true
	t.each(listFields, func(run []Elem) bool {
		name := run[0].Name
		for len(counted) > 0 && bytes.Compare(counted[0], name) < 0 {
			if ok = emit(counted[0]); !ok {
				return false
			}
			counted = counted[1:]
		}
		ok = fn(name, counterValue(run[len(run)-1].Value, t.countsOf(name)))
		return ok
	})
	for _, name := range counted {
		if !ok || !emit(name) {
			return
		}
	}
}

// EachMember calls fn with each set member, in order.
func (t *Typed) EachMember(fn func(name []byte) bool) {
	t.each(listMembers, func(run []Elem) bool { return fn(run[0].Name) })
}

// Len is the number of distinct fields or members of the key's type.
func (t *Typed) Len() int {
	if t == nil {
		return 0
	}
	which := listFields
	switch t.Kind {
	case KindHash:
	case KindSet:
		which = listMembers
	case KindZSet:
		return t.ZLen()
	case KindList:
		return t.ListLen()
	default:
		return 0
	}
	n := 0
	if which == listFields {
		n = len(t.countedFields())
	}
	if t.big != nil {
		return n + t.big.names[which]
	}
	t.each(which, func([]Elem) bool { n++; return true })
	return n
}

// Observed is every element as a write at timestamp at that deletes the key
// observed it: the traces to record.
func (t *Typed) Observed(at hlc.Timestamp) []Elem {
	if t == nil {
		return nil
	}
	var out []Elem
	for _, which := range elemLists {
		t.each(which, func(run []Elem) bool {
			out = append(out, traces(run, at)...)
			return true
		})
	}
	slices.SortFunc(out, compareND)
	return out
}

// Clear is the typed part of a write at timestamp at that deletes or
// overwrites the whole key: every element observed removed, every counter
// observed reset.
func (t *Typed) Clear(at hlc.Timestamp) *Typed {
	if t == nil {
		return nil
	}
	return &Typed{Removed: t.Observed(at), Counts: t.AllResets(), ScoreCounts: allResets(t.ScoreCountList()),
		HLL: t.HLL.cleared()} // HyperLogLog hook (record/hll.go)
}

// Normalize puts a typed write its command built in order: elements sorted,
// traces sorted without duplicates, the counts of one counter and node
// merged, and elements this same write traced dropped. It is for the small
// states a command builds.
func (t *Typed) Normalize() {
	slices.SortFunc(t.Removed, compareElem) // a trace's time is its value: the earliest of a dot first
	t.Removed = slices.CompactFunc(t.Removed, func(a, b Elem) bool { return compareND(a, b) == 0 })
	sortElems := func(es []Elem) []Elem {
		slices.SortFunc(es, compareElem)
		es = slices.CompactFunc(es, func(a, b Elem) bool { return compareElem(a, b) == 0 })
		return slices.DeleteFunc(es, func(e Elem) bool { return traced(t.Removed, e) })
	}
	t.Fields = sortElems(t.Fields)
	t.Members = sortElems(t.Members)
	t.Scored = sortElems(t.Scored)
	t.Listed = sortElems(t.Listed)
	t.Counts = normalizeCounts(t.Counts)
	t.ScoreCounts = normalizeCounts(t.ScoreCounts)
}

// normalizeCounts sorts counts and merges those of one counter and node.
func normalizeCounts(counts []Count) []Count {
	slices.SortStableFunc(counts, compareCountKey)
	out := counts[:0]
	for _, c := range counts {
		if n := len(out); n > 0 && compareCountKey(out[n-1], c) == 0 {
			out[n-1] = mergeCount(out[n-1], c)
			continue
		}
		out = append(out, c)
	}
	return out
}

// MemberCount is the number of member elements (dots, so a member written
// concurrently at two nodes counts twice), for MemberAt.
func (t *Typed) MemberCount() int {
	if t == nil {
		return 0
	}
	return t.count(listMembers)
}

// MemberAt is the name of the i-th member element in order, 0 <= i <
// MemberCount: random picks in O(log n).
func (t *Typed) MemberAt(i int) []byte {
	if t.big != nil {
		it, _ := t.big.lists[listMembers].GetAt(i)
		return it.elem().Name
	}
	return t.Members[i].Name
}

// Elements lists a typed state's hash fields (members false) or set members
// with their dots, in order, whichever form holds them: for checkers that
// account for every element. They are read-only.
func (t *Typed) Elements(members bool) []Elem {
	if t == nil {
		return nil
	}
	which := listFields
	if members {
		which = listMembers
	}
	var out []Elem
	t.each(which, func(run []Elem) bool {
		out = append(out, run...)
		return true
	})
	return out
}
