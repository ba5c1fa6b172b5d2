package wal

import (
	"sync"

	"github.com/cespare/xxhash/v2"

	"github.com/redmesh/redmesh/record"
)

// The index keeps, in memory, every keyspace row's record without its value's
// data: versions, tombstone, kind and deadline. It lets the writer merge a
// newer write without reading Badger (the read-before-write was half of the
// writer's time), lets EXISTS, TTL and TYPE answer from memory, and is what
// the Merkle tree is rebuilt from at start-up. The writer updates it after
// each commit and before answering, so a client always reads its own writes.
//
// It holds no pointers, so the garbage collector never scans it, and costs
// about 40 bytes a key plus the key itself (a Go map of strings cost 146),
// with another 70 for a key whose expiry register is not its value's.
// Each shard is an open-addressing table of 64-bit slots (a 32-bit hash tag
// and an entry number) over a slice of fixed-size entries and one byte arena
// of keys. Rows are never deleted (a delete is a tombstone), so neither the
// entries nor the arena ever has holes.

// meta is a record minus its value's data.
type meta struct {
	value, expiry record.Version
	at            int64
	tombstone     bool
	kind          record.Kind
}

func metaOf(r record.Record) meta {
	return meta{
		value:     r.Value.Version,
		expiry:    r.Expiry.Version,
		at:        r.Expiry.At,
		tombstone: r.Value.Tombstone,
		kind:      r.Value.Kind,
	}
}

// record rebuilds the record with a nil Data.
func (m meta) record() record.Record {
	return record.Record{
		Value:  record.Value{Version: m.value, Tombstone: m.tombstone, Kind: m.kind},
		Expiry: record.Expiry{Version: m.expiry, At: m.at},
	}
}

const indexShards = 64

type index struct {
	shards [indexShards]indexShard
}

// ixEntry is one key's value register and where its key is. The expiry
// register, absent from most keys, lives in the shard's expiry map.
type ixEntry struct {
	value record.Version
	off   uint32 // the key's offset in the shard's arena
	next  uint32 // entry number + 1 of the next key in the same hash group; 0 ends it
	klen  uint16 // MaxKeyLen fits
	flags uint8
	kind  record.Kind
}

// Keys are also chained by hash group, the top 16 bits of their 64-bit hash
// (the Merkle tree's key hash), so that a Merkle bucket's keys and versions
// are found without reading Badger. A shard holds the groups that share its
// top 6 bits.
const groupsPerShard = 1 << (16 - 6)

func groupOf(h uint64) int { return int(h>>48) % groupsPerShard }

const (
	flagTombstone = 1 << iota
	flagExpiry    // the key has an entry in the expiry map
	// The expiry register has the value's version and no deadline: what
	// every SET without a TTL writes, so most keys need no map entry.
	flagExpiryAsValue
)

// ixExpiry is a key's expiry register.
type ixExpiry struct {
	version record.Version
	at      int64
}

type indexShard struct {
	mu      sync.RWMutex
	slots   []uint64 // tag<<32 | entry number + 1; 0 is empty; len is a power of two
	entries []ixEntry
	keys    []byte
	expiry  map[uint32]ixExpiry // by entry number
	groups  [groupsPerShard]uint32
}

func newIndex() *index {
	ix := &index{}
	for i := range ix.shards {
		ix.shards[i].init(16)
	}
	return ix
}

func (s *indexShard) init(slots int) {
	s.slots = make([]uint64, slots)
	s.entries = s.entries[:0]
	s.keys = s.keys[:0]
	s.expiry = make(map[uint32]ixExpiry)
	s.groups = [groupsPerShard]uint32{}
}

// locate returns the shard of key and its 64-bit hash, whose low 32 bits
// are its tag.
func (ix *index) locate(key string) (*indexShard, uint64) {
	h := xxhash.Sum64String(key)
	return &ix.shards[h>>58], h
}

// key is entry e's key, aliasing the arena.
func (s *indexShard) key(e *ixEntry) []byte {
	return s.keys[e.off : e.off+uint32(e.klen) : e.off+uint32(e.klen)]
}

// find returns key's entry number, or -1, and the slot where the search
// ended (the key's slot, or the empty slot where it would go).
func (s *indexShard) find(key string, tag uint32) (int, int) {
	mask := len(s.slots) - 1
	for i := int(tag) & mask; ; i = (i + 1) & mask {
		sl := s.slots[i]
		if sl == 0 {
			return -1, i
		}
		if uint32(sl>>32) == tag {
			n := int(uint32(sl)) - 1
			if string(s.key(&s.entries[n])) == key {
				return n, i
			}
		}
	}
}

