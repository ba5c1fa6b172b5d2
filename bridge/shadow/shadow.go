// Package shadow holds the bridge's shadow: per key hash, what the backend
// held when the bridge last wrote or read the key (its digest, and element
// by element, hashes of its parts), and its file encoding, with the
// backend's run it describes.
//
// The format: "redmesh-bridge-shadow 4\n", the run ID after its length (a
// uvarint), the count of entries (a uvarint), then per entry the key hash
// and the digest (8 bytes each, big-endian), the kind (a byte), flags (a
// byte: 1, the elements have parts; 2, the entry holds an integer), the
// deadline (a zigzag varint), the integer if any (a zigzag varint), the
// count of elements (a uvarint), their names (8 bytes each) and, if
// flagged, their parts (8 bytes each) and (flag 4) their integers (zigzag
// varints); and an xxhash of everything before it. Format 3, the same without flags and integer and with every
// element's name and part side by side, is read too. In-project: a flat
// array of numbers needs no serialisation library.
package shadow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"

	"github.com/cespare/xxhash/v2"
)

const (
	magic  = "redmesh-bridge-shadow 4\n"
	magic3 = "redmesh-bridge-shadow 3\n"
)

// KindString is the kind of a string key (the bridge's String): the kind
// most keys have, kept apart in a Map.
const KindString = 1

// Entry is what the backend held of one key. It is kept per key of the
// backend, so it is small.
type Entry struct {
	Digest uint64
	At     int64 // the deadline, Unix ms, 0 for none
	// Num is the number a string holds (HasNum): an integer in its
	// canonical form, or the bits of a float64 whose shortest text it
	// holds (the caller tells which by the digest): what an INCRBY or
	// INCRBYFLOAT made in the backend started from.
	Num   int64
	Elems *Elems // nil for a string or a key carried whole
	Kind  uint8
	// HasNum: the entry is a string holding Num.
	HasNum bool
}

// Elems are a hash's fields, a set's or a sorted set's members (in name
// order) or a list's elements (in list order): each one's name hash and
// part (a value's hash, a score's bits; 0 for a set's member or a list's
// element). Parts is nil where every part is 0, so a set's or a list's
// element takes 8 bytes. Nums are a hash's fields' numbers (as
// Entry.Num), where some field holds one (nil otherwise): what a HINCRBY
// or HINCRBYFLOAT made in the backend started from. Nums[i] is field i's
// value only if the value's hash, Parts[i], is that of the number's text:
// the caller checks.
type Elems struct {
	Names, Parts []uint64
	Nums         []int64
}

// Len is how many elements e holds (0 for nil).
func (e *Elems) Len() int {
	if e == nil {
		return 0
	}
	return len(e.Names)
}

// Part is element i's part.
func (e *Elems) Part(i int) uint64 {
	if e.Parts == nil {
		return 0
	}
	return e.Parts[i]
}

// NewElems builds Elems from names and parts of the same length, dropping
// parts that are all 0.
func NewElems(names, parts []uint64) *Elems {
	for _, p := range parts {
		if p != 0 {
			return &Elems{Names: names, Parts: parts}
		}
	}
	return &Elems{Names: names}
}

// Map is the shadow in memory. A string's entry, what most keys have, is
// kept in a map of one or two words rather than as a whole Entry: its
// digest alone, or with its integer or its deadline; other entries whole.
// The zero Map is empty and ready.
type Map struct {
	plain    map[uint64]uint64    // strings without deadline nor integer
	counters map[uint64][2]uint64 // strings holding an integer, without deadline: digest, integer
	timed    map[uint64][2]uint64 // strings with a deadline, without integer: digest, deadline
	full     map[uint64]Entry     // the others
}

// Get is key hash h's entry.
func (m *Map) Get(h uint64) (Entry, bool) {
	if d, ok := m.plain[h]; ok {
		return Entry{Digest: d, Kind: KindString}, true
	}
	if c, ok := m.counters[h]; ok {
		return Entry{Digest: c[0], Num: int64(c[1]), HasNum: true, Kind: KindString}, true
	}
	if t, ok := m.timed[h]; ok {
		return Entry{Digest: t[0], At: int64(t[1]), Kind: KindString}, true
	}
	e, ok := m.full[h]
	return e, ok
}

// Put sets key hash h's entry.
func (m *Map) Put(h uint64, e Entry) {
	m.Delete(h)
	switch {
	case e.Kind != KindString || e.Elems != nil || (e.HasNum && e.At != 0):
		if m.full == nil {
			m.full = map[uint64]Entry{}
		}
		m.full[h] = e
	case e.HasNum:
		if m.counters == nil {
			m.counters = map[uint64][2]uint64{}
		}
		m.counters[h] = [2]uint64{e.Digest, uint64(e.Num)}
	case e.At != 0:
		if m.timed == nil {
			m.timed = map[uint64][2]uint64{}
		}
		m.timed[h] = [2]uint64{e.Digest, uint64(e.At)}
	default:
		if m.plain == nil {
			m.plain = map[uint64]uint64{}
		}
		m.plain[h] = e.Digest
	}
}

// Delete removes key hash h's entry.
func (m *Map) Delete(h uint64) {
	delete(m.plain, h)
	delete(m.counters, h)
	delete(m.timed, h)
	delete(m.full, h)
}

// Len is how many entries m holds.
func (m *Map) Len() int { return len(m.plain) + len(m.counters) + len(m.timed) + len(m.full) }

