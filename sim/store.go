package sim

import (
	"fmt"
	"iter"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
)

// keyTable interns every key the run has used. Keys are shared by all
// nodes' stores, so a node's store is a dense slice indexed by key number,
// and a bucket's keys are listed once for the whole mesh (a key's bucket
// depends only on the key and the shape).
type keyTable struct {
	shape    merkle.Shape
	names    [][]byte
	ids      map[string]uint32
	bucket   []uint32
	byBucket [][]uint32
}

func newKeyTable(shape merkle.Shape) *keyTable {
	return &keyTable{shape: shape, ids: make(map[string]uint32), byBucket: make([][]uint32, shape.Leaves())}
}

// id returns key's number, interning it.
func (t *keyTable) id(key []byte) uint32 {
	if id, ok := t.ids[string(key)]; ok {
		return id
	}
	k := string(key)
	id := uint32(len(t.names))
	t.names = append(t.names, []byte(k))
	t.ids[k] = id
	b := t.shape.BucketOf(key)
	t.bucket = append(t.bucket, b)
	t.byBucket[b] = append(t.byBucket[b], id)
	return id
}

func (t *keyTable) lookup(key []byte) (uint32, bool) {
	id, ok := t.ids[string(key)]
	return id, ok
}

func (t *keyTable) len() int { return len(t.names) }

// store is a node's in-memory storage: a record per key and the Merkle tree
// over them. It implements merkle.Local, so the real reconciliation session
// reads it; record payloads are record.Encode, as on a real node.
//
// The records the starting nodes were preloaded with are one slice, base,
// shared by every node and never written: a node's records of its own are
// in mine, found through slot. A mesh of 10,000 nodes preloaded with 10,000
// keys would otherwise hold 10^8 records (8 GB), most of them the same.
type store struct {
	keys *keyTable
	base []record.Record // indexed by key number; the zero Record is "absent"
	// slot[id] is 1 + the index in mine of key id's record, 0 while the
	// node holds base's.
	slot []int32
	// mine holds pointers, nil for absent: most records a node holds are
	// the one copy of a record every node that logged it shares
	// (Sim.logRecord); a copy in each node's slice would make the nodes'
	// records most of a large run's heap. A stored record is never
	// written through; a new one replaces it.
	mine []*record.Record
	size int // key numbers below it may hold a record
	tree *merkle.Tree
	n    int // keys present, tombstones included
}

func newStore(keys *keyTable) (*store, error) {
	t, err := merkle.NewTree(keys.shape)
	if err != nil {
		return nil, err
	}
	return &store{keys: keys, tree: t}, nil
}

// share makes s, empty, hold what from holds, reading its records from base
// (from's, which nothing writes) until it writes over them.
func (s *store) share(from *store, base []record.Record) {
	s.base, s.size, s.n = base, from.size, from.n
	for b := range s.keys.shape.Leaves() {
		s.tree.SetLeaf(uint32(b), from.tree.Leaf(uint32(b)))
	}
}

// versions converts a record's register versions for the tree.
func versions(r record.Record) []merkle.Version {
	if !r.Written() {
		return nil
	}
	return mesh.MerkleVersions(r.Versions())
}

func (s *store) get(id uint32) record.Record {
	if p := s.ref(id); p != nil {
		return *p
	}
	return record.Record{}
}

// ref is key id's record as stored, nil if absent. It must not be written
// through.
func (s *store) ref(id uint32) *record.Record {
	if int(id) < len(s.slot) {
		if i := s.slot[id]; i != 0 {
			return s.mine[i-1]
		}
	}
	if int(id) < len(s.base) {
		return &s.base[id]
	}
	return nil
}

// fromBase reports whether key id's record is base's (shared).
func (s *store) fromBase(id uint32) bool {
	return int(id) < len(s.base) && (int(id) >= len(s.slot) || s.slot[id] == 0)
}

// sharesBase reports whether s and o read the same preloaded records.
func (s *store) sharesBase(o *store) bool {
	return len(s.base) > 0 && len(o.base) == len(s.base) && &s.base[0] == &o.base[0]
}

// all yields every key number below size with its record (the zero Record
// if absent), reading each as it comes to it: a set during the walk is
// seen by what follows.
func (s *store) all() iter.Seq2[uint32, record.Record] {
	return func(yield func(uint32, record.Record) bool) {
		for id := range uint32(s.size) {
			if !yield(id, s.get(id)) {
				return
			}
		}
	}
}

// set replaces key id's record and keeps the tree in step.
func (s *store) set(id uint32, r record.Record) { s.replace(id, s.get(id), &r) }

// restore puts back p, a record key id held (ref), or absence (nil).
func (s *store) restore(id uint32, p *record.Record) {
	if p == nil {
		s.set(id, record.Record{})
		return
	}
	s.replace(id, s.get(id), p)
}

// replace is set of a key whose record the caller has read, old, to *p,
// which it must not change after.
func (s *store) replace(id uint32, old record.Record, p *record.Record) {
	r := *p
	if old.Written() != r.Written() {
		if r.Written() {
			s.n++
		} else {
			s.n--
		}
	}
	// The key's bucket as interned, and the versions in arrays of this
	// frame: the tree keeps neither.
	var ov, nv [3]merkle.Version
	s.tree.UpdateIn(s.keys.bucket[id], s.keys.names[id], mesh.AppendMerkleVersions(ov[:0], old.Versions()), mesh.AppendMerkleVersions(nv[:0], r.Versions()))
	if int(id) >= len(s.slot) {
		slot := make([]int32, max(int(id)+1, len(s.base), 2*len(s.slot), 16))
		copy(slot, s.slot)
		s.slot = slot
	}
	if i := s.slot[id]; i != 0 {
		s.mine[i-1] = p
	} else {
		s.mine = append(s.mine, p)
		s.slot[id] = int32(len(s.mine))
	}
	s.size = max(s.size, int(id)+1)
}

// Digest implements merkle.Local.
func (s *store) Digest(level int, index uint32) uint64 { return s.tree.Digest(level, index) }

// AppendEntries implements merkle.Local.
func (s *store) AppendEntries(dst []merkle.Entry, b uint32) ([]merkle.Entry, error) {
	if int(b) >= len(s.keys.byBucket) {
		return nil, fmt.Errorf("sim: no bucket %d", b)
	}
	for _, id := range s.keys.byBucket[b] {
		if r := s.get(id); r.Written() {
			dst = append(dst, merkle.Entry{Key: s.keys.names[id], Versions: versions(r)})
		}
	}
	return dst, nil
}

// Payload implements merkle.Local.
func (s *store) Payload(key []byte) ([]byte, error) {
	id, ok := s.keys.lookup(key)
	if !ok {
		return nil, nil
	}
	r := s.get(id)
	if !r.Written() {
		return nil, nil
	}
	return record.Encode(r), nil
}
