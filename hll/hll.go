// Package hll is Redis's HyperLogLog as bytes: the "HYLL" string with its
// sparse and dense encodings, the element hash that picks a register, and the
// cardinality estimate, all as Redis 7 computes them, so that a string this
// package writes reads in Redis and the other way round.
//
// A sketch here is its registers (Registers bytes, one per register, values
// 0 to 63): what two sketches merge by (register maximum). The encoding is
// rebuilt from them: sparse runs laid out greedily (Redis builds the same
// layout, except where it split a run of equal values while filling it out of
// order), dense once a sketch outgrows SparseMaxBytes or holds a register
// above 32, as Redis promotes it.
//
// Written in-project: no Go library reads or writes Redis's encoding.
package hll

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
)

const (
	// P is the number of hash bits that pick a register.
	P = 14
	// Registers is the number of registers of a sketch.
	Registers = 1 << P
	// MaxRegister is the largest value a register holds (6 bits).
	MaxRegister = 63
	// HeaderLen is the length of the header: "HYLL", the encoding, three
	// unused bytes and the cached cardinality.
	HeaderLen = 16
	// DenseLen is the length of a dense string: 6 bits a register.
	DenseLen = HeaderLen + Registers*6/8
	// SparseMaxBytes is Redis's hll-sparse-max-bytes default: a sparse
	// string longer than this is promoted to dense.
	SparseMaxBytes = 3000

	encDense  = 0
	encSparse = 1

	sparseValMax  = 32
	sparseValLen  = 4
	sparseZeroMax = 64
	sparseXZero   = 0x40
	sparseVal     = 0x80

	// CacheInvalid is the bit of the cached cardinality (the top bit of its
	// last byte) that says the cache is stale.
	CacheInvalid = uint64(1) << 63

	seed = 0xadc83b19
)

var (
	// ErrNotHLL is a string that is not a HyperLogLog: Redis's WRONGTYPE
	// "Key is not a valid HyperLogLog string value."
	ErrNotHLL = errors.New("not a valid HyperLogLog string")
	// ErrCorrupt is a HyperLogLog string whose registers do not add up:
	// Redis's INVALIDOBJ "Corrupted HLL object detected".
	ErrCorrupt = errors.New("corrupted HyperLogLog")
)

// Hash is the register an element falls in and the value it proposes for it
// (the position of the first set bit of the rest of the hash), as Redis's
// hllPatLen.
func Hash(elem []byte) (index int, count uint8) {
	h := murmurHash64A(elem, seed)
	index = int(h & (Registers - 1))
	h >>= P
	h |= 1 << (64 - P)
	count = 1
	for bit := uint64(1); h&bit == 0; bit <<= 1 {
		count++
	}
	return index, count
}

// murmurHash64A is Austin Appleby's MurmurHash64A as Redis has it (little
// endian); no module the project may use provides this variant.
func murmurHash64A(key []byte, seed uint64) uint64 {
	const m = 0xc6a4a7935bd1e995
	const r = 47
	h := seed ^ uint64(len(key))*m
	for len(key) >= 8 {
		k := binary.LittleEndian.Uint64(key)
		k *= m
		k ^= k >> r
		k *= m
		h ^= k
		h *= m
		key = key[8:]
	}
	if len(key) > 0 {
		for i := len(key) - 1; i >= 0; i-- {
			h ^= uint64(key[i]) << (8 * i)
		}
		h *= m
	}
	h ^= h >> r
	h *= m
	h ^= h >> r
	return h
}

// Check is Redis's test of a string PFADD, PFCOUNT and PFMERGE accept: the
// magic, a known encoding, and a dense string's exact length.
func Check(s []byte) error {
	if len(s) < HeaderLen || string(s[:4]) != "HYLL" || s[4] > encSparse {
		return ErrNotHLL
	}
	if s[4] == encDense && len(s) != DenseLen {
		return ErrNotHLL
	}
	return nil
}

// IsDense reports whether a checked string is dense.
func IsDense(s []byte) bool { return s[4] == encDense }

// Card is a checked string's cached cardinality field as it is stored,
// CacheInvalid bit included.
func Card(s []byte) uint64 { return binary.LittleEndian.Uint64(s[8:16]) }

// SetCard writes the cached cardinality field of a checked string.
func SetCard(s []byte, card uint64) { binary.LittleEndian.PutUint64(s[8:16], card) }

// MaxInto raises regs (Registers bytes) to the registers of a checked
// string, as Redis's hllMerge; a sparse string whose runs do not cover
// exactly every register is ErrCorrupt.
func MaxInto(regs []byte, s []byte) error {
	if IsDense(s) {
		d := s[HeaderLen:]
		for i := range Registers {
			if v := denseGet(d, i); v > regs[i] {
				regs[i] = v
			}
		}
		return nil
	}
	i := 0
	for p := s[HeaderLen:]; len(p) > 0; {
		switch {
		case p[0]&0xc0 == 0: // ZERO
			i += int(p[0]&0x3f) + 1
			p = p[1:]
		case p[0]&0xc0 == sparseXZero:
			if len(p) < 2 {
				return ErrCorrupt
			}
			i += (int(p[0]&0x3f)<<8 | int(p[1])) + 1
			p = p[2:]
		default: // VAL
			n, v := int(p[0]&3)+1, (p[0]>>2)&0x1f+1
			if i+n > Registers {
				return ErrCorrupt
			}
			for ; n > 0; n-- {
				if v > regs[i] {
					regs[i] = v
				}
				i++
			}
			p = p[1:]
		}
		if i > Registers {
			return ErrCorrupt
		}
	}
	if i != Registers {
		return ErrCorrupt
	}
	return nil
}

