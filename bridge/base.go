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
	switch s.Kind {
	case Hash, ZSet:
		type pair struct {
			name, part uint64
			num        int64
		}
		ps := make([]pair, 0, len(s.Fields)/2)
		nums := false
		for i := 0; i+1 < len(s.Fields); i += 2 {
			p := pair{name: xxhash.Sum64(s.Fields[i])}
			if s.Kind == Hash {
				p.part = valueHash(s.Fields[i+1])
				if v, ok := numberOf(s.Fields[i+1]); ok {
					p.num, nums = v, true
				}
			} else {
				p.part = scoreBits(s.Fields[i+1])
			}
			ps = append(ps, p)
		}
		slices.SortFunc(ps, func(a, b pair) int { return cmp.Compare(a.name, b.name) })
		names, parts := make([]uint64, len(ps)), make([]uint64, len(ps))
		for i, p := range ps {
			names[i], parts[i] = p.name, p.part
		}
		e.Elems = shadow.NewElems(names, parts)
		if nums { // a HINCRBY's or HINCRBYFLOAT's start, where a field holds a number
			e.Elems.Nums = make([]int64, len(ps))
			for i, p := range ps {
				e.Elems.Nums[i] = p.num
			}
		}
	case Set:
		names := make([]uint64, len(s.Members))
		for i, m := range s.Members {
			names[i] = xxhash.Sum64(m)
		}
		slices.Sort(names)
		e.Elems = shadow.NewElems(names, nil)
	case List: // in list order
		names := make([]uint64, len(s.Members))
		for i, m := range s.Members {
			names[i] = valueHash(m)
		}
		e.Elems = shadow.NewElems(names, nil)
	case String:
		// A counter's value, for an INCRBY or INCRBYFLOAT made in the
		// backend.
		e.Num, e.HasNum = numberOf(s.Str)
	}
	return e
}

// numberOf is the number v holds, as a base keeps it: an integer as Redis
// writes one (INCRBY's result), or else the bits of a float64 whose
// shortest text is v (most of INCRBYFLOAT's results), if v is either. Which
// of the two it is, is told by the value's hash (see baseText).
func numberOf(v []byte) (int64, bool) {
	if n, ok := canonicalInt(v); ok {
		return n, true
	}
	if f, ok := canonicalFloat(v); ok {
		return int64(math.Float64bits(f)), true
	}
	return 0, false
}

// canonicalFloat is the float64 v is the shortest text of, in Redis's
// human format (no exponent), if it is one.
func canonicalFloat(v []byte) (float64, bool) {
	if len(v) == 0 || len(v) > 64 {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsInf(f, 0) || string(strconv.AppendFloat(nil, f, 'f', -1, 64)) != string(v) {
		return 0, false
	}
	return f, true
}

// numberTexts are the texts a base's number n may stand for: the integer
// and the float64 numberOf would keep as n.
func numberTexts(n int64) [2][]byte {
	return [2][]byte{strconv.AppendInt(nil, n, 10), strconv.AppendFloat(nil, math.Float64frombits(uint64(n)), 'f', -1, 64)}
}

// baseText is the number a string's base e held, as its text, if it held
// one: the one of numberTexts whose digest, with e's deadline, is e's.
func baseText(e *base) ([]byte, bool) {
	if Kind(e.Kind) != String || !e.HasNum {
		return nil, false
	}
	for _, t := range numberTexts(e.Num) {
		if (State{Kind: String, Str: t, At: e.At}).Digest() == e.Digest {
			return t, true
		}
	}
	return nil, false
}

// canonicalInt is the integer v holds as Redis writes one (INCRBY's
// result), if it does.
func canonicalInt(v []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != string(v) {
		return 0, false
	}
	return n, true
}

// fieldText is the number hash field h held in base e, as its text, if it
// held one: the one of numberTexts whose hash is the field's part.
func fieldText(e *base, h uint64) ([]byte, bool) {
	if e.Elems == nil || e.Elems.Nums == nil {
		return nil, false
	}
	i, ok := slices.BinarySearch(e.Elems.Names, h)
	if !ok {
		return nil, false
	}
	for _, t := range numberTexts(e.Elems.Nums[i]) {
		if e.Elems.Part(i) == valueHash(t) {
			return t, true
		}
	}
	return nil, false
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
	if e.Elems == nil {
		return 0, false
	}
	i, ok := slices.BinarySearch(e.Elems.Names, h)
	if !ok {
		return 0, false
	}
	return e.Elems.Part(i), true
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
	out := make([][]byte, e.Elems.Len())
	for i := range out {
		out[i] = binary.BigEndian.AppendUint64(nil, e.Elems.Names[i])
	}
	return out
}
