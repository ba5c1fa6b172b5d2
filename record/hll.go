package record

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"

	"github.com/redmesh/redmesh/hll"
)

// HLL is a HyperLogLog key's sketch: its registers, which merge by maximum,
// so that elements added concurrently at different nodes are all counted.
// A client reads it as Redis's "HYLL" string, rebuilt from the registers
// (StringData); the key's type is string, as in Redis.
//
// Each write that makes the key a HyperLogLog (PFADD or PFMERGE creating it,
// or converting a string that holds one) starts an epoch, named by its
// version, which it also writes to the value register. The sketch shows while
// the value register holds one of its epochs; its registers are the maximum
// over its epochs, so two nodes creating the key at the same time merge
// their adds. A write over the whole key (SET, APPEND, SETBIT, DEL, expiry)
// replaces it in the value register, as in Redis, and removes the epochs it
// observed, so that a PFADD made concurrently to one of them adds nothing
// back, while an epoch it never saw (created concurrently) survives: the
// observed-remove rule of hashes and sets.
type HLL struct {
	// Epochs not removed, sorted by epoch.
	Epochs []HLLEpoch
	// Removed are the removed epochs, sorted: kept, as removal traces are,
	// so that a late copy of a PFADD does not bring its epoch back.
	Removed []Version
	// Cache is the cardinality PFCOUNT last cached in the header.
	Cache HLLCache
}

// HLLEpoch is the registers PFADDs raised in one epoch.
type HLLEpoch struct {
	Epoch Version
	// Dense: Redis promoted the encoding to dense, which it never undoes.
	Dense bool
	// Regs are hll.Registers registers, or nil for all zero.
	Regs []byte
}

// HLLCache is the header's cached cardinality, a register of its own: the
// field as PFCOUNT or PFMERGE last wrote it (hll.CacheInvalid set when
// stale) and the digest of the registers it was computed from. Registers
// raised since, here or at any node, show the cache as stale, as Redis
// invalidates it when PFADD changes a register.
type HLLCache struct {
	Ver  Version
	Card uint64
	Of   uint64
}

// maxHLLEpochs bounds the epochs of one sketch, so a decoder allocates at
// most this many register arrays: more nodes than this creating one key at
// the same moment is not a mesh this is built for.
const maxHLLEpochs = 1024

// zeroRegs is the registers of an empty sketch, read only.
var zeroRegs [hll.Registers]byte

// RegsDigest is what HLLCache.Of holds for regs: nil and all zero alike.
func RegsDigest(regs []byte) uint64 {
	if regs == nil {
		regs = zeroRegs[:]
	}
	return xxhash.Sum64(regs)
}

// Registers is the sketch's registers, the maximum over its epochs (nil for
// all zero); the caller must not change them.
func (h *HLL) Registers() []byte {
	var m []byte
	for _, e := range h.Epochs {
		m = maxRegs(m, e.Regs)
	}
	return m
}

// Promoted reports whether a write promoted the sketch to dense.
func (h *HLL) Promoted() bool {
	for _, e := range h.Epochs {
		if e.Dense {
			return true
		}
	}
	return false
}

// IsDense reports whether Redis would hold the sketch dense.
func (h *HLL) IsDense() bool { return h.Promoted() || hll.NeedsDense(h.Registers()) }

// Header is the cached cardinality field a client reads.
func (h *HLL) Header() uint64 {
	card := h.Cache.Card
	if RegsDigest(h.Registers()) != h.Cache.Of {
		card |= hll.CacheInvalid
	}
	return card
}

// String is the sketch as Redis's string.
func (h *HLL) String() []byte { return hll.Encode(h.Registers(), h.IsDense(), h.Header()) }

// LiveHLL is the key's sketch if the key shows one: the value register holds
// one of its epochs.
func (t *Typed) LiveHLL(value Version) *HLL {
	if t == nil || t.HLL == nil || value.IsZero() {
		return nil
	}
	if _, ok := slices.BinarySearchFunc(t.HLL.Epochs, value, func(e HLLEpoch, v Version) int { return e.Epoch.Compare(v) }); !ok {
		return nil
	}
	return t.HLL
}

