package bridge

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/redmesh/redmesh/bridge/shadow"
)

func TestShadowKeptAcrossRuns(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bridge.shadow")
	b := &Bridge{opts: Options{ShadowFile: file}, log: quietLog(), shadow: map[uint64]base{1: {Digest: 2}, 3: {Digest: 4, Kind: uint8(Set), Elems: &[]shadow.Elem{{Name: 5}}}}, shadowRunID: "run", shadowDirty: true}
	b.saveShadow()
	c := &Bridge{opts: Options{ShadowFile: file}, log: quietLog(), shadow: map[uint64]base{}}
	c.loadShadow()
	if c.shadowRunID != "run" || len(c.shadow) != 2 || c.shadow[1].Digest != 2 || c.shadow[3].Digest != 4 || len(c.shadow[3].List()) != 1 {
		t.Fatalf("loaded %q %v", c.shadowRunID, c.shadow)
	}
	// A damaged file is ignored: an empty shadow, as at a first start.
	if err := os.WriteFile(file, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &Bridge{opts: Options{ShadowFile: file}, log: quietLog(), shadow: map[uint64]base{}}
	d.loadShadow()
	if d.shadowRunID != "" || len(d.shadow) != 0 {
		t.Fatalf("loaded %q %v from a damaged file", d.shadowRunID, d.shadow)
	}
}
