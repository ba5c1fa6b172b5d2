package record

import (
	"bytes"
	"encoding/binary"
	"slices"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/tidwall/btree"
)

// bigState is the large form of a typed state's elements: fields, members
// and traces in B-trees ordered by name then dot. A merge copies the trees in
// O(1) and changes only the paths it touches (copy on write), so the state
// it started from stays as it was for whoever holds it. github.com/tidwall/
// btree provides that copy; no B-tree of the standard library does.
type bigState struct {
	lists [5]*btree.BTreeG[item] // by list index: fields, members, traces, scored, list
	names [5]int                 // distinct names in each list but the traces
	// scores orders a sorted set's members by score, and zcounts holds its
	// score counts, zsum their part of the digest (zset.go); nil when the
	// state has none.
	scores  *btree.BTreeG[scoreEntry]
	zcounts *btree.BTreeG[Count]
	zsum    uint64
	sum     uint64 // the elements' part of the digest (elemHash summed)
	bytes   int64  // of names and values
	// owner is the writer that built this state and may change its trees
	// in place (see Owner); nil for a state anyone may hold.
	owner *Owner
}

// Owner is a writer's mark on the large states it builds: a merge under the
// same Owner changes such a state's trees in place instead of copying the
// paths it touches, which is where a write to a large key spends its time
// and allocations. Only the nodes the state still shares with states others
// hold (the keyspace's, a reader's) are copied. The writer must use a fresh
// Owner once the states it built may be seen by anyone else (once it
// publishes them), and must not read a state it merged into again: the
// merge's result replaces it.
type Owner struct{ _ byte } // not empty: distinct Owners have distinct addresses

// MergeOwned is MergeInto for the writer that owns o (see Owner).
func MergeOwned(local, incoming Record, o *Owner) (Record, bool) {
	m := Record{
		Value:  mergeValue(local.Value, incoming.Value),
		Expiry: mergeExpiry(local.Expiry, incoming.Expiry),
		Typed:  mergeTypedOwned(local.Typed, incoming.Typed, o),
	}
	if m.Typed.empty() {
		m.Typed = nil
	}
	return m, !Equal(m, local)
}

// shallow is b's counters in a new bigState over the same trees, which the
// caller then changes in place.
func (b *bigState) shallow() *bigState {
	c := *b
	return &c
}

// bigElems is the number of elements and traces from which a state is held
// in B-trees. Below it, sorted slices are smaller and as fast; Redis too
// keeps hashes and sets of up to 128 elements in one compact block.
const bigElems = 256

// item is an element as a tree holds it: its name and value in one string
// (the name, then the value; nlen is the name's length) and its dot: 40
// bytes and one allocation, where an Elem with copied slices takes 64 and
// two (a sorted set's 8-byte score was an allocation of its own).
type item struct {
	kv   string
	dot  Version
	nlen uint32
}

func (it item) name() string  { return it.kv[:it.nlen] }
func (it item) value() string { return it.kv[it.nlen:] }

func lessItem(a, b item) bool {
	if an, bn := a.name(), b.name(); an != bn {
		return an < bn
	}
	return a.dot.Compare(b.dot) < 0
}

// newItem is e as a tree keeps it: its name and value copied.
func newItem(e Elem) item {
	return item{kv: string(e.Name) + string(e.Value), nlen: uint32(len(e.Name)), dot: e.Dot}
}

// key is the item to look e up by; it borrows e's name without a copy, so
// it must not be stored.
func key(e Elem) item {
	return item{kv: unsafe.String(unsafe.SliceData(e.Name), len(e.Name)), nlen: uint32(len(e.Name)), dot: e.Dot}
}

// elem is it as an Elem whose name and value point into it: read-only, as
// every element a Typed hands out.
func (it item) elem() Elem {
	p := unsafe.StringData(it.kv)
	e := Elem{Name: unsafe.Slice(p, it.nlen), Dot: it.dot}
	if n := len(it.kv) - int(it.nlen); n > 0 {
		e.Value = unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(p), it.nlen)), n)
	}
	return e
}

