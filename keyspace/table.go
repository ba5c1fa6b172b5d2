package keyspace

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/big"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cespare/xxhash/v2"

	"github.com/redmesh/redmesh/record"
)

// Table is the keyspace in memory: every key's record, its value's data
// included. Reads and merges never touch the disk.
//
// It holds almost no pointers, so the garbage collector has next to nothing
// to scan however many keys it holds: each of its 64 shards is an
// open-addressing table of 64-bit slots (a 32-bit hash tag and an entry
// number) over a slice of fixed-size entries, and the keys and values live
// in an arena of 64 KiB chunks. A value that outgrows its place in the
// arena moves to a new one; the old place is garbage until the shard is
// compacted, which happens once garbage passes what is live. Values of
// bigValue bytes or more are allocations of their own (few, and large), so
// that the arena never copies them.
//
// Keys are also chained by hash group, the top 16 bits of their 64-bit
// xxhash (the Merkle tree's key hash), so a Merkle bucket's keys and a SCAN
// cursor's range are found by walking a few chains.
//
// A delete or an expiry leaves a tombstone; Remove takes a key out once
// nothing of it is left to keep (collection, node/collect.go): its slot is
// cleared by backward shift, its entry number goes to a free list for the
// next new key, and its arena bytes become garbage for compaction. A shard
// whose keys have halved gives back the room it kept for them (shrink).
type Table struct {
	shards  [shardCount]shard
	keys    atomic.Int64 // keys holding a value, expired or not
	expires atomic.Int64 // of those, keys with a deadline
	bytes   atomic.Int64 // what the shards have allocated
	// gate is the writer's lock (DB.wmu), which a reader holds to freeze
	// a large typed state the writer's next step could otherwise change
	// in place (record.Typed.Mutable); nil for a table without a writer's
	// line, which holds no such state.
	gate *sync.Mutex
}

const (
	shardBits      = 6
	shardCount     = 1 << shardBits
	groupBits      = 16 // a group is the keys sharing the top 16 bits of the hash
	groupsPerShard = 1 << (groupBits - shardBits)
	// Groups are the unit of SCAN's cursor: cursor g+1 resumes at group g.
	groupCount = 1 << groupBits

	// A shard holds whole chunks, so the last one's unused part is memory
	// held for nothing: 64 KiB chunks keep that under 4 MiB over the 64
	// shards, which matters for a keyspace of tens of megabytes. Smaller
	// ones would lose more at every chunk's end, where a span that does
	// not fit leaves the rest unused.
	chunkBits = 16
	chunkSize = 1 << chunkBits
	// bigValue is the length from which a value is stored on its own: a
	// quarter chunk, so a chunk's end left unused is under a quarter of it.
	bigValue = 16 << 10
	// compactSlack is the garbage a shard keeps before it compacts, even
	// when more than what is live.
	compactSlack = 1 << 20
)

// entry is one key: its value register, and where its key and value are.
// The expiry register, absent from most keys or equal to the value's
// version, lives in the shard's expiry map otherwise.
type entry struct {
	version record.Version
	off     uint32 // the key's position in the arena: chunk<<chunkBits | offset; the value follows it
	vlen    uint32 // the value's length
	next    uint32 // entry number + 1 of the next key in the same hash group; 0 ends it
	klen    uint16 // MaxKeyLen fits
	flags   uint8
	// traced: the typed state holds removal traces, which collection takes
	// out once stable; a live typed key without them has nothing for it
	// (in the padding: the entry stays 32 bytes).
	traced bool
}

const (
	flagTombstone = 1 << iota
	flagExpiry    // the key has an entry in the expiry map
	// The expiry register has the value's version and no deadline: what
	// every SET without a TTL writes, so most keys need no map entry.
	flagExpiryAsValue
	flagBig // the value is in the shard's big map, not the arena
	// The key holds a typed state: its place in the arena holds the value
	// register's data then the state (appendTypedBlob).
	flagTyped
	// The typed state is large: it is an object in the shard's objs map
	// (immutable, so readers share it), and the arena holds only the value
	// register's data.
	flagObj
	// The key exists (record.Exists), kept so that a write learns what it
	// replaces without decoding a typed state.
	flagLive
	// The entry holds no key: it was removed and its number is on the
	// shard's free list. It reads as a key never written.
	flagFree
)

// appendTypedBlob appends what the arena holds for a typed record: the value register's
// data, length first, then the typed state's encoding. A typed state is read
// and rewritten whole: hashes and sets are stored as compactly as Redis's
// small encodings, at a cost per write that grows with their size.
func appendTypedBlob(b []byte, rec record.Record) []byte {
	b = binary.AppendUvarint(b, uint64(len(rec.Value.Data)))
	b = append(b, rec.Value.Data...)
	return record.AppendTyped(b, rec.Typed)
}

// splitBlob splits what appendTypedBlob wrote into the value register's
// data and the typed state's encoding, both aliasing blob.
func splitBlob(blob []byte) (data, state []byte) {
	n, k := binary.Uvarint(blob)
	data = blob[k : k+int(n) : k+int(n)]
	if n == 0 {
		data = nil
	}
	return data, blob[k+int(n):]
}

