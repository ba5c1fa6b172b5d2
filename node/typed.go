package node

import (
	"bytes"
	"cmp"
	"errors"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/longdouble"
	"github.com/redmesh/redmesh/record"
)

// What the type families (hashes.go, sets.go, the counters of strings.go)
// share: reading a key as one kind, and building a write of a typed key as a
// delta (record.TypedOp) — the elements it adds, each with a dot of its own,
// and the elements it observed and removes — that record.Merge then applies
// here and at every peer alike.

// liveKind checks a record a command reads as kind: whether the client sees
// it, and WRONGTYPE if it holds another kind.
func liveKind(rec record.Record, now int64, kind record.Kind) (bool, error) {
	if !rec.Live(now) {
		return false, nil
	}
	if rec.Kind() != kind {
		return true, replyErr(errWrongType)
	}
	return true, nil
}

// readKind reads key as kind outside the write path (or through the open
// transaction inside EXEC), counting keyspace hits and misses. A key the
// client does not see reads as a nil state.
func (c *client) readKind(key []byte, kind record.Kind) (*record.Typed, error) {
	rec, err := c.get(key)
	if err != nil {
		return nil, err
	}
	live, err := liveKind(rec, c.n.nowMillis(), kind)
	if err != nil {
		return nil, err
	}
	if !live {
		c.counts.misses.Add(1)
		return nil, nil
	}
	c.counts.hits.Add(1)
	return rec.Typed, nil
}

// typedWrite is one command's write of a typed key, built against the key's
// record as the command found it by a record.TypedOp; its fields are views
// of the op for the command files.
type typedWrite struct {
	n    *Node
	key  []byte
	op   *record.TypedOp
	cur  record.Record
	live bool
	rec  *record.Record // the delta: op.Rec
	t    *record.Typed  // rec.Typed
	v    record.Version
}

// beginTyped starts a write of key as kind (see record.BeginTyped). A live
// key of another kind is WRONGTYPE.
func (n *Node) beginTyped(tx *keyspace.Tx, key []byte, kind record.Kind, now int64) (*typedWrite, error) {
	cur, err := tx.Get(key)
	if err != nil {
		return nil, err
	}
	live, err := liveKind(cur, now, kind)
	if err != nil {
		return nil, err
	}
	return n.startTyped(key, cur, live, kind)
}

// replaceTyped starts a write that makes key a new key of kind whatever it
// held (COPY, the STORE commands): as on a key that is not there, it removes
// everything the record holds.
func (n *Node) replaceTyped(tx *keyspace.Tx, key []byte, kind record.Kind) (*typedWrite, error) {
	cur, err := tx.Get(key)
	if err != nil {
		return nil, err
	}
	return n.startTyped(key, cur, false, kind)
}

func (n *Node) startTyped(key []byte, cur record.Record, live bool, kind record.Kind) (*typedWrite, error) {
	v, err := n.newVersion()
	if err != nil {
		return nil, err
	}
	op := record.BeginTyped(cur, live, kind, v, n.newVersion)
	op.Counter = n.counterID
	return &typedWrite{n: n, key: key, op: op, cur: cur, live: live, rec: &op.Rec, t: op.Rec.Typed, v: v}, nil
}

// own finds name among the elements this write adds.
func own(elems []record.Elem, name []byte) int {
	return slices.IndexFunc(elems, func(e record.Elem) bool { return bytes.Equal(e.Name, name) })
}

func (w *typedWrite) setField(name, value []byte) error {
	_, err := w.op.SetField(name, value)
	return err
}

func (w *typedWrite) addMember(name []byte) error {
	_, err := w.op.AddMember(name)
	return err
}

func (w *typedWrite) delField(name []byte)              { w.op.DelField(name) }
func (w *typedWrite) incrCounter(name []byte, by int64) { w.op.IncrCounter(name, by) }
func (w *typedWrite) remMember(name []byte)             { w.op.RemMember(name) }

// incrInt adds by to counter name (nil: the string's) as INCRBY and
// HINCRBY do, commits, and returns the new value: a counter that was not
// there starts from a base of 0; one that holds no integer, or a sum that
// would overflow (the value, or this node's count), is a reply error; one
// with float counts takes the increment as a float one, so that it shows
// as the integer returned.
func (w *typedWrite) incrInt(tx *keyspace.Tx, name []byte, by int64) (int64, error) {
	value, had := w.cur.StringData(), w.live
	if name != nil {
		value, had = w.cur.Typed.FieldValue(name)
		had = had && w.live
	}
	var old int64
	if had {
		var ok bool
		if old, ok = parseInt(value); !ok && name == nil {
			return 0, replyErr(errNotInteger)
		} else if !ok {
			return 0, replyErr(errHashNotInteger)
		}
	}
	mine := w.cur.Typed.RunningTotal(name, w.n.counterID)
	if addOverflows(old, by) || addOverflows(mine, by) {
		return 0, replyErr(errOverflow)
	}
	result := old + by
	switch {
	case had && name == nil && (w.cur.Value.Tombstone || w.cur.Value.Version.IsZero()):
		// A key a delete left with increments it did not observe: its base
		// 0 is written, so that the key stays when its counts come to add
		// nothing (a result of 0), as in Redis.
		w.rec.Value = record.Value{Version: w.v, Data: []byte("0")}
	case had && name != nil:
		// The same of a field an HDEL or DEL left so: it has counts but
		// no element.
		if e, _ := w.cur.Typed.Field(name); e.Dot.IsZero() {
			if _, err := w.op.BaseField(name); err != nil {
				return 0, err
			}
		}
	case had:
	case name == nil: // the base of a new counter: INCRBY 0 makes a key, as in Redis
		w.rec.Value = record.Value{Version: w.v, Data: []byte("0")}
		w.rec.Expiry = record.Expiry{Version: w.v}
	default:
		if err := w.setField(name, []byte("0")); err != nil {
			return 0, err
		}
	}
	if had && w.cur.Typed.HasFloatCounts(name) {
		base := w.cur.CounterBase()
		if name != nil {
			e, _ := w.cur.Typed.Field(name)
			base = e.Value
		}
		return result, w.incrFloat(tx, name, base, true, strconv.FormatInt(result, 10))
	}
	w.incrCounter(name, by)
	return result, w.commit(tx)
}

