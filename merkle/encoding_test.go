package merkle

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"
)

// sessionMessages runs a small session by hand and returns every message it
// put on the wire, encoded: realistic seeds for the fuzzers.
func sessionMessages(tb testing.TB, shape Shape, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	a, b, _ := randomPair(tb, rng, shape, 60, 12)
	sa, _ := NewInitiator(Config{Shape: shape, Local: a, Salt: seed, MaxTransferBytes: 64})
	sb, _ := NewResponder(Config{Shape: shape, Local: b})
	out, err := sa.Start()
	if err != nil {
		tb.Fatal(err)
	}
	var all [][]byte
	flight, to := out.Msgs, sb
	for len(flight) > 0 {
		var next []Message
		for _, m := range flight {
			all = append(all, Marshal(m))
			o, err := to.Step(m)
			if err != nil {
				tb.Fatal(err)
			}
			next = append(next, o.Msgs...)
		}
		flight = next
		if to == sb {
			to = sa
		} else {
			to = sb
		}
	}
	return all
}

func TestMessageRoundTrip(t *testing.T) {
	bm := NewBitmap(11)
	bm.Set(0)
	bm.Set(10)
	msgs := []Message{
		&Hello{Shape: DefaultShape, Salt: 0xfeedface, Level: 1, Digests: make([]uint32, 16)},
		&Digests{Level: 2, Mismatch: bm, Digests: []uint32{1, 2, 3}},
		&Summaries{Mismatch: bm, Counts: []uint32{2, 0}, Hashes: []uint32{7, 8}},
		&Entries{Missing: NewBitmap(3), Entries: []Entry{
			{Key: []byte("a"), Versions: []Version{{5, 1}, {5, 1}}},
			{Key: []byte(""), Versions: []Version{{5, 1}, {}, {6, 2}}},
		}},
		&Transfer{Wants: bm, More: true, Records: []Record{{Key: []byte("k"), Payload: []byte("p")}}},
		&Done{},
		&Abort{Code: AbortShape, Reason: "no"},
	}
	for _, m := range msgs {
		enc := Marshal(m)
		if enc[0] != WireVersion || MsgType(enc[1]) != m.Type() {
			t.Errorf("%s: header %x", m.Type(), enc[:2])
		}
		got, err := Unmarshal(enc)
		if err != nil {
			t.Fatalf("%s: %v", m.Type(), err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: got %+v, want %+v", m.Type(), got, m)
		}
		// Every strict prefix is an error, never a panic.
		for i := range enc {
			if _, err := Unmarshal(enc[:i]); !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: prefix of %d bytes: err = %v", m.Type(), i, err)
			}
		}
		if _, err := Unmarshal(append(enc, 0)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: trailing byte accepted", m.Type())
		}
	}
	// A repeated register version costs one byte.
	one := Marshal(&Entries{Missing: NewBitmap(0), Entries: []Entry{{Key: []byte("a"), Versions: []Version{{5, 1}}}}})
	two := Marshal(&Entries{Missing: NewBitmap(0), Entries: []Entry{{Key: []byte("a"), Versions: []Version{{5, 1}, {5, 1}}}}})
	if len(two) != len(one)+1 {
		t.Errorf("repeated version costs %d bytes", len(two)-len(one))
	}
}

// TestDecoderBounds: counts over their limit or over the bytes left are
// refused before any allocation that size.
func TestDecoderBounds(t *testing.T) {
	huge := binary.AppendUvarint(nil, 1<<40)
	big := binary.AppendUvarint(nil, MaxItems-1) // under the limit, over the bytes
	cases := []struct {
		name string
		msg  []byte
	}{
		{"hello digests over limit", append([]byte{1, 1, 4, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1}, huge...)},
		{"hello digests over bytes", append([]byte{1, 1, 4, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1}, big...)},
		{"digests bitmap over limit", append([]byte{1, 2, 1}, huge...)},
		{"digests bitmap over bytes", append([]byte{1, 2, 1}, big...)},
		{"entries over bytes", append([]byte{1, 4, 0}, big...)},
		{"entries versions over limit", append([]byte{1, 4, 0, 1, 1, 'k'}, binary.AppendUvarint(nil, MaxVersions+1)...)},
		{"transfer records over bytes", append([]byte{1, 5, 0, 0}, big...)},
		{"transfer key over bytes", append([]byte{1, 5, 0, 0, 1}, big...)},
		{"summaries count over bytes", append([]byte{1, 3, 1, 1}, big...)},
		{"abort reason over limit", append([]byte{1, 7, 1}, binary.AppendUvarint(nil, MaxReasonLen+1)...)},
		{"overlong varint", []byte{1, 2, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}},
		{"bad wire version", []byte{2, 6}},
		{"unknown type", []byte{1, 99}},
		{"fan-out 2^9", []byte{1, 1, 9, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"bits past a bitmap's end", []byte{1, 2, 1, 3, 0xff, 0}},
		{"bad version tag", []byte{1, 4, 0, 1, 1, 'k', 1, 3}},
		{"repeat tag first", []byte{1, 4, 0, 1, 1, 'k', 1, 1}},
		{"transfer flags", []byte{1, 5, 2, 0, 0}},
		{"registers over bytes", nil},
	}
	for _, c := range cases {
		if c.msg == nil {
			continue
		}
		var err error
		n := allocBytes(func() { _, err = Unmarshal(c.msg) })
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v", c.name, err)
		}
		if n > 4096 {
			t.Errorf("%s: allocated %d bytes to refuse %d", c.name, n, len(c.msg))
		}
	}
	if _, err := DecodeRegisters(big); err == nil {
		t.Error("DecodeRegisters accepted a count over the bytes left")
	}
	if _, err := DecodeRegisters(append(binary.AppendUvarint(nil, 1), make([]byte, 16)...)); err == nil {
		t.Error("DecodeRegisters accepted a truncated register")
	}
}