// splitTyped parses a typedBlob; what it returns aliases blob.
func splitTyped(blob []byte) ([]byte, *record.Typed) {
	data, state := splitBlob(blob)
	t, err := record.DecodeTyped(state)
	if err != nil {
		panic(fmt.Sprintf("keyspace: a typed state in memory does not decode: %v", err))
	}
	return data, t
}

// expiryReg is a key's expiry register.
type expiryReg struct {
	version record.Version
	at      int64
}

// deadline is an entry of a shard's heap of deadlines. It may be stale (the
// key's deadline has changed since): the sweep checks.
type deadline struct {
	at int64
	n  uint32
}

type shard struct {
	mu      sync.RWMutex
	slots   []uint64 // tag<<32 | entry number + 1; 0 is empty; len is a power of two
	entries []entry
	chunks  [][]byte
	live    int64             // arena bytes in use
	garbage int64             // arena bytes no entry uses
	big     map[uint32][]byte // by entry number
	bigSize int64             // their bytes
	objs    map[uint32]*record.Typed
	objSize int64
	counted int64 // the shard's bytes, as last added to the table's
	expiry  map[uint32]expiryReg
	heap    []deadline // min-heap by at
	groups  [groupsPerShard]uint32
	free    []uint32 // entry numbers of removed keys, for the next new keys
	// removed counts the keys taken out since the shard last tried to
	// shrink, and peak is the most its maps held since (see shrink).
	removed int
	peak    int
	// scratch is where a small typed state is encoded before it is
	// placed in the arena: a write of a counter or a small hash allocates
	// nothing for it.
	scratch []byte
	// The sum of the deadlines of the keys the table counts in expires,
	// 128 bits wide (a million deadlines in milliseconds overflow 63),
	// for AvgTTL.
	deadlines [2]uint64 // low, high
}

// addDeadline adds at (or with neg, takes it) from the shard's sum.
func (s *shard) addDeadline(at int64, neg bool) {
	if at == 0 {
		return
	}
	var c uint64
	if neg {
		s.deadlines[0], c = bits.Sub64(s.deadlines[0], uint64(at), 0)
		s.deadlines[1] -= c
		return
	}
	s.deadlines[0], c = bits.Add64(s.deadlines[0], uint64(at), 0)
	s.deadlines[1] += c
}

// MaxKeyLen bounds a key, as its length is stored in 16 bits. Redis allows
// 512 MB; keys that long are not used in practice.
const MaxKeyLen = 64000

// Hash is the key hash the table is laid out by: the Merkle tree's
// (merkle.KeyHash), so that a bucket's keys are a run of hash groups.
func Hash(key []byte) uint64 { return xxhash.Sum64(key) }

// NewTable returns an empty table.
func NewTable() *Table {
	t := &Table{}
	for i := range t.shards {
		t.shards[i].init(16)
	}
	return t
}

func (s *shard) init(slots int) {
	s.slots = make([]uint64, slots)
	s.entries = nil
	s.chunks = nil
	s.live, s.garbage = 0, 0
	s.big = make(map[uint32][]byte)
	s.bigSize, s.counted = 0, 0
	s.objs = make(map[uint32]*record.Typed)
	s.objSize = 0
	s.expiry = make(map[uint32]expiryReg)
	s.heap = nil
	s.groups = [groupsPerShard]uint32{}
	s.free = nil
	s.removed, s.peak = 0, 0
	s.deadlines = [2]uint64{}
}

func (t *Table) locate(key []byte) (*shard, uint64) {
	h := Hash(key)
	return t.shardOf(h), h
}

// shardOf is the shard of a key of hash h.
func (t *Table) shardOf(h uint64) *shard { return &t.shards[h>>(64-shardBits)] }

func groupOf(h uint64) int { return int(h>>(64-groupBits)) % groupsPerShard }

// key is entry e's key, aliasing the arena.
func (s *shard) key(e *entry) []byte {
	c := s.chunks[e.off>>chunkBits]
	o := e.off & (chunkSize - 1)
	return c[o : o+uint32(e.klen) : o+uint32(e.klen)]
}

// value is entry n's value, aliasing the arena or the big map.
func (s *shard) value(n int) []byte {
	e := &s.entries[n]
	if e.flags&flagBig != 0 {
		return s.big[uint32(n)]
	}
	if e.vlen == 0 {
		return nil
	}
	c := s.chunks[e.off>>chunkBits]
	o := e.off&(chunkSize-1) + uint32(e.klen)
	return c[o : o+e.vlen : o+e.vlen]
}

// find returns key's entry number, or -1, and the slot where the search
// ended (the key's slot, or the empty slot where it would go).
func (s *shard) find(key []byte, tag uint32) (int, int) {
	mask := len(s.slots) - 1
	for i := int(tag) & mask; ; i = (i + 1) & mask {
		sl := s.slots[i]
		if sl == 0 {
			return -1, i
		}
		if uint32(sl>>32) == tag {
			n := int(uint32(sl)) - 1
			if bytes.Equal(s.key(&s.entries[n]), key) {
				return n, i
			}
		}
	}
}

