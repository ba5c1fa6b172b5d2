package keyspace

import (
	"bytes"
	"slices"

	"github.com/redmesh/redmesh/record"
)

// Tx is the view an Update function gets: reads see the table and the
// function's own changes so far.
type Tx struct {
	db      *DB
	changes []change
	// pos is each key's last change by the key's hash (Hash, which each
	// change carries), once there are many (indexed); kept across steps,
	// so a bulk apply (a bootstrap's chunk) neither regrows it nor
	// allocates a string per key. Two keys of one hash find the later's
	// change: own then scans.
	pos     map[uint64]int
	indexed bool
	// read is the last record Get read from the table, which a command
	// mostly applies its write to next: Apply then need not read it again.
	read struct {
		key []byte
		rec record.Record
		ok  bool
	}
	// owner marks the large typed states this step's merges built, which
	// nobody outside the step has seen: a later merge of the same key in
	// the step changes them in place (record.Owner). A fresh one each step,
	// of the DB's line: a state the step before published, that no reader
	// froze, is taken over too, and adopted lists those, for RollbackTo.
	owner   *record.Owner
	adopted []adoptedRec
	// hashed is the last key hash computed the hash of. prefetched are the
	// keys Prefetch read, with their hashes, and next the first of them
	// hash has not been asked for: a step's commands mostly name their
	// keys in the order they were prefetched, so each key is hashed once.
	hashed     hashedKey
	prefetched []hashedKey
	next       int
	// counters and data are where the counters' states and the data of
	// the records Counter reads are allocated: blocks of them, as an INCR
	// needs one of each.
	counters record.CounterStates
	data     []byte
}

type hashedKey struct {
	key []byte
	h   uint64
}

// adoptedRec is a key's record as the table held it when the step took
// its large state over.
type adoptedRec struct {
	key []byte
	rec record.Record
}

type change struct {
	key    []byte        // the caller's, valid until Update returns
	h      uint64        // Hash(key)
	rec    record.Record // the merged record; its Data likewise
	logged record.Record // what the log and peers get: the delta for a typed key
	// wasVersions are the record's versions before (Record.Versions), and
	// wasLarge whether it held a large typed state.
	wasVersions [3]record.Version
	wasLarge    bool
	// counter is set when rec's typed state is a string counter's, as
	// CounterState.Typed builds it: the table and the log then encode it
	// from that (record.CounterOf), not as a general state.
	counter bool
}

func (tx *Tx) reset() {
	// Keep the list for the next step, up to a bound, so that bulk applies
	// (a bootstrap's chunks, a catch-up) do not regrow it every step.
	if cap(tx.changes) > 1<<15 {
		tx.changes = nil
	}
	clear(tx.changes) // drop the references to the callers' buffers
	tx.changes = tx.changes[:0]
	tx.dropIndex()
	tx.read.key, tx.read.rec, tx.read.ok = nil, record.Record{}, false
	tx.hashed = hashedKey{}
	clear(tx.prefetched) // the callers' buffers
	tx.prefetched, tx.next = tx.prefetched[:0], 0
	// What this step built is published: the next step's owner takes it
	// over, or copies it on write once a reader froze it.
	tx.owner.Release()
	tx.owner = nil
	clear(tx.adopted)
	tx.adopted = tx.adopted[:0]
}

// own finds the latest change of key, of hash h, in this transaction.
// Most change one key or a few: a backwards scan then beats a map.
func (tx *Tx) own(h uint64, key []byte) (record.Record, bool) {
	if len(tx.changes) > 16 {
		if !tx.indexed {
			if tx.pos == nil {
				tx.pos = make(map[uint64]int, 2*len(tx.changes))
			}
			for i := range tx.changes {
				tx.pos[tx.changes[i].h] = i
			}
			tx.indexed = true
		}
		i, ok := tx.pos[h]
		if !ok {
			return record.Record{}, false
		}
		if string(tx.changes[i].key) == string(key) {
			return tx.changes[i].rec, true
		}
	}
	for i := len(tx.changes) - 1; i >= 0; i-- {
		if c := &tx.changes[i]; c.h == h && string(c.key) == string(key) {
			return c.rec, true
		}
	}
	return record.Record{}, false
}

