package bridge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/cespare/xxhash/v2"
)

// The shadow file: "redmesh-bridge-shadow 1\n", the backend's run ID after
// its length (a uvarint), the count of entries (a uvarint), then per entry
// the key hash and the digest (8 bytes each, big-endian), and an xxhash of
// everything before it. Written to a temporary file and renamed, so a crash
// leaves the previous one. In-project: a flat array of pairs needs no
// serialisation library.
const shadowMagic = "redmesh-bridge-shadow 1\n"

func (b *Bridge) saveShadow() {
	if b.opts.ShadowFile == "" || !b.shadowDirty {
		return
	}
	buf := []byte(shadowMagic)
	buf = binary.AppendUvarint(buf, uint64(len(b.shadowRunID)))
	buf = append(buf, b.shadowRunID...)
	buf = binary.AppendUvarint(buf, uint64(len(b.shadow)))
	for h, d := range b.shadow {
		buf = binary.BigEndian.AppendUint64(buf, h)
		buf = binary.BigEndian.AppendUint64(buf, d)
	}
	buf = binary.BigEndian.AppendUint64(buf, xxhash.Sum64(buf))
	tmp := b.opts.ShadowFile + ".tmp"
	err := os.WriteFile(tmp, buf, 0o600)
	if err == nil {
		err = os.Rename(tmp, b.opts.ShadowFile)
	}
	if err != nil {
		b.log.Warn("save the bridge's shadow (the next start compares every key instead)", "err", err)
		return
	}
	b.shadowDirty = false
}

func (b *Bridge) loadShadow() {
	if b.opts.ShadowFile == "" {
		return
	}
	buf, err := os.ReadFile(b.opts.ShadowFile)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err == nil {
		err = b.decodeShadow(buf)
	}
	if err != nil {
		b.shadow, b.shadowRunID = map[uint64]uint64{}, ""
		b.log.Warn("ignoring the bridge's shadow: the backend is taken in as at a first start (nothing is deleted because the backend lacks it)", "file", b.opts.ShadowFile, "err", err)
	}
	b.st.shadowKeys.Store(int64(len(b.shadow)))
}

func (b *Bridge) decodeShadow(buf []byte) error {
	if len(buf) < len(shadowMagic)+8 || !bytes.HasPrefix(buf, []byte(shadowMagic)) {
		return errors.New("not a shadow file")
	}
	body := buf[:len(buf)-8]
	if binary.BigEndian.Uint64(buf[len(buf)-8:]) != xxhash.Sum64(body) {
		return errors.New("checksum mismatch")
	}
	p := body[len(shadowMagic):]
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)-k) {
		return errors.New("bad run ID")
	}
	runID := string(p[k : k+int(n)])
	p = p[k+int(n):]
	count, k := binary.Uvarint(p)
	if k <= 0 || count != uint64(len(p)-k)/16 || (len(p)-k)%16 != 0 {
		return fmt.Errorf("bad entry count %d", count)
	}
	p = p[k:]
	shadow := make(map[uint64]uint64, count)
	for i := 0; i < len(p); i += 16 {
		shadow[binary.BigEndian.Uint64(p[i:])] = binary.BigEndian.Uint64(p[i+8:])
	}
	b.shadow, b.shadowRunID = shadow, runID
	return nil
}
