package merkle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// HashXXH64 identifies the only hash scheme so far: xxHash64 (seed 0) of the
// key for bucketing, and of the canonical entry encoding for entry hashes.
// Digests are persisted by storage and compared across nodes, so the scheme
// is part of the shape: changing any byte of it needs a new identifier.
const HashXXH64 uint8 = 1

// Shape is the fixed geometry of a tree. Two trees can only be compared when
// their shapes are equal, which is why the shape travels in the handshake.
type Shape struct {
	FanOut int   // children per interior node; a power of two in [2, 256]
	Depth  int   // levels below the root; leaves sit at level Depth
	Hash   uint8 // hash scheme identifier, HashXXH64
}

// DefaultShape has 16^4 = 65,536 buckets: about 15 keys per bucket at 1M keys
// and 1,500 at 100M. Fan-out 16 lets one message descend one level while
// costing 64 bytes per mismatched parent, and depth 4 keeps the whole descent
// plus the leaf exchange within four round trips (see doc.go for the budget).
var DefaultShape = Shape{FanOut: 16, Depth: 4, Hash: HashXXH64}

// Limits on shapes, so that a shape read from the wire cannot ask for a huge
// allocation.
const (
	MaxFanOut = 256
	MaxDepth  = 8
	MaxLeaves = 1 << 24
)

// ErrShapeMismatch is matched (errors.Is) by a *ShapeError.
var ErrShapeMismatch = errors.New("merkle: tree shape mismatch")

// ShapeError reports that the peer's tree has another shape than ours.
type ShapeError struct {
	Local, Remote Shape
}

func (e *ShapeError) Error() string {
	return fmt.Sprintf("merkle: tree shape mismatch: local %v, remote %v", e.Local, e.Remote)
}

// Is makes errors.Is(err, ErrShapeMismatch) true.
func (e *ShapeError) Is(target error) bool { return target == ErrShapeMismatch }

func (s Shape) String() string {
	return fmt.Sprintf("fanout=%d depth=%d hash=%d", s.FanOut, s.Depth, s.Hash)
}

// Validate reports whether the shape is one this package can build.
func (s Shape) Validate() error {
	if s.FanOut < 2 || s.FanOut > MaxFanOut || s.FanOut&(s.FanOut-1) != 0 {
		return fmt.Errorf("merkle: fan-out %d is not a power of two in [2, %d]", s.FanOut, MaxFanOut)
	}
	if s.Depth < 1 || s.Depth > MaxDepth {
		return fmt.Errorf("merkle: depth %d outside [1, %d]", s.Depth, MaxDepth)
	}
	if s.logLeaves() > bits.TrailingZeros(MaxLeaves) {
		return fmt.Errorf("merkle: %d^%d leaves exceed %d", s.FanOut, s.Depth, MaxLeaves)
	}
	if s.Hash != HashXXH64 {
		return fmt.Errorf("merkle: unknown hash scheme %d", s.Hash)
	}
	return nil
}

func (s Shape) logFanOut() int { return bits.TrailingZeros(uint(s.FanOut)) }
func (s Shape) logLeaves() int { return s.logFanOut() * s.Depth }

// Leaves is the number of buckets.
func (s Shape) Leaves() int { return 1 << s.logLeaves() }

// Width is the number of nodes at level (0 is the root, Depth the leaves).
func (s Shape) Width(level int) int { return 1 << (s.logFanOut() * level) }

// KeyHash is the 64-bit hash that places a key. It does not depend on the shape.
func KeyHash(key []byte) uint64 { return xxhash.Sum64(key) }

// BucketOf returns the bucket of key: the top log2(Leaves) bits of KeyHash.
// Taking top bits means that a store which prefixes each row with the
// big-endian KeyHash finds a bucket's rows in one contiguous range (a plain
// prefix scan when log2(Leaves) is a multiple of 8, as for the default's 16),
// whatever the shape; see BucketRange.
func (s Shape) BucketOf(key []byte) uint32 { return s.BucketOfHash(KeyHash(key)) }

// BucketOfHash is BucketOf of a key whose KeyHash is h.
func (s Shape) BucketOfHash(h uint64) uint32 { return uint32(h >> (64 - s.logLeaves())) }

// BucketRange returns the inclusive range of KeyHash values of bucket b.
func (s Shape) BucketRange(b uint32) (lo, hi uint64) {
	shift := 64 - s.logLeaves()
	lo = uint64(b) << shift
	return lo, lo | (1<<shift - 1)
}

