package record

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/redmesh/redmesh/hlc"
)

// formatV1 is the first byte of every encoded record, so the format can change
// without guessing.
const formatV1 = 1

// MaxValueLen bounds a value's length in an encoded record; a decoder refuses
// more. It matches Redis's largest proto-max-bulk-len default (512 MB).
const MaxValueLen = 512 << 20

const (
	flagTombstone = 1 << 0
	flagExpiry    = 1 << 1 // an expiry register follows
	flagSameVer   = 1 << 2 // the expiry register has the value's version
	flagTyped     = 1 << 3 // a typed state follows
	// flagNoValue: the value register is empty (no version, no data, not a
	// tombstone), and neither is written: a typed write's delta (an INCR's,
	// an HSET's) leaves it so, and it was 17 of an INCR's 93 bytes.
	flagNoValue = 1 << 4
	// flagShortCounts: the typed state's counts are in the short form
	// (appendCountShort). Every typed state is written so; one without the
	// flag is in the long form an earlier build wrote.
	flagShortCounts = 1 << 5
	flagsKnown      = flagTombstone | flagExpiry | flagSameVer | flagTyped | flagNoValue | flagShortCounts
	versionLen      = 16
	minEncodedSize  = 3
)

// ErrCorrupt wraps every decoding error.
var ErrCorrupt = errors.New("corrupt record")

// AppendBinary appends r's encoding to dst. A SET writes both registers at one
// version, so the common case stores that version once.
func AppendBinary(dst []byte, r Record) []byte { return appendBinary(dst, r, nil, Encoding2) }

// AppendBinarySpill is AppendBinary for an encoding written out as it
// grows: between a collection's elements, once dst holds at least at
// bytes, spill takes it and returns the buffer to go on with (dst[:0] once
// written out). A large collection is so encoded through a buffer of about
// at bytes, not one of its whole size.
func AppendBinarySpill(dst []byte, r Record, at int, spill func([]byte) []byte) []byte {
	return appendBinary(dst, r, &spiller{at: at, spill: spill}, Encoding2)
}

// spiller hands an encoding under way to its writer (AppendBinarySpill).
type spiller struct {
	at    int
	spill func([]byte) []byte
}

// check spills dst if it reached the bound; s may be nil (never).
func (s *spiller) check(dst []byte) []byte {
	if s != nil && len(dst) >= s.at {
		return s.spill(dst)
	}
	return dst
}

func appendBinary(dst []byte, r Record, sp *spiller, enc Encoding) []byte {
	typed := !r.Typed.empty()
	dst = appendRegisters(dst, r, typed, enc)
	if typed {
		dst = appendTypedForm(dst, r.Typed, nil, sp, enc == Encoding1)
	}
	return dst
}

// appendRegisters appends r's encoding, as enc reads it, up to its typed
// state, which follows if typed.
func appendRegisters(dst []byte, r Record, typed bool, enc Encoding) []byte {
	var flags byte
	if r.Value.Tombstone {
		flags |= flagTombstone
	}
	if typed {
		flags |= flagTyped
		if enc != Encoding1 {
			flags |= flagShortCounts
		}
	}
	noValue := enc != Encoding1 && !r.Value.Tombstone && r.Value.Version.IsZero() && len(r.Value.Data) == 0
	if noValue {
		flags |= flagNoValue
	}
	if !r.Expiry.Version.IsZero() || r.Expiry.At != 0 {
		flags |= flagExpiry
		if r.Expiry.Version == r.Value.Version {
			flags |= flagSameVer
		}
	}
	dst = append(dst, formatV1, flags, byte(KindString))
	if !noValue {
		dst = appendVersion(dst, r.Value.Version)
		dst = binary.AppendUvarint(dst, uint64(len(r.Value.Data)))
		dst = append(dst, r.Value.Data...)
	}
	if flags&flagExpiry != 0 {
		if flags&flagSameVer == 0 {
			dst = appendVersion(dst, r.Expiry.Version)
		}
		dst = binary.AppendVarint(dst, r.Expiry.At)
	}
	return dst
}

