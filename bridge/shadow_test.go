package bridge

import (
	"os"
	"path/filepath"
	"testing"
)

func TestShadowRoundTrips(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bridge.shadow")
	b := &Bridge{opts: Options{ShadowFile: file}, log: quietLog(), shadow: map[uint64]uint64{1: 2, 3: 4}, shadowRunID: "run", shadowDirty: true}
	b.saveShadow()
	c := &Bridge{opts: Options{ShadowFile: file}, log: quietLog(), shadow: map[uint64]uint64{}}
	c.loadShadow()
	if c.shadowRunID != "run" || len(c.shadow) != 2 || c.shadow[1] != 2 || c.shadow[3] != 4 {
		t.Fatalf("loaded %q %v", c.shadowRunID, c.shadow)
	}
}

// FuzzDecodeShadow: a damaged shadow file is an error, never a crash or an
// allocation beyond its size.
func FuzzDecodeShadow(f *testing.F) {
	b := &Bridge{opts: Options{ShadowFile: filepath.Join(f.TempDir(), "s")}, log: quietLog(), shadow: map[uint64]uint64{7: 8}, shadowRunID: "abc", shadowDirty: true}
	b.saveShadow()
	saved, err := os.ReadFile(b.opts.ShadowFile)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(saved)
	f.Add([]byte(shadowMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &Bridge{shadow: map[uint64]uint64{}}
		if err := c.decodeShadow(data); err == nil && len(c.shadow) > len(data)/16 {
			t.Fatalf("%d entries from %d bytes", len(c.shadow), len(data))
		}
	})
}