func denseGet(d []byte, i int) uint8 {
	byt, fb := i*6/8, uint(i*6&7)
	b0 := uint(d[byt])
	var b1 uint
	if byt+1 < len(d) {
		b1 = uint(d[byt+1])
	}
	return uint8((b0>>fb | b1<<(8-fb)) & MaxRegister)
}

func denseSet(d []byte, i int, v uint8) {
	byt, fb := i*6/8, uint(i*6&7)
	d[byt] &^= byte(MaxRegister << fb)
	d[byt] |= v << fb
	if byt+1 < len(d) {
		d[byt+1] &^= byte(MaxRegister >> (8 - fb))
		d[byt+1] |= v >> (8 - fb)
	}
}

// SparseLen is the length of regs' sparse encoding without the header, and
// false if a register is too large for it (above 32).
func SparseLen(regs []byte) (int, bool) {
	n := 0
	ok := true
	eachRun(regs, func(v uint8, run int) {
		switch {
		case v > sparseValMax:
			ok = false
		case v != 0:
			n++
		case run > sparseZeroMax:
			n += 2
		default:
			n++
		}
	})
	return n, ok
}

// eachRun calls fn with the runs of regs as the sparse encoding has them:
// zeros as one run however long, equal values up to four at a time.
func eachRun(regs []byte, fn func(v uint8, run int)) {
	for i := 0; i < len(regs); {
		v := regs[i]
		j := i + 1
		for j < len(regs) && regs[j] == v && (v == 0 || j-i < sparseValLen) {
			j++
		}
		fn(v, j-i)
		i = j
	}
}

// NeedsDense reports whether Redis would hold regs dense: too long for the
// sparse encoding, or with a register it cannot hold.
func NeedsDense(regs []byte) bool {
	n, ok := SparseLen(regs)
	return !ok || HeaderLen+n > SparseMaxBytes
}

// Encode is the string of regs (Registers bytes, or nil for all zero),
// dense if dense is set or NeedsDense, with card as its cached cardinality
// field.
func Encode(regs []byte, dense bool, card uint64) []byte {
	if regs == nil {
		regs = make([]byte, Registers)
	}
	if dense || NeedsDense(regs) {
		s := make([]byte, DenseLen)
		copy(s, "HYLL")
		s[4] = encDense
		SetCard(s, card)
		d := s[HeaderLen:]
		for i, v := range regs {
			if v != 0 {
				denseSet(d, i, v)
			}
		}
		return s
	}
	n, _ := SparseLen(regs)
	s := make([]byte, HeaderLen, HeaderLen+n)
	copy(s, "HYLL")
	s[4] = encSparse
	SetCard(s, card)
	eachRun(regs, func(v uint8, run int) {
		switch {
		case v != 0:
			s = append(s, sparseVal|(v-1)<<2|byte(run-1))
		case run > sparseZeroMax:
			s = append(s, sparseXZero|byte((run-1)>>8), byte(run-1))
		default:
			s = append(s, byte(run-1))
		}
	})
	return s
}

// ToDense is a checked string in the dense encoding, its cached cardinality
// kept, as Redis's hllSparseToDense.
func ToDense(s []byte) ([]byte, error) {
	if IsDense(s) {
		return s, nil
	}
	regs := make([]byte, Registers)
	if err := MaxInto(regs, s); err != nil {
		return nil, err
	}
	return Encode(regs, true, Card(s)), nil
}

// Describe is PFDEBUG DECODE's text of a sparse string's runs.
func Describe(s []byte) (string, error) {
	var b strings.Builder
	for p := s[HeaderLen:]; len(p) > 0; {
		switch {
		case p[0]&0xc0 == 0:
			fmt.Fprintf(&b, "z:%d ", int(p[0]&0x3f)+1)
			p = p[1:]
		case p[0]&0xc0 == sparseXZero:
			if len(p) < 2 {
				return "", ErrCorrupt
			}
			fmt.Fprintf(&b, "Z:%d ", (int(p[0]&0x3f)<<8|int(p[1]))+1)
			p = p[2:]
		default:
			fmt.Fprintf(&b, "v:%d,%d ", (p[0]>>2)&0x1f+1, int(p[0]&3)+1)
			p = p[1:]
		}
	}
	return strings.TrimRight(b.String(), " "), nil
}

// Count is the cardinality estimate of regs (Registers bytes, or nil), as
// Redis's hllCount computes it (Ertl's estimator), to the last bit.
func Count(regs []byte) uint64 {
	var histo [64]int
	if regs == nil {
		histo[0] = Registers
	}
	for _, v := range regs {
		histo[v&63]++
	}
	const m = float64(Registers)
	const q = 64 - P
	z := m * tau((m-float64(histo[q+1]))/m)
	for j := q; j >= 1; j-- {
		z += float64(histo[j])
		z *= 0.5
	}
	z += m * sigma(float64(histo[0])/m)
	const alphaInf = 0.721347520444481703680
	return uint64(math.Round(alphaInf * m * m / z))
}

func sigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		prev := z
		z += x * y
		y += y
		if prev == z {
			return z
		}
	}
}

func tau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if prev == z {
			return z / 3
		}
	}
}