func (s *indexShard) meta(n int) meta {
	e := &s.entries[n]
	m := meta{value: e.value, tombstone: e.flags&flagTombstone != 0, kind: e.kind}
	switch {
	case e.flags&flagExpiryAsValue != 0:
		m.expiry = e.value
	case e.flags&flagExpiry != 0:
		x := s.expiry[uint32(n)]
		m.expiry, m.at = x.version, x.at
	}
	return m
}

// store writes m into entry n.
func (s *indexShard) store(n int, m meta) {
	e := &s.entries[n]
	e.value, e.kind = m.value, m.kind
	e.flags = 0
	if m.tombstone {
		e.flags |= flagTombstone
	}
	switch {
	case m.at == 0 && m.expiry.IsZero():
		delete(s.expiry, uint32(n))
		return
	case m.at == 0 && m.expiry == m.value:
		e.flags |= flagExpiryAsValue
		delete(s.expiry, uint32(n))
		return
	}
	e.flags |= flagExpiry
	s.expiry[uint32(n)] = ixExpiry{version: m.expiry, at: m.at}
}

// add appends a new key, which must not be in the shard.
func (s *indexShard) add(key string, h uint64, slot int, m meta) {
	n := len(s.entries)
	g := groupOf(h)
	s.entries = append(s.entries, ixEntry{off: uint32(len(s.keys)), klen: uint16(len(key)), next: s.groups[g]})
	s.groups[g] = uint32(n + 1)
	s.keys = append(s.keys, key...)
	s.store(n, m)
	s.slots[slot] = uint64(uint32(h))<<32 | uint64(n+1)
	if len(s.entries)*4 > len(s.slots)*3 {
		s.grow()
	}
}

// grow doubles the table, placing slots again by their tags: no key is read.
func (s *indexShard) grow() {
	old := s.slots
	s.slots = make([]uint64, 2*len(old))
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

func (ix *index) get(key string) (meta, bool) {
	s, h := ix.locate(key)
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, _ := s.find(key, uint32(h))
	if n < 0 {
		return meta{}, false
	}
	return s.meta(n), true
}

func (ix *index) set(key string, m meta) {
	s, h := ix.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	n, slot := s.find(key, uint32(h))
	if n < 0 {
		s.add(key, h, slot, m)
		return
	}
	s.store(n, m)
}

// each calls fn for every key, shard by shard; key is valid only during the
// call, and fn must not call the index.
func (ix *index) each(fn func(key []byte, m meta)) {
	for i := range ix.shards {
		s := &ix.shards[i]
		s.mu.RLock()
		for n := range s.entries {
			fn(s.key(&s.entries[n]), s.meta(n))
		}
		s.mu.RUnlock()
	}
}

// Peek returns key's record as last committed, from memory, WITHOUT its
// value's data (Data is nil even for a value that has some): for versions,
// liveness, kind and expiry only.
func (s *Store) Peek(key []byte) record.Record {
	m, ok := s.index.get(string(key))
	if !ok {
		return record.Record{}
	}
	return m.record()
}

// EachVersion calls fn with every key in the keyspace and its record without
// data (as Peek), in no particular order; for rebuilding indexes at start-up.
// It runs fn on `workers` goroutines at once, passing each call its
// goroutine's number (0 to workers-1), and returns when all are done. The key
// is valid only during the call.
func (s *Store) EachVersion(workers int, fn func(worker int, key []byte, rec record.Record)) {
	next := make(chan int, indexShards)
	for i := range indexShards {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for w := range max(workers, 1) {
		wg.Go(func() {
			for i := range next {
				sh := &s.index.shards[i]
				sh.mu.RLock()
				for n := range sh.entries {
					fn(w, sh.key(&sh.entries[n]), sh.meta(n).record())
				}
				sh.mu.RUnlock()
			}
		})
	}
	wg.Wait()
}

// EachVersionInHashRange calls fn, until it returns false, with every key
// whose 64-bit xxhash (the Merkle tree's key hash) lies in [lo, hi] and its
// record without data, from memory: a Merkle bucket's summaries without a
// storage read. fn must not keep key, nor call the store.
func (s *Store) EachVersionInHashRange(lo, hi uint64, fn func(key []byte, rec record.Record) bool) {
	for g := lo >> 48; g <= hi>>48; g++ {
		sh := &s.index.shards[g>>10]
		sh.mu.RLock()
		for n := sh.groups[groupOf(g<<48)]; n != 0; n = sh.entries[n-1].next {
			key := sh.key(&sh.entries[n-1])
			if h := xxhash.Sum64(key); h < lo || h > hi {
				continue
			}
			if !fn(key, sh.meta(int(n-1)).record()) {
				sh.mu.RUnlock()
				return
			}
		}
		sh.mu.RUnlock()
	}
}
