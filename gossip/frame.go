package gossip

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
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
type progressStream struct{ s network.Stream }

// progressChunk is the most one write sends under one deadline.
const progressChunk = 64 << 10

// streamIO returns a reader and a writer over s that keep its deadline
// moving with progress.
func streamIO(s network.Stream) (*bufio.Reader, *bufio.Writer) {
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
