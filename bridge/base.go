package bridge

import (
	"cmp"
	"encoding/binary"
	"math"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"

	"github.com/redmesh/redmesh/bridge/shadow"
)

// A base is what the backend held of a key when the bridge last wrote or
// read it (shadow.Entry): its digest, and, element by element, hashes of
// its parts. A take-in compares the backend's state with its base, not
// with the node's: what differs from the base was changed in the backend;
// what the node holds beyond it is the node's (a peer's record the backend
// has not got yet) and is neither removed nor overwritten for being absent
// or older there.
type base = shadow.Entry

// baseOf is the base of a state the backend holds.
func baseOf(s State) base {
	e := base{Digest: s.Digest(), Kind: uint8(s.Kind), At: s.At}
	var els []shadow.Elem
	switch s.Kind {
	case Hash:
		els = make([]shadow.Elem, 0, len(s.Fields)/2)
		for i := 0; i+1 < len(s.Fields); i += 2 {
			els = append(els, shadow.Elem{Name: xxhash.Sum64(s.Fields[i]), Part: valueHash(s.Fields[i+1])})
		}
	case ZSet:
		els = make([]shadow.Elem, 0, len(s.Fields)/2)
		for i := 0; i+1 < len(s.Fields); i += 2 {
			els = append(els, shadow.Elem{Name: xxhash.Sum64(s.Fields[i]), Part: scoreBits(s.Fields[i+1])})
		}
	case Set:
		els = make([]shadow.Elem, 0, len(s.Members))
		for _, m := range s.Members {
			els = append(els, shadow.Elem{Name: xxhash.Sum64(m)})
		}
	case List: // in list order
		els = make([]shadow.Elem, 0, len(s.Members))
		for _, m := range s.Members {
			els = append(els, shadow.Elem{Name: valueHash(m)})
		}
		e.Elems = &els
		return e
	default: // a string or a whole key: its digest says its value
		return e
	}
	slices.SortFunc(els, func(a, b shadow.Elem) int { return cmp.Compare(a.Name, b.Name) })
	e.Elems = &els
	return e
}

// sameValue reports whether the backend's string or whole key b holds the
// value its base e held, whatever its deadline: b's digest with e's
// deadline is e's.
func sameValue(e *base, b State) bool {
	if Kind(e.Kind) != b.Kind {
		return false
	}
	b.At = e.At
	return b.Digest() == e.Digest
}

// valueHash is a hash field's value's or a list element's hash in a base:
// elemHash's, which the backend's scripts compute too (deltaScript checks
// an element against it before writing over it).
func valueHash(v []byte) uint64 { return elemHash("", v) }

// scoreBits is a score's text (scoreText's) as the bits of its float, -0
// as 0.
func scoreBits(text []byte) uint64 {
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		return math.Float64bits(math.NaN()) // never a score: differs from any
	}
	return math.Float64bits(f + 0)
}

// part finds the element named by name hash h in a base of a hash, set or
// sorted set.
func part(e *base, h uint64) (uint64, bool) {
	els := e.List()
	i, ok := slices.BinarySearchFunc(els, h, func(el shadow.Elem, h uint64) int { return cmp.Compare(el.Name, h) })
	if !ok {
		return 0, false
	}
	return els[i].Part, true
}

// listHashes are a list's element hashes as commonRun compares them.
func listHashes(members [][]byte) [][]byte {
	out := make([][]byte, len(members))
	for i, m := range members {
		out[i] = binary.BigEndian.AppendUint64(nil, valueHash(m))
	}
	return out
}

func baseListHashes(e *base) [][]byte {
	els := e.List()
	out := make([][]byte, len(els))
	for i, el := range els {
		out[i] = binary.BigEndian.AppendUint64(nil, el.Name)
	}
	return out
}
