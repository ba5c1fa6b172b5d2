package merkle

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// Local is a session's synchronous view of its own side. A node implements it
// with its Tree, a storage prefix scan per bucket and a record read; the
// simulator and tests use MemStore. The session calls it only from Start and
// Step, so the caller decides when storage is touched.
type Local interface {
	// Digest returns the full digest of a node (Tree.Digest).
	Digest(level int, index uint32) uint64
	// AppendEntries appends to dst the entries stored in bucket b, tombstones
	// included. The session keeps the returned keys and versions until it
	// ends, so they must not be modified afterwards.
	AppendEntries(dst []Entry, bucket uint32) ([]Entry, error)
	// Payload returns the opaque record of key to send to the peer, or nil if
	// the key is gone (it is then skipped).
	Payload(key []byte) ([]byte, error)
}

// Config configures a session.
type Config struct {
	Shape Shape
	Local Local
	// Salt salts every short hash of the session. The initiator's caller picks
	// it at random for each session (the session has no RNG), so a 32-bit
	// collision that hides a difference in one session is unlikely to hide it
	// in the next. The responder takes the initiator's.
	Salt uint64
	// MaxTransferBytes splits a flight of records into Transfer messages of
	// about this many bytes of keys and payloads. Zero means 1 MiB.
	MaxTransferBytes int
}

// Output is what one call to Start or Step produced.
type Output struct {
	// Msgs are to be sent to the peer in order, as one flight.
	Msgs []Message
	// Records came from the peer; the caller merges each with its merge rule.
	// They alias the received message.
	Records []Record
	// Done is set once the session has ended; nothing more is sent or expected.
	Done bool
}

// Result summarises a finished session.
type Result struct {
	Equal   bool     // no difference was found
	Buckets int      // buckets whose entries were compared
	Pulled  [][]byte // keys whose records came from the peer
	Pushed  [][]byte // keys whose records were sent to the peer
}

// ErrProtocol is matched (errors.Is) by errors about a peer's message that
// does not fit the session's state.
var ErrProtocol = errors.New("merkle: protocol violation")

// AbortError is returned by Step when the peer aborted the session.
type AbortError struct {
	Code   AbortCode
	Reason string
}

func (e *AbortError) Error() string {
	return fmt.Sprintf("merkle: the peer aborted the session (code %d); its reason: %s", e.Code, e.Reason)
}

// Is makes errors.Is(err, ErrShapeMismatch) true when the peer aborted over
// the shape, so both sides can test for it alike.
func (e *AbortError) Is(target error) bool {
	return target == ErrShapeMismatch && e.Code == AbortShape
}

type state uint8

const (
	stIdle      state = iota // initiator before Start, responder before Hello
	stDigests                // sent digests (lastLevel, lastSent); awaiting the peer's answer
	stSummaries              // sent Summaries; awaiting Entries
	stEntries                // sent Entries; awaiting the peer's Transfer
	stWanting                // sent a Transfer with wants; awaiting the records
	stDone
	stFailed
)

// Session is one side of a reconciliation: a pure state machine with no
// goroutines, clocks or I/O. The initiator calls Start and sends its output;
// the responder is created idle and stepped with the Hello. Each side then
// steps every message it receives and sends what comes out, until Done.
type Session struct {
	cfg       Config
	initiator bool
	st        state
	result    Result

	// Descent: the nodes whose digests we last sent, at lastLevel.
	lastLevel int
	lastSent  []uint32

	// Leaf stage, as the side that sent Summaries: our entries of the
	// mismatched buckets in the order hashed, and which keys we want back.
	mine   []Entry
	wanted map[string]bool

	// Leaf stage, as the side that sent Entries: what we sent, to read the
	// peer's wants.
	sent []Entry

	// Buckets compared at the leaves (a received record must belong to one),
	// with, on the side that sent Summaries, where their entries sit in mine.
	buckets map[uint32]span
}

type span struct{ lo, hi int }

// NewInitiator returns the side that opens the session with Start.
func NewInitiator(cfg Config) (*Session, error) { return newSession(cfg, true) }

// NewResponder returns the side that waits for a Hello.
func NewResponder(cfg Config) (*Session, error) { return newSession(cfg, false) }

