package record

import (
	"bytes"
	"cmp"
	"slices"
	"strconv"
)

// Typed is a key's state beyond its string register: the Redis type the key
// holds and that type's elements, each tagged with the dot (the version) of
// the write that added it, so that concurrent edits merge element by element.
//
// Merging is a union: elements and counts from both sides, minus the
// elements whose dots a remove has traced. A remove (HDEL, SREM, DEL, a SET
// over a hash) removes exactly the dots it observed and records them in
// Removed, so an element added concurrently elsewhere, with a dot the
// remover never saw, survives: adds win over concurrent removes, as in Redis
// Enterprise's Active-Active. Nothing here depends on the order in which
// writes arrive, so a peer may deliver deltas in any order, twice, or as whole
// states (Merkle repair), and every node ends with the same state.
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
	// add.
	Counts []Count
	// Fields are a hash's fields and Members a set's members, each sorted by
	// name then dot. A name holds several dots when it was written
	// concurrently at several nodes; the highest dot's value shows.
	Fields  []Elem
	Members []Elem
	// Removed are the dots of removed elements, sorted: the trace that stops a
	// late copy of an add from bringing its element back. Traces are kept
	// until collection; they are never shown.
	Removed []Version

	// HLL is a HyperLogLog's sketch (record/hll.go), nil for other keys.
	HLL *HLL
}

// Kinds of value a key can hold beyond strings.
const (
	KindHash Kind = 1
	KindSet  Kind = 2
)

// Count is one node's increments of one counter. Only that node writes Ver
// and Total; any node that overwrites or deletes the counter writes the Reset
// pair: the node's Total as it observed it. A counter therefore adds up
// increments made concurrently at different nodes, and a SET or DEL clears
// only the increments it saw.
type Count struct {
	Name       []byte
	Node       NodeID
	Ver        Version // of the node's latest increment
	Total      int64   // the sum of the node's increments
	ResetVer   Version // Ver of the Total that was reset
	ResetTotal int64
}

// Elem is a hash field or a set member, with the dot of the write that added
// it.
type Elem struct {
	Name  []byte
	Dot   Version
	Value []byte // a field's value; nil for a member
}

// added is a Count's contribution to its counter's value.
func (c Count) added() int64 { return c.Total - c.ResetTotal }

func compareElem(a, b Elem) int {
	if c := bytes.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	if c := a.Dot.Compare(b.Dot); c != 0 {
		return c
	}
	return bytes.Compare(a.Value, b.Value)
}

func compareCountKey(a, b Count) int {
	if c := bytes.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return cmp.Compare(a.Node, b.Node)
}

// mergeTyped merges two typed states; either may be nil.
func mergeTyped(a, b *Typed) *Typed {
	switch {
	case a.empty():
		return b
	case b.empty():
		return a
	}
	m := &Typed{Kind: a.Kind, KindVersion: a.KindVersion}
	if c := b.KindVersion.Compare(a.KindVersion); c > 0 || c == 0 && b.Kind > a.Kind {
		m.Kind, m.KindVersion = b.Kind, b.KindVersion
	}
	m.Removed = unionDots(a.Removed, b.Removed)
	m.Fields = mergeElems(a.Fields, b.Fields, m.Removed)
	m.Members = mergeElems(a.Members, b.Members, m.Removed)
	m.Counts = mergeCounts(a.Counts, b.Counts)
	m.HLL = mergeHLL(a.HLL, b.HLL) // HyperLogLog hook (record/hll.go)
	return m
}

func unionDots(a, b []Version) []Version {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := make([]Version, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i].Compare(b[j]) < 0:
			out = append(out, a[i])
			i++
		case i == len(a) || b[j].Compare(a[i]) < 0:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i, j = i+1, j+1
		}
	}
	return out
}

func removed(traces []Version, d Version) bool {
	_, found := slices.BinarySearchFunc(traces, d, Version.Compare)
	return found
}

// mergeElems is the union of two sorted element lists without the elements
// whose dots are traced as removed.
func mergeElems(a, b []Elem, traces []Version) []Elem {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	out := make([]Elem, 0, max(len(a), len(b)))
	add := func(e Elem) {
		if !removed(traces, e.Dot) {
			out = append(out, e)
		}
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var c int
		switch {
		case j == len(b):
			c = -1
		case i == len(a):
			c = 1
		default:
			c = compareElem(a[i], b[j])
		}
		switch {
		case c < 0:
			add(a[i])
			i++
		case c > 0:
			add(b[j])
			j++
		default:
			add(a[i])
			i, j = i+1, j+1
		}
	}
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
	out := make([]Count, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var c int
		switch {
		case j == len(b):
			c = -1
		case i == len(a):
			c = 1
		default:
			c = compareCountKey(a[i], b[j])
		}
		switch {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
		default:
			out = append(out, mergeCount(a[i], b[j]))
			i, j = i+1, j+1
		}
	}
	return out
}