// allocBytes reports the fewest bytes fn allocated over several runs.
// TotalAlloc is process-wide, so one run can be charged for the runtime's
// or another goroutine's allocations; an allocation fn itself makes shows
// in every run, so the minimum still catches it.
func allocBytes(fn func()) uint64 {
	least := uint64(math.MaxUint64)
	for range 5 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		fn()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

func TestRegistersRoundTrip(t *testing.T) {
	regs := []Register{{Version{1, 2}, []byte("v")}, {Version{3, 4}, nil}, {Version{5, 6}, []byte{}}}
	got, err := DecodeRegisters(AppendRegisters(nil, regs))
	if err != nil || !reflect.DeepEqual(got, regs) {
		t.Fatalf("got %v, %v", got, err)
	}
}

// checkRoundTrip: whatever decodes re-encodes to something no longer that
// decodes to the same message.
func checkRoundTrip(t *testing.T, data []byte) {
	m, err := Unmarshal(data)
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("error not ErrMalformed: %v", err)
		}
		return
	}
	enc := Marshal(m)
	if len(enc) > len(data) {
		t.Fatalf("re-encoding grew from %d to %d bytes", len(data), len(enc))
	}
	m2, err := Unmarshal(enc)
	if err != nil {
		t.Fatalf("re-encoding does not decode: %v", err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Fatalf("round trip changed %+v into %+v", m, m2)
	}
}

func addSeeds(f *testing.F, typ MsgType) {
	for _, sh := range []Shape{DefaultShape, {4, 3, HashXXH64}, {2, 1, HashXXH64}} {
		for _, m := range sessionMessages(f, sh, 3) {
			if typ == 0 {
				f.Add(m)
			} else if MsgType(m[1]) == typ {
				f.Add(m[2:])
			}
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
}

// The per-type fuzzers feed the body after a fixed header, so the fuzzer
// spends its time inside one decoder.
func fuzzType(f *testing.F, typ MsgType) {
	addSeeds(f, typ)
	f.Fuzz(func(t *testing.T, body []byte) {
		checkRoundTrip(t, append([]byte{WireVersion, byte(typ)}, body...))
	})
}

func FuzzUnmarshal(f *testing.F) {
	addSeeds(f, 0)
	f.Fuzz(checkRoundTrip)
}

func FuzzHello(f *testing.F)     { fuzzType(f, TypeHello) }
func FuzzDigests(f *testing.F)   { fuzzType(f, TypeDigests) }
func FuzzSummaries(f *testing.F) { fuzzType(f, TypeSummaries) }
func FuzzEntries(f *testing.F)   { fuzzType(f, TypeEntries) }
func FuzzTransfer(f *testing.F)  { fuzzType(f, TypeTransfer) }
func FuzzAbort(f *testing.F) {
	f.Add([]byte{1, 3, 'b', 'a', 'd'})
	fuzzType(f, TypeAbort)
}

func FuzzDecodeRegisters(f *testing.F) {
	f.Add(AppendRegisters(nil, []Register{{Version{1, 2}, []byte("value")}, {Version{1, 2}, nil}}))
	f.Add(AppendRegisters(nil, nil))
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		regs, err := DecodeRegisters(data)
		if err != nil {
			return
		}
		if enc := AppendRegisters(nil, regs); len(enc) > len(data) {
			t.Fatalf("re-encoding grew")
		}
		again, err := DecodeRegisters(AppendRegisters(nil, regs))
		if err != nil || !reflect.DeepEqual(again, regs) {
			t.Fatalf("round trip: %v %v %v", regs, again, err)
		}
	})
}

// FuzzSessionStep: a session fed arbitrary messages at any point of a real
// exchange returns an error or carries on, and never panics.
func FuzzSessionStep(f *testing.F) {
	for i, m := range sessionMessages(f, Shape{4, 3, HashXXH64}, 5) {
		f.Add(uint8(i), m)
	}
	f.Add(uint8(3), []byte{1, 5, 0, 0, 1, 1, 'k', 1, 'p'})
	f.Fuzz(func(t *testing.T, at uint8, data []byte) {
		m, err := Unmarshal(data)
		if err != nil {
			return
		}
		shape := Shape{4, 3, HashXXH64}
		rng := rand.New(rand.NewPCG(5, 1))
		a, b, _ := randomPair(t, rng, shape, 60, 12)
		sa, _ := NewInitiator(Config{Shape: shape, Local: a, Salt: 5})
		sb, _ := NewResponder(Config{Shape: shape, Local: b})
		out, _ := sa.Start()
		flight, to := out.Msgs, sb
		for step := 0; len(flight) > 0; step++ {
			var next []Message
			for _, msg := range flight {
				if step == int(at)%8 {
					msg = m // the intruder
				}
				o, err := to.Step(msg)
				if err != nil {
					return
				}
				next = append(next, o.Msgs...)
			}
			flight = next
			if to == sb {
				to = sa
			} else {
				to = sb
			}
		}
	})
}