func newSession(cfg Config, initiator bool) (*Session, error) {
	if err := cfg.Shape.Validate(); err != nil {
		return nil, err
	}
	if cfg.Local == nil {
		return nil, errors.New("merkle: Config.Local is nil")
	}
	if cfg.MaxTransferBytes <= 0 {
		cfg.MaxTransferBytes = 1 << 20
	}
	return &Session{cfg: cfg, initiator: initiator}, nil
}

// Done reports whether the session has ended, successfully or not.
func (s *Session) Done() bool { return s.st == stDone || s.st == stFailed }

// Result returns what the session found and moved so far.
func (s *Session) Result() Result { return s.result }

// helloLevel is the deepest level with at most 16 nodes: its digests fit in
// 64 bytes, so equal trees still agree within one small round trip, and
// unequal ones skip the root exchange.
func helloLevel(sh Shape) int {
	l := 0
	for l < sh.Depth && sh.Width(l+1) <= 16 {
		l++
	}
	return l
}

// Start returns the initiator's Hello.
func (s *Session) Start() (Output, error) {
	if !s.initiator || s.st != stIdle {
		return Output{}, errors.New("merkle: Start called twice or on a responder")
	}
	lvl := helloLevel(s.cfg.Shape)
	nodes := make([]uint32, s.cfg.Shape.Width(lvl))
	for i := range nodes {
		nodes[i] = uint32(i)
	}
	s.lastLevel, s.lastSent, s.st = lvl, nodes, stDigests
	return Output{Msgs: []Message{&Hello{
		Shape:   s.cfg.Shape,
		Salt:    s.cfg.Salt,
		Level:   uint8(lvl),
		Digests: s.digests(lvl, nodes),
	}}}, nil
}

// Step consumes one message from the peer. On error the session has failed;
// Output then usually holds an Abort for the peer. The session keeps nothing
// of m after Step returns except through Output.Records, so the caller may
// reuse the buffer m was decoded from once it has merged those.
func (s *Session) Step(m Message) (Output, error) {
	if s.Done() {
		return Output{}, fmt.Errorf("%w: %s after the session ended", ErrProtocol, m.Type())
	}
	if a, ok := m.(*Abort); ok {
		s.st = stFailed
		return Output{Done: true}, &AbortError{Code: a.Code, Reason: a.Reason}
	}
	out, err := s.step(m)
	if err != nil {
		s.st = stFailed
		code := AbortProtocol
		var se *ShapeError
		var le *localError
		switch {
		case errors.As(err, &se):
			code = AbortShape
		case errors.As(err, &le):
			code = AbortInternal
		}
		return Output{Msgs: []Message{&Abort{Code: code, Reason: err.Error()}}, Done: true}, err
	}
	out.Done = s.Done()
	return out, nil
}

// localError marks failures of the caller's Local, as opposed to the peer's.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

func (s *Session) step(m Message) (Output, error) {
	switch s.st {
	case stIdle:
		if h, ok := m.(*Hello); ok && !s.initiator {
			return s.onHello(h)
		}
	case stDigests:
		switch m := m.(type) {
		case *Digests:
			return s.onDigests(m)
		case *Summaries:
			return s.onSummaries(m)
		case *Done:
			s.result.Equal = true
			s.st = stDone
			return Output{}, nil
		}
	case stSummaries:
		if e, ok := m.(*Entries); ok {
			return s.onEntries(e)
		}
	case stEntries, stWanting:
		if t, ok := m.(*Transfer); ok {
			return s.onTransfer(t)
		}
	}
	return Output{}, protoErr("unexpected %s", m.Type())
}

func (s *Session) onHello(h *Hello) (Output, error) {
	if h.Shape != s.cfg.Shape {
		return Output{}, &ShapeError{Local: s.cfg.Shape, Remote: h.Shape}
	}
	lvl := int(h.Level)
	if lvl > s.cfg.Shape.Depth || len(h.Digests) != s.cfg.Shape.Width(lvl) {
		return Output{}, protoErr("hello with %d digests at level %d", len(h.Digests), lvl)
	}
	s.cfg.Salt = h.Salt
	nodes := make([]uint32, len(h.Digests))
	for i := range nodes {
		nodes[i] = uint32(i)
	}
	return s.answer(lvl, nodes, h.Digests)
}