func mergeCount(a, b Count) Count {
	m := a
	if c := b.Ver.Compare(a.Ver); c > 0 || c == 0 && b.Total > a.Total {
		m.Ver, m.Total = b.Ver, b.Total
	}
	if c := b.ResetVer.Compare(a.ResetVer); c > 0 || c == 0 && b.ResetTotal > a.ResetTotal {
		m.ResetVer, m.ResetTotal = b.ResetVer, b.ResetTotal
	}
	return m
}

func equalTyped(a, b *Typed) bool {
	if a == nil || b == nil {
		return a.empty() && b.empty()
	}
	return a.Kind == b.Kind && a.KindVersion == b.KindVersion &&
		slices.Equal(a.Removed, b.Removed) &&
		slices.EqualFunc(a.Fields, b.Fields, func(x, y Elem) bool { return compareElem(x, y) == 0 }) &&
		slices.EqualFunc(a.Members, b.Members, func(x, y Elem) bool { return compareElem(x, y) == 0 }) &&
		slices.EqualFunc(a.Counts, b.Counts, func(x, y Count) bool {
			return compareCountKey(x, y) == 0 && x.Ver == y.Ver && x.Total == y.Total &&
				x.ResetVer == y.ResetVer && x.ResetTotal == y.ResetTotal
		}) &&
		equalHLL(a.HLL, b.HLL) // HyperLogLog hook (record/hll.go)
}

// IsZero reports whether t holds nothing at all (nil included).
func (t *Typed) IsZero() bool { return t.empty() }

func (t *Typed) empty() bool {
	return t == nil || t.KindVersion.IsZero() && t.Kind == 0 && len(t.Counts) == 0 &&
		len(t.Fields) == 0 && len(t.Members) == 0 && len(t.Removed) == 0 &&
		t.HLL == nil // HyperLogLog hook (record/hll.go)
}

// Added is what the counts of the counter name add to its base.
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

