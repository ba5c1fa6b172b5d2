package keyspace

import (
	"slices"

	"github.com/redmesh/redmesh/record"
)

// SnapshotRange calls fn with every key whose Hash is from or more, in
// order of hash, and its whole record (data included), until fn returns
// false; keys that share fn's last hash are still visited, so that the
// position returned splits no hash. next is the hash to resume at, and done
// reports that the last key was visited. It holds one shard's read lock
// per hash group, never longer, so writers go on; a key written meanwhile
// may or may not be visited. key and the record's data alias the table:
// fn must copy what it keeps, and must not call the table. A large typed
// state the writer could still change in place is frozen first (the group
// is then read with the writer's lock held too).
func (t *Table) SnapshotRange(from uint64, fn func(h uint64, key []byte, rec record.Record) bool) (next uint64, done bool) {
	type item struct {
		h uint64
		n uint32
	}
	var items []item
	for g := int(from >> (64 - groupBits)); g < groupCount; g++ {
		s := &t.shards[g>>(groupBits-shardBits)]
		s.mu.RLock()
		if t.gate != nil && s.groupMutable(g%groupsPerShard) {
			s.mu.RUnlock()
			t.gate.Lock()
			s.mu.RLock()
			s.freezeGroup(g % groupsPerShard)
			t.gate.Unlock() // frozen: no step changes them now
		}
		items = items[:0]
		for n := s.groups[g%groupsPerShard]; n != 0; n = s.entries[n-1].next {
			if h := Hash(s.key(&s.entries[n-1])); h >= from {
				items = append(items, item{h, n - 1})
			}
		}
		slices.SortFunc(items, func(a, b item) int {
			switch {
			case a.h < b.h:
				return -1
			case a.h > b.h:
				return 1
			}
			return 0
		})
		stopped, last := false, uint64(0)
		for _, it := range items {
			if stopped && it.h != last {
				s.mu.RUnlock()
				return it.h, false
			}
			if !fn(it.h, s.key(&s.entries[it.n]), s.record(int(it.n), true)) && !stopped {
				stopped, last = true, it.h
			}
		}
		s.mu.RUnlock()
		if stopped {
			if g+1 == groupCount {
				return 0, true
			}
			return uint64(g+1) << (64 - groupBits), false
		}
	}
	return 0, true
}

// SnapshotSize estimates what SnapshotRange visits from the start: the
// entries (tombstones included) and the bytes of their keys, values and
// encoded records, a large typed state's by the memory it holds (about
// its encoding's size). Checkpoints are spaced by it: a keyspace of one
// large hash, counted as empty, would be encoded whole every 4 MiB of log.
func (t *Table) SnapshotSize() (entries, bytes int64) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		entries += int64(len(s.entries) - len(s.free))
		bytes += s.live + s.bigSize + s.objSize
		s.mu.RUnlock()
	}
	// A record's encoding beside its data: format, versions, lengths.
	const perEntry = 24
	return entries, bytes + entries*perEntry
}

// groupMutable reports whether a key of hash group g holds a large typed
// state the writer could still change in place (record.Typed.Mutable).
func (s *shard) groupMutable(g int) bool {
	for n := s.groups[g]; n != 0; n = s.entries[n-1].next {
		if s.entries[n-1].flags&flagObj != 0 && s.objs[n-1].Mutable() {
			return true
		}
	}
	return false
}

// freezeGroup freezes the large typed states of hash group g's keys; the
// caller holds the writer's lock (Table.gate).
func (s *shard) freezeGroup(g int) {
	for n := s.groups[g]; n != 0; n = s.entries[n-1].next {
		if s.entries[n-1].flags&flagObj != 0 {
			s.objs[n-1].Freeze()
		}
	}
}
