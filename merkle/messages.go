package merkle

import "math/bits"

// MsgType is the second byte of every encoded message.
type MsgType uint8

// Message types, in the order a session uses them.
const (
	TypeHello     MsgType = 1 // initiator → responder: shape, salt, top digests
	TypeDigests   MsgType = 2 // mismatch bitmap + child digests of the mismatched
	TypeSummaries MsgType = 3 // mismatch bitmap over leaves + per-key short hashes
	TypeEntries   MsgType = 4 // missing bitmap + full versions of differing keys
	TypeTransfer  MsgType = 5 // records, and the keys wanted back
	TypeDone      MsgType = 6 // nothing differs (any more)
	TypeAbort     MsgType = 7 // the sender gave up; Reason says why
)

func (t MsgType) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeDigests:
		return "digests"
	case TypeSummaries:
		return "summaries"
	case TypeEntries:
		return "entries"
	case TypeTransfer:
		return "transfer"
	case TypeDone:
		return "done"
	case TypeAbort:
		return "abort"
	}
	return "unknown"
}

// Message is one of *Hello, *Digests, *Summaries, *Entries, *Transfer, *Done
// and *Abort.
type Message interface {
	Type() MsgType
}

// Hello opens a session. It carries the digests of a whole level (level 1 when
// that fits in 64 bytes, the root otherwise) so that equal trees are told
// apart in one round trip and unequal ones start one level down.
type Hello struct {
	Shape   Shape
	Salt    uint64   // salts every short hash of the session
	Level   uint8    // level of Digests
	Digests []uint32 // salted short digests of every node at Level
}

// Digests answers the peer's last digests: Mismatch has one bit per digest the
// peer sent, set where ours differs, and Digests holds our digests of the
// children (at Level) of every mismatched node, in order.
type Digests struct {
	Level    uint8
	Mismatch Bitmap
	Digests  []uint32
}

// Summaries answers leaf digests: Mismatch has one bit per leaf digest the
// peer sent, and for each mismatched bucket, in order, Counts holds how many
// entries we have there and Hashes their salted short entry hashes.
type Summaries struct {
	Mismatch Bitmap
	Counts   []uint32
	Hashes   []uint32
}

// Entries answers Summaries: Missing has one bit per hash the peer sent, set
// where we hold no entry with that hash, and Entries holds, in full, our
// entries (in the mismatched buckets) whose hash the peer did not send.
type Entries struct {
	Missing Bitmap
	Entries []Entry
}

// Transfer carries records. Wants (in the last message of a flight) has one
// bit per entry the peer sent in Entries, set where the peer holds a newer
// register and should send its record back. More is set on all but the last
// Transfer of a flight, so big transfers can be split.
type Transfer struct {
	Wants   Bitmap
	Records []Record
	More    bool
}

// Done ends a session: the sender found nothing (more) that differs.
type Done struct{}

// Abort ends a session on an error; Reason is for logs only.
type Abort struct {
	Code   AbortCode
	Reason string
}

// AbortCode classifies an Abort.
type AbortCode uint8

// Abort codes.
const (
	AbortInternal AbortCode = 1 // the sender's storage failed
	AbortShape    AbortCode = 2 // the shapes differ
	AbortProtocol AbortCode = 3 // the sender received something it cannot use
)

// Entry is a key with its register versions, as the tree hashes it.
type Entry struct {
	Key      []byte
	Versions []Version
}

// Record is a key with an opaque payload that the receiving caller merges.
type Record struct {
	Key     []byte
	Payload []byte
}

func (*Hello) Type() MsgType     { return TypeHello }
func (*Digests) Type() MsgType   { return TypeDigests }
func (*Summaries) Type() MsgType { return TypeSummaries }
func (*Entries) Type() MsgType   { return TypeEntries }
func (*Transfer) Type() MsgType  { return TypeTransfer }
func (*Done) Type() MsgType      { return TypeDone }
func (*Abort) Type() MsgType     { return TypeAbort }

// Bitmap is a fixed-length bit set, encoded as its length then its bytes,
// least significant bit first.
type Bitmap struct {
	n int
	b []byte
}

// NewBitmap returns a bitmap of n clear bits.
func NewBitmap(n int) Bitmap { return Bitmap{n: n, b: make([]byte, (n+7)/8)} }

// Len is the number of bits.
func (m Bitmap) Len() int { return m.n }

// Get reports bit i; bits outside the bitmap are clear.
func (m Bitmap) Get(i int) bool { return i >= 0 && i < m.n && m.b[i>>3]&(1<<(i&7)) != 0 }

// Set sets bit i, which must be inside the bitmap.
func (m Bitmap) Set(i int) { m.b[i>>3] |= 1 << (i & 7) }

// Count is the number of set bits.
func (m Bitmap) Count() int {
	c := 0
	for _, x := range m.b {
		c += bits.OnesCount8(x)
	}
	return c
}
