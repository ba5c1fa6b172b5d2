package gossip

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redmesh/redmesh/mesh"
)

// errFrameTooLarge is a frame whose announced length is over the limit: a
// broken or hostile peer.
var errFrameTooLarge = errors.New("frame longer than the protocol allows")

// Streams carry frames: uvarint(length) then that many bytes.

func writeFrame(w *bufio.Writer, b []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(b)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// readFrame reads one frame of at most limit bytes. The buffer grows with
// the bytes actually received, so an announced length costs nothing until
// the peer sends the data.
func readFrame(r *bufio.Reader, limit uint64, buf *bytes.Buffer) ([]byte, error) {
	n, err := readUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", errFrameTooLarge, n, limit)
	}
	buf.Reset()
	if n <= 64<<10 {
		buf.Grow(int(n))
	}
	if _, err := io.CopyN(buf, r, int64(n)); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

var errMalformedFrame = errors.New("malformed frame")

// readUvarint reads a frame length. A read error (the stream ended or was
// reset) is returned as it is; only an over-long varint is malformed.
func readUvarint(r *bufio.Reader) (uint64, error) {
	var x uint64
	var s uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			return x | uint64(b)<<s, nil
		}
		x |= uint64(b&0x7f) << s
		s += 7
	}
	return 0, fmt.Errorf("%w: frame length overflows", errMalformedFrame)
}

// progressStream gives every read and write on a stream ioTimeout to make
// progress, instead of one deadline for a whole frame: a large value (up to
// 512 MB in one frame) crosses a slow link as long as bytes keep moving,
// while a peer that stalls still times out.
type progressStream struct{ s Stream }

// progressChunk is the most one write sends under one deadline.
const progressChunk = 64 << 10

// streamIO returns a reader and a writer over s that keep its deadline
// moving with progress.
func streamIO(s Stream) (*bufio.Reader, *bufio.Writer) {
	p := progressStream{s}
	return bufio.NewReaderSize(p, progressChunk), bufio.NewWriterSize(p, progressChunk)
}

func (p progressStream) Read(b []byte) (int, error) {
	p.s.SetReadDeadline(time.Now().Add(ioTimeout))
	return p.s.Read(b)
}

func (p progressStream) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		n := min(len(b), progressChunk)
		p.s.SetWriteDeadline(time.Now().Add(ioTimeout))
		k, err := p.s.Write(b[:n])
		written += k
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

// readMessage reads one frame of at most limit bytes from peer p and
// decodes it. A frame over the limit, a malformed length, or a message
// decode refuses disconnects p (misbehaved, naming what was read); a
// stream that ends or fails is returned as it is. What decode returns may
// alias buf.
func readMessage[T any](m *Mesh, p peer.ID, what string, r *bufio.Reader, limit uint64, buf *bytes.Buffer, decode func([]byte) (T, error)) (T, error) {
	var zero T
	frame, err := readFrame(r, limit, buf)
	if err != nil {
		if errors.Is(err, errFrameTooLarge) || errors.Is(err, errMalformedFrame) {
			m.misbehaved(p, what, err)
		}
		return zero, err
	}
	v, err := decode(frame)
	if err != nil {
		m.misbehaved(p, what, err)
		return zero, err
	}
	return v, nil
}

// The mesh messages a stream expects, each refused if it is of another
// kind; records they carry must all decode (checkRecords), so a peer that
// sends garbage is cut off, not half applied.

func decodeLogRequest(b []byte) (*mesh.LogRequest, error) {
	d, err := mesh.Decode(b)
	if err == nil && d.Request == nil {
		err = errors.New("not a log request")
	}
	return d.Request, err
}

func decodeLogReply(b []byte) (*mesh.LogReply, error) {
	d, err := mesh.Decode(b)
	if err == nil && d.Reply == nil {
		err = errors.New("not a log reply")
	}
	if err != nil {
		return nil, err
	}
	return d.Reply, checkRecords(d.Reply.Records)
}

func decodeRootAt(b []byte) (*mesh.RootAt, error) {
	d, err := mesh.Decode(b)
	if err == nil && d.RootAt == nil {
		err = errors.New("not a root")
	}
	return d.RootAt, err
}

func decodeSnapshotRequest(b []byte) (*mesh.SnapshotRequest, error) {
	d, err := mesh.Decode(b)
	if err == nil && d.SnapshotRequest == nil {
		err = errors.New("not a snapshot request")
	}
	return d.SnapshotRequest, err
}

func decodeSnapshotChunk(b []byte) (*mesh.SnapshotChunk, error) {
	d, err := mesh.Decode(b)
	if err == nil && d.Chunk == nil {
		err = errors.New("not a snapshot chunk")
	}
	if err != nil {
		return nil, err
	}
	return d.Chunk, checkRecords(d.Chunk.Records)
}