// record is entry n's record; its Data aliases the shard unless data is
// false, when it is nil.
func (s *shard) record(n int, data bool) record.Record {
	e := &s.entries[n]
	if e.flags&flagFree != 0 {
		return record.Record{}
	}
	r := s.registers(n)
	if e.flags&flagObj != 0 {
		r.Typed = s.objs[uint32(n)]
		if data {
			r.Value.Data = s.value(n)
		}
		return r
	}
	if e.flags&flagTyped != 0 {
		blob := s.value(n)
		if !data {
			// The state escapes the shard's lock: it must not alias the
			// arena, which a later write may overwrite in place.
			blob = bytes.Clone(blob)
		}
		d, t := splitTyped(blob)
		r.Typed = t
		if data {
			r.Value.Data = d
		}
		return r
	}
	if data {
		r.Value.Data = s.value(n)
	}
	return r
}

// registers is entry n's registers: its record without the value's data
// and the typed state.
func (s *shard) registers(n int) record.Record {
	e := &s.entries[n]
	r := record.Record{Value: record.Value{Version: e.version, Tombstone: e.flags&flagTombstone != 0}}
	switch {
	case e.flags&flagExpiryAsValue != 0:
		r.Expiry.Version = e.version
	case e.flags&flagExpiry != 0:
		x := s.expiry[uint32(n)]
		r.Expiry = record.Expiry{Version: x.version, At: x.at}
	}
	return r
}

// span is how much arena a key and value of these lengths take: rounded up
// to a size class (eight bytes, then four classes per doubling), so that a
// value rewritten with about the same length stays in place.
func span(n int) int {
	if n <= 128 {
		return (n + 7) &^ 7
	}
	step := 1 << (bits.Len(uint(n-1)) - 3)
	return (n + step - 1) &^ (step - 1)
}

// alloc finds room for n bytes in the arena and returns its position.
func (s *shard) alloc(n int) uint32 {
	last := len(s.chunks) - 1
	if last < 0 || len(s.chunks[last])+n > chunkSize {
		if last >= 0 {
			s.garbage += int64(chunkSize - len(s.chunks[last]))
		}
		s.chunks = append(s.chunks, make([]byte, 0, chunkSize))
		last++
	}
	c := s.chunks[last]
	off := uint32(last)<<chunkBits | uint32(len(c))
	s.chunks[last] = c[:len(c)+n]
	s.live += int64(n)
	return off
}

// place stores key and data as entry n's, reusing its place in the arena
// when they fit the same size class.
func (s *shard) place(n int, key, data []byte, fresh bool) {
	e := &s.entries[n]
	// A long key leaves no room in a chunk for a value beside it.
	big := len(data) >= bigValue || len(key)+len(data) > chunkSize
	if !fresh {
		was := int(e.klen)
		if e.flags&flagBig == 0 {
			was += int(e.vlen)
		}
		if !big && e.flags&flagBig == 0 && span(len(key)+len(data)) == span(was) {
			c := s.chunks[e.off>>chunkBits]
			copy(c[e.off&(chunkSize-1)+uint32(len(key)):], data)
			e.vlen = uint32(len(data))
			return
		}
		if e.flags&flagBig != 0 {
			s.bigSize -= int64(cap(s.big[uint32(n)]))
			delete(s.big, uint32(n))
			e.flags &^= flagBig
		}
		s.garbage += int64(span(was))
		s.live -= int64(span(was))
	}
	size := len(key)
	if !big {
		size += len(data)
	}
	e.off = s.alloc(span(size))
	c := s.chunks[e.off>>chunkBits]
	o := e.off & (chunkSize - 1)
	copy(c[o:], key)
	e.klen = uint16(len(key))
	e.vlen = uint32(len(data))
	if big {
		b := bytes.Clone(data)
		s.big[uint32(n)] = b
		s.peak = max(s.peak, len(s.big))
		s.bigSize += int64(cap(b))
		e.flags |= flagBig
	} else {
		copy(c[o+uint32(len(key)):], data)
	}
}

// compact copies every entry's key and value into new chunks, once garbage
// passes what is live: the arena never holds more than twice its data (and
// a megabyte).
func (s *shard) compact() {
	old := s.chunks
	s.chunks, s.live, s.garbage = nil, 0, 0
	for n := range s.entries {
		e := &s.entries[n]
		if e.flags&flagFree != 0 {
			continue
		}
		c := old[e.off>>chunkBits]
		o := e.off & (chunkSize - 1)
		size := uint32(e.klen)
		if e.flags&flagBig == 0 {
			size += e.vlen
		}
		e.off = s.alloc(span(int(size)))
		copy(s.chunks[e.off>>chunkBits][e.off&(chunkSize-1):], c[o:o+size])
	}
}

