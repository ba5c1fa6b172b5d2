package mesh

import (
	"encoding/binary"
	"fmt"

	"github.com/redmesh/redmesh/hlc"
)

// Ack is what a node tells a peer about the peer's own writes, on the
// acknowledgement stream it opens to it (/redmesh/ack/3): every local write
// of the peer's log epoch Epoch up to Seq is applied here (what WAIT
// counts), up to Durable also synced here (what the stable time counts: an
// acknowledged delete a crash could take back must not let the others
// collect), and every member has applied the sender's own writes up to
// Stable. AsideBelow, told a forgotten member that came back, is the stable
// time of its return: the sender sets aside what that member holds from up
// to then, and the member sets it aside too.
type Ack struct {
	Epoch, Seq uint64
	Stable     hlc.Timestamp
	Durable    uint64
	AsideBelow hlc.Timestamp
}

// AppendAck encodes a: uvarint epoch | seq | stable | durable [| asideBelow].
func AppendAck(dst []byte, a Ack) []byte {
	dst = binary.AppendUvarint(dst, a.Epoch)
	dst = binary.AppendUvarint(dst, a.Seq)
	dst = binary.AppendUvarint(dst, uint64(a.Stable))
	dst = binary.AppendUvarint(dst, a.Durable)
	if a.AsideBelow != 0 {
		dst = binary.AppendUvarint(dst, uint64(a.AsideBelow))
	}
	return dst
}

// DecodeAck decodes an Ack; Durable beyond Seq is malformed.
func DecodeAck(b []byte) (Ack, error) {
	var v [5]uint64
	i, n := 0, 0
	for ; i < len(v) && n < len(b); i++ {
		x, k := binary.Uvarint(b[n:])
		if k <= 0 {
			return Ack{}, fmt.Errorf("%w: bad acknowledgement", ErrMalformed)
		}
		v[i], n = x, n+k
	}
	if i < 4 || n != len(b) || v[3] > v[1] {
		return Ack{}, fmt.Errorf("%w: bad acknowledgement", ErrMalformed)
	}
	return Ack{Epoch: v[0], Seq: v[1], Stable: hlc.Timestamp(v[2]), Durable: v[3], AsideBelow: hlc.Timestamp(v[4])}, nil
}

// AppendAckWant encodes a request, sent the other way on the same stream,
// for an acknowledgement once the peer has applied the sender's writes up
// to seq of its log epoch (as a Redis master sends REPLCONF GETACK when a
// client WAITs): uvarint epoch | seq.
func AppendAckWant(dst []byte, epoch, seq uint64) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(dst, epoch), seq)
}

// DecodeAckWant decodes a request for an acknowledgement.
func DecodeAckWant(b []byte) (epoch, seq uint64, err error) {
	epoch, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, fmt.Errorf("%w: bad acknowledgement request", ErrMalformed)
	}
	seq, k := binary.Uvarint(b[n:])
	if k <= 0 || n+k != len(b) {
		return 0, 0, fmt.Errorf("%w: bad acknowledgement request", ErrMalformed)
	}
	return epoch, seq, nil
}

// AckOut is what a node has told one peer on the acknowledgement stream it
// opened to it, and what the peer asked for on it. A new stream starts from
// the zero AckOut.
type AckOut struct {
	sent               Ack
	wantEpoch, wantSeq uint64
}

// Want records the peer's request for an acknowledgement up to seq of its
// epoch (the latest epoch's, the highest seq).
func (o *AckOut) Want(epoch, seq uint64) {
	if epoch != o.wantEpoch || seq > o.wantSeq {
		o.wantEpoch, o.wantSeq = epoch, seq
	}
}

// Wanted reports whether the peer asked for an acknowledgement that p, our
// progress through its writes, now gives and that was not sent.
func (o *AckOut) Wanted(p Progress) bool {
	return o.wantEpoch == p.Epoch && p.Acked >= o.wantSeq &&
		(o.sent.Epoch != p.Epoch || o.sent.Seq < o.wantSeq)
}

// Due reports whether a should be sent now: it says something new, and
// either the periodic tick came (acknowledgements are batched: one per
// write cost a stream write on each side for every write) or the peer
// asked for it. An acknowledgement of none of the peer's writes (Epoch 0:
// we have not read its log yet) still goes, for the stable time it
// carries: without it a peer whose log we never read never heard how far
// its writes are stable, and its stable time stayed 0.
func (o *AckOut) Due(a Ack, p Progress, periodic bool) bool {
	return a != o.sent && (periodic || o.Wanted(p))
}

// Sent records that a went out.
func (o *AckOut) Sent(a Ack) { o.sent = a }

// Durable is how far a node's progress through one peer's writes is synced
// here. Under --fsync always every commit is; otherwise what was applied
// when a sync began counts once that sync is done.
type Durable struct {
	Epoch, Acked                   uint64
	snapEpoch, snapAcked, snapMark uint64
}

// Update moves d for p, the progress now, given whether every commit is
// synced and the store's sync numbers: synced, the last sync done, and
// mark, the number the next sync to begin will have. It reports whether
// part of p waits for a sync.
func (d *Durable) Update(p Progress, always bool, synced, mark uint64) (waiting bool) {
	if d.Epoch != p.Epoch {
		d.Epoch, d.Acked = p.Epoch, 0
	}
	if always {
		d.Acked = p.Acked
		return false
	}
	if d.snapEpoch == p.Epoch && d.snapMark != 0 && synced >= d.snapMark {
		d.Acked = max(d.Acked, d.snapAcked)
		d.snapMark = 0 // counted: the next snapshot is taken below
	}
	// A snapshot waits for its sync before another is taken: replaced
	// whenever the progress moved, it counted only if a sync began and
	// ended between two updates, which under steady progress and a sync
	// slower than the update period never happened. One taken with no sync
	// number to wait for (mark 0) is taken again: kept, it would never count.
	if d.snapEpoch != p.Epoch || d.snapMark == 0 {
		d.snapEpoch, d.snapAcked, d.snapMark = p.Epoch, p.Acked, mark
	}
	return d.Acked < p.Acked
}
