package merkle

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestScripts runs the session scripts in testdata/. Commands:
//
//	init [fanout=F] [depth=D] [bdepth=D]
//	                           two empty stores, a and b (of depth bdepth)
//	put a|b                    one key per line: KEY TS.NODE=DATA ... where
//	                           DATA "-" is a tombstone and "_" an unset register
//	reconcile [salt=S] [from=b] one session; prints every message and the results
//	dump a|b                   the store, key by key
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var stores map[string]*MemStore
		var shape Shape
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "init":
				shape = Shape{FanOut: 16, Depth: 4, Hash: HashXXH64}
				d.MaybeScanArgs(t, "fanout", &shape.FanOut)
				d.MaybeScanArgs(t, "depth", &shape.Depth)
				bshape := shape
				d.MaybeScanArgs(t, "bdepth", &bshape.Depth)
				stores = map[string]*MemStore{"a": newStore(t, shape), "b": newStore(t, bshape)}
				return ""
			case "put":
				m := stores[d.CmdArgs[0].Key]
				for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
					f := strings.Fields(line)
					var regs []Register
					for _, r := range f[1:] {
						regs = append(regs, parseRegister(t, r))
					}
					m.Put([]byte(f[0]), regs)
				}
				return ""
			case "dump":
				var sb strings.Builder
				for _, k := range sortedKeys(stores[d.CmdArgs[0].Key]) {
					fmt.Fprintf(&sb, "%s %s\n", k, formatRegisters(stores[d.CmdArgs[0].Key].Get([]byte(k))))
				}
				return sb.String()
			case "reconcile":
				salt := 1
				d.MaybeScanArgs(t, "salt", &salt)
				from := "a"
				d.MaybeScanArgs(t, "from", &from)
				to := map[string]string{"a": "b", "b": "a"}[from]
				return runScripted(t, stores[from], stores[to], from, to, uint64(salt))
			}
			t.Fatalf("unknown command %q", d.Cmd)
			return ""
		})
	})
}

func parseRegister(t *testing.T, s string) Register {
	if s == "_" {
		return Register{}
	}
	ver, data, ok := strings.Cut(s, "=")
	ts, node, ok2 := strings.Cut(ver, ".")
	if !ok || !ok2 {
		t.Fatalf("bad register %q", s)
	}
	var r Register
	var err error
	if r.Version.TS, err = strconv.ParseUint(ts, 10, 64); err != nil {
		t.Fatal(err)
	}
	if r.Version.Node, err = strconv.ParseUint(node, 10, 64); err != nil {
		t.Fatal(err)
	}
	if data != "-" {
		r.Data = []byte(data)
	}
	return r
}

func formatRegisters(regs []Register) string {
	var parts []string
	for _, r := range regs {
		switch {
		case r.Version.IsZero():
			parts = append(parts, "_")
		case r.Data == nil:
			parts = append(parts, fmt.Sprintf("%d.%d=-", r.Version.TS, r.Version.Node))
		default:
			parts = append(parts, fmt.Sprintf("%d.%d=%s", r.Version.TS, r.Version.Node, r.Data))
		}
	}
	return strings.Join(parts, " ")
}

func sortedKeys(m *MemStore) []string {
	var ks []string
	m.Range(func(k []byte, _ []Register) bool { ks = append(ks, string(k)); return true })
	slices.Sort(ks)
	return ks
}

func bitstr(m Bitmap) string {
	var sb strings.Builder
	for i := range m.Len() {
		if m.Get(i) {
			sb.WriteByte('1')
		} else {
			sb.WriteByte('0')
		}
	}
	return sb.String()
}

func keysOf[T any](xs []T, key func(T) []byte) string {
	var ks []string
	for _, x := range xs {
		ks = append(ks, string(key(x)))
	}
	return "[" + strings.Join(ks, " ") + "]"
}

func describe(m Message) string {
	switch m := m.(type) {
	case *Hello:
		return fmt.Sprintf("hello %dx%d level=%d digests=%d", m.Shape.FanOut, m.Shape.Depth, m.Level, len(m.Digests))
	case *Digests:
		return fmt.Sprintf("digests level=%d mismatch=%s digests=%d", m.Level, bitstr(m.Mismatch), len(m.Digests))
	case *Summaries:
		return fmt.Sprintf("summaries mismatch=%s counts=%v", bitstr(m.Mismatch), m.Counts)
	case *Entries:
		return fmt.Sprintf("entries missing=%s full=%s", bitstr(m.Missing), keysOf(m.Entries, func(e Entry) []byte { return e.Key }))
	case *Transfer:
		return fmt.Sprintf("transfer records=%s wants=%s more=%v", keysOf(m.Records, func(r Record) []byte { return r.Key }), bitstr(m.Wants), m.More)
	case *Abort:
		return fmt.Sprintf("abort code=%d", m.Code)
	}
	return m.Type().String()
}

func runScripted(t *testing.T, a, b *MemStore, an, bn string, salt uint64) string {
	var sb strings.Builder
	sa, _ := NewInitiator(Config{Shape: a.Tree().Shape(), Local: a, Salt: salt})
	sb2, _ := NewResponder(Config{Shape: b.Tree().Shape(), Local: b})
	out, err := sa.Start()
	if err != nil {
		t.Fatal(err)
	}
	type side struct {
		name string
		s    *Session
		m    *MemStore
	}
	cur, other := side{bn, sb2, b}, side{an, sa, a}
	flight := out.Msgs
	var meta, payload int
	for len(flight) > 0 {
		var next []Message
		for _, m := range flight {
			enc := Marshal(m)
			p := payloadBytes(m)
			meta += len(enc) - p
			payload += p
			fmt.Fprintf(&sb, "%s→%s %s (%d B)\n", other.name, cur.name, describe(m), len(enc))
			dm, err := Unmarshal(enc)
			if err != nil {
				t.Fatal(err)
			}
			o, err := cur.s.Step(dm)
			if err != nil {
				fmt.Fprintf(&sb, "%s: error: %v\n", cur.name, err)
			}
			for _, r := range o.Records {
				if err := cur.m.Apply(r); err != nil {
					t.Fatal(err)
				}
			}
			next = append(next, o.Msgs...)
		}
		flight = next
		cur, other = other, cur
	}
	for _, x := range []side{{an, sa, a}, {bn, sb2, b}} {
		r := x.s.Result()
		fmt.Fprintf(&sb, "%s: equal=%v buckets=%d pulled=%s pushed=%s\n", x.name, r.Equal, r.Buckets,
			keysOf(r.Pulled, func(k []byte) []byte { return k }), keysOf(r.Pushed, func(k []byte) []byte { return k }))
	}
	fmt.Fprintf(&sb, "metadata=%d payload=%d same-root=%v\n", meta, payload, a.Tree().Root() == b.Tree().Root())
	return sb.String()
}