// mismatched returns the nodes among our last sent whose bit is set in the
// peer's bitmap.
func (s *Session) mismatched(bm Bitmap) ([]uint32, error) {
	if bm.Len() != len(s.lastSent) {
		return nil, protoErr("bitmap of %d bits for %d nodes", bm.Len(), len(s.lastSent))
	}
	var out []uint32
	for i, n := range s.lastSent {
		if bm.Get(i) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, protoErr("empty mismatch set (Done expected)")
	}
	return out, nil
}

func (s *Session) onDigests(m *Digests) (Output, error) {
	if s.lastLevel == s.cfg.Shape.Depth {
		return Output{}, protoErr("digests below the leaves")
	}
	if int(m.Level) != s.lastLevel+1 {
		return Output{}, protoErr("digests at level %d, want %d", m.Level, s.lastLevel+1)
	}
	mis, err := s.mismatched(m.Mismatch)
	if err != nil {
		return Output{}, err
	}
	nodes := s.children(mis)
	if len(m.Digests) != len(nodes) {
		return Output{}, protoErr("%d digests for %d nodes", len(m.Digests), len(nodes))
	}
	return s.answer(s.lastLevel+1, nodes, m.Digests)
}

// answer compares the peer's digests of nodes at level with ours and sends the
// next step: Done if all agree, our children's digests of the mismatched ones,
// or, at the leaves, our entry summaries of the mismatched buckets.
func (s *Session) answer(level int, nodes []uint32, theirs []uint32) (Output, error) {
	bm := NewBitmap(len(nodes))
	var mis []uint32
	for i, n := range nodes {
		if shortNode(s.cfg.Local.Digest(level, n), s.cfg.Salt) != theirs[i] {
			bm.Set(i)
			mis = append(mis, n)
		}
	}
	if len(mis) == 0 {
		s.result.Equal = true
		s.st = stDone
		return Output{Msgs: []Message{&Done{}}}, nil
	}
	if level == s.cfg.Shape.Depth {
		return s.sendSummaries(bm, mis)
	}
	kids := s.children(mis)
	s.lastLevel, s.lastSent, s.st = level+1, kids, stDigests
	return Output{Msgs: []Message{&Digests{
		Level:    uint8(level + 1),
		Mismatch: bm,
		Digests:  s.digests(level+1, kids),
	}}}, nil
}

func (s *Session) children(nodes []uint32) []uint32 {
	f := uint32(s.cfg.Shape.FanOut)
	out := make([]uint32, 0, len(nodes)*int(f))
	for _, n := range nodes {
		for c := range f {
			out = append(out, n*f+c)
		}
	}
	return out
}

func (s *Session) digests(level int, nodes []uint32) []uint32 {
	ds := make([]uint32, len(nodes))
	for i, n := range nodes {
		ds[i] = shortNode(s.cfg.Local.Digest(level, n), s.cfg.Salt)
	}
	return ds
}

// bucketEntries lists a bucket through Local, dropping absent entries and
// sorting by key so that the session's messages do not depend on storage
// order.
func (s *Session) bucketEntries(dst []Entry, b uint32) ([]Entry, error) {
	start := len(dst)
	dst, err := s.cfg.Local.AppendEntries(dst, b)
	if err != nil {
		return nil, &localError{fmt.Errorf("merkle: listing bucket %d: %w", b, err)}
	}
	kept := dst[:start]
	for _, e := range dst[start:] {
		if len(trimVersions(e.Versions)) > 0 {
			kept = append(kept, e)
		}
	}
	slices.SortFunc(kept[start:], func(a, b Entry) int { return bytes.Compare(a.Key, b.Key) })
	return kept, nil
}