// BucketOf returns the bucket of key in DefaultShape.
func BucketOf(key []byte) uint32 { return DefaultShape.BucketOf(key) }

// Version orders register writes: an HLC timestamp, then the writer's node ID.
type Version struct {
	TS   uint64
	Node uint64
}

// DigestTS is the timestamp of a register that holds a digest (see NewerIn).
const DigestTS = 1<<64 - 1

func (v Version) isZero() bool { return v == Version{} }

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than w.
func (v Version) Compare(w Version) int {
	switch {
	case v.TS < w.TS:
		return -1
	case v.TS > w.TS:
		return 1
	case v.Node < w.Node:
		return -1
	case v.Node > w.Node:
		return 1
	}
	return 0
}

// IsZero reports whether v is the zero version, which stands for "never written".
func (v Version) IsZero() bool { return v == Version{} }

// trimVersions drops trailing zero versions: a register never written is the
// same as a register that does not exist, so [v] and [v, 0] must hash alike.
func trimVersions(vs []Version) []Version {
	for len(vs) > 0 && vs[len(vs)-1].IsZero() {
		vs = vs[:len(vs)-1]
	}
	return vs
}

// EntryHash is the 64-bit hash of a key and its register versions, the unit
// summed into a bucket digest. Its input is uvarint(len(key)) || key ||
// (TS, Node as little-endian uint64)* over the versions with trailing zero
// versions removed. An entry with no versions is absent and hashes to 0.
func EntryHash(key []byte, versions []Version) uint64 {
	versions = trimVersions(versions)
	if len(versions) == 0 {
		return 0
	}
	if len(key) <= entryHashInline && len(versions) <= 3 {
		// Most keys are short: the input on the stack and one pass of the
		// hash cost half the streaming digest's writes (every write hashes).
		var buf [binary.MaxVarintLen64 + entryHashInline + 3*16]byte
		b := binary.AppendUvarint(buf[:0], uint64(len(key)))
		b = append(b, key...)
		for _, v := range versions {
			b = binary.LittleEndian.AppendUint64(b, v.TS)
			b = binary.LittleEndian.AppendUint64(b, v.Node)
		}
		return xxhash.Sum64(b)
	}
	var d xxhash.Digest
	d.Reset()
	var buf [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(buf[:], uint64(len(key)))
	d.Write(buf[:n])
	d.Write(key)
	var vb [16]byte
	for _, v := range versions {
		binary.LittleEndian.PutUint64(vb[:8], v.TS)
		binary.LittleEndian.PutUint64(vb[8:], v.Node)
		d.Write(vb[:])
	}
	return d.Sum64()
}

// entryHashInline is the longest key EntryHash hashes in one pass.
const entryHashInline = 128

// NewerIn reports, register by register, whether a holds a newer version than
// b (aNewer) and whether b holds a newer one than a (bNewer). Both can be true:
// a key can need to move in both directions. A missing register is the zero
// version.
//
// A register whose timestamp is DigestTS holds not a version but a digest of
// a state that merges as a whole (a hash, a set): two different digests say
// nothing of which is newer, so both sides are newer and the state moves
// both ways, each side merging the other's.
func NewerIn(a, b []Version) (aNewer, bNewer bool) {
	n := max(len(a), len(b))
	for i := range n {
		var va, vb Version
		if i < len(a) {
			va = a[i]
		}
		if i < len(b) {
			vb = b[i]
		}
		if va != vb && (va.TS == DigestTS || vb.TS == DigestTS) {
			aNewer = aNewer || !va.isZero()
			bNewer = bNewer || !vb.isZero()
			continue
		}
		switch va.Compare(vb) {
		case 1:
			aNewer = true
		case -1:
			bNewer = true
		}
	}
	return aNewer, bNewer
}

// mix64 is the SplitMix64 finaliser: a bijection on uint64 that spreads every
// input bit over the output, used to salt digests cheaply.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Salted short hashes. Because mix64 is a bijection, two distinct 64-bit
// digests collide in 32 bits only for some salts, so a collision that hides a
// difference in one session is unlikely to repeat in the next.
func shortNode(d, salt uint64) uint32  { return uint32(mix64(d^salt) >> 32) }
func shortEntry(h, salt uint64) uint32 { return uint32(mix64(h^salt^0x9e3779b97f4a7c15) >> 32) }