// dropIndex empties pos for the next step, keeping it unless a bulk step
// made it large.
func (tx *Tx) dropIndex() {
	if len(tx.pos) > 1<<15 {
		tx.pos = nil
	}
	clear(tx.pos)
	tx.indexed = false
}

// Get reads a key's current record, its value's data included (a copy, or
// what this transaction applied). A large typed state is the table's own,
// which a later step may change in place (record.Owner): it is not to be
// read once the Update function returns.
func (tx *Tx) Get(key []byte) (record.Record, error) {
	h := tx.hash(key)
	if r, ok := tx.own(h, key); ok {
		return r, nil
	}
	return tx.tableGet(h, key), nil
}

// tableGet reads key, of hash h, from the table, or from the last such read.
func (tx *Tx) tableGet(h uint64, key []byte) record.Record {
	if tx.read.ok && string(tx.read.key) == string(key) {
		return tx.read.rec
	}
	r, _ := tx.db.table.getHashed(h, key)
	tx.read.key, tx.read.rec, tx.read.ok = key, r, true
	return r
}

// Prefetch brings the table's memory for keys into the CPU's caches at
// once (a write of several keys, a pipeline): their misses overlap rather
// than follow one another. keys must stay valid until Update returns.
func (tx *Tx) Prefetch(keys [][]byte) {
	tx.prefetched, tx.next = tx.prefetched[:0], 0
	if cap(tx.prefetched) > 1<<15 {
		tx.prefetched = nil // a bulk step's: not kept for every step after
	}
	for _, k := range keys {
		tx.prefetched = append(tx.prefetched, hashedKey{k, Hash(k)})
	}
	tx.db.table.prefetch(tx.prefetched)
}

// Peek reads a key's current record, with its value's data only if this
// transaction changed it (full); otherwise without (see Table.Peek), which
// is enough for versions, liveness and expiry.
func (tx *Tx) Peek(key []byte) (rec record.Record, full bool) { return tx.peek(tx.hash(key), key) }

// peek is Peek of a key of hash h.
func (tx *Tx) peek(h uint64, key []byte) (rec record.Record, full bool) {
	if r, ok := tx.own(h, key); ok {
		return r, true
	}
	return tx.db.table.peekHashed(h, key), false
}

// Apply merges rec into key's record. If rec wins anything, the merged record
// is stored and logged (for a typed key, rec itself is logged: a delta) when
// the transaction publishes; if not, nothing is
// written, changed is false (a write that loses is dropped, so nothing
// loops) and merged is the current record, its value's data possibly
// missing (as Peek). key and rec's data must stay valid until Update
// returns.
func (tx *Tx) Apply(key []byte, rec record.Record) (merged record.Record, changed bool, err error) {
	return tx.apply(key, rec, false)
}

// Put is Apply for a local write of the value register (SET, DEL, APPEND
// ...): over a key that holds a typed state, rec is completed first by
// record.OverValue, from the one read of the key Apply makes anyway.
func (tx *Tx) Put(key []byte, rec record.Record) (merged record.Record, changed bool, err error) {
	return tx.apply(key, rec, true)
}

