package gossip

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/record"
)

// Versions. Every protocol that carries records has an ID for each record
// encoding (record.Encoding) it has carried, and a node serves them all: a
// stream is opened offering its IDs newest first, libp2p's negotiation
// picks the newest both ends speak, and what crosses it is written in that
// ID's encoding (record.AppendAs, for an older peer). So a mesh upgraded
// one node at a time converges: an old node opens and is offered only the
// IDs it knows, and never sees an encoding it cannot read. What a node
// writes to its own log and checkpoints is its own encoding; a peer's log
// is read over the log protocol, in the reader's version.
//
// A peer that speaks none of a protocol's versions this node speaks (one
// too new or too old for it) fails the negotiation, not a decoding: the log
// says once a link which versions each side speaks, nobody is banned, and
// its push stream is not asked for again while the link lasts (the other
// protocols are asked for when the replicator wants them, and fail so).
const (
	protoPush      = protocol.ID("/redmesh/push/5")
	protoPush4     = protocol.ID("/redmesh/push/4")
	protoLog       = protocol.ID("/redmesh/log/3")
	protoLog2      = protocol.ID("/redmesh/log/2")
	protoMerkle    = protocol.ID("/redmesh/merkle/4")
	protoMerkle3   = protocol.ID("/redmesh/merkle/3")
	protoSnapshot  = protocol.ID("/redmesh/snapshot/2")
	protoSnapshot1 = protocol.ID("/redmesh/snapshot/1")
	// No records cross these: one version each.
	protoAck   = protocol.ID("/redmesh/ack/3")
	protoPeers = protocol.ID("/redmesh/peers/1")
)

// The protocols that carry records, each its IDs newest first.
var (
	pushIDs     = []protocol.ID{protoPush, protoPush4}
	logIDs      = []protocol.ID{protoLog, protoLog2}
	merkleIDs   = []protocol.ID{protoMerkle, protoMerkle3}
	snapshotIDs = []protocol.ID{protoSnapshot, protoSnapshot1}
)

// encodingOf is the record encoding a stream of protocol id carries.
func encodingOf(id protocol.ID) record.Encoding {
	switch id {
	case protoPush4, protoLog2, protoMerkle3, protoSnapshot1:
		return record.Encoding1
	}
	return record.Encoding2
}

// ids are the IDs of a protocol, of all, this node speaks, newest first:
// those whose encoding is at most the newest it writes to peers (a test's
// node of the build before speaks only the old).
func (m *Mesh) ids(all []protocol.ID) []protocol.ID {
	var out []protocol.ID
	for _, id := range all {
		if encodingOf(id) <= m.wireEncoding {
			out = append(out, id)
		}
	}
	return out
}

// protocols are the IDs of every protocol this node serves.
func (m *Mesh) protocols() []protocol.ID {
	var out []protocol.ID
	for _, all := range [][]protocol.ID{pushIDs, logIDs, merkleIDs, snapshotIDs} {
		out = append(out, m.ids(all)...)
	}
	return append(out, protoAck, protoPeers)
}

// noCommonVersion is Open's error when the peer speaks none of the IDs
// offered: theirs are the mesh protocols it said it speaks.
type noCommonVersion struct {
	offered, theirs []protocol.ID
}

func (e *noCommonVersion) Error() string {
	return fmt.Sprintf("peer speaks none of %s (it speaks %s)", joinIDs(e.offered), joinIDs(e.theirs))
}

func joinIDs(ids []protocol.ID) string {
	if len(ids) == 0 {
		return "none"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, " ")
}