// setMeta writes rec's registers into entry n, whose key was swept at
// wasDeadline before, and keeps the deadline heap.
func (s *shard) setMeta(n int, rec record.Record, wasDeadline int64) {
	e := &s.entries[n]
	e.version = rec.Value.Version
	// The maps hold n only where its flags say so: most writes, a string
	// over a string, look up neither.
	was := e.flags
	e.flags &= flagBig
	if rec.Value.Tombstone {
		e.flags |= flagTombstone
	}
	if was&flagObj != 0 {
		s.objSize -= s.objs[uint32(n)].MemSize()
		delete(s.objs, uint32(n))
	}
	switch {
	case rec.Typed.Large():
		e.flags |= flagTyped | flagObj
		t := rec.Typed.Detached()
		s.objs[uint32(n)] = t
		s.peak = max(s.peak, len(s.objs))
		s.objSize += t.MemSize()
	case rec.Typed != nil:
		e.flags |= flagTyped
	}
	e.traced = rec.Typed.HasTraces()
	switch {
	case rec.Expiry.At == 0 && (rec.Expiry.Version.IsZero() || rec.Expiry.Version == rec.Value.Version):
		if !rec.Expiry.Version.IsZero() {
			e.flags |= flagExpiryAsValue
		}
		if was&flagExpiry != 0 {
			delete(s.expiry, uint32(n))
		}
	default:
		e.flags |= flagExpiry
		s.expiry[uint32(n)] = expiryReg{version: rec.Expiry.Version, at: rec.Expiry.At}
		s.peak = max(s.peak, len(s.expiry))
	}
	if rec.Exists() {
		e.flags |= flagLive
	}
	if at := deadlineOf(rec); at != 0 && at != wasDeadline {
		s.push(deadline{at: at, n: uint32(n)})
	}
}

// liveDeadline is whether entry n's key exists and the deadline it is swept
// at (deadlineOf), from the entry alone.
func (s *shard) liveDeadline(n int) (bool, int64) {
	e := &s.entries[n]
	if e.flags&flagLive == 0 {
		return false, 0
	}
	if e.flags&flagExpiry != 0 {
		return true, s.expiry[uint32(n)].at
	}
	return true, 0
}

// deadlineOf is the deadline a record's key is swept at, 0 for none.
func deadlineOf(r record.Record) int64 {
	if !r.Exists() {
		return 0
	}
	return r.Expiry.At
}

// Get returns key's record with a copy of its value's data, and whether the
// key was ever written: for a reader, which may hold it (a large typed
// state is frozen: no later write changes it in place).
func (t *Table) Get(key []byte) (record.Record, bool) {
	r, ok := t.get(key)
	if !r.Typed.Mutable() || t.gate == nil {
		return r, ok
	}
	t.gate.Lock()
	defer t.gate.Unlock()
	r, ok = t.get(key)
	r.Typed.Freeze()
	return r, ok
}

// get is Get for the writer, which holds the gate: a large typed state is
// handed as it is, for its step to take over.
func (t *Table) get(key []byte) (record.Record, bool) { return t.getHashed(Hash(key), key) }

// getHashed is get of a key whose Hash the caller has computed.
func (t *Table) getHashed(h uint64, key []byte) (record.Record, bool) {
	s := t.shardOf(h)
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, _ := s.find(key, uint32(h))
	if n < 0 {
		return record.Record{}, false
	}
	if s.entries[n].flags&(flagTyped|flagObj) == flagTyped {
		d, blob := splitBlob(s.value(n))
		t, err := record.DecodeTypedDetached(blob)
		if err != nil {
			panic(fmt.Sprintf("keyspace: a typed state in memory does not decode: %v", err))
		}
		r := s.registers(n)
		r.Value.Data, r.Typed = bytes.Clone(d), t
		return r, true
	}
	r := s.record(n, true)
	r.Value.Data = bytes.Clone(r.Value.Data)
	return r, true
}

// counter returns key's registers, its value's data aliasing the arena
// (the writer, which alone changes the table, copies it), and its typed
// state read as a string counter's (record.PeekCounter), without decoding
// it; ok is false unless the key holds such a state.
func (t *Table) counter(h uint64, key []byte) (rec record.Record, st record.CounterState, ok bool) {
	s := t.shardOf(h)
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, _ := s.find(key, uint32(h))
	if n < 0 || s.entries[n].flags&(flagTyped|flagObj|flagFree) != flagTyped {
		return record.Record{}, record.CounterState{}, false
	}
	data, state := splitBlob(s.value(n))
	if st, ok = record.PeekCounter(state); !ok {
		return record.Record{}, record.CounterState{}, false
	}
	rec = s.registers(n)
	rec.Value.Data = data
	return rec, st, true
}