// EncodedSize is the length of r's encoding.
func EncodedSize(r Record) int {
	n := 3 + versionLen + uvarintLen(uint64(len(r.Value.Data))) + len(r.Value.Data)
	if !r.Expiry.Version.IsZero() || r.Expiry.At != 0 {
		if r.Expiry.Version != r.Value.Version {
			n += versionLen
		}
		n += binary.MaxVarintLen64
	}
	if !r.Typed.empty() {
		n += r.Typed.encodedSize()
	}
	return n
}

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// Encode returns r's encoding, in one allocation.
func Encode(r Record) []byte { return AppendBinary(make([]byte, 0, EncodedSize(r)), r) }

func appendVersion(dst []byte, v Version) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(v.TS))
	return binary.BigEndian.AppendUint64(dst, uint64(v.Node))
}

// Decode parses an encoded record. The value's Data aliases b; copy it if b
// will be reused. Decode never allocates more than b's size and never panics.
func Decode(b []byte) (Record, error) {
	r, rest, err := DecodePrefix(b)
	if err != nil {
		return Record{}, err
	}
	if len(rest) != 0 {
		return Record{}, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(rest))
	}
	return r, nil
}

// DecodePrefix parses one encoded record from the front of b and returns the
// bytes after it.
func DecodePrefix(b []byte) (Record, []byte, error) {
	var r Record
	if len(b) < minEncodedSize {
		return r, nil, fmt.Errorf("%w: %d bytes is too short", ErrCorrupt, len(b))
	}
	if b[0] != formatV1 {
		return r, nil, fmt.Errorf("%w: unknown format %d", ErrCorrupt, b[0])
	}
	flags := b[1]
	if flags&^flagsKnown != 0 || (flags&flagSameVer != 0 && flags&flagExpiry == 0) ||
		flags&flagNoValue != 0 && flags&flagTombstone != 0 || flags&flagShortCounts != 0 && flags&flagTyped == 0 {
		return r, nil, fmt.Errorf("%w: bad flags %#x", ErrCorrupt, flags)
	}
	r.Value.Tombstone = flags&flagTombstone != 0
	if Kind(b[2]) != KindString { // the value register holds strings; types are in Typed
		return r, nil, fmt.Errorf("%w: unknown kind %d", ErrCorrupt, b[2])
	}
	b = b[3:]
	if flags&flagNoValue == 0 {
		if len(b) < versionLen+1 {
			return r, nil, fmt.Errorf("%w: truncated value register", ErrCorrupt)
		}
		r.Value.Version, b = readVersion(b)
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return r, nil, fmt.Errorf("%w: bad value length", ErrCorrupt)
		}
		b = b[k:]
		if n > MaxValueLen || n > uint64(len(b)) {
			return r, nil, fmt.Errorf("%w: value length %d exceeds %d available", ErrCorrupt, n, len(b))
		}
		if n > 0 {
			r.Value.Data = b[:n:n]
		}
		b = b[n:]
		if r.Value.Tombstone && n > 0 {
			return r, nil, fmt.Errorf("%w: tombstone with data", ErrCorrupt)
		}
	}
	if flags&flagExpiry != 0 {
		if flags&flagSameVer != 0 {
			r.Expiry.Version = r.Value.Version
		} else {
			if len(b) < versionLen {
				return r, nil, fmt.Errorf("%w: truncated expiry version", ErrCorrupt)
			}
			r.Expiry.Version, b = readVersion(b)
		}
		at, k := binary.Varint(b)
		if k <= 0 {
			return r, nil, fmt.Errorf("%w: bad expiry deadline", ErrCorrupt)
		}
		r.Expiry.At = at
		b = b[k:]
	}
	if flags&flagTyped != 0 {
		var err error
		if r.Typed, b, err = decodeTyped(b, flags&flagShortCounts != 0); err != nil {
			return r, nil, err
		}
	}
	return r, b, nil
}

func readVersion(b []byte) (Version, []byte) {
	return Version{
		TS:   hlc.Timestamp(binary.BigEndian.Uint64(b)),
		Node: NodeID(binary.BigEndian.Uint64(b[8:])),
	}, b[versionLen:]
}
