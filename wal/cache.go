package wal

import (
	"bytes"
	"sync"

	"github.com/redmesh/redmesh/record"
)

// The record cache keeps recently written and read records, data included,
// so that GET on a warm key costs a map lookup rather than a walk through
// Badger's levels (which was three quarters of a GET's time). It is bounded
// in bytes and evicts at random, which needs no bookkeeping on a hit.
//
// It must never serve a stale record. The writer, the only mutator, updates
// the cache after each commit and before answering; a reader that missed
// inserts what it read from Badger only if no write touched that shard in
// between (the shard's sequence number did not move), so a record read just
// before a commit can never be inserted after it.

const cacheShards = 64

type recordCache struct {
	shards [cacheShards]cacheShard
	max    int64 // bytes per shard
}

type cacheShard struct {
	mu    sync.Mutex
	m     map[string]record.Record
	seq   uint64
	bytes int64
}

func newRecordCache(budget int64) *recordCache {
	c := &recordCache{max: budget / cacheShards}
	for i := range c.shards {
		c.shards[i].m = make(map[string]record.Record)
	}
	return c
}

// cost is what an entry holds on the heap, so that the cache stays within its
// budget: the key twice (the map's copy, and the row key the writer encodes in
// front of the value, in the same array), the value, and entryOverhead.
// Counting the key once and 96 bytes more let a 32 MiB cache hold 52 MiB.
func cost(key string, r record.Record) int64 {
	return int64(2*len(key)+cap(r.Value.Data)) + entryOverhead
}

// entryOverhead is an entry's fixed cost: its map slot (the key's header and
// the record, 88 bytes) at the load a map that evicts at random settles at
// (under half: its table grew while deleted slots were still counted), the
// row's prefix and the record's encoded header, and allocation rounding.
// TestCacheStaysWithinBudget measures it.
const entryOverhead = 288

func (c *recordCache) shard(key string) *cacheShard {
	h := uint32(2166136261)
	for i := 0; i < len(key) && i < 32; i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return &c.shards[h%cacheShards]
}

// get returns a copy of the cached record (callers may keep or change it),
// or the shard's sequence number to pass to fill after a miss.
func (c *recordCache) get(key string) (record.Record, bool, uint64) {
	if c == nil || c.max <= 0 {
		return record.Record{}, false, 0
	}
	s := c.shard(key)
	s.mu.Lock()
	r, ok := s.m[key]
	seq := s.seq
	s.mu.Unlock()
	if ok {
		r.Value.Data = bytes.Clone(r.Value.Data)
	}
	return r, ok, seq
}

// fill caches a record read from Badger after a miss, unless a write reached
// the shard since the miss.
func (c *recordCache) fill(key string, r record.Record, seq uint64) {
	if c == nil || c.max <= 0 || !r.Exists() {
		return
	}
	s := c.shard(key)
	s.mu.Lock()
	if s.seq == seq {
		s.put(key, r, c.max)
	}
	s.mu.Unlock()
}

// committed records the writer's new record for key.
func (c *recordCache) committed(key string, r record.Record) {
	if c == nil || c.max <= 0 {
		return
	}
	s := c.shard(key)
	s.mu.Lock()
	s.seq++
	if r.Exists() {
		s.put(key, r, c.max)
	} else if old, ok := s.m[key]; ok {
		s.bytes -= cost(key, old)
		delete(s.m, key)
	}
	s.mu.Unlock()
}

// put caches r for key, replacing what the shard held for it in place: most
// writes are to cached keys, and an overwrite costs one map lookup where a
// delete and an insert cost three.
func (s *cacheShard) put(key string, r record.Record, max int64) {
	n := cost(key, r)
	old, had := s.m[key]
	if had {
		s.bytes -= cost(key, old)
	}
	if n > max/4 { // one large value would evict the rest
		if had {
			delete(s.m, key)
		}
		return
	}
	if s.bytes+n > max {
		for k, v := range s.m { // map order is random: random eviction
			if had && k == key {
				continue // already uncounted, and about to be replaced
			}
			s.bytes -= cost(k, v)
			delete(s.m, k)
			if s.bytes+n <= max {
				break
			}
		}
	}
	s.m[key] = r
	s.bytes += n
}
