// Package resp reads Redis clients' requests with Redis's limits.
//
// A request is a RESP array of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
// or an inline line ("GET k\r\n", as typed into telnet). The reader bounds
// everything a client controls: the number of arguments (1,048,576, as
// Redis), each argument's length (proto-max-bulk-len), an inline line
// (64 KiB), and the buffer, which holds at most one incomplete request plus
// whatever complete ones are pipelined behind it, and shrinks back once a
// large request has been served. Lengths are checked before anything is
// allocated for them, so a client announcing a huge argument costs nothing
// until it actually sends the bytes.
//
// redcon's reader does none of this (a bulk length near MaxInt64 overflows its
// bounds check and panics; its buffer grows without bound under a sustained
// pipeline), which is why this package exists beside redcon's writer.
package resp

import (
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Limits that Redis hard-codes.
const (
	MaxArgs   = 1024 * 1024
	MaxInline = 64 * 1024
	maxHeader = 32 // "*<count>\r\n" / "$<len>\r\n": 20 digits is plenty
	minBuf    = 16 * 1024
)

// ProtocolError is a request that breaks the protocol; its text is Redis's
// error reply. The connection must be closed after replying with it.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "ERR Protocol error: " + e.Msg }

func protoErr(format string, a ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, a...)}
}

// MaxBuffer bounds the bytes one client may have pending (Redis's
// client-query-buffer-limit).
const MaxBuffer = 1 << 30

// Reader reads requests from one client.
type Reader struct {
	r          io.Reader
	maxBulk    int64
	buf        []byte
	start, end int
	// slab holds the argument slices of the requests parsed since the last
	// read, so that requests gathered with Next do not share a slice.
	slab [][]byte
}

// NewReader reads from r, refusing arguments longer than maxBulk bytes.
func NewReader(r io.Reader, maxBulk int64) *Reader {
	return &Reader{r: r, maxBulk: maxBulk, buf: make([]byte, minBuf)}
}

// ErrIncomplete is returned by Next when the buffer holds no complete request.
var ErrIncomplete = errors.New("incomplete request")