// prefetch touches the table's memory for keys, given with their hashes
// (each key's first slot, its entry and its stored key), one level for
// every key before the next, so that the cache misses of different keys
// overlap, where one lookup's three misses each wait for the one before;
// the lookups that follow then find the keys in the CPU's caches. It takes no shard lock, whose atomic
// operations would order the loads again: the caller excludes writers (it
// holds the DB's write lock, under which every change to the table is
// made). The sum it returns keeps the loads from being optimized away.
func (t *Table) prefetch(keys []hashedKey) (sum uint64) {
	const batch = 16
	type probe struct {
		s *shard
		i int
		n int
	}
	var at [batch]probe
	for len(keys) > 0 {
		k := min(len(keys), batch)
		for j, key := range keys[:k] {
			s, h := t.shardOf(key.h), key.h
			i := int(uint32(h)) & (len(s.slots) - 1)
			at[j] = probe{s: s, i: i, n: -1}
			sum += s.slots[i]
		}
		for j := range k {
			p := &at[j]
			if sl := p.s.slots[p.i]; sl != 0 {
				p.n = int(uint32(sl)) - 1
				sum += uint64(p.s.entries[p.n].off)
			}
		}
		for j := range k {
			if p := &at[j]; p.n >= 0 {
				e := &p.s.entries[p.n]
				if e.flags&flagFree == 0 && e.klen > 0 { // an empty key may sit at its chunk's end
					sum += uint64(p.s.chunks[e.off>>chunkBits][e.off&(chunkSize-1)])
				}
			}
		}
		keys = keys[k:]
	}
	return sum
}

// View calls fn with key's record, its Data aliasing the table: fn must not
// keep it, nor call the table. A key never written reads as the zero record.
// A large typed state is frozen first, as Get's.
func (t *Table) View(key []byte, fn func(rec record.Record)) {
	s, h := t.locate(key)
	s.mu.RLock()
	n, _ := s.find(key, uint32(h))
	if n < 0 {
		s.mu.RUnlock()
		fn(record.Record{})
		return
	}
	rec := s.record(n, true)
	if rec.Typed.Mutable() && t.gate != nil {
		s.mu.RUnlock()
		t.gate.Lock()
		defer t.gate.Unlock()
		s.mu.RLock()
		if n, _ = s.find(key, uint32(h)); n < 0 {
			s.mu.RUnlock()
			fn(record.Record{})
			return
		}
		rec = s.record(n, true)
		rec.Typed.Freeze()
	}
	defer s.mu.RUnlock()
	fn(rec)
}

// Peek returns key's record WITHOUT its value's data: versions, liveness,
// expiry and typed state (a copy, or a large state's shared object) only.
// A large state is handed as it is, for the writer (see PeekFrozen).
func (t *Table) Peek(key []byte) record.Record { return t.peekHashed(Hash(key), key) }

// peekHashed is Peek of a key whose Hash the caller has computed.
func (t *Table) peekHashed(h uint64, key []byte) record.Record {
	s := t.shardOf(h)
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, _ := s.find(key, uint32(h))
	if n < 0 {
		return record.Record{}
	}
	return s.record(n, false)
}

// PeekFrozen is Peek for a reader, which may hold the record: a large
// typed state is frozen, as Get's.
func (t *Table) PeekFrozen(key []byte) record.Record {
	r := t.Peek(key)
	if !r.Typed.Mutable() || t.gate == nil {
		return r
	}
	t.gate.Lock()
	defer t.gate.Unlock()
	r = t.Peek(key)
	r.Typed.Freeze()
	return r
}

// Set stores rec as key's record, copying its data.
func (t *Table) Set(key []byte, rec record.Record) { t.setHashed(Hash(key), key, rec) }

