package record

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"math/big"
	"slices"
)

// TypedOp builds one command's write of a typed key as a delta: the elements
// it adds, each with a dot of its own, the elements and counts it observed
// and removes or resets, and the type register. Merge then applies the
// delta alike at the writing node and at every peer. It is pure, so that a
// node and the simulator build the same delta for the same command on the
// same record; they supply liveness (it depends on the clock) and versions.
type TypedOp struct {
	// Cur is the key's record as the command found it, and Live whether the
	// command sees it as a key of its kind.
	Cur  Record
	Live bool
	// Rec is the delta; Rec.Typed is never nil. A command may set Rec's
	// registers itself (a counter's base, for instance).
	Rec Record
	// V is the write's version: the type register's, a counter increment's
	// and the first new element's dot.
	V Version
	// Counter is the identity the writer's increments count under
	// (CounterID); V.Node if zero.
	Counter NodeID

	next func() (Version, error) // a fresh version for a further element
	used bool                    // V is taken by an element
	// spare is room for the one count most counter writes add (an INCR,
	// an HINCRBY), so that they allocate nothing more for it.
	spare [1]Count
	// seen is the last run of one name the write read of Cur (see
	// observed), and hints the paths its searches of a large Cur took:
	// the delta carries them to the merge, whose searches for the same
	// name then follow them.
	seen struct {
		which int
		name  []byte
		run   []Elem
		ok    bool
		// room for the name and run most writes read, so that reading
		// them allocates nothing
		nameBuf [32]byte
		runBuf  [2]Elem
	}
	hints *hints
	// own indexes the elements the write adds, once they are many
	// (ownElem).
	own *ownIndex
	// room is for what most writes add to the delta, so that adding it
	// allocates nothing more: the first element added (roomElem), the
	// first traces (traces) and their timestamps.
	room struct {
		elem      [1]Elem
		traces    [1]Elem
		stamps    [2][8]byte
		elemUsed  bool
		stampUsed int
	}
}

// ownIndex is a map of the places of the elements a write adds, by a hash
// of their names (see ownElem).
type ownIndex struct {
	of       *[]Elem
	m        map[uint64]int32
	n        int // of (*of)[:n]
	seed     maphash.Seed
	collided bool
}

// typedOpAlloc is a write's op and its delta's state, allocated together:
// one allocation for the two every typed write needs.
type typedOpAlloc struct {
	op TypedOp
	t  Typed
	h  hints
}

// observed is list which's run of name in Cur, read once however often
// the write asks (a command's read of the element it writes, then the
// traces the write records), along the path hints the delta carries.
func (op *TypedOp) observed(which int, name []byte) []Elem {
	s := &op.seen
	if s.ok && s.which == which && bytes.Equal(s.name, name) {
		return s.run
	}
	cur := op.Cur.Typed
	switch {
	case cur == nil:
		s.run = nil
	case cur.big != nil && which != listList:
		s.run = cur.big.runInto(s.runBuf[:0], which, name, op.hints)
	default:
		s.run = cur.run(which, name)
	}
	s.which, s.name, s.ok = which, append(s.nameBuf[:0], name...), true
	return s.run
}

// Field is Cur's hash field name as Typed.Field reads it, through the
// write's one read of it.
func (op *TypedOp) Field(name []byte) (Elem, bool) {
	if run := op.observed(listFields, name); len(run) > 0 {
		return run[len(run)-1], true
	}
	if len(name) > 0 && countsAdd(op.Cur.Typed.countsOf(name)) { // as Typed.Field
		return Elem{Name: name, Value: []byte("0")}, true
	}
	return Elem{}, false
}

// HasMember is Typed.HasMember of Cur, through the write's one read of
// the member.
func (op *TypedOp) HasMember(name []byte) bool { return len(op.observed(listMembers, name)) > 0 }

// Score is Typed.Score of Cur, through the write's one read of the member.
func (op *TypedOp) Score(name []byte) (float64, bool) {
	if op.Cur.Typed == nil {
		return 0, false
	}
	return scoreFrom(op.observed(listScored, name), op.Cur.Typed.scoreCountRun(name))
}

// BeginTyped starts a write of kind over cur at version v; next gives the
// further versions a write adding several elements needs, one each. A key
// that is not live starts afresh: the write removes whatever the record
// still holds (an expired value, elements of a type no longer shown) and its
// deadline, as a new key in Redis has none.
func BeginTyped(cur Record, live bool, kind Kind, v Version, next func() (Version, error)) *TypedOp {
	a := &typedOpAlloc{op: TypedOp{Cur: cur, Live: live, V: v, next: next}, t: Typed{Kind: kind, KindVersion: v}}
	op, t := &a.op, &a.t
	op.Rec.Typed = t
	if cur.Typed != nil && cur.Typed.big != nil {
		op.hints, t.hints = &a.h, &a.h
	}
	if !live {
		if !cur.Value.Version.IsZero() && !cur.Value.Tombstone {
			op.Rec.Value = Value{Version: v, Tombstone: true}
		}
		if cur.Expiry.At != 0 {
			op.Rec.Expiry = Expiry{Version: v}
		}
		t.Removed = cur.Typed.Observed(v.TS)
		t.Counts = cur.Typed.AllResets()
		t.ScoreCounts = cur.Typed.allScoreResets()
	}
	return op
}