// treeDegree is the trees' branching: a write copies the nodes on its path,
// so smaller nodes than the library's default (32) copy less per write. The
// library grows a node's items by append and splits a full node into two
// halves that share its array: with 40-byte items, 16 (31 items) lets a
// half-full node grow to its full size in one step of the allocator's size
// classes, where 12 (23 items) took two and left arrays of 44 behind
// (measured: 143 bytes an element of a pushed list, against 223).
const treeDegree = 16

func newTree() *btree.BTreeG[item] {
	return btree.NewBTreeGOptions(lessItem, btree.Options{NoLocks: true, Degree: treeDegree})
}

func (b *bigState) size() int {
	return b.lists[0].Len() + b.lists[1].Len() + b.lists[2].Len() + b.lists[3].Len() + b.lists[4].Len()
}

// bigCopy is t's elements in the large form, sharing t's trees if it has
// them: the copy may be changed, t stays as it is.
func (t *Typed) bigCopy() *bigState {
	if t.big != nil {
		c := &bigState{names: t.big.names, sum: t.big.sum, bytes: t.big.bytes}
		for i, l := range t.big.lists {
			c.lists[i] = l.Copy()
		}
		if t.big.scores != nil {
			c.scores = t.big.scores.Copy()
		}
		if t.big.zcounts != nil {
			c.zcounts, c.zsum = t.big.zcounts.Copy(), t.big.zsum
		}
		return c
	}
	b := &bigState{}
	for i := range b.lists {
		b.lists[i] = newTree()
	}
	for which := range b.lists {
		for _, e := range t.list(which) {
			b.insert(which, e)
		}
	}
	for _, c := range t.ScoreCounts {
		b.setScoreCount(c)
	}
	b.scores = scoreIndex(b)
	return b
}

// has reports whether list which holds element e (by name and dot).
func (b *bigState) has(which int, e Elem) bool {
	_, ok := b.lists[which].Get(key(e))
	return ok
}

// named reports whether list which holds any element named name.
func (b *bigState) named(which int, name []byte) bool {
	found := false
	b.lists[which].Ascend(key(Elem{Name: name}), func(it item) bool {
		found = it.name() == string(name)
		return false
	})
	return found
}

// insert adds e, copying its name and value: a tree outlives the buffers
// (a request, a message) an incoming element may point into.
func (b *bigState) insert(which int, e Elem) {
	if which != listRemoved && !b.named(which, e.Name) {
		b.names[which]++
	}
	if old, replaced := b.lists[which].Set(newItem(e)); replaced {
		b.sum -= elemHash(which, old.elem())
		b.bytes -= int64(len(old.kv))
	}
	b.sum += elemHash(which, e)
	b.bytes += int64(len(e.Name) + len(e.Value))
}

func (b *bigState) delete(which int, e Elem) {
	if !b.has(which, e) {
		return // a lookup copies nothing; a Delete copies its path even if it finds nothing
	}
	old, ok := b.lists[which].Delete(key(e))
	if !ok {
		return
	}
	b.sum -= elemHash(which, old.elem())
	b.bytes -= int64(len(old.kv))
	if which != listRemoved && !b.named(which, e.Name) {
		b.names[which]--
	}
}

// dropAll empties list which, a list without names (the traces).
func (b *bigState) dropAll(which int) {
	b.lists[which].Scan(func(it item) bool {
		b.sum -= elemHash(which, it.elem())
		b.bytes -= int64(len(it.kv))
		return true
	})
	b.lists[which] = newTree()
}