func (s *Session) sendSummaries(bm Bitmap, buckets []uint32) (Output, error) {
	s.buckets = make(map[uint32]span, len(buckets))
	sum := &Summaries{Mismatch: bm, Counts: make([]uint32, len(buckets))}
	var err error
	for i, b := range buckets {
		n := len(s.mine)
		if s.mine, err = s.bucketEntries(s.mine, b); err != nil {
			return Output{}, err
		}
		s.buckets[b] = span{n, len(s.mine)}
		sum.Counts[i] = uint32(len(s.mine) - n)
	}
	sum.Hashes = make([]uint32, len(s.mine))
	for i, e := range s.mine {
		sum.Hashes[i] = shortEntry(EntryHash(e.Key, e.Versions), s.cfg.Salt)
	}
	s.result.Buckets = len(buckets)
	s.st = stSummaries
	return Output{Msgs: []Message{sum}}, nil
}

// onSummaries compares, bucket by bucket, the peer's short entry hashes with
// ours: the peer's hashes we lack are flagged in Missing, and our entries whose
// hash the peer lacks are sent in full so that the peer can decide, register
// by register, which way each key moves.
func (s *Session) onSummaries(m *Summaries) (Output, error) {
	if s.lastLevel != s.cfg.Shape.Depth {
		return Output{}, protoErr("summaries at level %d", s.lastLevel)
	}
	buckets, err := s.mismatched(m.Mismatch)
	if err != nil {
		return Output{}, err
	}
	if len(m.Counts) != len(buckets) {
		return Output{}, protoErr("%d summaries for %d buckets", len(m.Counts), len(buckets))
	}
	s.buckets = make(map[uint32]span, len(buckets))
	missing := NewBitmap(len(m.Hashes))
	var (
		mine  []Entry
		hm    []hashIdx
		ht    []hashIdx
		off   int
		total uint64
	)
	for _, c := range m.Counts {
		total += uint64(c)
	}
	if total != uint64(len(m.Hashes)) {
		return Output{}, protoErr("counts sum to %d for %d hashes", total, len(m.Hashes))
	}
	for i, b := range buckets {
		s.buckets[b] = span{}
		if mine, err = s.bucketEntries(mine[:0], b); err != nil {
			return Output{}, err
		}
		theirs := m.Hashes[off : off+int(m.Counts[i])]
		hm = hm[:0]
		for j, e := range mine {
			hm = append(hm, hashIdx{shortEntry(EntryHash(e.Key, e.Versions), s.cfg.Salt), j})
		}
		ht = ht[:0]
		for j, h := range theirs {
			ht = append(ht, hashIdx{h, off + j})
		}
		onlyMine, onlyTheirs := diffHashes(hm, ht)
		for _, j := range onlyMine {
			s.sent = append(s.sent, mine[j])
		}
		for _, j := range onlyTheirs {
			missing.Set(j)
		}
		off += int(m.Counts[i])
	}
	s.result.Buckets = len(buckets)
	s.st = stEntries
	return Output{Msgs: []Message{&Entries{Missing: missing, Entries: s.sent}}}, nil
}

type hashIdx struct {
	h   uint32
	idx int
}

// diffHashes returns the indexes of a's elements whose hash is not in b, and
// of b's whose hash is not in a, in index order. Sorting beats a map here:
// buckets are small and it allocates nothing.
func diffHashes(a, b []hashIdx) (onlyA, onlyB []int) {
	cmp := func(x, y hashIdx) int {
		if x.h != y.h {
			if x.h < y.h {
				return -1
			}
			return 1
		}
		return x.idx - y.idx
	}
	slices.SortFunc(a, cmp)
	slices.SortFunc(b, cmp)
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].h < b[j].h):
			onlyA = append(onlyA, a[i].idx)
			i++
		case i == len(a) || b[j].h < a[i].h:
			onlyB = append(onlyB, b[j].idx)
			j++
		default:
			h := a[i].h
			for i < len(a) && a[i].h == h {
				i++
			}
			for j < len(b) && b[j].h == h {
				j++
			}
		}
	}
	slices.Sort(onlyA)
	slices.Sort(onlyB)
	return onlyA, onlyB
}