// dot is a new element's dot: every element gets its own, so that removing
// one never removes another added by the same command.
func (op *TypedOp) dot() (Version, error) {
	if !op.used {
		op.used = true
		return op.V, nil
	}
	return op.next()
}

// traces adds to the delta the traces of run, as this write's removal of
// its elements records them (see trace): the first in the op's room.
func (op *TypedOp) traces(run []Elem) {
	t := op.Rec.Typed
	r := &op.room
	for _, e := range run {
		var stamp []byte
		if r.stampUsed < len(r.stamps) {
			stamp = r.stamps[r.stampUsed][:0]
			r.stampUsed++
		}
		if t.Removed == nil {
			t.Removed = r.traces[:0]
		}
		t.Removed = append(t.Removed, traceIn(stamp, e, op.V.TS))
	}
}

// addElem adds e to the delta's list *elems: the write's first element in
// the op's room.
func (op *TypedOp) addElem(elems *[]Elem, e Elem) {
	if *elems == nil && !op.room.elemUsed {
		*elems, op.room.elemUsed = op.room.elem[:0], true
	}
	*elems = append(*elems, e)
}

// ownScan is how many elements a write adds before ownElem finds them by
// a map instead of one by one.
const ownScan = 16

// ownElem finds name among the elements this write adds, *elems. Past
// ownScan of them it keeps a map of their places by a hash of their names:
// a write adding an element for each of a large key's (SUNIONSTORE, COPY)
// searched all it had added for each, n² comparisons under the write lock.
func (op *TypedOp) ownElem(elems *[]Elem, name []byte) int {
	es := *elems
	scan := func() int { return slices.IndexFunc(es, func(e Elem) bool { return bytes.Equal(e.Name, name) }) }
	if len(es) <= ownScan {
		return scan()
	}
	if op.own == nil {
		op.own = &ownIndex{seed: maphash.MakeSeed()}
	}
	x := op.own
	if x.of != elems || x.m == nil {
		x.of, x.m, x.n, x.collided = elems, make(map[uint64]int32, len(es)), 0, false
	}
	for ; x.n < len(es); x.n++ {
		h := maphash.Bytes(x.seed, es[x.n].Name)
		if i, ok := x.m[h]; !ok {
			x.m[h] = int32(x.n)
		} else if !bytes.Equal(es[i].Name, es[x.n].Name) {
			x.collided = true
		}
	}
	i, ok := x.m[maphash.Bytes(x.seed, name)]
	switch {
	case ok && bytes.Equal(es[i].Name, name):
		return int(i)
	case x.collided:
		return scan() // two names share a hash: the map holds one of them
	}
	return -1
}

// deleteOwn deletes element i of the elements this write adds, *elems.
func (op *TypedOp) deleteOwn(elems *[]Elem, i int) {
	*elems = slices.Delete(*elems, i, i+1)
	op.movedOwn(elems)
}

// movedOwn says the elements this write adds, *elems, moved: ownElem's map
// of their places is built again when next needed.
func (op *TypedOp) movedOwn(elems *[]Elem) {
	if op.own != nil && op.own.of == elems {
		op.own.m = nil
	}
}

// SetField writes hash field name: the dots it had are removed, its counter
// reset. It returns the field's new dot.
func (op *TypedOp) SetField(name, value []byte) (Version, error) {
	t := op.Rec.Typed
	if i := op.ownElem(&t.Fields, name); i >= 0 {
		t.Fields[i].Value = value
		return t.Fields[i].Dot, nil
	}
	d, err := op.dot()
	if err != nil {
		return Version{}, err
	}
	op.traces(op.observed(listFields, name))
	t.Counts = append(t.Counts, op.Cur.Typed.Resets(name)...)
	op.addElem(&t.Fields, Elem{Name: name, Dot: d, Value: value})
	return d, nil
}

// BaseField gives hash field name an element of value 0, its counts kept:
// a field a delete left with increments it did not observe has counts but
// no element, and vanishes once they come to add nothing; with a base it
// stays, at "0", as a field incremented to 0 in Redis. It returns the
// element's dot.
func (op *TypedOp) BaseField(name []byte) (Version, error) {
	t := op.Rec.Typed
	if i := op.ownElem(&t.Fields, name); i >= 0 {
		return t.Fields[i].Dot, nil
	}
	d, err := op.dot()
	if err != nil {
		return Version{}, err
	}
	op.traces(op.observed(listFields, name))
	op.addElem(&t.Fields, Elem{Name: name, Dot: d, Value: []byte("0")})
	return d, nil
}

// DelField removes hash field name as the writer sees it.
func (op *TypedOp) DelField(name []byte) {
	t := op.Rec.Typed
	if i := op.ownElem(&t.Fields, name); i >= 0 {
		op.deleteOwn(&t.Fields, i)
	}
	op.traces(op.observed(listFields, name))
	t.Counts = append(t.Counts, op.Cur.Typed.Resets(name)...)
}