// absorb merges other's elements and traces into b.
func (b *bigState) absorb(other *Typed) {
	other.each(listRemoved, func(run []Elem) bool {
		for _, r := range run {
			if have, ok := b.lists[listRemoved].Get(key(r)); ok {
				if r.TraceAt() < have.elem().TraceAt() {
					b.insert(listRemoved, r) // the earlier removal's trace, as unionTraces keeps
				}
				continue
			}
			b.insert(listRemoved, r)
			b.delete(listFields, r)
			b.delete(listMembers, r)
			b.delete(listScored, r)
			b.delete(listList, r)
		}
		return true
	})
	for _, which := range elemLists {
		other.each(which, func(run []Elem) bool {
			for _, e := range run {
				if !b.has(listRemoved, e) && !b.has(which, e) {
					b.insert(which, e)
				}
			}
			return true
		})
	}
}

// run is the elements of list which named name, in dot order.
func (b *bigState) run(which int, name []byte) []Elem {
	var out []Elem
	b.lists[which].Ascend(key(Elem{Name: name}), func(it item) bool {
		if it.name() != string(name) {
			return false
		}
		out = append(out, it.elem())
		return true
	})
	return out
}

// each calls fn with each name of list which and its elements, in name
// order.
func (b *bigState) each(which int, fn func(run []Elem) bool) {
	var run []Elem
	stopped := false
	b.lists[which].Scan(func(it item) bool {
		e := it.elem()
		if len(run) > 0 && !bytes.Equal(run[0].Name, e.Name) {
			if !fn(run) {
				stopped = true
				return false
			}
			run = run[:0]
		}
		run = append(run, e)
		return true
	})
	if !stopped && len(run) > 0 {
		fn(run)
	}
}

// elemHash is one element's share of a typed state's digest. The digest sums
// them, so that a large state's digest moves in O(1) per element changed.
func elemHash(which int, e Elem) uint64 {
	var d xxhash.Digest
	d.Reset()
	var buf [1 + binary.MaxVarintLen64 + versionLen]byte
	b := append(buf[:0], byte(which))
	b = binary.AppendUvarint(b, uint64(len(e.Name)))
	d.Write(b)
	d.Write(e.Name)
	d.Write(appendVersion(buf[:0], e.Dot))
	d.Write(e.Value)
	return mix64(d.Sum64())
}

// mix64 is the SplitMix64 finaliser, so that summed hashes stay well spread.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Detached is t in a form that shares no memory with the buffers it was
// decoded or built from: a large state in B-trees, which own their
// elements. A small state is returned as it is: a keyspace encodes it.
func (t *Typed) Detached() *Typed {
	if !t.Large() || t.big != nil {
		return t
	}
	d := *t
	d.big = t.bigCopy()
	d.Fields, d.Members, d.Removed, d.Scored, d.Listed = nil, nil, nil, nil, nil
	d.Counts = detachCounts(t.Counts)
	d.ScoreCounts = nil // in the large form's tree
	return &d
}

func detachCounts(counts []Count) []Count {
	out := slices.Clone(counts)
	for i := range out {
		out[i].Name = bytes.Clone(out[i].Name)
	}
	return out
}

// Large reports whether t is big enough to be kept as an object of its own
// rather than encoded (a keyspace's choice; see keyspace.Table).
func (t *Typed) Large() bool { return t != nil && (t.big != nil || t.weight() > bigElems) }

// MemSize is about the memory t holds.
func (t *Typed) MemSize() int64 {
	if t == nil {
		return 0
	}
	const perElem = 80 // an item in a B-tree node, with the node's share
	if t.big != nil {
		n := int64(t.big.size())*perElem + t.big.bytes
		if t.big.scores != nil {
			n += int64(t.big.scores.Len()) * perScoreEntry
		}
		if t.big.zcounts != nil {
			n += int64(t.big.zcounts.Len()) * perScoreCount
		}
		return n
	}
	n := int64(t.size()) * int64(unsafe.Sizeof(Elem{}))
	for which := range numLists {
		for _, e := range t.list(which) {
			n += int64(len(e.Name) + len(e.Value))
		}
	}
	return n
}
