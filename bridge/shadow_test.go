package bridge

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/redmesh/redmesh/bridge/shadow"
)

func TestShadowKeptAcrossRuns(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bridge.shadow")
	b := &Bridge{opts: Options{ShadowFile: file}, log: quietLog(), shadowRunID: "run", shadowDirty: true}
	b.remember(1, State{Kind: String, Str: []byte("v")})
	b.remember(3, State{Kind: Set, Members: [][]byte{[]byte("m")}})
	b.saveShadow()
	c := &Bridge{opts: Options{ShadowFile: file}, log: quietLog()}
	c.loadShadow()
	e1, _ := c.shadow.Get(1)
	e3, _ := c.shadow.Get(3)
	if c.shadowRunID != "run" || c.shadow.Len() != 2 || e1 != baseOf(State{Kind: String, Str: []byte("v")}) || e3.Elems.Len() != 1 {
		t.Fatalf("loaded %q %v %v", c.shadowRunID, e1, e3)
	}
	// A damaged file is ignored: an empty shadow, as at a first start.
	if err := os.WriteFile(file, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &Bridge{opts: Options{ShadowFile: file}, log: quietLog()}
	d.loadShadow()
	if d.shadowRunID != "" || d.shadow.Len() != 0 {
		t.Fatalf("loaded %q and %d entries from a damaged file", d.shadowRunID, d.shadow.Len())
	}
}

// TestStringKind: the shadow keeps strings, by their kind, in its compact
// forms.
func TestStringKind(t *testing.T) {
	if uint8(String) != shadow.KindString {
		t.Fatalf("String is %d, the shadow's string kind %d", String, shadow.KindString)
	}
}

// BenchmarkShadowMemory reports what the shadow holds in memory: per string
// key (1,000,000 keys of 100-byte values, SHADOW_KEYS to change), per string
// key with a deadline, and per element of large hashes (100 hashes of
// 10,000 fields) and sets. Run with -benchtime 1x.
func BenchmarkShadowMemory(b *testing.B) {
	keys := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("SHADOW_KEYS")); err == nil {
		keys = v
	}
	value := bytes.Repeat([]byte("v"), 100)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	measure := func(name string, per int, fill func(br *Bridge)) {
		before := heap()
		br := &Bridge{}
		fill(br)
		after := heap()
		b.ReportMetric(float64(after-before)/float64(per), name)
		runtime.KeepAlive(br)
	}
	for range b.N {
		measure("B/string", keys, func(br *Bridge) {
			for i := range keys {
				br.remember(uint64(i)*0x9e3779b97f4a7c15, State{Kind: String, Str: value})
			}
		})
		measure("B/string-with-deadline", keys, func(br *Bridge) {
			for i := range keys {
				br.remember(uint64(i)*0x9e3779b97f4a7c15, State{Kind: String, Str: value, At: 1 << 41})
			}
		})
		measure("B/counter", keys, func(br *Bridge) {
			for i := range keys {
				br.remember(uint64(i)*0x9e3779b97f4a7c15, State{Kind: String, Str: strconv.AppendInt(nil, int64(i), 10)})
			}
		})
		const hashes, fields = 100, 10_000
		measure("B/hash-field", hashes*fields, func(br *Bridge) {
			for i := range hashes {
				s := State{Kind: Hash}
				for f := range fields {
					s.Fields = append(s.Fields, fmt.Appendf(nil, "field:%d", f), value)
				}
				s.Fields = sortFields(s.Fields)
				br.remember(uint64(i), s)
			}
		})
		measure("B/set-member", hashes*fields, func(br *Bridge) {
			for i := range hashes {
				s := State{Kind: Set}
				for f := range fields {
					s.Members = append(s.Members, fmt.Appendf(nil, "member:%d", f))
				}
				sortMembers(s.Members)
				br.remember(uint64(i), s)
			}
		})
	}
}
