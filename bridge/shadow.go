package bridge

import (
	"errors"
	"os"

	"github.com/redmesh/redmesh/bridge/shadow"
)

// The shadow is written to a temporary file and renamed, so a crash leaves
// the previous one.
func (b *Bridge) saveShadow() {
	if b.opts.ShadowFile == "" || !b.shadowDirty {
		return
	}
	tmp := b.opts.ShadowFile + ".tmp"
	err := os.WriteFile(tmp, shadow.Encode(b.shadowRunID, &b.shadow), 0o600)
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
	var (
		run string
		m   *shadow.Map
	)
	if err == nil {
		run, m, err = shadow.Decode(buf)
	}
	if err != nil {
		b.log.Warn("ignoring the bridge's shadow: the backend is taken in as at a first start (nothing is deleted because the backend lacks it)", "file", b.opts.ShadowFile, "err", err)
		return
	}
	b.shadow, b.shadowRunID = *m, run
	b.st.shadowKeys.Store(int64(b.shadow.Len()))
}
