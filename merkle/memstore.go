package merkle

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Register is one versioned part of a record: the value, the expiry, a hash
// field... Data nil with a non-zero Version is a tombstone.
type Register struct {
	Version Version
	Data    []byte
}

// MemStore is an in-memory store with a Tree, for tests and the simulator. It
// implements Local, and merges received records register by register (the
// newer version wins), as a node does.
//
// Its record payload is uvarint(count) then, per register, TS and Node as
// little-endian uint64, uvarint(len(Data))+1 (0 for nil) and Data.
type MemStore struct {
	tree    *Tree
	recs    map[string]*memRecord
	buckets [][]*memRecord // insertion order keeps listings deterministic
}

type memRecord struct {
	key      []byte
	regs     []Register
	versions []Version // replaced, never modified, so sessions may keep it
}

// NewMemStore returns an empty store.
func NewMemStore(shape Shape) (*MemStore, error) {
	t, err := NewTree(shape)
	if err != nil {
		return nil, err
	}
	return &MemStore{tree: t, recs: make(map[string]*memRecord), buckets: make([][]*memRecord, shape.Leaves())}, nil
}

// Tree returns the store's index.
func (m *MemStore) Tree() *Tree { return m.tree }

// Len is the number of keys, tombstones included.
func (m *MemStore) Len() int { return len(m.recs) }

// Get returns key's registers (nil if absent). The caller must not modify them.
func (m *MemStore) Get(key []byte) []Register {
	if r := m.recs[string(key)]; r != nil {
		return r.regs
	}
	return nil
}

// Put replaces key's registers, whatever their versions; nil removes the key
// (as tombstone garbage collection would).
func (m *MemStore) Put(key []byte, regs []Register) {
	r := m.recs[string(key)]
	var old []Version
	if r != nil {
		old = r.versions
	}
	vs := make([]Version, len(regs))
	for i, g := range regs {
		vs[i] = g.Version
	}
	m.tree.Update(key, old, vs)
	switch {
	case len(regs) == 0 && r != nil:
		delete(m.recs, string(key))
		b := m.tree.shape.BucketOf(key)
		list := m.buckets[b]
		for i, x := range list {
			if x == r {
				m.buckets[b] = append(list[:i:i], list[i+1:]...)
				break
			}
		}
	case len(regs) == 0:
	case r != nil:
		r.regs, r.versions = regs, vs
	default:
		k := bytes.Clone(key)
		r = &memRecord{key: k, regs: regs, versions: vs}
		m.recs[string(k)] = r
		b := m.tree.shape.BucketOf(key)
		m.buckets[b] = append(m.buckets[b], r)
	}
}

// Merge merges regs into key register by register: the newer version wins.
// It reports whether anything changed.
func (m *MemStore) Merge(key []byte, regs []Register) bool {
	cur := m.Get(key)
	out := make([]Register, max(len(cur), len(regs)))
	copy(out, cur)
	changed := false
	for i, g := range regs {
		if g.Version.Compare(out[i].Version) > 0 {
			out[i] = g
			changed = true
		}
	}
	if changed {
		m.Put(key, out)
	}
	return changed
}

// Apply merges a record received from a peer.
func (m *MemStore) Apply(r Record) error {
	regs, err := DecodeRegisters(r.Payload)
	if err != nil {
		return err
	}
	m.Merge(r.Key, regs)
	return nil
}

// Range calls fn for every key in bucket order, stopping when fn returns false.
func (m *MemStore) Range(fn func(key []byte, regs []Register) bool) {
	for _, list := range m.buckets {
		for _, r := range list {
			if !fn(r.key, r.regs) {
				return
			}
		}
	}
}

// Digest implements Local.
func (m *MemStore) Digest(level int, index uint32) uint64 { return m.tree.Digest(level, index) }

// AppendEntries implements Local.
func (m *MemStore) AppendEntries(dst []Entry, b uint32) ([]Entry, error) {
	if int(b) >= len(m.buckets) {
		return nil, fmt.Errorf("memstore: no bucket %d", b)
	}
	for _, r := range m.buckets[b] {
		dst = append(dst, Entry{Key: r.key, Versions: r.versions})
	}
	return dst, nil
}

// Payload implements Local.
func (m *MemStore) Payload(key []byte) ([]byte, error) {
	r := m.recs[string(key)]
	if r == nil {
		return nil, nil
	}
	return AppendRegisters(nil, r.regs), nil
}

// AppendRegisters appends MemStore's payload encoding of regs to dst.
func AppendRegisters(dst []byte, regs []Register) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(regs)))
	for _, g := range regs {
		dst = binary.LittleEndian.AppendUint64(dst, g.Version.TS)
		dst = binary.LittleEndian.AppendUint64(dst, g.Version.Node)
		if g.Data == nil {
			dst = append(dst, 0)
			continue
		}
		dst = binary.AppendUvarint(dst, uint64(len(g.Data))+1)
		dst = append(dst, g.Data...)
	}
	return dst
}

// DecodeRegisters decodes MemStore's payload encoding. Data aliases b.
func DecodeRegisters(b []byte) ([]Register, error) {
	r := reader{b: b}
	n := r.count(MaxVersions, 17)
	if r.err != nil {
		return nil, r.err
	}
	regs := make([]Register, n)
	for i := range regs {
		regs[i].Version = Version{TS: r.u64(), Node: r.u64()}
		l := r.count(MaxPayloadLen+1, 0)
		if r.err == nil && l > 0 {
			if l-1 > len(r.b) {
				r.fail("register of %d bytes exceeds the %d bytes left", l-1, len(r.b))
				break
			}
			regs[i].Data = r.b[: l-1 : l-1]
			r.b = r.b[l-1:]
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return nil, fmt.Errorf("memstore record: %w", r.err)
	}
	return regs, nil
}