// setHashed is Set of a key whose Hash the caller has computed.
func (t *Table) setHashed(h uint64, key []byte, rec record.Record) {
	s := t.shardOf(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	t.set(s, h, key, rec)
}

// setCounter is setHashed of a record whose typed state is st, a string
// counter's (record.CounterState): the state is written from st, which
// encodes without building or walking a state.
func (t *Table) setCounter(h uint64, key []byte, rec record.Record, st record.CounterState) {
	s := t.shardOf(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scratch = binary.AppendUvarint(s.scratch[:0], uint64(len(rec.Value.Data)))
	s.scratch = append(s.scratch, rec.Value.Data...)
	s.scratch = record.AppendCounter(s.scratch, st)
	t.store(s, h, key, rec, s.scratch)
}

func (t *Table) set(s *shard, h uint64, key []byte, rec record.Record) {
	data := rec.Value.Data
	if rec.Typed != nil && !rec.Typed.Large() {
		if cap(s.scratch) > 64<<10 {
			s.scratch = nil // a large value passed through
		}
		s.scratch = appendTypedBlob(s.scratch[:0], rec)
		data = s.scratch
	}
	t.store(s, h, key, rec, data)
}

// store stores rec as key's record, data being what the arena holds of it
// (its value's data, or for a small typed state appendTypedBlob's).
func (t *Table) store(s *shard, h uint64, key []byte, rec record.Record, data []byte) {
	n, slot := s.find(key, uint32(h))
	var wasLive bool
	var wasDeadline int64
	if n < 0 {
		g := groupOf(h)
		if k := len(s.free); k > 0 {
			n = int(s.free[k-1])
			s.free = s.free[:k-1]
			s.entries[n] = entry{next: s.groups[g]}
		} else {
			n = len(s.entries)
			s.entries = append(s.entries, entry{next: s.groups[g]})
		}
		s.groups[g] = uint32(n + 1)
		s.slots[slot] = uint64(uint32(h))<<32 | uint64(n+1)
		s.place(n, key, data, true)
		if (len(s.entries)-len(s.free))*4 > len(s.slots)*3 {
			s.grow()
		}
	} else {
		wasLive, wasDeadline = s.liveDeadline(n)
		s.place(n, key, data, false)
	}
	s.setMeta(n, rec, wasDeadline)
	// The counts are shared by every shard: most writes leave them as they
	// are, and then spare the atomic adds.
	if d := boolInt(rec.Exists()) - boolInt(wasLive); d != 0 {
		t.keys.Add(d)
	}
	if d := boolInt(deadlineOf(rec) != 0) - boolInt(wasDeadline != 0); d != 0 {
		t.expires.Add(d)
	}
	s.addDeadline(wasDeadline, true)
	s.addDeadline(deadlineOf(rec), false)
	t.settle(s)
}

// settle compacts the shard's arena once its garbage passes what is live,
// and brings the table's byte count up to date.
func (t *Table) settle(s *shard) {
	// An emptied shard lets go of its chunks at once (nothing to copy).
	if s.garbage > s.live && (s.garbage > compactSlack || s.live == 0) {
		s.compact()
	}
	if held := len(s.entries) - len(s.free); s.removed > 0 && (held == 0 || s.removed >= max(held, shrinkAfter)) {
		s.shrink()
	}
	if size := s.size(); size != s.counted {
		t.bytes.Add(size - s.counted)
		s.counted = size
	}
}

// Remove takes key out of the table, as if it had never been written, and
// returns the record it held (without data) and whether it was there. The
// caller decides that nothing of it is left to keep.
func (t *Table) Remove(key []byte) (record.Record, bool) {
	s, h := t.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	n, slot := s.find(key, uint32(h))
	if n < 0 {
		return record.Record{}, false
	}
	was := s.record(n, false)
	wasLive, wasDeadline := s.liveDeadline(n)
	s.unlink(groupOf(h), n)
	s.clearSlot(slot)
	e := &s.entries[n]
	size := int(e.klen)
	if e.flags&flagBig != 0 {
		s.bigSize -= int64(cap(s.big[uint32(n)]))
		delete(s.big, uint32(n))
	} else {
		size += int(e.vlen)
	}
	s.garbage += int64(span(size))
	s.live -= int64(span(size))
	if o, ok := s.objs[uint32(n)]; ok {
		s.objSize -= o.MemSize()
		delete(s.objs, uint32(n))
	}
	delete(s.expiry, uint32(n))
	// The deadline heap may still name n: record(n) now reads as a key never
	// written, whose deadline is none, so the entry is stale and the sweep
	// drops it (or, once n is reused, checks it against the new key's).
	*e = entry{flags: flagFree}
	s.free = append(s.free, uint32(n))
	s.removed++
	t.keys.Add(-boolInt(wasLive))
	t.expires.Add(-boolInt(wasDeadline != 0))
	s.addDeadline(wasDeadline, true)
	t.settle(s)
	return was, true
}

// unlink takes entry n out of hash group g's chain.
func (s *shard) unlink(g, n int) {
	link := &s.groups[g]
	for *link != 0 {
		if int(*link) == n+1 {
			*link = s.entries[n].next
			return
		}
		link = &s.entries[*link-1].next
	}
	panic(fmt.Sprintf("keyspace: entry %d is not in its hash group's chain", n))
}

// clearSlot empties slot i by backward shift: the slots after it in its
// probe run move back when their home is not between i and them, so every
// key stays reachable from its home without a marker for removed slots.
func (s *shard) clearSlot(i int) {
	mask := len(s.slots) - 1
	for j := (i + 1) & mask; s.slots[j] != 0; j = (j + 1) & mask {
		home := int(uint32(s.slots[j]>>32)) & mask
		// Does home lie cyclically in (i, j]? Then the slot stays.
		if i <= j && i < home && home <= j || i > j && (i < home || home <= j) {
			continue
		}
		s.slots[i] = s.slots[j]
		i = j
	}
	s.slots[i] = 0
}

// size is what the shard has allocated, about: its map entries are
// counted at a typical cost.
func (s *shard) size() int64 {
	return int64(cap(s.entries))*int64(unsafe.Sizeof(entry{})) + int64(len(s.slots))*8 +
		int64(len(s.chunks))*chunkSize + s.bigSize + s.objSize + int64(len(s.expiry))*48 + int64(cap(s.heap))*16 +
		int64(cap(s.free))*4
}

// grow doubles the slot table.
func (s *shard) grow() { s.resize(2 * len(s.slots)) }

// resize makes the slot table size slots long (a power of two), placing
// slots again by their tags: no key is read.
func (s *shard) resize(size int) {
	old := s.slots
	s.slots = make([]uint64, size)
	mask := len(s.slots) - 1
	for _, sl := range old {
		if sl == 0 {
			continue
		}
		i := int(uint32(sl>>32)) & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = sl
	}
}

// shrinkAfter is how many keys a shard takes out, and at least as many as
// it still holds, before it tries to shrink (or until it holds none): its
// keys have halved since the last try, so a drain tries a few times, and
// the tries of a steady churn (each reads every entry) are paid for by the
// removals before them.
const shrinkAfter = 64

// shrink lets go of the room the shard kept for keys it no longer holds:
// Go's slices and maps never give memory back by themselves, and a cache of
// short-lived keys would hold, empty, all that its busiest moment needed
// (Redis's dicts shrink likewise once under a tenth full). Entries keep
// their numbers, which walks and checkpoints resume from: only free
// entries at the end go.
func (s *shard) shrink() {
	s.removed = 0
	s.pruneHeap() // the heap names no free entry after it
	if cap(s.heap) > 64 && cap(s.heap) > 4*len(s.heap) {
		s.heap = slices.Clone(s.heap)
	}
	end := len(s.entries)
	for end > 0 && s.entries[end-1].flags&flagFree != 0 {
		end--
	}
	if 2*end <= len(s.entries) {
		s.entries = slices.Clone(s.entries[:end])
		s.free = slices.DeleteFunc(s.free, func(n uint32) bool { return int(n) >= end })
	}
	if cap(s.free) > 64 && cap(s.free) > 4*len(s.free) {
		s.free = slices.Clone(s.free)
	}
	held := len(s.entries) - len(s.free)
	size := len(s.slots)
	for size > 16 && 16*held <= 3*size { // half as many would be at most 3/8 full
		size /= 2
	}
	if size < len(s.slots) {
		s.resize(size)
	}
	if 4*max(len(s.expiry), len(s.objs), len(s.big)) < s.peak {
		s.expiry, s.objs, s.big = refill(s.expiry), refill(s.objs), refill(s.big)
		s.peak = max(len(s.expiry), len(s.objs), len(s.big))
	}
}

// refill copies m into a map sized for what it holds (maps.Clone keeps the
// original's size).
func refill[V any](m map[uint32]V) map[uint32]V {
	c := make(map[uint32]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// KeyCount is the number of keys holding a value, expired ones included
// until they are swept (as Redis's DBSIZE counts them).
func (t *Table) KeyCount() int64 { return t.keys.Load() }

// ExpiresCount is the number of keys holding a value with a deadline.
func (t *Table) ExpiresCount() int64 { return t.expires.Load() }

// AvgTTL is the mean time left, in milliseconds, until the deadlines of the
// keys that have one, 0 if none does (INFO keyspace's avg_ttl, which Redis
// estimates from the keys its expiry samples: this is exact).
func (t *Table) AvgTTL(nowMillis int64) int64 {
	var sum, count big.Int
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		var part big.Int
		part.SetUint64(s.deadlines[1])
		part.Lsh(&part, 64)
		part.Add(&part, new(big.Int).SetUint64(s.deadlines[0]))
		s.mu.RUnlock()
		sum.Add(&sum, &part)
	}
	n := t.expires.Load()
	if n <= 0 {
		return 0
	}
	count.SetInt64(n)
	avg := sum.Quo(&sum, &count).Int64()
	return max(avg-nowMillis, 0)
}

// Stats is what the table holds, for memory accounting.
type Stats struct {
	Entries int64 // keys, tombstones included (not removed ones)
	Bytes   int64 // memory the table has allocated
}

// Stats adds up every shard's entries.
func (t *Table) Stats() Stats {
	st := Stats{Bytes: t.bytes.Load()}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		st.Entries += int64(len(s.entries) - len(s.free))
		s.mu.RUnlock()
	}
	return st
}

// Bytes is the memory the table has allocated, about.
func (t *Table) Bytes() int64 { return t.bytes.Load() }

// Each calls fn with every key and its record without data, on `workers`
// goroutines at once, passing each call its goroutine's number; for
// rebuilding indexes at start-up. key is valid only during the call.
func (t *Table) Each(workers int, fn func(worker int, key []byte, rec record.Record)) {
	next := make(chan int, shardCount)
	for i := range shardCount {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for w := range max(workers, 1) {
		wg.Go(func() {
			for i := range next {
				s := &t.shards[i]
				s.mu.RLock()
				for n := range s.entries {
					if s.entries[n].flags&flagFree == 0 {
						fn(w, s.key(&s.entries[n]), s.record(n, false))
					}
				}
				s.mu.RUnlock()
			}
		})
	}
	wg.Wait()
}

// EachInHashRange calls fn, until it returns false, with every key whose
// Hash lies in [lo, hi] and its record without data: a Merkle bucket's
// summaries. fn must not keep key, nor call the table.
func (t *Table) EachInHashRange(lo, hi uint64, fn func(key []byte, rec record.Record) bool) {
	for g := lo >> (64 - groupBits); g <= hi>>(64-groupBits); g++ {
		if !t.eachInGroup(int(g), func(key []byte, rec record.Record) bool {
			if h := Hash(key); h < lo || h > hi {
				return true
			}
			return fn(key, rec)
		}) {
			return
		}
	}
}

// eachInGroup calls fn for every key of hash group g, with its record
// without data, until it returns false, and reports whether it never did.
func (t *Table) eachInGroup(g int, fn func(key []byte, rec record.Record) bool) bool {
	s := &t.shards[g>>(groupBits-shardBits)]
	s.mu.RLock()
	defer s.mu.RUnlock()
	for n := s.groups[g%groupsPerShard]; n != 0; n = s.entries[n-1].next {
		if !fn(s.key(&s.entries[n-1]), s.record(int(n-1), false)) {
			return false
		}
	}
	return true
}

// Scan visits keys by hash group from cursor on, with copies of their keys
// and their records without data, and returns the cursor of the first group it did not visit,
// or 0 when it reached the end. Cursor 0 starts at the beginning; cursor
// g+1 at group g. fn returning false stops the scan after the current
// group, so a key present for a whole scan is visited at least once however
// the keyspace changes in between (Redis's SCAN guarantee). Cursors past the
// last group end at once.
func (t *Table) Scan(cursor uint64, fn func(key []byte, rec record.Record) bool) (next uint64) {
	g := 0
	if cursor > 0 {
		if cursor > groupCount {
			return 0
		}
		g = int(cursor - 1)
	}
	for ; g < groupCount; g++ {
		more := true
		t.eachInGroup(g, func(key []byte, rec record.Record) bool {
			more = fn(bytes.Clone(key), rec) && more
			return true
		})
		if !more {
			if g+1 == groupCount {
				return 0
			}
			return uint64(g + 2)
		}
	}
	return 0
}

// RandomCursor is a Scan cursor at a random group, for RANDOMKEY.
func RandomCursor() uint64 { return uint64(rand.IntN(groupCount)) + 1 }

// The deadline heap is written here rather than with container/heap, which
// would box every entry in an interface (an allocation per write with a
// TTL, and pointers for the collector to scan).

// push adds d to the shard's heap of deadlines.
func (s *shard) push(d deadline) {
	if len(s.heap) > 64 && len(s.heap) > 2*len(s.expiry) {
		s.pruneHeap()
	}
	s.heap = append(s.heap, d)
	s.up(len(s.heap) - 1)
}

// pop removes the heap's earliest deadline.
func (s *shard) pop() {
	last := len(s.heap) - 1
	s.heap[0] = s.heap[last]
	s.heap = s.heap[:last]
	s.down(0)
}

func (s *shard) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if s.heap[p].at <= s.heap[i].at {
			return
		}
		s.heap[p], s.heap[i] = s.heap[i], s.heap[p]
		i = p
	}
}

func (s *shard) down(i int) {
	for {
		l, m := 2*i+1, i
		if l < len(s.heap) && s.heap[l].at < s.heap[m].at {
			m = l
		}
		if l+1 < len(s.heap) && s.heap[l+1].at < s.heap[m].at {
			m = l + 1
		}
		if m == i {
			return
		}
		s.heap[m], s.heap[i] = s.heap[i], s.heap[m]
		i = m
	}
}

// current reports whether heap entry d is still its key's deadline.
func (s *shard) current(d deadline) bool {
	return deadlineOf(s.record(int(d.n), false)) == d.at
}

// pruneHeap drops the stale entries (keys rewritten with another deadline
// or none leave theirs behind) and orders the rest again.
func (s *shard) pruneHeap() {
	kept := s.heap[:0]
	for _, d := range s.heap {
		if s.current(d) {
			kept = append(kept, d)
		}
	}
	s.heap = kept
	for i := len(kept)/2 - 1; i >= 0; i-- {
		s.down(i)
	}
}

// Expired returns up to max keys whose deadline is before nowMillis,
// taking from every shard in turn. Keys stay listed until a write (the
// sweep's tombstone) changes their deadline or they are removed.
func (t *Table) Expired(nowMillis int64, max int) [][]byte {
	var keys [][]byte
	for i := range t.shards {
		if len(keys) >= max {
			break
		}
		s := &t.shards[i]
		s.mu.Lock()
		for len(s.heap) > 0 && s.heap[0].at < nowMillis && !s.current(s.heap[0]) {
			s.pop()
		}
		// The heap's entries under nowMillis are a subtree at its root. A
		// key set to a deadline, another, then the first again is in it
		// twice.
		stack := []int{0}
		seen := map[uint32]bool{}
		for len(stack) > 0 && len(keys) < max {
			j := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if j >= len(s.heap) || s.heap[j].at >= nowMillis {
				continue
			}
			if d := s.heap[j]; !seen[d.n] && s.current(d) {
				seen[d.n] = true
				keys = append(keys, bytes.Clone(s.key(&s.entries[d.n])))
			}
			stack = append(stack, 2*j+1, 2*j+2)
		}
		s.mu.Unlock()
	}
	return keys
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