func (tx *Tx) apply(key []byte, rec record.Record, over bool) (merged record.Record, changed bool, err error) {
	if len(key) > MaxKeyLen {
		return record.Record{}, false, ErrKeyTooLong
	}
	h := tx.hash(key)
	var cur record.Record
	full, mine := false, false // mine: cur is this step's, not the table's
	if rec.Typed != nil {
		// A typed merge needs the whole record: read it once.
		if cur, mine = tx.own(h, key); !mine {
			cur = tx.tableGet(h, key)
		}
		full = true
	} else {
		cur, full = tx.peek(h, key)
		mine = full
		if over && cur.Typed != nil && !rec.Value.Version.IsZero() {
			rec = record.OverValue(cur, rec)
		}
	}
	typed := rec.Typed != nil || cur.Typed != nil
	if !full && typed {
		cur = tx.tableGet(h, key) // a typed merge needs the whole record
	} else if !full && cur.Exists() && rec.Value.Version.Compare(cur.Value.Version) <= 0 {
		if loses(rec, cur) {
			return cur, false, nil
		}
		// The stored value may survive the merge: it needs its data.
		cur = tx.tableGet(h, key)
	}
	if typed && tx.owner == nil {
		tx.owner = record.NewOwner(tx.db.line)
	}
	if mine {
		merged, changed = record.MergeOwned(cur, rec, tx.owner)
	} else {
		adoptions := tx.owner.Adoptions()
		merged, changed = record.MergePublished(cur, rec, tx.owner)
		if tx.owner.Adoptions() > adoptions {
			tx.adopted = append(tx.adopted, adoptedRec{key: key, rec: cur})
		}
	}
	if !changed {
		return cur, false, nil
	}
	// A string's record is small and its merge is the whole record; a typed
	// state can be large, so the log carries only the write that changed it.
	logged := merged
	if typed {
		logged = rec
	}
	tx.add(change{key: key, h: h, rec: merged, logged: logged, wasVersions: cur.Versions(), wasLarge: cur.Typed.Large()})
	return merged, true, nil
}

func (tx *Tx) add(c change) {
	tx.changes = append(tx.changes, c)
	if tx.indexed {
		tx.pos[c.h] = len(tx.changes) - 1
	}
}

// hash is Hash(key), hashed once for the reads and the write of a key
// (Counter, then AddCount) and once for its prefetch and what follows.
func (tx *Tx) hash(key []byte) uint64 {
	if string(tx.hashed.key) == string(key) && tx.hashed.key != nil {
		return tx.hashed.h
	}
	for i := tx.next; i < min(tx.next+2, len(tx.prefetched)); i++ {
		if p := tx.prefetched[i]; string(p.key) == string(key) {
			tx.hashed, tx.next = p, i+1
			return p.h
		}
	}
	tx.hashed = hashedKey{key, Hash(key)}
	return tx.hashed.h
}

// Counter reads key as a string counter that one identity increments (see
// record.CounterState): its registers, with its value's data, and its
// state, read without decoding it. ok is false if the key holds anything
// else, or this transaction changed it: the caller then takes the general
// path (Get, Apply).
func (tx *Tx) Counter(key []byte) (rec record.Record, st record.CounterState, ok bool) {
	h := tx.hash(key)
	if _, own := tx.own(h, key); own {
		return record.Record{}, record.CounterState{}, false
	}
	rec, st, ok = tx.db.table.counter(h, key)
	rec.Value.Data = tx.clone(rec.Value.Data)
	return rec, st, ok
}

// clone is a copy of b (nil for empty), from the block tx.data: a block is
// never written again once handed out, so the copy stays as it is however
// long a log entry or a reply keeps it.
func (tx *Tx) clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	if len(b) > 256 {
		return bytes.Clone(b)
	}
	if cap(tx.data)-len(tx.data) < len(b) {
		tx.data = make([]byte, 0, 4096)
	}
	at := len(tx.data)
	tx.data = append(tx.data, b...)
	return tx.data[at:len(tx.data):len(tx.data)]
}

// AddCount applies an increment to a counter that Counter read as cur and
// st: next is the state the increment leaves, a count of the same identity
// and run as st's at a newer version, and a newer type register. Merged
// into st, such a delta replaces it whole, so next is both what the log and
// peers get and the key's new state; the merge is not run. ok is false,
// and nothing applied, if next is not such a state (Apply merges any write).
func (tx *Tx) AddCount(key []byte, cur record.Record, st, next record.CounterState) (merged record.Record, ok bool) {
	if !next.Supersedes(st) {
		return record.Record{}, false
	}
	t := tx.counters.Typed(next)
	merged = cur
	merged.Typed = t
	was := [3]record.Version{cur.Value.Version, cur.Expiry.Version, {TS: record.DigestTS, Node: record.NodeID(st.Digest())}}
	tx.add(change{key: key, h: tx.hash(key), rec: merged, logged: record.Record{Typed: t}, wasVersions: was, counter: true})
	return merged, true
}

