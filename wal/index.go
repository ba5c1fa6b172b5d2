package wal

import (
	"sync"

	"github.com/redmesh/redmesh/record"
)

// The index keeps, in memory, every keyspace row's record without its value's
// data: versions, tombstone, kind and deadline. It lets the writer merge a
// newer write without reading Badger (the read-before-write was half of the
// writer's time), lets EXISTS, TTL and TYPE answer from memory, and is what
// the Merkle tree is rebuilt from at start-up. It costs about 100 bytes per
// key. The writer updates it after each commit and before answering, so a
// client always reads its own writes.

// meta is a record minus its value's data, packed to 48 bytes.
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

type indexShard struct {
	mu sync.RWMutex
	m  map[string]meta
}

func newIndex() *index {
	ix := &index{}
	for i := range ix.shards {
		ix.shards[i].m = make(map[string]meta)
	}
	return ix
}

func (ix *index) shard(key string) *indexShard {
	// FNV-1a over at most the first 32 bytes: cheap, and enough to spread.
	h := uint32(2166136261)
	for i := 0; i < len(key) && i < 32; i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return &ix.shards[h%indexShards]
}

func (ix *index) get(key string) (meta, bool) {
	s := ix.shard(key)
	s.mu.RLock()
	m, ok := s.m[key]
	s.mu.RUnlock()
	return m, ok
}

func (ix *index) set(key string, m meta) {
	s := ix.shard(key)
	s.mu.Lock()
	s.m[key] = m
	s.mu.Unlock()
}

// each calls fn for every key, shard by shard; fn must not call the index.
func (ix *index) each(fn func(key string, m meta)) {
	for i := range ix.shards {
		s := &ix.shards[i]
		s.mu.RLock()
		for k, m := range s.m {
			fn(k, m)
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
func (s *Store) EachVersion(fn func(key string, rec record.Record)) {
	s.index.each(func(k string, m meta) { fn(k, m.record()) })
}