// incrFloat moves counter name (nil: the string's) to result, a finite long
// double as printed, and commits (see record.TypedOp.IncrFloat): base is
// the counter's base as the command found it, had whether the counter was
// there. A string counter that was not there gets a base of 0 and no
// deadline, a hash field one of 0.
func (w *typedWrite) incrFloat(tx *keyspace.Tx, name, base []byte, had bool, result string) error {
	to, _ := longdouble.Parse([]byte(result))
	switch {
	case !had && name == nil:
		w.rec.Value = record.Value{Version: w.v, Data: []byte("0")}
		w.rec.Expiry = record.Expiry{Version: w.v}
	case !had:
		if err := w.setField(name, []byte("0")); err != nil {
			return err
		}
	case name == nil && (w.cur.Value.Tombstone || w.cur.Value.Version.IsZero()):
		// A key a delete left with increments it did not observe: its
		// base 0 is written, so that the key stays when its counts come
		// to add nothing (a result of 0), as in Redis.
		w.rec.Value = record.Value{Version: w.v, Data: []byte("0")}
	}
	if err := w.op.IncrFloat(name, base, had, to); err != nil {
		if errors.Is(err, record.ErrFloatRange) {
			return replyErr("ERR increment out of the range a counter's exact total can hold")
		}
		return err
	}
	return w.commit(tx)
}

// commit applies the write.
func (w *typedWrite) commit(tx *keyspace.Tx) error {
	_, _, err := w.n.apply(tx, w.key, w.op.Delta())
	return err
}

// commitUnseen commits a write that changes nothing a client sees of a
// live key (it adds again what the key holds, for the merge's sake): as in
// Redis, which does not count it as a modification, a WATCH of the key
// stays unbroken.
func (w *typedWrite) commitUnseen(tx *keyspace.Tx) error {
	out, _, err := w.n.apply(tx, w.key, w.op.Delta())
	if err == nil {
		w.n.watching.unseen(w.key, w.cur.Versions(), out.Versions())
	}
	return err
}

// put applies a local write of the value register (SET, DEL, APPEND ...),
// completed by record.OverValue for a key that holds a typed state.
func (n *Node) put(tx *keyspace.Tx, key []byte, rec record.Record) error {
	if rec.Typed != nil {
		_, _, err := n.apply(tx, key, rec)
		return err
	}
	out, _, err := tx.Put(key, rec)
	n.noteTraces(out, err)
	return err
}

// smallScan is the size up to which HSCAN and SSCAN answer every element at
// once with cursor 0, as Redis does for its small encodings.
const smallScan = 128

// scanElements is HSCAN's and SSCAN's walk over a hash's or set's element
// names: the indexes of the names to answer, and the next cursor. A larger
// collection is walked in the order of its names' hashes, the cursor being
// the next hash to visit plus one, so that an element present for a whole
// scan is returned at least once however the collection changes between
// calls (Redis's SCAN guarantee).
func scanElements(names [][]byte, cursor uint64, o scanOptions) (next uint64, picked []int) {
	match := func(i int) bool { return o.pattern == nil || globMatch(o.pattern, names[i], false) }
	if len(names) <= smallScan {
		if cursor != 0 {
			return 0, nil
		}
		for i := range names {
			if match(i) {
				picked = append(picked, i)
			}
		}
		return 0, picked
	}
	type hashed struct {
		h uint64
		i int
	}
	order := make([]hashed, 0, len(names))
	for i, name := range names {
		if h := xxhash.Sum64(name) >> 1; cursor == 0 || h >= cursor-1 {
			order = append(order, hashed{h, i})
		}
	}
	slices.SortFunc(order, func(a, b hashed) int { return cmp.Compare(a.h, b.h) })
	visited := int64(0)
	for k, e := range order {
		// Names of one hash are answered together, so a cursor never
		// falls between them.
		if visited >= o.count && e.h != order[k-1].h {
			return e.h + 1, picked
		}
		visited++
		if match(e.i) {
			picked = append(picked, e.i)
		}
	}
	return 0, picked
}
