// Package shadow encodes the bridge's shadow: per key hash, the digest of
// what the backend held when the bridge last wrote or read the key, and the
// backend's run it describes.
//
// The format: "redmesh-bridge-shadow 1\n", the run ID after its length (a
// uvarint), the count of entries (a uvarint), then per entry the key hash
// and the digest (8 bytes each, big-endian), and an xxhash of everything
// before it. In-project: a flat array of pairs needs no serialisation
// library.
package shadow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

const magic = "redmesh-bridge-shadow 1\n"

// Encode is the file's bytes.
func Encode(runID string, m map[uint64]uint64) []byte {
	buf := []byte(magic)
	buf = binary.AppendUvarint(buf, uint64(len(runID)))
	buf = append(buf, runID...)
	buf = binary.AppendUvarint(buf, uint64(len(m)))
	for h, d := range m {
		buf = binary.BigEndian.AppendUint64(buf, h)
		buf = binary.BigEndian.AppendUint64(buf, d)
	}
	return binary.BigEndian.AppendUint64(buf, xxhash.Sum64(buf))
}

// Decode reads what Encode wrote; damaged bytes are an error.
func Decode(buf []byte) (runID string, m map[uint64]uint64, err error) {
	if len(buf) < len(magic)+8 || !bytes.HasPrefix(buf, []byte(magic)) {
		return "", nil, errors.New("not a shadow file")
	}
	body := buf[:len(buf)-8]
	if binary.BigEndian.Uint64(buf[len(buf)-8:]) != xxhash.Sum64(body) {
		return "", nil, errors.New("checksum mismatch")
	}
	p := body[len(magic):]
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)-k) {
		return "", nil, errors.New("bad run ID")
	}
	runID = string(p[k : k+int(n)])
	p = p[k+int(n):]
	count, k := binary.Uvarint(p)
	if k <= 0 || (len(p)-k)%16 != 0 || count != uint64(len(p)-k)/16 {
		return "", nil, fmt.Errorf("bad entry count %d", count)
	}
	p = p[k:]
	m = make(map[uint64]uint64, count)
	for i := 0; i < len(p); i += 16 {
		m[binary.BigEndian.Uint64(p[i:])] = binary.BigEndian.Uint64(p[i+8:])
	}
	return runID, m, nil
}
