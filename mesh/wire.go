package mesh

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/redmesh/redmesh/merkle"
)

// Wire limits. A decoder checks every count against its limit and the bytes
// left before it allocates, and aliases keys and payloads instead of copying.
const (
	MaxRecords    = 1 << 20 // records in one push batch or log reply
	MaxKeyLen     = 64000   // a redmesh key (Badger's row key limit, less room)
	MaxPayloadLen = 512<<20 + 64
)

// ErrMalformed is matched (errors.Is) by every decoding error.
var ErrMalformed = errors.New("mesh: malformed message")

// Message kinds, the first byte of every encoded message.
const (
	KindLogRequest byte = 1
	KindLogReply   byte = 2
	KindPush       byte = 3
	KindRootAt     byte = 4
)

// LogRequest asks a peer for its log from a cursor.
type LogRequest struct {
	Epoch uint64 // the log the cursor belongs to; 0: no cursor
	From  uint64 // the first sequence number wanted
	Max   uint32 // most entries wanted; 0: the server's limit
	// Root is the reader's Merkle root as it sends the request. A server
	// whose root is the same holds nothing the reader lacks: it answers
	// with its head and no entries (see ServeLog). 0, which no tree's root
	// is: the reader's tree is still being built at its start-up.
	Root uint64
}

// LogReply answers a LogRequest: the records of the entries [From, Next) of
// the log Epoch, whose next entry will be Head; or, when Truncated, no
// records, only Epoch and Head.
type LogReply struct {
	Epoch     uint64
	Head      uint64
	Next      uint64
	Truncated bool
	Records   []merkle.Record
}

// RootAt is a node's Merkle root and where its log stood when it was taken:
// the head is read first, so the root reflects every entry before it. Each
// side of an anti-entropy session sends its own when the session ends.
type RootAt struct {
	Epoch uint64 // the log's epoch
	Head  uint64 // the log's next sequence number
	Root  uint64
	// Own is the sequence number of the node's last local write, read
	// after the head (0: none in this epoch; a node that does not know
	// says the head's last entry). A log grows with what its node applied
	// from others too: a receiver that holds every write of the node's
	// own up to Own lacks nothing its log could bring.
	Own uint64
}

// AppendRootAt appends the encoding of r.
func AppendRootAt(dst []byte, r RootAt) []byte {
	dst = append(dst, KindRootAt)
	dst = binary.AppendUvarint(dst, r.Epoch)
	dst = binary.AppendUvarint(dst, r.Head)
	dst = binary.BigEndian.AppendUint64(dst, r.Root)
	return binary.AppendUvarint(dst, r.Own)
}

// AppendLogRequest appends the encoding of r.
func AppendLogRequest(dst []byte, r LogRequest) []byte {
	dst = append(dst, KindLogRequest)
	dst = binary.AppendUvarint(dst, r.Epoch)
	dst = binary.AppendUvarint(dst, r.From)
	dst = binary.AppendUvarint(dst, uint64(r.Max))
	return binary.BigEndian.AppendUint64(dst, r.Root)
}

// AppendLogReply appends the encoding of r.
func AppendLogReply(dst []byte, r *LogReply) []byte {
	dst = append(dst, KindLogReply)
	dst = binary.AppendUvarint(dst, r.Epoch)
	dst = binary.AppendUvarint(dst, r.Head)
	dst = binary.AppendUvarint(dst, r.Next)
	var flags byte
	if r.Truncated {
		flags = 1
	}
	dst = append(dst, flags)
	return appendRecords(dst, r.Records)
}

// AppendPush appends the encoding of one eager-push batch.
func AppendPush(dst []byte, recs []merkle.Record) []byte {
	dst = append(dst, KindPush)
	return appendRecords(dst, recs)
}

// PayloadBytes is the total length of the records' payloads: the part of a
// message that is data rather than metadata.
func PayloadBytes(recs []merkle.Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.Payload)
	}
	return n
}

func appendRecords(dst []byte, recs []merkle.Record) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(recs)))
	for _, r := range recs {
		dst = binary.AppendUvarint(dst, uint64(len(r.Key)))
		dst = append(dst, r.Key...)
		dst = binary.AppendUvarint(dst, uint64(len(r.Payload)))
		dst = append(dst, r.Payload...)
	}
	return dst
}

// Decoded is one decoded message: exactly one of its fields is set.
type Decoded struct {
	Request *LogRequest
	Reply   *LogReply
	Push    []merkle.Record
	RootAt  *RootAt
	// Snapshot transfer (snapshot.go).
	SnapshotRequest *SnapshotRequest
	Chunk           *SnapshotChunk
}

// Decode parses one message. Keys and payloads alias b. It never panics and
// returns an error wrapping ErrMalformed for anything it cannot decode
// completely.
func Decode(b []byte) (Decoded, error) {
	if len(b) == 0 {
		return Decoded{}, fmt.Errorf("%w: empty", ErrMalformed)
	}
	d := decoder{b: b[1:]}
	var out Decoded
	switch b[0] {
	case KindLogRequest:
		r := &LogRequest{Epoch: d.uvarint(), From: d.uvarint()}
		m := d.uvarint()
		if m > 1<<32-1 {
			d.fail("max out of range")
		}
		r.Max = uint32(m)
		r.Root = d.uint64()
		out.Request = r
	case KindLogReply:
		r := &LogReply{Epoch: d.uvarint(), Head: d.uvarint(), Next: d.uvarint()}
		switch f := d.byte(); f {
		case 0:
		case 1:
			r.Truncated = true
		default:
			d.fail("unknown flags")
		}
		r.Records = d.records()
		if d.err == nil && r.Truncated && len(r.Records) > 0 {
			d.fail("records in a truncated reply")
		}
		if d.err == nil && !r.Truncated && r.Next > r.Head {
			d.fail("next beyond head")
		}
		out.Reply = r
	case KindRootAt:
		out.RootAt = &RootAt{Epoch: d.uvarint(), Head: d.uvarint(), Root: d.uint64(), Own: d.uvarint()}
	case KindPush:
		out.Push = d.records()
		if out.Push == nil && d.err == nil {
			out.Push = []merkle.Record{}
		}
	case KindSnapshotRequest:
		out.SnapshotRequest = decodeSnapshotRequest(&d)
	case KindSnapshotChunk:
		out.Chunk = decodeSnapshotChunk(&d, b)
	default:
		return Decoded{}, fmt.Errorf("%w: unknown kind %d", ErrMalformed, b[0])
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return Decoded{}, d.err
	}
	return out, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(why string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, why)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("short")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uint64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.fail("short")
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) bytes(limit uint64) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > limit || n > uint64(len(d.b)) {
		d.fail("length out of range")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) records() []merkle.Record {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	// Each record takes at least two bytes (two zero lengths).
	if n > MaxRecords || n > uint64(len(d.b))/2 {
		d.fail("record count out of range")
		return nil
	}
	if n == 0 {
		return nil
	}
	recs := make([]merkle.Record, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := d.bytes(MaxKeyLen)
		p := d.bytes(MaxPayloadLen)
		recs = append(recs, merkle.Record{Key: k, Payload: p})
	}
	if d.err != nil {
		return nil
	}
	return recs
}
