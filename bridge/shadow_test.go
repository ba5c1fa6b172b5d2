package bridge

import (
	"os"
	"path/filepath"
	"testing"
)

func TestShadowKeptAcrossRuns(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bridge.shadow")
	b := &Bridge{opts: Options{ShadowFile: file}, log: quietLog(), shadow: map[uint64]uint64{1: 2, 3: 4}, shadowRunID: "run", shadowDirty: true}
	b.saveShadow()
	c := &Bridge{opts: Options{ShadowFile: file}, log: quietLog(), shadow: map[uint64]uint64{}}
	c.loadShadow()
	if c.shadowRunID != "run" || len(c.shadow) != 2 || c.shadow[1] != 2 || c.shadow[3] != 4 {
		t.Fatalf("loaded %q %v", c.shadowRunID, c.shadow)
	}
	// A damaged file is ignored: an empty shadow, as at a first start.
	if err := os.WriteFile(file, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &Bridge{opts: Options{ShadowFile: file}, log: quietLog(), shadow: map[uint64]uint64{}}
	d.loadShadow()
	if d.shadowRunID != "" || len(d.shadow) != 0 {
		t.Fatalf("loaded %q %v from a damaged file", d.shadowRunID, d.shadow)
	}
}
