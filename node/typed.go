package node

import (
	"bytes"
	"cmp"
	"slices"

	"github.com/cespare/xxhash/v2"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
)

// What the type families (hashes.go, sets.go, the counters of strings.go)
// share: reading a key as one kind, and building a write of a typed key as a
// delta — the elements it adds, each with a dot of its own, and the dots it
// observed and removes — that record.Merge then applies here and at every
// peer alike.

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
// record as the command found it.
type typedWrite struct {
	n    *Node
	key  []byte
	cur  record.Record
	live bool
	rec  record.Record // the delta
	t    *record.Typed // rec.Typed
	v    record.Version
	used bool // v is taken by an element
}

// beginTyped starts a write of key as kind. A key that is absent or expired
// starts afresh: the write removes whatever the record still holds (an
// expired value, elements of a type no longer shown) and its deadline, as a
// new key in Redis has none. A live key of another kind is WRONGTYPE.
func (n *Node) beginTyped(tx *keyspace.Tx, key []byte, kind record.Kind, now int64) (*typedWrite, error) {
	cur, err := tx.Get(key)
	if err != nil {
		return nil, err
	}
	live, err := liveKind(cur, now, kind)
	if err != nil {
		return nil, err
	}
	v, err := n.newVersion()
	if err != nil {
		return nil, err
	}
	w := &typedWrite{n: n, key: key, cur: cur, live: live, v: v}
	w.t = &record.Typed{Kind: kind, KindVersion: v}
	w.rec.Typed = w.t
	if !live {
		if !cur.Value.Version.IsZero() && !cur.Value.Tombstone {
			w.rec.Value = record.Value{Version: v, Tombstone: true}
		}
		if cur.Expiry.At != 0 {
			w.rec.Expiry = record.Expiry{Version: v}
		}
		w.t.Removed = cur.Typed.Observed()
		w.t.Counts = cur.Typed.AllResets()
	}
	return w, nil
}

// dot is a new element's dot: every element gets its own, so that removing
// one never removes another added by the same command.
func (w *typedWrite) dot() (record.Version, error) {
	if !w.used {
		w.used = true
		return w.v, nil
	}
	return w.n.newVersion()
}

// own finds name among the elements this write adds.
func own(elems []record.Elem, name []byte) int {
	return slices.IndexFunc(elems, func(e record.Elem) bool { return bytes.Equal(e.Name, name) })
}

// setField writes hash field name: the dots it had are removed, its counter
// reset.
func (w *typedWrite) setField(name, value []byte) error {
	if i := own(w.t.Fields, name); i >= 0 {
		w.t.Fields[i].Value = value
		return nil
	}
	d, err := w.dot()
	if err != nil {
		return err
	}
	w.t.Removed = append(w.t.Removed, w.cur.Typed.ObservedField(name)...)
	w.t.Counts = append(w.t.Counts, w.cur.Typed.Resets(name)...)
	w.t.Fields = append(w.t.Fields, record.Elem{Name: name, Dot: d, Value: value})
	return nil
}

// delField removes hash field name as this node sees it.
func (w *typedWrite) delField(name []byte) {
	if i := own(w.t.Fields, name); i >= 0 {
		w.t.Fields = slices.Delete(w.t.Fields, i, i+1)
	}
	w.t.Removed = append(w.t.Removed, w.cur.Typed.ObservedField(name)...)
	w.t.Counts = append(w.t.Counts, w.cur.Typed.Resets(name)...)
}

// incrCounter adds by to this node's count of counter name (a hash field,
// or nil for the string itself).
func (w *typedWrite) incrCounter(name []byte, by int64) {
	c := w.cur.Typed.Count(name, w.n.id)
	if !w.live {
		c.ResetVer, c.ResetTotal = c.Ver, c.Total
	}
	c.Name, c.Ver, c.Total = name, w.v, c.Total+by
	w.t.Counts = append(w.t.Counts, c)
}

// addMember adds set member name, unless this write already did.
func (w *typedWrite) addMember(name []byte) error {
	if own(w.t.Members, name) >= 0 {
		return nil
	}
	d, err := w.dot()
	if err != nil {
		return err
	}
	w.t.Members = append(w.t.Members, record.Elem{Name: name, Dot: d})
	return nil
}

// remMember removes set member name as this node sees it.
func (w *typedWrite) remMember(name []byte) {
	if i := own(w.t.Members, name); i >= 0 {
		w.t.Members = slices.Delete(w.t.Members, i, i+1)
	}
	w.t.Removed = append(w.t.Removed, w.cur.Typed.ObservedMember(name)...)
}

// commit applies the write.
func (w *typedWrite) commit(tx *keyspace.Tx) error {
	w.t.Normalize()
	_, _, err := w.n.apply(tx, w.key, w.rec)
	return err
}

// put applies a local write of the value register (SET, DEL, APPEND ...).
// On a key that holds a typed state, the write also removes every element
// and resets every count it observed: a SET replaces a hash and its
// counters, a DEL removes what it saw and nothing more; a string write takes
// the type register.
func (n *Node) put(tx *keyspace.Tx, key []byte, rec record.Record) error {
	if rec.Typed == nil && !rec.Value.Version.IsZero() {
		if cur, _ := tx.Peek(key); cur.Typed != nil {
			t := cur.Typed.Clear()
			if !rec.Value.Tombstone {
				t.Kind, t.KindVersion = record.KindString, rec.Value.Version
			}
			rec.Typed = t
		}
	}
	_, _, err := n.apply(tx, key, rec)
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
