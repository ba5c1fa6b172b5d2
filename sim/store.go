package sim

import (
	"fmt"

	"github.com/redmesh/redmesh/merkle"
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
type store struct {
	keys *keyTable
	recs []record.Record // indexed by key number; the zero Record is "absent"
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

// present reports whether a store holds anything for a key: a register or
// a typed state (a hash's fields alone have no register version).
func present(r record.Record) bool {
	return !r.Value.Version.IsZero() || !r.Expiry.Version.IsZero() || !r.Typed.IsZero()
}

// versions converts a record's register versions for the tree. The slice is
// fresh: sessions may keep it.
func versions(r record.Record) []merkle.Version {
	if !present(r) {
		return nil
	}
	vs := r.Versions()
	out := make([]merkle.Version, len(vs))
	for i, v := range vs {
		out[i] = merkle.Version{TS: uint64(v.TS), Node: uint64(v.Node)}
	}
	return out
}

func (s *store) get(id uint32) record.Record {
	if int(id) < len(s.recs) {
		return s.recs[id]
	}
	return record.Record{}
}

// set replaces key id's record and keeps the tree in step.
func (s *store) set(id uint32, r record.Record) {
	if int(id) >= len(s.recs) {
		s.grow(int(id) + 1)
	}
	old := s.recs[id]
	if present(old) != present(r) {
		if present(r) {
			s.n++
		} else {
			s.n--
		}
	}
	s.tree.Update(s.keys.names[id], versions(old), versions(r))
	s.recs[id] = r
}

func (s *store) grow(n int) {
	if n <= cap(s.recs) {
		s.recs = s.recs[:n]
		return
	}
	c := max(n, 2*cap(s.recs), 16)
	recs := make([]record.Record, n, c)
	copy(recs, s.recs)
	s.recs = recs
}

// Digest implements merkle.Local.
func (s *store) Digest(level int, index uint32) uint64 { return s.tree.Digest(level, index) }

// AppendEntries implements merkle.Local.
func (s *store) AppendEntries(dst []merkle.Entry, b uint32) ([]merkle.Entry, error) {
	if int(b) >= len(s.keys.byBucket) {
		return nil, fmt.Errorf("sim: no bucket %d", b)
	}
	for _, id := range s.keys.byBucket[b] {
		if r := s.get(id); present(r) {
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
	if !present(r) {
		return nil, nil
	}
	return record.Encode(r), nil
}