func (t *Typed) hllString(value Version) ([]byte, bool) {
	h := t.LiveHLL(value)
	if h == nil {
		return nil, false
	}
	return h.String(), true
}

// cleared is the sketch as a write that overwrites or deletes the key leaves
// it: every epoch it observed removed.
func (h *HLL) cleared() *HLL {
	if h == nil || len(h.Epochs) == 0 {
		return nil
	}
	m := &HLL{Removed: make([]Version, len(h.Epochs))}
	for i, e := range h.Epochs {
		m.Removed[i] = e.Epoch
	}
	return m
}

func (h *HLL) newest() Version {
	var n Version
	if h == nil {
		return n
	}
	up := func(v Version) {
		if v.Compare(n) > 0 {
			n = v
		}
	}
	up(h.Cache.Ver)
	for _, e := range h.Epochs {
		up(e.Epoch)
	}
	for _, d := range h.Removed {
		up(d)
	}
	return n
}

// mergeHLL merges two sketches: the union of their epochs, registers of one
// epoch by maximum, without the removed epochs; the cache the newer write.
func mergeHLL(a, b *HLL) *HLL {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	m := &HLL{Removed: unionDots(a.Removed, b.Removed), Cache: a.Cache}
	if compareCache(b.Cache, a.Cache) > 0 {
		m.Cache = b.Cache
	}
	i, j := 0, 0
	for i < len(a.Epochs) || j < len(b.Epochs) {
		var e HLLEpoch
		switch {
		case j == len(b.Epochs) || i < len(a.Epochs) && a.Epochs[i].Epoch.Compare(b.Epochs[j].Epoch) < 0:
			e = a.Epochs[i]
			i++
		case i == len(a.Epochs) || b.Epochs[j].Epoch.Compare(a.Epochs[i].Epoch) < 0:
			e = b.Epochs[j]
			j++
		default:
			x, y := a.Epochs[i], b.Epochs[j]
			e = HLLEpoch{Epoch: x.Epoch, Dense: x.Dense || y.Dense, Regs: maxRegs(x.Regs, y.Regs)}
			i, j = i+1, j+1
		}
		if !removed(m.Removed, e.Epoch) {
			m.Epochs = append(m.Epochs, e)
		}
	}
	return m
}

func (h *HLL) empty() bool {
	return len(h.Epochs) == 0 && len(h.Removed) == 0 && h.Cache == (HLLCache{})
}

func compareCache(a, b HLLCache) int {
	if c := a.Ver.Compare(b.Ver); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Card, b.Card); c != 0 {
		return c
	}
	return cmp.Compare(a.Of, b.Of)
}

// maxRegs is the register maximum of a and b, either of them when it is
// already that (no copy).
func maxRegs(a, b []byte) []byte {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	aCovers, bCovers := true, true
	for i := range a {
		aCovers = aCovers && a[i] >= b[i]
		bCovers = bCovers && b[i] >= a[i]
	}
	switch {
	case aCovers:
		return a
	case bCovers:
		return b
	}
	m := make([]byte, hll.Registers)
	for i := range m {
		m[i] = max(a[i], b[i])
	}
	return m
}

func equalHLL(a, b *HLL) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Cache == b.Cache && slices.Equal(a.Removed, b.Removed) &&
		slices.EqualFunc(a.Epochs, b.Epochs, func(x, y HLLEpoch) bool {
			return x.Epoch == y.Epoch && x.Dense == y.Dense &&
				(bytes.Equal(x.Regs, y.Regs) || isZero(x.Regs) && isZero(y.Regs))
		})
}

func isZero(regs []byte) bool {
	for _, v := range regs {
		if v != 0 {
			return false
		}
	}
	return true
}