// NewCounter applies a new counter, rec's registers with st as its typed
// state (whatever rec.Typed holds), to a key never written (nor changed in
// this transaction): merged into nothing, that record is the key's and what
// the log and peers get, so the merge is not run. ok is false, and nothing
// applied, for any other key.
func (tx *Tx) NewCounter(key []byte, rec record.Record, st record.CounterState) (ok bool, err error) {
	if len(key) > MaxKeyLen {
		return false, ErrKeyTooLong
	}
	h := tx.hash(key)
	if _, own := tx.own(h, key); own {
		return false, nil
	}
	cur := tx.db.table.peekHashed(h, key)
	if cur.Written() {
		return false, nil
	}
	rec.Typed = tx.counters.Typed(st)
	tx.add(change{key: key, h: h, rec: rec, logged: rec, wasVersions: cur.Versions(), counter: true})
	return true, nil
}

// loses reports, from versions alone, that merging rec into cur changes
// nothing: each of rec's registers is older than cur's, or the same write
// (equal versions hold equal data; the Merkle digests rely on that too). A
// duplicate from a second peer's log or a session is then dropped without
// copying the stored value.
func loses(rec, cur record.Record) bool {
	if rec.Typed != nil || cur.Typed != nil {
		return false // versions alone do not order typed states
	}
	switch c := rec.Value.Version.Compare(cur.Value.Version); {
	case c > 0:
		return false
	case c == 0 && rec.Value.Tombstone && !cur.Value.Tombstone:
		return false // a kind mismatch is for the full merge; a sweep's tombstone wins
	}
	c := rec.Expiry.Version.Compare(cur.Expiry.Version)
	return c < 0 || c == 0 && rec.Expiry.At <= cur.Expiry.At
}

// KeysSince calls fn with the key of each change made since savepoint sp, in
// order (a key changed twice comes twice): what a step wrote, for hooks that
// act on it before the step publishes (serving blocked clients).
func (tx *Tx) KeysSince(sp int, fn func(key []byte)) {
	for i := sp; i < len(tx.changes); i++ {
		fn(tx.changes[i].key)
	}
}

// Savepoint marks the changes made so far, for RollbackTo.
func (tx *Tx) Savepoint() int { return len(tx.changes) }

// RollbackTo undoes the changes made since the savepoint sp, so that one
// command of a transaction or pipeline can fail without undoing the others.
// A large typed state the undone changes merged into in place is built
// again, from the table's and the deltas kept before sp. The published
// states the step took over are put back first (record.Owner.Undo), with
// what the step changed in them before sp, so their keys are built again
// too.
func (tx *Tx) RollbackTo(sp int) {
	var rebuild []string
	for i := sp; i < len(tx.changes); i++ {
		c := &tx.changes[i]
		if c.wasLarge && !slices.Contains(rebuild, string(c.key)) {
			rebuild = append(rebuild, string(c.key))
		}
	}
	clear(tx.changes[sp:])
	tx.changes = tx.changes[:sp]
	tx.dropIndex() // rebuilt from the changes if needed
	if len(tx.adopted) > 0 {
		pubs, repaired := tx.owner.Undo()
		for i, pub := range pubs {
			for _, a := range tx.adopted {
				if a.rec.Typed == pub {
					r := a.rec
					r.Typed = repaired[i]
					tx.db.table.Set(a.key, r) // the same record, over trees whose roots moved
					break
				}
			}
		}
		for _, a := range tx.adopted {
			if !slices.Contains(rebuild, string(a.key)) {
				rebuild = append(rebuild, string(a.key))
			}
		}
		clear(tx.adopted)
		tx.adopted = tx.adopted[:0]
		tx.read.key, tx.read.rec, tx.read.ok = nil, record.Record{}, false
	}
	if len(rebuild) == 0 {
		return
	}
	tx.owner = record.NewOwner(tx.db.line) // the states built so far may be torn: none is changed in place again
	for _, key := range rebuild {
		last := -1
		var rec record.Record
		for i := range tx.changes {
			c := &tx.changes[i]
			if string(c.key) != key {
				continue
			}
			if last < 0 {
				rec = tx.tableGet(c.h, c.key)
			}
			rec, _ = record.MergeOwned(rec, c.logged, tx.owner)
			last = i
		}
		if last >= 0 {
			tx.changes[last].rec = rec
		}
	}
}
