// Package whole encodes a key of a type redmesh does not model (a stream, a
// module's type) as the node holds it: a string of a mark, the Redis type,
// a NUL, then the key's DUMP payload. The node has no type for such a key;
// a string register gives it last-writer-wins merging and carries it as
// any string. RESTORE checks the payload's checksum, so a client's string
// that merely starts with the mark is refused by the backend, not
// restored. In-project: a prefix and a separator need no library.
package whole

import "bytes"

// Mark starts every encoded key.
const Mark = "\x00redmesh-whole\x00"

// Wrap is the node's string for a key of Redis type typ with DUMP payload.
func Wrap(typ string, payload []byte) []byte {
	out := make([]byte, 0, len(Mark)+len(typ)+1+len(payload))
	out = append(out, Mark...)
	out = append(out, typ...)
	out = append(out, 0)
	return append(out, payload...)
}

// Unwrap reads what Wrap wrote; ok is false for any other string.
func Unwrap(s []byte) (typ string, payload []byte, ok bool) {
	rest, ok := bytes.CutPrefix(s, []byte(Mark))
	if !ok {
		return "", nil, false
	}
	t, p, ok := bytes.Cut(rest, []byte{0})
	if !ok || len(t) == 0 {
		return "", nil, false
	}
	return string(t), p, true
}
