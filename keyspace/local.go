package keyspace

import (
	"github.com/redmesh/redmesh/record"
)

// Local is the view a Local function gets: changes to the table that are
// never logged nor pushed, because every node makes them by itself from what
// it already holds. The expiry sweep (a swept record is a function of the
// record and the clock) and collection (a record nothing is left to keep
// of, once every member has it) are such changes. A crash forgets them and
// the replay of the log brings the records back as they were; the node then
// makes the same changes again.
type Local struct {
	db *DB
}

// Local runs fn with the write lock held, so no Update is between its read
// and its publish; fn should be brief, as writers wait for it.
func (db *DB) Local(fn func(l *Local)) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if db.closed.Load() {
		return ErrClosed
	}
	fn(&Local{db: db})
	return nil
}

// Settled reports whether every change published to key is committed: a
// key still waiting for the log is left alone (its commit hook has yet to
// run), and looked at again later.
func (l *Local) Settled(key []byte) bool {
	return l.db.marks[Hash(key)%markCount].Load() <= l.db.durable.Load()
}

// Peek returns key's record without its value's data (see Table.Peek).
func (l *Local) Peek(key []byte) record.Record { return l.db.table.Peek(key) }

// Set stores rec as key's record without logging it, and reports the move
// to OnLocal.
func (l *Local) Set(key []byte, rec record.Record) {
	was := l.db.table.Peek(key)
	// Before Set: rec may be a walk's record, aliasing the very entry Set
	// overwrites in place, and a typed state's versions digest its elements.
	now := rec.Versions()
	l.db.table.Set(key, rec)
	if l.db.opts.OnLocal != nil {
		l.db.opts.OnLocal(key, was.Versions(), now)
	}
}

// Remove takes key out of the table without logging it, and reports the
// move to OnLocal.
func (l *Local) Remove(key []byte) {
	was, ok := l.db.table.Remove(key)
	if ok && l.db.opts.OnLocal != nil {
		l.db.opts.OnLocal(key, was.Versions(), [3]record.Version{})
	}
}

// Walk calls fn with up to max entries of the table from cursor on, keys and
// records with data that alias the table (fn must copy what it keeps, and
// must not call the table), and returns the cursor to go on from, 0 after
// the last entry. Cursor 0 starts at the first. A key present for a whole
// walk is visited once: entries never move.
func (l *Local) Walk(cursor uint64, max int, fn func(key []byte, rec record.Record)) uint64 {
	return l.db.table.walk(cursor, max, true, fn)
}

// WalkCollectable is Walk for collection: it looks at up to max entries but
// calls fn only with those that may hold something to collect: tombstones,
// typed keys holding removal traces or a deadline. A string holding a value
// (expired ones are the sweep's) and a typed key with neither are passed
// over from their entries alone, undecoded: decoding every typed key each
// pass would make garbage in proportion to the keyspace, for nothing.
func (l *Local) WalkCollectable(cursor uint64, max int, fn func(key []byte, rec record.Record)) uint64 {
	return l.db.table.walk(cursor, max, false, fn)
}

// walk is Local.Walk, or with all false WalkCollectable: the cursor is a
// shard's number and an entry's.
func (t *Table) walk(cursor uint64, max int, all bool, fn func(key []byte, rec record.Record)) uint64 {
	i, n := int(cursor>>32), int(uint32(cursor))
	for visited := 0; i < shardCount; i, n = i+1, 0 {
		s := &t.shards[i]
		s.mu.RLock()
		for ; n < len(s.entries) && visited < max; n++ {
			visited++
			f := s.entries[n].flags
			if f&flagFree != 0 || !all && f&flagLive != 0 && (f&flagTyped == 0 || !s.entries[n].traced && f&flagExpiry == 0) {
				continue
			}
			fn(s.key(&s.entries[n]), s.record(n, true))
		}
		more := n < len(s.entries)
		s.mu.RUnlock()
		if more {
			return uint64(i)<<32 | uint64(n)
		}
	}
	return 0
}