// ReadCommand returns the next request's arguments, reading from the client
// as needed. The arguments alias the reader's buffer: they stay valid until
// the next call that reads from the client (ReadCommand when Buffered has no
// complete request left). Empty requests (blank lines, "*0") are skipped.
func (r *Reader) ReadCommand() ([][]byte, error) {
	for {
		args, err := r.Next()
		if err != ErrIncomplete {
			return args, err
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// Next returns the next request already in the buffer, or ErrIncomplete
// without reading. Requests returned by successive calls to Next stay valid
// together until the next read, so a server can gather a pipeline.
func (r *Reader) Next() ([][]byte, error) {
	for r.start < r.end {
		args, n, err := r.parse(r.buf[r.start:r.end])
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, ErrIncomplete
		}
		r.start += n
		if len(args) > 0 {
			return args, nil
		}
	}
	return nil, ErrIncomplete
}

// Buffered is how many bytes read from the client wait in the buffer, a
// part of a request or requests not yet returned.
func (r *Reader) Buffered() int { return r.end - r.start }

// fill reads more bytes, first making room: moving the unread part to the
// front, and growing (by doubling, up to what the pending request needs)
// only if that part fills the buffer.
func (r *Reader) fill() error {
	// Every request handed out so far is now stale; clearing the slab
	// drops its pointers into the buffer, which would otherwise keep a
	// large request's buffer alive after the buffer is replaced.
	clear(r.slab)
	r.slab = r.slab[:0]
	if r.start == r.end {
		r.start, r.end = 0, 0
		if len(r.buf) > minBuf {
			r.buf = make([]byte, minBuf) // a large request is over: give its memory back
		}
	} else if r.end == len(r.buf) {
		pending := r.end - r.start
		if pending < len(r.buf)/2 || r.start > 0 && pending < len(r.buf) {
			copy(r.buf, r.buf[r.start:r.end])
		} else {
			if 2*len(r.buf) > MaxBuffer {
				return protoErr("query buffer over %d bytes", MaxBuffer)
			}
			nb := make([]byte, 2*len(r.buf))
			copy(nb, r.buf[r.start:r.end])
			r.buf = nb
		}
		r.start, r.end = 0, pending
	}
	n, err := r.r.Read(r.buf[r.end:])
	r.end += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// parse reads one request from the front of b. It returns the bytes
// consumed, 0 if b holds no complete request yet.
func (r *Reader) parse(b []byte) ([][]byte, int, error) {
	if b[0] != '*' {
		return r.parseInline(b)
	}
	count, i, err := header(b, 1, MaxArgs, "invalid multibulk length")
	if err != nil || i == 0 {
		return nil, 0, err
	}
	if count <= 0 {
		return nil, i, nil // "*0" and "*-1" are empty requests, as in Redis
	}
	// Arguments are appended as their bytes arrive, never allocated from
	// the announced count.
	mark := len(r.slab)
	undo := func() { r.slab = r.slab[:mark] }
	for a := int64(0); a < count; a++ {
		if i >= len(b) {
			undo()
			return nil, 0, nil
		}
		if b[i] != '$' {
			undo()
			return nil, 0, protoErr("expected '$', got '%c'", b[i])
		}
		n, j, err := header(b, i+1, r.maxBulk, "invalid bulk length")
		if err != nil || j == 0 {
			undo()
			return nil, 0, err
		}
		if n < 0 {
			undo()
			return nil, 0, protoErr("invalid bulk length")
		}
		if int64(len(b)-j) < n+2 {
			undo()
			return nil, 0, nil
		}
		end := j + int(n)
		if b[end] != '\r' || b[end+1] != '\n' {
			undo()
			return nil, 0, protoErr("invalid bulk length")
		}
		r.slab = append(r.slab, b[j:end:end])
		i = end + 2
	}
	return r.slab[mark:len(r.slab):len(r.slab)], i, nil
}

// header parses "<int>\r\n" starting at b[i], bounded by limit. It returns
// the position after it, 0 if the line is not complete yet.
func header(b []byte, i int, limit int64, what string) (int64, int, error) {
	for j := i; j < len(b); j++ {
		if b[j] == '\n' {
			if j == i || b[j-1] != '\r' {
				return 0, 0, protoErr("%s", what)
			}
			v, err := parseLength(b[i : j-1])
			if err != nil || v > limit {
				return 0, 0, protoErr("%s", what)
			}
			return v, j + 1, nil
		}
		if j-i > maxHeader {
			return 0, 0, protoErr("%s", what)
		}
	}
	return 0, 0, nil
}

// parseLength is strconv.ParseInt for a header's number, without the
// string it would need for the common case, a few decimal digits.
func parseLength(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 18 {
		return strconv.ParseInt(string(b), 10, 64)
	}
	var v int64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return strconv.ParseInt(string(b), 10, 64)
		}
		v = v*10 + int64(ch-'0')
	}
	return v, nil
}

// parseInline splits a telnet-style line into arguments as Redis's
// sdssplitargs does: spaces separate, double quotes allow escapes (\n, \xHH
// ...), single quotes allow \'.
func (r *Reader) parseInline(b []byte) ([][]byte, int, error) {
	nl := -1
	for i := 0; i < len(b) && i <= MaxInline; i++ {
		if b[i] == '\n' {
			nl = i
			break
		}
	}
	if nl < 0 {
		if len(b) > MaxInline {
			return nil, 0, protoErr("too big inline request")
		}
		return nil, 0, nil
	}
	line := b[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	args, err := splitArgs(line)
	if err != nil {
		return nil, 0, err
	}
	// Redis leaves inline arguments to the line limit alone; holding them to
	// proto-max-bulk-len too keeps one bound on every argument a command sees.
	for _, a := range args {
		if int64(len(a)) > r.maxBulk {
			return nil, 0, protoErr("invalid bulk length")
		}
	}
	return args, nl + 1, nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f'
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func splitArgs(line []byte) ([][]byte, error) {
	var args [][]byte
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return args, nil
		}
		var cur []byte
		inDq, inSq := false, false
		for done := false; !done; {
			if inDq {
				switch {
				case i >= len(line):
					return nil, protoErr("unbalanced quotes in request")
				case line[i] == '\\' && i+3 < len(line) && line[i+1] == 'x':
					hi, ok1 := hexVal(line[i+2])
					lo, ok2 := hexVal(line[i+3])
					if ok1 && ok2 {
						cur = append(cur, hi<<4|lo)
						i += 3
					} else {
						cur = append(cur, line[i])
					}
				case line[i] == '\\' && i+1 < len(line):
					i++
					c := line[i]
					switch c {
					case 'n':
						c = '\n'
					case 'r':
						c = '\r'
					case 't':
						c = '\t'
					case 'b':
						c = '\b'
					case 'a':
						c = '\a'
					}
					cur = append(cur, c)
				case line[i] == '"':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return nil, protoErr("unbalanced quotes in request")
					}
					done = true
				default:
					cur = append(cur, line[i])
				}
			} else if inSq {
				switch {
				case i >= len(line):
					return nil, protoErr("unbalanced quotes in request")
				case line[i] == '\\' && i+1 < len(line) && line[i+1] == '\'':
					i++
					cur = append(cur, '\'')
				case line[i] == '\'':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return nil, protoErr("unbalanced quotes in request")
					}
					done = true
				default:
					cur = append(cur, line[i])
				}
			} else {
				switch {
				case i >= len(line) || isSpace(line[i]):
					done = true
				case line[i] == '"':
					inDq = true
				case line[i] == '\'':
					inSq = true
				default:
					cur = append(cur, line[i])
				}
			}
			if i < len(line) {
				i++
			}
		}
		if cur == nil {
			cur = []byte{}
		}
		args = append(args, cur)
	}
}