// meshIDs are the mesh's protocols among ids, sorted.
func meshIDs(ids []protocol.ID) []protocol.ID {
	var out []protocol.ID
	for _, id := range ids {
		if strings.HasPrefix(string(id), "/redmesh/") {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// open opens a stream of the protocol whose IDs are all, in the newest
// version p and this node both speak, and returns the record encoding it
// carries. When p speaks none, it says so once a link (see Versions).
func (m *Mesh) open(ctx context.Context, p peer.ID, all []protocol.ID) (Stream, record.Encoding, error) {
	s, err := m.tr.Open(ctx, p, m.ids(all)...)
	if err != nil {
		if nc, ok := err.(*noCommonVersion); ok {
			m.noCommonVersion(p, all[0], nc)
		}
		return nil, 0, err
	}
	return s, encodingOf(s.Protocol()), nil
}

// noCommonVersion logs, once a link, that p speaks no version of a
// protocol this node speaks.
func (m *Mesh) noCommonVersion(p peer.ID, newest protocol.ID, e *noCommonVersion) {
	name := strings.Split(strings.TrimPrefix(string(newest), "/redmesh/"), "/")[0]
	m.mu.Lock()
	ps := m.peers[p]
	first := ps != nil && !ps.versionLogged[name]
	if first {
		if ps.versionLogged == nil {
			ps.versionLogged = map[string]bool{}
		}
		ps.versionLogged[name] = true
	}
	m.mu.Unlock()
	if first {
		m.log.Warn("peer speaks no version of a mesh protocol this node speaks: nothing passes on it until one of the two is upgraded",
			"peer", p.String(), "protocol", name, "ours", joinIDs(e.offered), "theirs", joinIDs(e.theirs))
	}
}

// pushAs is msg, an encoded push, with its records as a reader of enc
// reads them, and how many records it holds. Only a stream to a peer of an
// earlier version takes it: a typed write is decoded and encoded again for
// each such peer.
func pushAs(msg []byte, enc record.Encoding) ([]byte, int, error) {
	pm, err := decodePushMsg(msg)
	if err != nil {
		return nil, 0, err
	}
	if checkEncoding(pm.recs, enc) == nil {
		return msg, len(pm.recs), nil
	}
	recs, err := recordsAs(pm.recs, enc)
	if err != nil {
		return nil, 0, err
	}
	return appendPushMsg(make([]byte, 0, len(msg)*2), pm.epoch, pm.prev, pm.to, pm.hops, pm.origin, recs), len(recs), nil
}

// recordsAs is recs with every payload as a reader of enc reads it, in one
// buffer; recs is not changed.
func recordsAs(recs []merkle.Record, enc record.Encoding) ([]merkle.Record, error) {
	out := make([]merkle.Record, len(recs))
	var buf []byte
	offs := make([]int, len(recs)+1)
	for i, r := range recs {
		var err error
		if buf, err = record.AppendAs(buf, r.Payload, enc); err != nil {
			return nil, fmt.Errorf("record for %q: %w", r.Key, err)
		}
		offs[i+1] = len(buf)
	}
	for i, r := range recs {
		out[i] = merkle.Record{Key: r.Key, Payload: buf[offs[i]:offs[i+1]:offs[i+1]]}
	}
	return out, nil
}

// errEncoding is a record in an encoding newer than the node reads.
var errEncoding = errors.New("record in an encoding this node does not read")

// checkEncoding checks that every record of recs is one a reader of enc
// reads.
func checkEncoding(recs []merkle.Record, enc record.Encoding) error {
	for _, r := range recs {
		if got := record.EncodingOf(r.Payload); got > enc {
			return fmt.Errorf("%w: key %q in encoding %d, this node reads up to %d", errEncoding, r.Key, got, enc)
		}
	}
	return nil
}

// carrying is decode, of a message whose records recs lists, for a node
// that reads record encodings up to enc: a message with a record in a
// later one is malformed, as it is to the build before. This build reads
// every encoding on every version of a protocol (a peer of a build between
// may write its own on an old one), so for it decode is unchanged; a
// test's node of the build before is strict, and so shows a record sent in
// an encoding it could not read.
func carrying[T any](enc record.Encoding, decode func([]byte) (T, error), recs func(T) []merkle.Record) func([]byte) (T, error) {
	if enc >= record.Encoding2 {
		return decode
	}
	return func(b []byte) (T, error) {
		v, err := decode(b)
		if err == nil {
			err = checkEncoding(recs(v), enc)
		}
		return v, err
	}
}

// merkleLocalAs is a Merkle session's local side whose payloads are in
// encoding enc, for a session with a peer of that version.
type merkleLocalAs struct {
	merkle.Local
	enc record.Encoding
}

func (l merkleLocalAs) Payload(key []byte) ([]byte, error) {
	p, err := l.Local.Payload(key)
	if err != nil || p == nil || record.EncodingOf(p) <= l.enc {
		return p, err
	}
	return record.AppendAs(nil, p, l.enc)
}

// merkleLocal is the node's Merkle side for a session in encoding enc.
func (m *Mesh) merkleLocal(enc record.Encoding) merkle.Local {
	l := m.local.MerkleLocal()
	if enc >= record.Encoding2 {
		return l
	}
	return merkleLocalAs{l, enc}
}