// All is every entry, in no order; the loop may Delete the entry it is at.
func (m *Map) All() iter.Seq2[uint64, Entry] {
	return func(yield func(uint64, Entry) bool) {
		for _, sub := range []func(func(uint64) bool){
			func(f func(uint64) bool) { each(m.plain, f) },
			func(f func(uint64) bool) { each(m.counters, f) },
			func(f func(uint64) bool) { each(m.timed, f) },
			func(f func(uint64) bool) { each(m.full, f) },
		} {
			stop := false
			sub(func(h uint64) bool {
				e, _ := m.Get(h)
				stop = !yield(h, e)
				return !stop
			})
			if stop {
				return
			}
		}
	}
}

func each[V any](m map[uint64]V, f func(uint64) bool) {
	for h := range m {
		if !f(h) {
			return
		}
	}
}

// entryMin is the fewest bytes an entry takes: key hash, digest, kind,
// flags, deadline and element count (format 3: no flags).
const (
	entryMin  = 8 + 8 + 1 + 1 + 1 + 1
	entryMin3 = entryMin - 1
)

// Encode is the file's bytes.
func Encode(runID string, m *Map) []byte {
	buf := []byte(magic)
	buf = binary.AppendUvarint(buf, uint64(len(runID)))
	buf = append(buf, runID...)
	buf = binary.AppendUvarint(buf, uint64(m.Len()))
	for h, e := range m.All() {
		buf = binary.BigEndian.AppendUint64(buf, h)
		buf = binary.BigEndian.AppendUint64(buf, e.Digest)
		flags := byte(0)
		if e.Elems != nil && e.Elems.Parts != nil {
			flags |= 1
		}
		if e.HasNum {
			flags |= 2
		}
		if e.Elems != nil && e.Elems.Parts != nil && e.Elems.Nums != nil {
			flags |= 4
		}
		buf = append(buf, e.Kind, flags)
		buf = binary.AppendVarint(buf, e.At)
		if e.HasNum {
			buf = binary.AppendVarint(buf, e.Num)
		}
		buf = binary.AppendUvarint(buf, uint64(e.Elems.Len()))
		if e.Elems != nil {
			for _, n := range e.Elems.Names {
				buf = binary.BigEndian.AppendUint64(buf, n)
			}
			for _, p := range e.Elems.Parts {
				buf = binary.BigEndian.AppendUint64(buf, p)
			}
			if flags&4 != 0 {
				for _, v := range e.Elems.Nums {
					buf = binary.AppendVarint(buf, v)
				}
			}
		}
	}
	return binary.BigEndian.AppendUint64(buf, xxhash.Sum64(buf))
}

// Decode reads what Encode wrote (or format 3); damaged bytes (or another
// version's) are an error.
func Decode(buf []byte) (runID string, m *Map, err error) {
	v3 := bytes.HasPrefix(buf, []byte(magic3))
	if len(buf) < len(magic)+8 || !(v3 || bytes.HasPrefix(buf, []byte(magic))) {
		return "", nil, errors.New("not a shadow file of this version")
	}
	body := buf[:len(buf)-8]
	if binary.BigEndian.Uint64(buf[len(buf)-8:]) != xxhash.Sum64(body) {
		return "", nil, errors.New("checksum mismatch")
	}
	p := body[len(magic):]
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)-k) {
		return "", nil, errors.New("bad run ID")
	}
	runID = string(p[k : k+int(n)])
	p = p[k+int(n):]
	least := entryMin
	if v3 {
		least = entryMin3
	}
	count, k := binary.Uvarint(p)
	if k <= 0 || count > uint64(len(p)-k)/uint64(least) {
		return "", nil, fmt.Errorf("bad entry count %d", count)
	}
	p = p[k:]
	m = &Map{}
	for range count {
		if len(p) < least-2 {
			return "", nil, errors.New("truncated entry")
		}
		h := binary.BigEndian.Uint64(p)
		e := Entry{Digest: binary.BigEndian.Uint64(p[8:]), Kind: p[16]}
		p = p[17:]
		flags := byte(1) // format 3: names and parts side by side
		if !v3 {
			flags, p = p[0], p[1:]
			if flags&^7 != 0 || (flags&4 != 0 && flags&1 == 0) {
				return "", nil, fmt.Errorf("bad flags %#x", flags)
			}
		}
		if e.At, k = binary.Varint(p); k <= 0 {
			return "", nil, errors.New("bad deadline")
		}
		p = p[k:]
		if flags&2 != 0 {
			if e.Num, k = binary.Varint(p); k <= 0 {
				return "", nil, errors.New("bad integer")
			}
			p, e.HasNum = p[k:], true
		}
		elems, k := binary.Uvarint(p)
		size := uint64(8)
		if flags&1 != 0 {
			size = 16
		}
		if flags&4 != 0 {
			size++
		}
		if k <= 0 || elems > uint64(len(p)-k)/size {
			return "", nil, fmt.Errorf("bad element count %d", elems)
		}
		p = p[k:]
		if elems > 0 {
			names := make([]uint64, elems)
			var parts []uint64
			if flags&1 != 0 {
				parts = make([]uint64, elems)
			}
			for i := range names {
				names[i] = binary.BigEndian.Uint64(p)
				p = p[8:]
				if v3 {
					parts[i] = binary.BigEndian.Uint64(p)
					p = p[8:]
				}
			}
			if !v3 {
				for i := range parts {
					parts[i] = binary.BigEndian.Uint64(p)
					p = p[8:]
				}
			}
			e.Elems = NewElems(names, parts)
			if flags&4 != 0 {
				e.Elems.Nums = make([]int64, elems)
				for i := range e.Elems.Nums {
					if e.Elems.Nums[i], k = binary.Varint(p); k <= 0 {
						return "", nil, errors.New("bad element integer")
					}
					p = p[k:]
				}
			}
		}
		m.Put(h, e)
	}
	if len(p) != 0 {
		return "", nil, fmt.Errorf("%d bytes after the entries", len(p))
	}
	return runID, m, nil
}
