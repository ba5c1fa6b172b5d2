// Package shadow encodes the bridge's shadow: per key hash, what the backend
// held when the bridge last wrote or read the key (its digest, and element
// by element, hashes of its parts), and the backend's run it describes.
//
// The format: "redmesh-bridge-shadow 3\n", the run ID after its length (a
// uvarint), the count of entries (a uvarint), then per entry the key hash
// and the digest (8 bytes each, big-endian), the kind (a byte), the
// deadline (a zigzag varint), the count of elements (a uvarint) and per
// element its name and part (8 bytes each), and an xxhash of everything
// before it. In-project: a flat array of
// numbers needs no serialisation library.
package shadow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

const magic = "redmesh-bridge-shadow 3\n"

// Entry is what the backend held of one key. It is kept per key of the
// backend, so it is small: a string's is its digest and deadline.
type Entry struct {
	Digest uint64
	At     int64 // the deadline, Unix ms, 0 for none
	// Elems are a hash's fields, a set's or a sorted set's members (in
	// name order) or a list's elements (in list order); nil for others.
	Elems *[]Elem
	Kind  uint8
}

// List is e's elements.
func (e Entry) List() []Elem {
	if e.Elems == nil {
		return nil
	}
	return *e.Elems
}

// Elem is one element: its name's hash and its part (a value's hash, a
// score's bits, or 0).
type Elem struct{ Name, Part uint64 }

// entryMin is the fewest bytes an entry takes: key hash, digest, kind,
// deadline and element count.
const entryMin = 8 + 8 + 1 + 1 + 1

// Encode is the file's bytes.
func Encode(runID string, m map[uint64]Entry) []byte {
	buf := []byte(magic)
	buf = binary.AppendUvarint(buf, uint64(len(runID)))
	buf = append(buf, runID...)
	buf = binary.AppendUvarint(buf, uint64(len(m)))
	for h, e := range m {
		buf = binary.BigEndian.AppendUint64(buf, h)
		buf = binary.BigEndian.AppendUint64(buf, e.Digest)
		buf = append(buf, e.Kind)
		buf = binary.AppendVarint(buf, e.At)
		els := e.List()
		buf = binary.AppendUvarint(buf, uint64(len(els)))
		for _, el := range els {
			buf = binary.BigEndian.AppendUint64(buf, el.Name)
			buf = binary.BigEndian.AppendUint64(buf, el.Part)
		}
	}
	return binary.BigEndian.AppendUint64(buf, xxhash.Sum64(buf))
}

// Decode reads what Encode wrote; damaged bytes (or another version's) are
// an error.
func Decode(buf []byte) (runID string, m map[uint64]Entry, err error) {
	if len(buf) < len(magic)+8 || !bytes.HasPrefix(buf, []byte(magic)) {
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
	count, k := binary.Uvarint(p)
	if k <= 0 || count > uint64(len(p)-k)/entryMin {
		return "", nil, fmt.Errorf("bad entry count %d", count)
	}
	p = p[k:]
	m = make(map[uint64]Entry, count)
	for range count {
		if len(p) < 17 {
			return "", nil, errors.New("truncated entry")
		}
		h := binary.BigEndian.Uint64(p)
		e := Entry{Digest: binary.BigEndian.Uint64(p[8:]), Kind: p[16]}
		p = p[17:]
		if e.At, k = binary.Varint(p); k <= 0 {
			return "", nil, errors.New("bad deadline")
		}
		p = p[k:]
		elems, k := binary.Uvarint(p)
		if k <= 0 || elems > uint64(len(p)-k)/16 {
			return "", nil, fmt.Errorf("bad element count %d", elems)
		}
		p = p[k:]
		if elems > 0 {
			els := make([]Elem, elems)
			for i := range els {
				els[i] = Elem{binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:])}
				p = p[16:]
			}
			e.Elems = &els
		}
		m[h] = e
	}
	if len(p) != 0 {
		return "", nil, fmt.Errorf("%d bytes after the entries", len(p))
	}
	return runID, m, nil
}