// IncrCounter adds by to the writer's count (under op.Counter) of counter
// name: a hash field, or nil for the string itself.
func (op *TypedOp) IncrCounter(name []byte, by int64) {
	c := op.writerCount(name)
	c.Name, c.Ver, c.Total = name, op.V, c.Total+by
	op.addCount(c)
}

// addCount adds c to the delta's counts.
func (op *TypedOp) addCount(c Count) {
	t := op.Rec.Typed
	if t.Counts == nil {
		t.Counts = op.spare[:0]
	}
	t.Counts = append(t.Counts, c)
}

// writerCount is the writer's count (under op.Counter) of counter name as
// this write takes it up: a new run if the writer had none or a reset
// observed all of it, and what it counted so far reset if the write did not
// find the counter live.
func (op *TypedOp) writerCount(name []byte) Count {
	id := op.Counter
	if id == 0 {
		id = op.V.Node
	}
	c := op.Cur.Typed.Count(name, id)
	if c.Ver.IsZero() || c.spent() {
		// A new run of counts (see Count.Start). One that replaces a
		// spent run takes nothing from the counter anywhere (the run it
		// replaces adds nothing once its reset arrives), and counts from
		// zero: a total a SET reset does not bound the increments after it.
		c = Count{Name: name, Node: id, Start: op.V.TS}
	}
	if !op.Live {
		c.ResetVer, c.ResetTotal, c.FReset = c.Ver, c.Total, c.FTotal
	}
	return c
}

// IncrFloat moves counter name (a hash field, or nil for the string) to
// exactly to, a finite long double: the writer's float count adds the
// difference between to and the counter's exact value as the command found
// it (see exact.go), base plus its counts; had is whether the counter was
// there (if not, its value is 0: the write resets its counts and writes a
// base of 0). On one node the counter then reads as to, whatever the
// rounding that produced to, so a chain of increments is Redis's chain;
// increments made at once elsewhere add theirs.
func (op *TypedOp) IncrFloat(name, base []byte, had bool, to *big.Float) error {
	from := new(dyadic)
	if had {
		var ok bool
		if from, ok = exactValue(base, op.Cur.Typed.countsOf(name)); !ok {
			return fmt.Errorf("increment of %q: base %q is not a number", name, base)
		}
	}
	c := op.writerCount(name)
	total := c.FTotal.decode()
	total.add(dyadicOf(to), 1)
	total.add(from, -1)
	ft := total.encode()
	if !checkExact([]byte(ft)) {
		return ErrFloatRange
	}
	c.Name, c.Ver, c.FTotal = name, op.V, ft
	op.addCount(c)
	return nil
}

// AddMember adds set member name, unless this write already did. The
// member takes a fresh dot even when the key holds it, and the dots it had
// are removed: an add wins over a concurrent remove elsewhere, which can
// only have observed the older dots (Redis Enterprise's observed-remove
// set; an SADD of a member held still answers 0). It returns the member's
// dot.
func (op *TypedOp) AddMember(name []byte) (Version, error) {
	t := op.Rec.Typed
	if i := op.ownElem(&t.Members, name); i >= 0 {
		return t.Members[i].Dot, nil
	}
	d, err := op.dot()
	if err != nil {
		return Version{}, err
	}
	op.traces(op.observed(listMembers, name))
	op.addElem(&t.Members, Elem{Name: name, Dot: d})
	return d, nil
}

// RemMember removes set member name as the writer sees it.
func (op *TypedOp) RemMember(name []byte) {
	t := op.Rec.Typed
	if i := op.ownElem(&t.Members, name); i >= 0 {
		op.deleteOwn(&t.Members, i)
	}
	op.traces(op.observed(listMembers, name))
}

// Delta is the finished write, in the order Merge expects.
func (op *TypedOp) Delta() Record {
	op.Rec.Typed.Normalize()
	return op.Rec
}

// OverValue is a write of the value register (SET, DEL, APPEND ...) over
// cur, completed for a key that holds a typed state: the write also removes
// every element and resets every count it observed, so a SET replaces a hash
// and its counters and a DEL removes what it saw and nothing more; a string
// write takes the type register.
func OverValue(cur, rec Record) Record {
	if rec.Typed == nil && !rec.Value.Version.IsZero() && cur.Typed != nil {
		t := cur.Typed.Clear(rec.Value.Version.TS)
		if !rec.Value.Tombstone {
			t.Kind, t.KindVersion = KindString, rec.Value.Version
		}
		rec.Typed = t
	}
	return rec
}

// CounterID is the identity a node's counter increments go under during one
// incarnation (one run of its process). A count is a running total that only
// its identity writes, merged by the version of its latest increment; a node
// whose crash lost increments a peer already had would, under the same
// identity, continue from the smaller total at a newer version and undo them.
// A fresh identity per incarnation leaves the old count to the merge.
func CounterID(node NodeID, incarnation uint64) NodeID {
	return NodeID(mix64(uint64(node) ^ mix64(incarnation+0x9e3779b97f4a7c15)))
}
