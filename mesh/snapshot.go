package mesh

import (
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"

	"github.com/redmesh/redmesh/merkle"
)

// Snapshot transfer (bootstrap): a node that holds nothing, or whose
// position fell off its peers' logs while it bootstraps, streams a peer's
// whole keyspace instead of walking Merkle trees over millions of keys.
//
//	receiver → SnapshotRequest{From, MaxBytes}
//	server   → SnapshotChunk{Epoch, Head, Next, ...records} ... until Done
//
// Keys travel in order of their 64-bit key hash (merkle.KeyHash), so that
// the position reached is one number: the hash of the first key not yet
// received (Next). Epoch and Head are where the serving peer's log stood
// when the stream began, read before its keyspace was: every write the
// stream may have missed is in that log from Head on, and the receiver
// reads it from there once the snapshot is in (applying is a merge, so
// reading again what the stream already brought is harmless).

// Snapshot message kinds.
const (
	KindSnapshotRequest byte = 5
	KindSnapshotChunk   byte = 6
)

// SnapshotRequest asks a peer to stream its keyspace from a key hash on.
type SnapshotRequest struct {
	From     uint64 // the first key hash wanted
	MaxBytes uint32 // most record bytes per chunk (a chunk holds at least one key)
}

// SnapshotChunk is one chunk of a snapshot stream.
type SnapshotChunk struct {
	// The serving peer's log when the stream began: its epoch and head
	// (the next sequence number it would write).
	Epoch, Head uint64
	// Next is the first key hash the chunks so far did not cover; with
	// Done, they covered every key.
	Next uint64
	Done bool
	// The server's estimate, when the stream began, of the whole
	// snapshot: its keys (tombstones included) and record bytes.
	KeysTotal, BytesTotal uint64
	Records               []merkle.Record
}

// AppendSnapshotRequest appends the encoding of r.
func AppendSnapshotRequest(dst []byte, r SnapshotRequest) []byte {
	dst = append(dst, KindSnapshotRequest)
	dst = binary.BigEndian.AppendUint64(dst, r.From)
	return binary.AppendUvarint(dst, uint64(r.MaxBytes))
}

// AppendSnapshotChunk appends the encoding of c, which ends with an xxhash
// of everything before it in the message: a chunk is checked whole before
// any of it is applied.
func AppendSnapshotChunk(dst []byte, c *SnapshotChunk) []byte {
	start := len(dst)
	dst = append(dst, KindSnapshotChunk)
	dst = binary.AppendUvarint(dst, c.Epoch)
	dst = binary.AppendUvarint(dst, c.Head)
	dst = binary.BigEndian.AppendUint64(dst, c.Next)
	var flags byte
	if c.Done {
		flags = 1
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, c.KeysTotal)
	dst = binary.AppendUvarint(dst, c.BytesTotal)
	dst = appendRecords(dst, c.Records)
	return binary.BigEndian.AppendUint64(dst, xxhash.Sum64(dst[start:]))
}

func decodeSnapshotRequest(d *decoder) *SnapshotRequest {
	r := &SnapshotRequest{From: d.uint64()}
	m := d.uvarint()
	if m > 1<<32-1 {
		d.fail("max bytes out of range")
	}
	r.MaxBytes = uint32(m)
	return r
}

// decodeSnapshotChunk decodes a chunk; whole is the message, kind byte
// included, whose last 8 bytes are its checksum.
func decodeSnapshotChunk(d *decoder, whole []byte) *SnapshotChunk {
	if len(whole) < 9 {
		d.fail("short")
		return nil
	}
	body := whole[:len(whole)-8]
	if xxhash.Sum64(body) != binary.BigEndian.Uint64(whole[len(whole)-8:]) {
		d.fail("chunk checksum mismatch")
		return nil
	}
	d.b = d.b[:len(d.b)-8]
	c := &SnapshotChunk{Epoch: d.uvarint(), Head: d.uvarint(), Next: d.uint64()}
	switch f := d.byte(); f {
	case 0:
	case 1:
		c.Done = true
	default:
		d.fail("unknown flags")
	}
	c.KeysTotal, c.BytesTotal = d.uvarint(), d.uvarint()
	c.Records = d.records()
	return c
}

// BootstrapState is a node's progress through a snapshot, saved with the records
// it covers so that a restart resumes where it stopped.
type BootstrapState struct {
	// Peer streams the snapshot; Start is where its log stood when its
	// stream began (Begun: a chunk arrived).
	Peer  PeerID
	Start Cursor
	Begun bool
	// Next is the first key hash not yet received.
	Next uint64
	// Keys and Bytes received so far (across resumptions); the totals are
	// the serving peer's estimate.
	Keys, Bytes           uint64
	KeysTotal, BytesTotal uint64
}

// bootState is a Table's bootstrap: whether one is wanted or running, and
// how far it got.
type bootState struct {
	active bool
	b      BootstrapState
}