// A sketch's encoding, at the end of its typed state:
//
//	flags(1) [cache: ver(16) card(8) of(8)]
//	n { epoch(16) flags(1) [registers] }   epochs
//	n { epoch(16) }                         removed epochs
//
// where registers are a form byte, then for form 0 the n registers above
// zero as n { indexGap uvarint, value(1) }, for form 1 the 6-bit packed
// registers. The form is the shorter one (packed on a tie) and every list is
// in its sorted order, so equal sketches encode alike, which the Merkle
// digest relies on.
const (
	hllCache = 1 << 0 // sketch flag
	hllDense = 1 << 0 // epoch flags
	hllRegs  = 1 << 1

	hllPairs  = 0
	hllPacked = 1

	packedLen   = hll.Registers * 6 / 8
	hllCacheLen = versionLen + 16
)

func appendHLL(dst []byte, h *HLL) []byte {
	if h.Cache != (HLLCache{}) {
		dst = append(dst, hllCache)
		dst = appendVersion(dst, h.Cache.Ver)
		dst = binary.BigEndian.AppendUint64(dst, h.Cache.Card)
		dst = binary.BigEndian.AppendUint64(dst, h.Cache.Of)
	} else {
		dst = append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(h.Epochs)))
	for _, e := range h.Epochs {
		dst = appendVersion(dst, e.Epoch)
		var f byte
		if e.Dense {
			f |= hllDense
		}
		if !isZero(e.Regs) {
			f |= hllRegs
		}
		dst = append(dst, f)
		if f&hllRegs != 0 {
			dst = appendRegs(dst, e.Regs)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(h.Removed)))
	for _, d := range h.Removed {
		dst = appendVersion(dst, d)
	}
	return dst
}

func appendRegs(dst, regs []byte) []byte {
	if pairsShorter(regs) {
		dst = append(dst, hllPairs)
		n := 0
		for _, v := range regs {
			if v != 0 {
				n++
			}
		}
		dst = binary.AppendUvarint(dst, uint64(n))
		last := -1
		for i, v := range regs {
			if v != 0 {
				dst = binary.AppendUvarint(dst, uint64(i-last-1))
				dst = append(dst, v)
				last = i
			}
		}
		return dst
	}
	dst = append(dst, hllPacked)
	// Four registers of 6 bits in three bytes, least significant first.
	for i := 0; i < len(regs); i += 4 {
		v0, v1, v2, v3 := regs[i], regs[i+1], regs[i+2], regs[i+3]
		dst = append(dst, v0|v1<<6, v1>>2|v2<<4, v2>>4|v3<<2)
	}
	return dst
}

// pairsShorter reports whether the pairs form of regs is shorter than the
// packed one.
func pairsShorter(regs []byte) bool {
	n, last := 0, -1
	for i, v := range regs {
		if v != 0 {
			if n += uvarintLen(uint64(i-last-1)) + 1; n >= packedLen {
				return false
			}
			last = i
		}
	}
	return true
}

func unpack(regs, packed []byte) {
	for i, j := 0, 0; i < len(regs); i, j = i+4, j+3 {
		b0, b1, b2 := packed[j], packed[j+1], packed[j+2]
		regs[i] = b0 & hll.MaxRegister
		regs[i+1] = (b0>>6 | b1<<2) & hll.MaxRegister
		regs[i+2] = (b1>>4 | b2<<4) & hll.MaxRegister
		regs[i+3] = b2 >> 2
	}
}

func (h *HLL) encodedSize() int {
	n := 1 + hllCacheLen + 2*binary.MaxVarintLen64 + len(h.Removed)*versionLen
	return n + len(h.Epochs)*(versionLen+2+binary.MaxVarintLen64+packedLen)
}