// onEntries is where the side that sent Summaries decides: it now knows, for
// every key that differs, both sides' versions (ours from storage, the
// peer's in full or, for keys the peer lacks, as a Missing bit).
func (s *Session) onEntries(m *Entries) (Output, error) {
	if m.Missing.Len() != len(s.mine) {
		return Output{}, protoErr("missing bitmap of %d bits for %d hashes", m.Missing.Len(), len(s.mine))
	}
	wants := NewBitmap(len(m.Entries))
	handled := make([]bool, len(s.mine))
	var push [][]byte
	s.wanted = make(map[string]bool)
	for i, e := range m.Entries {
		sp, ok := s.buckets[s.cfg.Shape.BucketOf(e.Key)]
		if !ok {
			return Output{}, protoErr("entry for a bucket not compared")
		}
		if len(trimVersions(e.Versions)) == 0 {
			return Output{}, protoErr("entry without versions")
		}
		// A bucket's entries are sorted by key, so no index over all keys
		// is needed.
		j, ok := slices.BinarySearchFunc(s.mine[sp.lo:sp.hi], e.Key, func(x Entry, k []byte) int { return bytes.Compare(x.Key, k) })
		j += sp.lo
		if !ok {
			wants.Set(i)
			s.wanted[string(e.Key)] = true
			continue
		}
		if handled[j] {
			return Output{}, protoErr("key sent twice")
		}
		handled[j] = true
		theirNewer, ourNewer := NewerIn(e.Versions, s.mine[j].Versions)
		if theirNewer {
			wants.Set(i)
			s.wanted[string(e.Key)] = true
		}
		if ourNewer {
			push = append(push, s.mine[j].Key) // ours: the message's buffer is not kept
		}
	}
	for j, e := range s.mine {
		if m.Missing.Get(j) && !handled[j] {
			push = append(push, e.Key)
		}
	}
	if len(s.wanted) == 0 {
		s.st = stDone
	} else {
		s.st = stWanting
	}
	return s.transfer(push, wants)
}

// transfer reads the payloads of keys and splits them into Transfer messages;
// the last one carries wants.
func (s *Session) transfer(keys [][]byte, wants Bitmap) (Output, error) {
	var msgs []Message
	cur := &Transfer{}
	size := 0
	for _, k := range keys {
		p, err := s.cfg.Local.Payload(k)
		if err != nil {
			return Output{}, &localError{fmt.Errorf("merkle: reading record: %w", err)}
		}
		if p == nil {
			continue
		}
		if size > 0 && size+len(k)+len(p) > s.cfg.MaxTransferBytes {
			cur.More = true
			msgs = append(msgs, cur)
			cur, size = &Transfer{}, 0
		}
		cur.Records = append(cur.Records, Record{Key: k, Payload: p})
		size += len(k) + len(p)
		s.result.Pushed = append(s.result.Pushed, k)
	}
	cur.Wants = wants
	msgs = append(msgs, cur)
	return Output{Msgs: msgs}, nil
}

func (s *Session) onTransfer(m *Transfer) (Output, error) {
	for _, r := range m.Records {
		if s.st == stWanting {
			if !s.wanted[string(r.Key)] {
				return Output{}, protoErr("record not wanted")
			}
			delete(s.wanted, string(r.Key))
		} else if _, ok := s.buckets[s.cfg.Shape.BucketOf(r.Key)]; !ok {
			return Output{}, protoErr("record for a bucket not compared")
		}
		s.result.Pulled = append(s.result.Pulled, bytes.Clone(r.Key))
	}
	out := Output{Records: m.Records}
	if m.More {
		if m.Wants.Len() != 0 {
			return Output{}, protoErr("wants before the last transfer")
		}
		return out, nil
	}
	if s.st == stWanting {
		if m.Wants.Len() != 0 {
			return Output{}, protoErr("wants in the final transfer")
		}
		s.st = stDone
		return out, nil
	}
	if m.Wants.Len() != len(s.sent) {
		return Output{}, protoErr("wants bitmap of %d bits for %d entries", m.Wants.Len(), len(s.sent))
	}
	var keys [][]byte
	for i, e := range s.sent {
		if m.Wants.Get(i) {
			keys = append(keys, e.Key)
		}
	}
	s.st = stDone
	if len(keys) == 0 {
		return out, nil
	}
	t, err := s.transfer(keys, NewBitmap(0))
	if err != nil {
		return Output{}, err
	}
	out.Msgs = t.Msgs
	return out, nil
}