// ChooseRepair decides how to catch up with id when its log cannot serve
// our cursor (CatchUpReply returned Reconcile): Bootstrap when this node
// holds nothing (empty) or a bootstrap is under way (begun, or interrupted
// and restored), Reconcile otherwise: a node with data repairs by Merkle,
// which moves only what differs. A Reconcile still needs ReconcileDone.
func (t *Table) ChooseRepair(id PeerID, empty bool) Action {
	p := t.Get(id)
	if p == nil {
		return Idle
	}
	if !empty && !t.boot.active {
		return Reconcile
	}
	t.boot.active = true
	p.hasPending = false
	return Bootstrap
}

// WantBootstrap marks a bootstrap as wanted before any peer answered: a
// node that starts empty, with peers to join, must not answer a Merkle
// session in the moment before its first catch-up finds the peer's log
// cannot serve it. The first catch-up reply that is not truncated (equal
// roots: the peers hold nothing either) withdraws the want, unless a
// snapshot already began.
func (t *Table) WantBootstrap() { t.boot.active = true }

// Bootstrapping reports whether a bootstrap is wanted or running. While it
// is, the node starts no Merkle session and answers none: a session would
// walk every key the snapshot brings anyway.
func (t *Table) Bootstrapping() bool { return t.boot.active }

// BootstrapProgress is the bootstrap's progress (the zero Bootstrap when
// none ran since start-up or the last one finished).
func (t *Table) BootstrapProgress() (BootstrapState, bool) { return t.boot.b, t.boot.active }

// RestoreBootstrap resumes an interrupted bootstrap after a restart.
func (t *Table) RestoreBootstrap(b BootstrapState) {
	t.boot = bootState{active: true, b: b}
	t.Add(b.Peer)
}

// SnapshotRequestFor is the request that starts or resumes the snapshot
// stream from id: from where the last stream of any peer stopped, since a
// key hash range means the same in every peer's keyspace.
func (t *Table) SnapshotRequestFor(id PeerID, maxBytes uint32) SnapshotRequest {
	return SnapshotRequest{From: t.boot.b.Next, MaxBytes: maxBytes}
}

// SnapshotChunk takes a chunk from id, after the caller has applied its
// records, and reports whether the snapshot is complete. The first chunk of
// a stream from another peer (or the same peer's log in a new epoch) hands
// what the earlier stream covered over to a cursor: every key before Next
// came from that peer's keyspace as it stood at or after Start, so reading
// its log from Start brings what changed since. When the snapshot is
// complete, id's cursor becomes its Start and the bootstrap ends: the caller
// then catches up from the log as usual.
func (t *Table) SnapshotChunk(id PeerID, first bool, c *SnapshotChunk) (done bool, err error) {
	if !t.boot.active {
		return false, fmt.Errorf("%w: snapshot chunk with no bootstrap running", ErrMalformed)
	}
	b := &t.boot.b
	if first {
		start := Cursor{Epoch: c.Epoch, Next: c.Head}
		if b.Begun && (b.Peer != id || b.Start.Epoch != c.Epoch) {
			t.SetCursor(b.Peer, b.Start)
		}
		if !b.Begun || b.Peer != id || b.Start.Epoch != c.Epoch {
			b.Peer, b.Start, b.Begun = id, start, true
		}
		b.KeysTotal, b.BytesTotal = c.KeysTotal, c.BytesTotal
	}
	if !c.Done && c.Next < b.Next {
		return false, fmt.Errorf("%w: snapshot went back from %016x to %016x", ErrMalformed, b.Next, c.Next)
	}
	b.Keys += uint64(len(c.Records))
	b.Bytes += uint64(PayloadBytes(c.Records))
	for _, r := range c.Records {
		b.Bytes += uint64(len(r.Key))
	}
	if !c.Done {
		b.Next = c.Next
		return false, nil
	}
	t.SetCursor(id, b.Start)
	t.boot = bootState{b: *b}
	t.boot.b.Next = 0
	return true, nil
}

// AppendBootstrap appends the encoding of b, as a node saves it.
func AppendBootstrap(dst []byte, b BootstrapState) []byte {
	dst = append(dst, 1) // format
	for _, v := range []uint64{uint64(b.Peer), b.Start.Epoch, b.Start.Next, b.Next, b.Keys, b.Bytes, b.KeysTotal, b.BytesTotal} {
		dst = binary.AppendUvarint(dst, v)
	}
	var flags byte
	if b.Begun {
		flags = 1
	}
	return append(dst, flags)
}

// DecodeBootstrap parses what AppendBootstrap wrote.
func DecodeBootstrap(p []byte) (BootstrapState, error) {
	if len(p) == 0 || p[0] != 1 {
		return BootstrapState{}, fmt.Errorf("%w: unknown bootstrap format", ErrMalformed)
	}
	d := decoder{b: p[1:]}
	var v [8]uint64
	for i := range v {
		v[i] = d.uvarint()
	}
	flags := d.byte()
	if d.err == nil && (flags > 1 || len(d.b) != 0) {
		d.fail("bad bootstrap flags or trailing bytes")
	}
	if d.err != nil {
		return BootstrapState{}, d.err
	}
	return BootstrapState{Peer: PeerID(v[0]), Start: Cursor{Epoch: v[1], Next: v[2]}, Next: v[3],
		Keys: v[4], Bytes: v[5], KeysTotal: v[6], BytesTotal: v[7], Begun: flags == 1}, nil
}