// decodeHLL parses a sketch from the front of b. It allocates a register
// array (hll.Registers bytes) per epoch, at most maxHLLEpochs of them, and
// refuses any encoding another sketch could also have, so that equal
// sketches have equal bytes.
func decodeHLL(b []byte) (*HLL, []byte, error) {
	bad := func(what string) (*HLL, []byte, error) {
		return nil, nil, fmt.Errorf("%w: HyperLogLog: %s", ErrCorrupt, what)
	}
	if len(b) < 1 {
		return bad("truncated")
	}
	h := &HLL{}
	switch f := b[0]; f {
	case 0:
		b = b[1:]
	case hllCache:
		if len(b) < 1+hllCacheLen {
			return bad("truncated cache")
		}
		h.Cache.Ver, b = readVersion(b[1:])
		h.Cache.Card = binary.BigEndian.Uint64(b)
		h.Cache.Of = binary.BigEndian.Uint64(b[8:])
		b = b[16:]
		if h.Cache == (HLLCache{}) {
			return bad("empty cache")
		}
	default:
		return bad(fmt.Sprintf("bad flags %#x", f))
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || k != uvarintLen(n) || n > maxHLLEpochs || n > uint64(len(b)-k)/(versionLen+1) {
		return bad("bad epoch count")
	}
	b = b[k:]
	if n > 0 {
		h.Epochs = make([]HLLEpoch, n)
	}
	for i := range h.Epochs {
		e := &h.Epochs[i]
		if len(b) < versionLen+1 {
			return bad("truncated epoch")
		}
		e.Epoch, b = readVersion(b)
		f := b[0]
		b = b[1:]
		if f&^(hllDense|hllRegs) != 0 {
			return bad(fmt.Sprintf("bad epoch flags %#x", f))
		}
		if i > 0 && h.Epochs[i-1].Epoch.Compare(e.Epoch) >= 0 {
			return bad("epochs out of order")
		}
		e.Dense = f&hllDense != 0
		if f&hllRegs != 0 {
			var err error
			if e.Regs, b, err = decodeRegs(b); err != nil {
				return nil, nil, err
			}
		}
	}
	n, k = binary.Uvarint(b)
	if k <= 0 || k != uvarintLen(n) || n > uint64(len(b)-k)/versionLen {
		return bad("bad removed count")
	}
	b = b[k:]
	if n > 0 {
		h.Removed = make([]Version, n)
	}
	for i := range h.Removed {
		h.Removed[i], b = readVersion(b)
		if i > 0 && h.Removed[i-1].Compare(h.Removed[i]) >= 0 {
			return bad("removed epochs out of order")
		}
	}
	for _, e := range h.Epochs {
		if removed(h.Removed, e.Epoch) {
			return bad("a removed epoch kept")
		}
	}
	if h.empty() {
		return bad("empty sketch")
	}
	return h, b, nil
}

func decodeRegs(b []byte) ([]byte, []byte, error) {
	bad := func(what string) ([]byte, []byte, error) {
		return nil, nil, fmt.Errorf("%w: HyperLogLog: %s", ErrCorrupt, what)
	}
	if len(b) < 1 {
		return bad("truncated registers")
	}
	form := b[0]
	b = b[1:]
	regs := make([]byte, hll.Registers)
	switch form {
	case hllPairs:
		n, k := binary.Uvarint(b)
		if k <= 0 || k != uvarintLen(n) || n == 0 || n > hll.Registers || n > uint64(len(b)-k)/2 {
			return bad("bad register count")
		}
		b = b[k:]
		i := -1
		for range n {
			gap, k := binary.Uvarint(b)
			if k <= 0 || k != uvarintLen(gap) || gap >= hll.Registers || len(b) < k+1 {
				return bad("bad register")
			}
			i += int(gap) + 1
			v := b[k]
			b = b[k+1:]
			if i >= hll.Registers || v == 0 || v > hll.MaxRegister {
				return bad("register out of range")
			}
			regs[i] = v
		}
		if !pairsShorter(regs) {
			return bad("registers in the longer form")
		}
	case hllPacked:
		if len(b) < packedLen {
			return bad("truncated registers")
		}
		unpack(regs, b[:packedLen])
		// Every bit of the packed form is a register's: only its length
		// can make it the wrong form.
		if pairsShorter(regs) {
			return bad("registers in the longer form")
		}
		b = b[packedLen:]
	default:
		return bad(fmt.Sprintf("unknown register form %d", form))
	}
	return regs, b, nil
}

// unionDots is the sorted union of two sorted lists of versions.
func unionDots(a, b []Version) []Version {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	return unionSorted(a, b, Version.Compare, func(x, _ Version) Version { return x })
}

// removed reports whether d is among the sorted versions.
func removed(traces []Version, d Version) bool {
	_, found := slices.BinarySearchFunc(traces, d, Version.Compare)
	return found
}
