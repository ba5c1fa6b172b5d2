package merkle

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// WireVersion is the first byte of every encoded message. A decoder refuses
// any other value rather than guess at a newer layout.
const WireVersion = 1

// Decoder limits. Every count read from the wire is checked against its limit
// and against the bytes left before anything is allocated, so a message can
// make a decoder allocate at most a small constant times its own length.
// Keys and payloads are not copied: they alias the input buffer.
const (
	MaxItems      = 1 << 24   // digests, hashes, entries, records or bits in one message
	MaxVersions   = 1 << 16   // registers per entry
	MaxKeyLen     = 512 << 20 // Redis's largest bulk string
	MaxPayloadLen = 512 << 20
	MaxReasonLen  = 1024
)

// ErrMalformed is matched (errors.Is) by every decoding error.
var ErrMalformed = errors.New("merkle: malformed message")

// Version tags: most records' registers are written together (SET writes the
// value and the expiry at one version) or never (no expiry), so a repeated or
// zero version costs one byte instead of sixteen.
const (
	verZero     = 0
	verSame     = 1 // same as the previous version of the entry
	verExplicit = 2
)

// AppendMessage appends the encoding of m to dst.
func AppendMessage(dst []byte, m Message) []byte {
	dst = append(dst, WireVersion, byte(m.Type()))
	switch m := m.(type) {
	case *Hello:
		dst = append(dst, byte(m.Shape.logFanOut()), byte(m.Shape.Depth), m.Shape.Hash)
		dst = binary.LittleEndian.AppendUint64(dst, m.Salt)
		dst = append(dst, m.Level)
		dst = appendDigests(dst, m.Digests)
	case *Digests:
		dst = append(dst, m.Level)
		dst = appendBitmap(dst, m.Mismatch)
		dst = appendDigests(dst, m.Digests)
	case *Summaries:
		dst = appendBitmap(dst, m.Mismatch)
		off := 0
		for _, c := range m.Counts {
			dst = binary.AppendUvarint(dst, uint64(c))
			for _, h := range m.Hashes[off : off+int(c)] {
				dst = binary.LittleEndian.AppendUint32(dst, h)
			}
			off += int(c)
		}
	case *Entries:
		dst = appendBitmap(dst, m.Missing)
		dst = binary.AppendUvarint(dst, uint64(len(m.Entries)))
		for _, e := range m.Entries {
			dst = appendBytes(dst, e.Key)
			dst = appendVersions(dst, e.Versions)
		}
	case *Transfer:
		var flags byte
		if m.More {
			flags |= 1
		}
		dst = append(dst, flags)
		dst = appendBitmap(dst, m.Wants)
		dst = binary.AppendUvarint(dst, uint64(len(m.Records)))
		for _, r := range m.Records {
			dst = appendBytes(dst, r.Key)
			dst = appendBytes(dst, r.Payload)
		}
	case *Done:
	case *Abort:
		dst = append(dst, byte(m.Code))
		reason := m.Reason
		if len(reason) > MaxReasonLen {
			reason = reason[:MaxReasonLen]
		}
		dst = appendBytes(dst, []byte(reason))
	default:
		panic(fmt.Sprintf("merkle: cannot encode %T", m))
	}
	return dst
}

// Marshal returns the encoding of m.
func Marshal(m Message) []byte { return AppendMessage(nil, m) }

func appendDigests(dst []byte, ds []uint32) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ds)))
	for _, d := range ds {
		dst = binary.LittleEndian.AppendUint32(dst, d)
	}
	return dst
}

func appendBitmap(dst []byte, m Bitmap) []byte {
	dst = binary.AppendUvarint(dst, uint64(m.n))
	return append(dst, m.b[:(m.n+7)/8]...)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendVersions(dst []byte, vs []Version) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(vs)))
	var prev Version
	for i, v := range vs {
		switch {
		case v.IsZero():
			dst = append(dst, verZero)
		case i > 0 && v == prev:
			dst = append(dst, verSame)
		default:
			dst = append(dst, verExplicit)
			dst = binary.LittleEndian.AppendUint64(dst, v.TS)
			dst = binary.LittleEndian.AppendUint64(dst, v.Node)
		}
		prev = v
	}
	return dst
}

