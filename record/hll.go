package record

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"

	"github.com/redmesh/redmesh/hll"
)

// HLL is a HyperLogLog key's sketch: its registers, which merge by maximum,
// so that elements added concurrently at different nodes are all counted.
// A client reads it as Redis's "HYLL" string, rebuilt from the registers
// (StringData); the key's type is string, as in Redis.
//
// The sketch belongs to an epoch, the version of the write that made the key
// a HyperLogLog (PFADD or PFMERGE creating it, or converting a string that
// holds one). It shows while the value register still holds that write: a
// later SET, APPEND, SETBIT... replaces it, as in Redis, and removes the
// epoch's registers (Gone), so a concurrent PFADD of the same epoch adds
// nothing back. Between epochs the newer replaces the older whole.
type HLL struct {
	Epoch Version
	// Gone: a write that overwrote or deleted the key removed the epoch.
	Gone bool
	// Dense: Redis promoted the encoding to dense, which it never undoes.
	Dense bool
	// Regs are hll.Registers registers, or nil for all zero.
	Regs []byte
	// Cache is the cardinality PFCOUNT last cached in the header.
	Cache HLLCache
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

// zeroRegs is the registers of an empty sketch, read only.
var zeroRegs [hll.Registers]byte

// RegsDigest is what HLLCache.Of holds for regs: nil and all zero alike.
func RegsDigest(regs []byte) uint64 {
	if regs == nil {
		regs = zeroRegs[:]
	}
	return xxhash.Sum64(regs)
}

// Header is the cached cardinality field a client reads.
func (h *HLL) Header() uint64 {
	card := h.Cache.Card
	if RegsDigest(h.Regs) != h.Cache.Of {
		card |= hll.CacheInvalid
	}
	return card
}

// String is the sketch as Redis's string.
func (h *HLL) String() []byte { return hll.Encode(h.Regs, h.Dense, h.Header()) }

// LiveHLL is the key's sketch if the key shows one: its epoch is the value
// register's version and no write removed it.
func (t *Typed) LiveHLL(value Version) *HLL {
	if t == nil || t.HLL == nil || t.HLL.Gone || t.HLL.Epoch != value {
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
// it: the epoch removed.
func (h *HLL) cleared() *HLL {
	if h == nil {
		return nil
	}
	return &HLL{Epoch: h.Epoch, Gone: true}
}

func (h *HLL) newest() Version {
	if h == nil {
		return Version{}
	}
	if h.Cache.Ver.Compare(h.Epoch) > 0 {
		return h.Cache.Ver
	}
	return h.Epoch
}

// mergeHLL merges two sketches: the newer epoch whole; within an epoch a
// removal wins, registers take their maximum, Dense either side's, the cache
// the newer write.
func mergeHLL(a, b *HLL) *HLL {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	switch c := a.Epoch.Compare(b.Epoch); {
	case c > 0:
		return a
	case c < 0:
		return b
	}
	if a.Gone || b.Gone {
		return &HLL{Epoch: a.Epoch, Gone: true}
	}
	m := &HLL{Epoch: a.Epoch, Dense: a.Dense || b.Dense, Regs: maxRegs(a.Regs, b.Regs), Cache: a.Cache}
	if compareCache(b.Cache, a.Cache) > 0 {
		m.Cache = b.Cache
	}
	return m
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
	return a.Epoch == b.Epoch && a.Gone == b.Gone && a.Dense == b.Dense && a.Cache == b.Cache &&
		(bytes.Equal(a.Regs, b.Regs) || isZero(a.Regs) && isZero(b.Regs))
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
//	epoch(16) flags(1)
//	[cache: ver(16) card(8) of(8)]
//	[registers: form(1), then form 0: n { indexGap uvarint, value(1) } for
//	 the n registers above zero; form 1: the 6-bit packed registers]
//
// The form is the shorter one (packed on a tie), so equal sketches encode
// alike, which the Merkle digest relies on.
const (
	hllGone  = 1 << 0
	hllDense = 1 << 1
	hllRegs  = 1 << 2
	hllCache = 1 << 3
	hllKnown = hllGone | hllDense | hllRegs | hllCache

	hllPairs  = 0
	hllPacked = 1

	packedLen   = hll.Registers * 6 / 8
	hllCacheLen = versionLen + 16
)

func (h *HLL) flags() byte {
	var f byte
	if h.Gone {
		f |= hllGone
	}
	if h.Dense {
		f |= hllDense
	}
	if !isZero(h.Regs) {
		f |= hllRegs
	}
	if h.Cache != (HLLCache{}) {
		f |= hllCache
	}
	return f
}

func appendHLL(dst []byte, h *HLL) []byte {
	dst = appendVersion(dst, h.Epoch)
	f := h.flags()
	dst = append(dst, f)
	if f&hllCache != 0 {
		dst = appendVersion(dst, h.Cache.Ver)
		dst = binary.BigEndian.AppendUint64(dst, h.Cache.Card)
		dst = binary.BigEndian.AppendUint64(dst, h.Cache.Of)
	}
	if f&hllRegs == 0 {
		return dst
	}
	if pairsLen(h.Regs) < packedLen {
		dst = append(dst, hllPairs)
		n := 0
		for _, v := range h.Regs {
			if v != 0 {
				n++
			}
		}
		dst = binary.AppendUvarint(dst, uint64(n))
		last := -1
		for i, v := range h.Regs {
			if v != 0 {
				dst = binary.AppendUvarint(dst, uint64(i-last-1))
				dst = append(dst, v)
				last = i
			}
		}
		return dst
	}
	dst = append(dst, hllPacked)
	start := len(dst)
	dst = append(dst, make([]byte, packedLen)...)
	packed := dst[start:]
	for i, v := range h.Regs {
		packSet(packed, i, v)
	}
	return dst
}

// pairsLen is the length of the pairs form of regs, short of its count.
func pairsLen(regs []byte) int {
	n, last := 0, -1
	for i, v := range regs {
		if v != 0 {
			n += uvarintLen(uint64(i-last-1)) + 1
			last = i
		}
	}
	return n
}

func packSet(d []byte, i int, v byte) {
	byt, fb := i*6/8, uint(i*6&7)
	d[byt] |= v << fb
	if byt+1 < len(d) {
		d[byt+1] |= v >> (8 - fb)
	}
}

func packGet(d []byte, i int) byte {
	byt, fb := i*6/8, uint(i*6&7)
	v := uint(d[byt]) >> fb
	if byt+1 < len(d) {
		v |= uint(d[byt+1]) << (8 - fb)
	}
	return byte(v & hll.MaxRegister)
}

func (h *HLL) encodedSize() int {
	return versionLen + 1 + hllCacheLen + 1 + max(packedLen, binary.MaxVarintLen64+pairsLen(h.Regs))
}

// decodeHLL parses a sketch from the front of b. It allocates at most one
// register array (hll.Registers bytes) and refuses any encoding another
// sketch could also have, so that equal sketches have equal bytes.
func decodeHLL(b []byte) (*HLL, []byte, error) {
	bad := func(what string) (*HLL, []byte, error) {
		return nil, nil, fmt.Errorf("%w: HyperLogLog: %s", ErrCorrupt, what)
	}
	if len(b) < versionLen+1 {
		return bad("truncated")
	}
	h := &HLL{}
	h.Epoch, b = readVersion(b)
	f := b[0]
	b = b[1:]
	if f&^hllKnown != 0 || f&hllGone != 0 && f != hllGone {
		return bad(fmt.Sprintf("bad flags %#x", f))
	}
	h.Gone, h.Dense = f&hllGone != 0, f&hllDense != 0
	if f&hllCache != 0 {
		if len(b) < hllCacheLen {
			return bad("truncated cache")
		}
		h.Cache.Ver, b = readVersion(b)
		h.Cache.Card = binary.BigEndian.Uint64(b)
		h.Cache.Of = binary.BigEndian.Uint64(b[8:])
		b = b[16:]
		if h.Cache == (HLLCache{}) {
			return bad("empty cache")
		}
	}
	if f&hllRegs == 0 {
		return h, b, nil
	}
	if len(b) < 1 {
		return bad("truncated registers")
	}
	form := b[0]
	b = b[1:]
	h.Regs = make([]byte, hll.Registers)
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
			h.Regs[i] = v
		}
		if pairsLen(h.Regs) >= packedLen {
			return bad("registers in the longer form")
		}
	case hllPacked:
		if len(b) < packedLen {
			return bad("truncated registers")
		}
		for i := range h.Regs {
			h.Regs[i] = packGet(b, i)
		}
		// Every bit of the packed form is a register's: only its length
		// can make it the wrong form.
		if pairsLen(h.Regs) < packedLen {
			return bad("registers in the longer form")
		}
		b = b[packedLen:]
	default:
		return bad(fmt.Sprintf("unknown register form %d", form))
	}
	return h, b, nil
}