// countsOf is the counts of the counter name, a run of t.Counts.
func (t *Typed) countsOf(name []byte) []Count {
	lo, _ := slices.BinarySearchFunc(t.Counts, name, func(c Count, n []byte) int { return bytes.Compare(c.Name, n) })
	hi := lo
	for hi < len(t.Counts) && bytes.Equal(t.Counts[hi].Name, name) {
		hi++
	}
	return t.Counts[lo:hi]
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

// Resets is the counts of counter name as a write that overwrites or
// deletes it records them: every count observed, reset.
func (t *Typed) Resets(name []byte) []Count {
	if t == nil {
		return nil
	}
	cs := t.countsOf(name)
	out := make([]Count, 0, len(cs))
	for _, c := range cs {
		if c.ResetVer != c.Ver || c.ResetTotal != c.Total {
			out = append(out, Count{Name: c.Name, Node: c.Node, ResetVer: c.Ver, ResetTotal: c.Total})
		}
	}
	return out
}

// AllResets is Resets of every counter.
func (t *Typed) AllResets() []Count {
	if t == nil {
		return nil
	}
	var out []Count
	for _, c := range t.Counts {
		if c.ResetVer != c.Ver || c.ResetTotal != c.Total {
			out = append(out, Count{Name: c.Name, Node: c.Node, ResetVer: c.Ver, ResetTotal: c.Total})
		}
	}
	return out
}

// elemRun is the run of elems named name in a sorted list.
func elemRun(elems []Elem, name []byte) []Elem {
	lo, _ := slices.BinarySearchFunc(elems, name, func(e Elem, n []byte) int { return bytes.Compare(e.Name, n) })
	hi := lo
	for hi < len(elems) && bytes.Equal(elems[hi].Name, name) {
		hi++
	}
	return elems[lo:hi]
}

// Field returns hash field name's element (its highest dot), if present.
func (t *Typed) Field(name []byte) (Elem, bool) {
	if t == nil {
		return Elem{}, false
	}
	run := elemRun(t.Fields, name)
	if len(run) == 0 {
		return Elem{}, false
	}
	return run[len(run)-1], true
}

// FieldValue is hash field name's value as a client reads it: the value of
// its highest dot plus what its counter's counts add, when that value is an
// integer.
func (t *Typed) FieldValue(name []byte) ([]byte, bool) {
	e, ok := t.Field(name)
	if !ok {
		return nil, false
	}
	return withCounts(e.Value, t.Added(name)), true
}

// withCounts adds a counter's counts to its base, when the base is an
// integer; a base that is not shows as it is.
func withCounts(base []byte, add int64) []byte {
	if add == 0 {
		return base
	}
	b, err := strconv.ParseInt(string(base), 10, 64)
	if err != nil {
		return base
	}
	return strconv.AppendInt(nil, b+add, 10)
}

// FieldDots is the dots of hash field name: what a write that replaces or
// removes it observed.
func (t *Typed) FieldDots(name []byte) []Version {
	if t == nil {
		return nil
	}
	return dots(t.Fields, name)
}

// MemberDots is the dots of set member name.
func (t *Typed) MemberDots(name []byte) []Version {
	if t == nil {
		return nil
	}
	return dots(t.Members, name)
}

func dots(elems []Elem, name []byte) []Version {
	run := elemRun(elems, name)
	out := make([]Version, len(run))
	for i, e := range run {
		out[i] = e.Dot
	}
	return out
}

// HasMember reports whether set member name is present.
func (t *Typed) HasMember(name []byte) bool { return t != nil && len(elemRun(t.Members, name)) > 0 }

// EachField calls fn with each hash field's name and value, in name order.
func (t *Typed) EachField(fn func(name, value []byte) bool) {
	if t == nil {
		return
	}
	for i := 0; i < len(t.Fields); {
		run := elemRun(t.Fields[i:], t.Fields[i].Name)
		name := run[0].Name
		if !fn(name, withCounts(run[len(run)-1].Value, t.Added(name))) {
			return
		}
		i += len(run)
	}
}

// EachMember calls fn with each set member, in order.
func (t *Typed) EachMember(fn func(name []byte) bool) {
	if t == nil {
		return
	}
	for i := 0; i < len(t.Members); {
		run := elemRun(t.Members[i:], t.Members[i].Name)
		if !fn(run[0].Name) {
			return
		}
		i += len(run)
	}
}

// Len is the number of distinct fields or members of the key's type.
func (t *Typed) Len() int {
	if t == nil {
		return 0
	}
	elems := t.elems()
	n := 0
	for i := range elems {
		if i == 0 || !bytes.Equal(elems[i].Name, elems[i-1].Name) {
			n++
		}
	}
	return n
}

func (t *Typed) elems() []Elem {
	switch t.Kind {
	case KindHash:
		return t.Fields
	case KindSet:
		return t.Members
	}
	return nil
}

// AllDots is the dots of every element: what a write that deletes the key
// observed.
func (t *Typed) AllDots() []Version {
	if t == nil {
		return nil
	}
	out := make([]Version, 0, len(t.Fields)+len(t.Members))
	for _, e := range t.Fields {
		out = append(out, e.Dot)
	}
	for _, e := range t.Members {
		out = append(out, e.Dot)
	}
	slices.SortFunc(out, Version.Compare)
	return slices.CompactFunc(out, func(a, b Version) bool { return a == b })
}

// Clear is the typed part of a write that deletes or overwrites the whole
// key: every element observed removed, every counter observed reset.
func (t *Typed) Clear() *Typed {
	if t == nil {
		return nil
	}
	return &Typed{Removed: t.AllDots(), Counts: t.AllResets(),
		HLL: t.HLL.cleared()} // HyperLogLog hook (record/hll.go)
}

// Normalize puts a typed write its command built in order: elements sorted,
// traces sorted without duplicates, the counts of one counter and node
// merged, and elements this same write traced dropped.
func (t *Typed) Normalize() {
	slices.SortFunc(t.Removed, Version.Compare)
	t.Removed = slices.Compact(t.Removed)
	sortElems := func(es []Elem) []Elem {
		slices.SortFunc(es, compareElem)
		es = slices.CompactFunc(es, func(a, b Elem) bool { return compareElem(a, b) == 0 })
		return slices.DeleteFunc(es, func(e Elem) bool { return removed(t.Removed, e.Dot) })
	}
	t.Fields = sortElems(t.Fields)
	t.Members = sortElems(t.Members)
	slices.SortStableFunc(t.Counts, compareCountKey)
	out := t.Counts[:0]
	for _, c := range t.Counts {
		if n := len(out); n > 0 && compareCountKey(out[n-1], c) == 0 {
			out[n-1] = mergeCount(out[n-1], c)
			continue
		}
		out = append(out, c)
	}
	t.Counts = out
}