// Unmarshal decodes one message. The result aliases b. It returns an error
// wrapping ErrMalformed for any input it cannot decode completely, and never
// panics.
func Unmarshal(b []byte) (Message, error) {
	r := reader{b: b}
	if v := r.byte(); r.err == nil && v != WireVersion {
		return nil, fmt.Errorf("%w: wire version %d, want %d", ErrMalformed, v, WireVersion)
	}
	t := MsgType(r.byte())
	if r.err != nil {
		return nil, r.err
	}
	var m Message
	switch t {
	case TypeHello:
		m = r.hello()
	case TypeDigests:
		lvl := r.byte()
		m = &Digests{Level: lvl, Mismatch: r.bitmap(), Digests: r.digests()}
	case TypeSummaries:
		m = r.summaries()
	case TypeEntries:
		m = r.entries()
	case TypeTransfer:
		m = r.transfer()
	case TypeDone:
		m = &Done{}
	case TypeAbort:
		code := AbortCode(r.byte())
		m = &Abort{Code: code, Reason: string(r.bytes(MaxReasonLen))}
	default:
		return nil, fmt.Errorf("%w: unknown type %d", ErrMalformed, t)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return nil, fmt.Errorf("%s: %w", t, r.err)
	}
	return m, nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail("truncated")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u32() uint32 {
	if len(r.b) < 4 {
		r.fail("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.fail("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// count reads a uvarint that counts things of at least minSize bytes each, and
// checks it against limit and against the bytes left.
func (r *reader) count(limit, minSize int) int {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	if v > uint64(limit) {
		r.fail("count %d over limit %d", v, limit)
		return 0
	}
	if minSize > 0 && v > uint64(len(r.b)/minSize) {
		r.fail("count %d exceeds the %d bytes left", v, len(r.b))
		return 0
	}
	return int(v)
}

func (r *reader) bytes(limit int) []byte {
	n := r.count(limit, 1)
	if r.err != nil {
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) bitmap() Bitmap {
	n := r.count(MaxItems, 0)
	if r.err != nil {
		return Bitmap{}
	}
	nb := (n + 7) / 8
	if nb > len(r.b) {
		r.fail("bitmap of %d bits exceeds the %d bytes left", n, len(r.b))
		return Bitmap{}
	}
	m := Bitmap{n: n, b: r.b[:nb:nb]}
	r.b = r.b[nb:]
	if n%8 != 0 && m.b[nb-1]>>(n%8) != 0 {
		r.fail("bits set past the end of a bitmap")
	}
	return m
}

func (r *reader) digests() []uint32 {
	n := r.count(MaxItems, 4)
	if r.err != nil {
		return nil
	}
	ds := make([]uint32, n)
	for i := range ds {
		ds[i] = r.u32()
	}
	return ds
}

func (r *reader) hello() *Hello {
	logF, depth, hash := r.byte(), r.byte(), r.byte()
	h := &Hello{Salt: r.u64(), Level: r.byte()}
	if r.err != nil {
		return nil
	}
	if logF < 1 || logF > 8 {
		r.fail("fan-out 2^%d", logF)
		return nil
	}
	h.Shape = Shape{FanOut: 1 << logF, Depth: int(depth), Hash: hash}
	h.Digests = r.digests()
	return h
}

func (r *reader) summaries() *Summaries {
	s := &Summaries{Mismatch: r.bitmap()}
	if r.err != nil {
		return nil
	}
	nb := s.Mismatch.Count()
	if nb > len(r.b) { // each bucket needs at least its count byte
		r.fail("%d buckets exceed the %d bytes left", nb, len(r.b))
		return nil
	}
	s.Counts = make([]uint32, 0, nb)
	for range nb {
		c := r.count(MaxItems-len(s.Hashes), 4)
		if r.err != nil {
			return nil
		}
		s.Counts = append(s.Counts, uint32(c))
		for range c {
			s.Hashes = append(s.Hashes, r.u32())
		}
	}
	return s
}

func (r *reader) entries() *Entries {
	e := &Entries{Missing: r.bitmap()}
	n := r.count(MaxItems, 2)
	if r.err != nil {
		return nil
	}
	e.Entries = make([]Entry, n)
	// All versions share one backing array so that many small entries cost
	// one allocation; it grows with what was actually read, never with a
	// count that was only announced.
	var flat []Version
	type span struct{ off, n int }
	spans := make([]span, n)
	for i := range e.Entries {
		e.Entries[i].Key = r.bytes(MaxKeyLen)
		nv := r.count(MaxVersions, 1)
		if r.err != nil {
			return nil
		}
		spans[i] = span{len(flat), nv}
		var prev Version
		for j := range nv {
			var v Version
			switch tag := r.byte(); tag {
			case verZero:
			case verSame:
				if j == 0 {
					r.fail("repeat tag on an entry's first version")
				}
				v = prev
			case verExplicit:
				v = Version{TS: r.u64(), Node: r.u64()}
				if v.IsZero() {
					r.fail("explicit zero version")
				}
			default:
				r.fail("version tag %d", tag)
			}
			if r.err != nil {
				return nil
			}
			flat = append(flat, v)
			prev = v
		}
	}
	for i, s := range spans {
		e.Entries[i].Versions = flat[s.off : s.off+s.n : s.off+s.n]
	}
	return e
}

func (r *reader) transfer() *Transfer {
	flags := r.byte()
	if flags&^1 != 0 {
		r.fail("transfer flags %#x", flags)
	}
	t := &Transfer{More: flags&1 != 0, Wants: r.bitmap()}
	n := r.count(MaxItems, 2)
	if r.err != nil {
		return nil
	}
	t.Records = make([]Record, n)
	for i := range t.Records {
		t.Records[i] = Record{Key: r.bytes(MaxKeyLen), Payload: r.bytes(MaxPayloadLen)}
	}
	if r.err != nil {
		return nil
	}
	return t
}

// payloadBytes is the part of an encoded message that is record payload; the
// rest is the session's metadata.
func payloadBytes(m Message) int {
	t, ok := m.(*Transfer)
	if !ok {
		return 0
	}
	n := 0
	for _, r := range t.Records {
		n += len(r.Payload)
	}
	return n
}
